// Sockudo's Redis Sentinel keys under `database.redis`: the sentinels to ask, the master's
// name, the sentinels' own credentials, and TLS for each hop (to the sentinels, and to the
// master or the single server).
import { z } from 'zod';
import { lenient } from './lenient.js';

const port = lenient(z.number().int().min(1).max(65535));

/** A sentinel as `{host, port}` (Sockudo) or "host:port" (the env list). */
const sentinel = z.union([
  z.object({ host: z.string().min(1), port }),
  z
    .string()
    .regex(/^[^\s:]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, 'a sentinel is {host, port} or "host:port"')
    .transform((s) => {
      const i = s.lastIndexOf(':');
      return { host: s.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(s.slice(i + 1)) };
    }),
]);

/** Sockudo's RedisTlsOptions for one hop. */
export const redisTlsSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Skips certificate and host name checks: for self-signed test setups only. */
    accept_invalid_certs: z.boolean().default(false),
    ca_path: z.string().min(1).nullish(),
    client_cert_path: z.string().min(1).nullish(),
    client_key_path: z.string().min(1).nullish(),
  })
  .refine((t) => !t.client_cert_path === !t.client_key_path, { message: 'client_cert_path and client_key_path go together' })
  .prefault({});

export type RedisTlsConfig = z.output<typeof redisTlsSchema>;

export const sentinelFields = {
  /** Non-empty: every Redis part finds its master through these sentinels. */
  sentinels: z.array(sentinel).default([]),
  /** The master's name as the sentinels know it. */
  name: z.string().min(1).default('mymaster'),
  sentinel_username: z.string().nullish(),
  sentinel_password: z.string().nullish(),
  sentinel_tls: redisTlsSchema,
  /** TLS to the master (through Sentinel) or to the single server. */
  master_tls: redisTlsSchema,
};
