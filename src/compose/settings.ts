// From the validated config to each part's own settings. The composition root (this
// folder and server.ts) is the only code that reads the config's shape; every part
// gets just what it needs.
import { ConfigError } from '../config/errors.js';
import type { PartRedis } from '../config/redis-parts.js';
import type { Config } from '../config/schema.js';
import type { CoreSettings } from '../core/core.js';
import type { FallbackSettings } from '../edge/fallback/settings.js';
import type { HttpSettings } from '../edge/http/settings.js';
import type { IpLimits } from '../edge/ws/ip-gate.js';
import type { WsSettings } from '../edge/ws/settings.js';
import type { RedisSettings } from '../transports/redis-client.js';
import { redisTlsOptions } from './redis-tls.js';

export function wsSettings(config: Config): WsSettings {
  const rl = config.rate_limiter;
  const ws = rl.websocket_rate_limit;
  const rate = rl.enabled ? { maxRequests: ws.max_requests, windowSeconds: ws.window_seconds, refusal: rl.websocket_refusal } : null;
  const ipLimits: IpLimits | null =
    rate || config.max_connections_per_ip !== null
      ? { trustHops: ws.trust_hops, maxConnections: config.max_connections_per_ip, rate }
      : null;
  return {
    pathPrefix: config.path_prefix,
    activityTimeoutSeconds: config.activity_timeout,
    maxPayloadBytes: config.websocket_max_payload_kb * 1024,
    userAuthenticationTimeoutSeconds: config.user_authentication_timeout,
    maxChannelsPerConnection: config.max_channels_per_connection,
    controlBudget: { perSecond: config.max_control_frames_per_second ?? 0, burst: config.max_control_frames_burst },
    ipLimits,
  };
}

export function fallbackSettings(config: Config): FallbackSettings {
  const f = config.http_fallback;
  return {
    enabled: f.enabled,
    pathPrefix: config.path_prefix,
    trustHops: config.rate_limiter.websocket_rate_limit.trust_hops,
    maxSessionsPerIp: f.max_sessions_per_ip,
    // A frame inside the array is a JSON string: escaping may grow it up to 6x (\u00XX).
    maxSendBytes: config.websocket_max_payload_kb * 1024 * 6 + 1024,
    timing: { heartbeatMs: f.heartbeat_interval_seconds * 1000, disconnectMs: f.disconnect_delay_seconds * 1000 },
  };
}

export function httpSettings(config: Config): HttpSettings {
  const api = config.rate_limiter.api_rate_limit;
  return {
    pathPrefix: config.path_prefix,
    apiIpLimit: config.rate_limiter.enabled
      ? { maxRequests: api.max_requests, windowSeconds: api.window_seconds, trustHops: api.trust_hops }
      : null,
    maxBodyBytes: Math.floor(config.http_api.request_limit_in_mb * 1024 * 1024),
    cors: {
      origins: config.cors.origin,
      credentials: config.cors.credentials,
      methods: config.cors.methods,
      allowedHeaders: config.cors.allowed_headers,
    },
    idempotency: {
      enabled: config.idempotency.enabled,
      ttlSeconds: config.idempotency.ttl_seconds,
      maxKeyLength: config.idempotency.max_key_length,
    },
  };
}

export const coreSettings = (config: Config): CoreSettings => ({
  maxConnections: config.max_connections,
  gatherWebhookBatches: config.webhooks.batching.enabled,
});

/** Redis Cluster seed nodes from REDIS_CLUSTER_NODES / database.redis.cluster_nodes / adapter.cluster.nodes. */
export function clusterNodes(config: Config): Array<{ host: string; port: number }> {
  const listed = config.database.redis.cluster_nodes.length > 0 ? config.database.redis.cluster_nodes : config.adapter.cluster.nodes;
  return listed.map((n) => {
    if (typeof n !== 'string') return n;
    const text = n.replace(/^rediss?:\/\//, '');
    const i = text.lastIndexOf(':');
    return i > 0 ? { host: text.slice(0, i), port: Number(text.slice(i + 1)) } : { host: text, port: 6379 };
  });
}

/** One Redis deployment for every Redis-backed part; `cluster` asks for the Redis Cluster seeds. */
export function redisSettings(config: Config, cluster: boolean): RedisSettings {
  const r = config.database.redis;
  const masterTls = redisTlsOptions(r.master_tls, 'database.redis.master_tls');
  const base: RedisSettings = {
    host: r.host,
    port: r.port,
    username: r.username,
    password: r.password,
    db: r.db,
    url: r.url,
    ...(masterTls ? { tls: masterTls } : {}),
    clusterNodes: cluster ? clusterNodes(config) : [],
  };
  // Sentinel names the master; a Redis Cluster finds its own nodes.
  if (cluster || r.sentinels.length === 0) return base;
  const sentinelTls = redisTlsOptions(r.sentinel_tls, 'database.redis.sentinel_tls');
  return {
    ...base,
    sentinels: r.sentinels,
    name: r.name,
    sentinelUsername: r.sentinel_username,
    sentinelPassword: r.sentinel_password,
    ...(sentinelTls ? { sentinelTls } : {}),
  };
}

/** Another server named by URL replaces the sentinels' master for that part or connection. */
const withUrl = (base: RedisSettings, url: string): RedisSettings => ({ ...base, url, sentinels: [] });

/**
 * The Redis of one part (queue, rate limiter) as Sockudo's `<part>.redis` says: the part's
 * driver or its cluster_mode asks for a Redis Cluster, url_override names another server.
 */
export function partRedisSettings(config: Config, driver: string, part: PartRedis, key: string): RedisSettings {
  const cluster = driver === 'redis-cluster' || part.cluster_mode;
  const base = redisSettings(config, cluster);
  if (!part.url_override) {
    if (cluster && !base.clusterNodes?.length) {
      throw new ConfigError(`${key}: a Redis Cluster needs REDIS_CLUSTER_NODES, database.redis.cluster_nodes or ${key}.url_override`);
    }
    return base;
  }
  const overridden = withUrl(base, part.url_override);
  if (!cluster || base.clusterNodes?.length) return overridden;
  const seed = new URL(part.url_override);
  return { ...overridden, clusterNodes: [{ host: seed.hostname.replace(/^\[(.*)\]$/, '$1'), port: seed.port ? Number(seed.port) : 6379 }] };
}

/** A part's key prefix: its own `<part>.redis.prefix`, else database.redis.key_prefix. */
export const partKeyPrefix = (config: Config, part: PartRedis): string => part.prefix ?? config.database.redis.key_prefix;

/** The adapter's publisher and subscriber: Sockudo's redis_pub_options / redis_sub_options `url` win. */
export function adapterRedisSettings(config: Config): { publisher: RedisSettings; subscriber: RedisSettings } {
  const base = redisSettings(config, false);
  const { redis_pub_options: pub, redis_sub_options: sub } = config.adapter.redis;
  return { publisher: pub.url ? withUrl(base, pub.url) : base, subscriber: sub.url ? withUrl(base, sub.url) : base };
}
