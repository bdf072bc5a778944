// Sockudo's per-hop Redis TLS settings as node:tls options, with the PEM files read once at
// start-up (a missing file stops start-up naming its key).
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { ConfigError } from '../config/errors.js';
import type { RedisTlsConfig } from '../config/redis-sentinel.js';

function pem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** undefined when the hop is plain. */
export function redisTlsOptions(tls: RedisTlsConfig, key: string): TlsOptions | undefined {
  if (!tls.enabled) return undefined;
  const options: TlsOptions = {};
  if (tls.accept_invalid_certs) {
    options.rejectUnauthorized = false;
    options.checkServerIdentity = () => undefined;
  }
  if (tls.ca_path) options.ca = pem(tls.ca_path, `${key}.ca_path`);
  if (tls.client_cert_path && tls.client_key_path) {
    options.cert = pem(tls.client_cert_path, `${key}.client_cert_path`);
    options.key = pem(tls.client_key_path, `${key}.client_key_path`);
  }
  return options;
}
