// What a Redis deployment is (plain, Sentinel or Cluster, with its credentials and TLS),
// independent of what a client is for. redis-client.ts turns it into clients.
import type { ConnectionOptions as TlsOptions } from 'node:tls';

export interface RedisAddress {
  host: string;
  port: number;
}

export interface RedisSettings {
  host?: string;
  port?: number;
  username?: string | null;
  password?: string | null;
  db?: number;
  /** redis://[user:password@]host[:port][/db] or rediss:// (TLS); its parts win over the fields above. */
  url?: string | null;
  /** TLS to the Redis servers: true for the system's CAs, or node:tls options. */
  tls?: boolean | TlsOptions;
  /** Redis Cluster seed nodes; createRedisClient builds a Cluster client when non-empty. */
  clusterNodes?: readonly RedisAddress[];
  /** Redis Sentinel: the sentinels to ask and the master's name. */
  sentinels?: readonly RedisAddress[];
  name?: string | null;
  sentinelUsername?: string | null;
  sentinelPassword?: string | null;
  /** TLS to the sentinels themselves (defaults to none). */
  sentinelTls?: boolean | TlsOptions;
  /** Bound on connectRedis and on each TCP connect attempt (default 10 s). */
  connectTimeoutMs?: number;
  /** Bound on one command of a 'command' client (default 5 s); other roles do not time out commands. */
  commandTimeoutMs?: number;
  /** Prefix of the CLIENT SETNAME seen in CLIENT LIST (default "chorus"); the role is appended. */
  connectionName?: string;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;

/** true means TLS with the system's CAs. */
export const tlsOptions = (tls: boolean | TlsOptions | undefined): TlsOptions | undefined =>
  tls === true ? {} : tls === false || tls === undefined ? undefined : tls;

export interface ResolvedRedis {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
  tls?: TlsOptions;
}

/** Settings with the URL applied. Throws a TypeError for a URL that is not redis:// or rediss://. */
export function resolveRedisSettings(s: RedisSettings): ResolvedRedis {
  const base: ResolvedRedis = {
    host: s.host ?? '127.0.0.1',
    port: s.port ?? 6379,
    username: s.username ?? undefined,
    password: s.password ?? undefined,
    db: s.db ?? 0,
    tls: tlsOptions(s.tls),
  };
  if (!s.url) return base;
  const url = new URL(s.url);
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new TypeError(`not a redis:// or rediss:// URL: ${url.protocol}`);
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : base.db;
  if (!Number.isInteger(db) || db < 0) throw new TypeError(`bad database number in Redis URL: ${url.pathname}`);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1') || base.host,
    port: url.port ? Number(url.port) : base.port,
    username: url.username ? decodeURIComponent(url.username) : base.username,
    password: url.password ? decodeURIComponent(url.password) : base.password,
    db,
    tls: url.protocol === 'rediss:' ? (base.tls ?? {}) : base.tls,
  };
}
