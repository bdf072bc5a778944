// Connection options for ioredis from Chorus's config (database.redis.*, REDIS_URL).
import type { RedisOptions } from 'ioredis';
import type { Config } from '../config/schema.js';

/** Reconnect with capped exponential backoff: 100 ms, 200 ms ... 1 s, forever (a broker back is used within a second). */
export const reconnectDelay = (attempt: number): number => Math.min(1000, 100 * 2 ** Math.min(attempt, 4));

export function redisOptions(config: Config): RedisOptions {
  const r = config.database.redis;
  const base: RedisOptions = {
    retryStrategy: reconnectDelay,
    lazyConnect: true,
  };
  if (r.url) {
    const url = new URL(r.url);
    return {
      ...base,
      host: url.hostname,
      port: Number(url.port || 6379),
      username: url.username ? decodeURIComponent(url.username) : undefined,
      password: url.password ? decodeURIComponent(url.password) : undefined,
      db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
      tls: url.protocol === 'rediss:' ? {} : undefined,
    };
  }
  return {
    ...base,
    host: r.host,
    port: r.port,
    username: r.username ?? undefined,
    password: r.password ?? undefined,
    db: r.db,
  };
}

/** Redis Cluster seed nodes from REDIS_CLUSTER_NODES / database.redis.cluster_nodes. */
export function clusterNodes(config: Config): Array<{ host: string; port: number }> {
  const listed = config.database.redis.cluster_nodes.length > 0 ? config.database.redis.cluster_nodes : config.adapter.cluster.nodes;
  return listed.map((n) => {
    if (typeof n !== 'string') return n;
    const text = n.replace(/^rediss?:\/\//, '');
    const i = text.lastIndexOf(':');
    return i > 0 ? { host: text.slice(0, i), port: Number(text.slice(i + 1)) } : { host: text, port: 6379 };
  });
}
