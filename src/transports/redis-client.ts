// The one place Redis clients are built: plain, Sentinel or Cluster from one
// settings shape, with options chosen by what the client is for (its role).
// Clients are lazy: connect them with connectRedis (redis-connect.ts), which is
// bounded and rejects with the broker's own words.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import {
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  resolveRedisSettings,
  tlsOptions,
  type RedisSettings,
  type ResolvedRedis,
} from './redis-settings.js';

export { connectRedis, RedisConnectError, type Patience } from './redis-connect.js';
export * from './redis-settings.js';

/**
 * - publisher: fire-and-forget publishes and the transports' atomic operations. No offline
 *   queue: while Redis is down a command fails at once instead of piling up in memory.
 * - subscriber: pub/sub only. Keeps its queue (it holds (un)subscribes, bounded by the topics
 *   held) and resubscribes by itself after a reconnect.
 * - command: request/response work (rate limits, queue bookkeeping). Queued while
 *   reconnecting, but each command is bounded by commandTimeoutMs and one retry.
 * - blocking: BLMOVE and the like. Queued and retried without limit, never timed out (it
 *   blocks by design).
 */
export type RedisRole = 'publisher' | 'subscriber' | 'command' | 'blocking';

/** Reconnect with capped exponential backoff: 100 ms, 200 ms ... 1 s, forever (a broker back is used within a second). */
export const reconnectDelay = (attempt: number): number => Math.min(1000, 100 * 2 ** Math.min(attempt, 4));

/** Per-connection options every role and mode shares. */
function connectionOptions(s: RedisSettings, r: ResolvedRedis, role: RedisRole) {
  return {
    username: r.username,
    password: r.password,
    tls: r.tls,
    connectTimeout: s.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    connectionName: `${s.connectionName ?? 'chorus'}:${role}`,
    keepAlive: 10_000,
    lazyConnect: true,
    ...roleOptions(s, role),
  };
}

function roleOptions(s: RedisSettings, role: RedisRole): Pick<RedisOptions, 'maxRetriesPerRequest' | 'commandTimeout' | 'autoResubscribe'> {
  switch (role) {
    case 'publisher':
      return { maxRetriesPerRequest: 1 };
    case 'subscriber':
      return { maxRetriesPerRequest: null, autoResubscribe: true };
    case 'command':
      return { maxRetriesPerRequest: 1, commandTimeout: s.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS };
    case 'blocking':
      return { maxRetriesPerRequest: null };
  }
}

/** Options for a plain or Sentinel client (Sentinel when `sentinels` is non-empty). */
export function redisClientOptions(s: RedisSettings, role: RedisRole): RedisOptions {
  const r = resolveRedisSettings(s);
  const options: RedisOptions = {
    ...connectionOptions(s, r, role),
    db: r.db,
    retryStrategy: reconnectDelay,
    enableOfflineQueue: role !== 'publisher',
  };
  if (!s.sentinels || s.sentinels.length === 0) return { ...options, host: r.host, port: r.port };
  if (!s.name) throw new TypeError('Redis Sentinel needs the master name (settings.name)');
  const sentinelTls = tlsOptions(s.sentinelTls);
  return {
    ...options,
    sentinels: s.sentinels.map((a) => ({ host: a.host, port: a.port })),
    name: s.name,
    sentinelUsername: s.sentinelUsername ?? undefined,
    sentinelPassword: s.sentinelPassword ?? undefined,
    sentinelRetryStrategy: reconnectDelay,
    // The master link uses `tls`; sentinels only when asked.
    enableTLSForSentinelMode: r.tls !== undefined,
    ...(sentinelTls ? { sentinelTLS: sentinelTls } : {}),
    // Subscribes to +switch-master so a failover is noticed at once, not at the next timeout.
    failoverDetector: true,
  };
}

/** Options for a Redis Cluster client. */
export function redisClusterOptions(s: RedisSettings, role: RedisRole): ClusterOptions {
  const r = resolveRedisSettings(s);
  const { lazyConnect, ...perNode } = connectionOptions(s, r, role);
  return {
    lazyConnect,
    clusterRetryStrategy: reconnectDelay,
    // A slot map refresh that hangs on a dead node gives up in 2 s and tries the next one.
    slotsRefreshTimeout: 2000,
    redisOptions: perNode,
    enableOfflineQueue: role !== 'publisher',
    maxRedirections: 16,
    // Sharded pub/sub (SSUBSCRIBE) needs one subscriber connection per shard.
    shardedSubscribers: role === 'subscriber',
  };
}

export function createStandaloneClient(s: RedisSettings, role: RedisRole): Redis {
  return new Redis(redisClientOptions(s, role));
}

export function createClusterClient(s: RedisSettings, role: RedisRole): Cluster {
  const nodes = s.clusterNodes ?? [];
  if (nodes.length === 0) throw new TypeError('Redis Cluster needs at least one seed node (settings.clusterNodes)');
  return new Cluster(
    nodes.map((n) => ({ host: n.host, port: n.port })),
    redisClusterOptions(s, role),
  );
}

/** A Cluster client when `clusterNodes` is non-empty, else a plain or Sentinel client. Lazy: see connectRedis. */
export function createRedisClient(s: RedisSettings, role: RedisRole): Redis | Cluster {
  return s.clusterNodes && s.clusterNodes.length > 0 ? createClusterClient(s, role) : createStandaloneClient(s, role);
}
