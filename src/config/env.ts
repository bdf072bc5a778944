// Environment variables that override the config file, with Sockudo's names.
import { ConfigError } from './errors.js';

type Kind = 'string' | 'number' | 'boolean' | 'list';

interface EnvBinding {
  env: string;
  path: string[];
  kind: Kind;
}

const bind = (env: string, path: string, kind: Kind = 'string'): EnvBinding => ({
  env,
  path: path.split('.'),
  kind,
});

/** Sockudo's <PREFIX>_ENABLED, _ACCEPT_INVALID_CERTS, _CA_PATH, _CLIENT_CERT_PATH, _CLIENT_KEY_PATH for one TLS hop. */
const redisTlsBindings = (env: string, path: string): EnvBinding[] => [
  bind(`${env}_ENABLED`, `${path}.enabled`, 'boolean'),
  bind(`${env}_ACCEPT_INVALID_CERTS`, `${path}.accept_invalid_certs`, 'boolean'),
  ...['ca_path', 'client_cert_path', 'client_key_path'].map((key) => bind(`${env}_${key.toUpperCase()}`, `${path}.${key}`)),
];

/** Applied in order, so where two names set one key the later one wins. */
export const ENV_BINDINGS: readonly EnvBinding[] = [
  bind('HOST', 'host'),
  bind('PORT', 'port', 'number'),
  bind('WORKERS', 'workers'),
  bind('ENVIRONMENT', 'mode'),
  bind('DEBUG_MODE', 'debug', 'boolean'),
  bind('DEBUG', 'debug', 'boolean'),
  bind('PATH_PREFIX', 'path_prefix'),
  bind('ACTIVITY_TIMEOUT', 'activity_timeout', 'number'),
  bind('SHUTDOWN_GRACE_PERIOD', 'shutdown_grace_period', 'number'),
  bind('USER_AUTHENTICATION_TIMEOUT', 'user_authentication_timeout', 'number'),
  bind('WEBSOCKET_MAX_PAYLOAD_KB', 'websocket_max_payload_kb', 'number'),
  bind('SOCKUDO_MAX_CONNECTIONS', 'max_connections', 'number'),
  bind('METRICS_ENABLED', 'metrics.enabled', 'boolean'),
  bind('METRICS_DRIVER', 'metrics.driver'),
  bind('METRICS_HOST', 'metrics.host'),
  bind('METRICS_PORT', 'metrics.port', 'number'),
  bind('METRICS_PROMETHEUS_PREFIX', 'metrics.prometheus.prefix'),
  bind('ADAPTER_DRIVER', 'adapter.driver'),
  bind('ADAPTER_REDIS_PREFIX', 'adapter.redis.prefix'),
  bind('NATS_PREFIX', 'adapter.nats.prefix'),
  bind('ADAPTER_NATS_PREFIX', 'adapter.nats.prefix'),
  bind('NATS_CONNECTION_TIMEOUT_MS', 'adapter.nats.connection_timeout_ms', 'number'),
  bind('NATS_REQUEST_TIMEOUT_MS', 'adapter.nats.request_timeout_ms', 'number'),
  bind('NATS_SERVERS', 'adapter.nats.servers', 'list'),
  bind('NATS_USERNAME', 'adapter.nats.username'),
  bind('NATS_PASSWORD', 'adapter.nats.password'),
  bind('NATS_TOKEN', 'adapter.nats.token'),
  bind('NATS_REPLICAS', 'adapter.nats.replicas', 'number'),
  // Sockudo's older names for the same settings (the ADAPTER_ ones below win).
  bind('CLUSTER_HEALTH_ENABLED', 'adapter.cluster_health.enabled', 'boolean'),
  bind('CLUSTER_HEALTH_HEARTBEAT_INTERVAL', 'adapter.cluster_health.heartbeat_interval_ms', 'number'),
  bind('CLUSTER_HEALTH_NODE_TIMEOUT', 'adapter.cluster_health.node_timeout_ms', 'number'),
  bind('CLUSTER_HEALTH_CLEANUP_INTERVAL', 'adapter.cluster_health.cleanup_interval_ms', 'number'),
  bind('ADAPTER_CLUSTER_HEALTH_ENABLED', 'adapter.cluster_health.enabled', 'boolean'),
  bind('ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS', 'adapter.cluster_health.heartbeat_interval_ms', 'number'),
  bind('ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS', 'adapter.cluster_health.node_timeout_ms', 'number'),
  bind('ADAPTER_CLUSTER_HEALTH_CLEANUP_INTERVAL_MS', 'adapter.cluster_health.cleanup_interval_ms', 'number'),
  bind('APP_MANAGER_DRIVER', 'app_manager.driver'),
  bind('APP_MANAGER_CACHE_ENABLED', 'app_manager.cache.enabled', 'boolean'),
  bind('CACHE_TTL_SECONDS', 'app_manager.cache.ttl', 'number'),
  bind('APP_MANAGER_CACHE_TTL', 'app_manager.cache.ttl', 'number'),
  bind('CACHE_DRIVER', 'cache.driver'),
  bind('QUEUE_DRIVER', 'queue.driver'),
  bind('RATE_LIMITER_DRIVER', 'rate_limiter.driver'),
  bind('RATE_LIMITER_ENABLED', 'rate_limiter.enabled', 'boolean'),
  bind('RATE_LIMITER_API_MAX_REQUESTS', 'rate_limiter.api_rate_limit.max_requests', 'number'),
  bind('RATE_LIMITER_API_WINDOW_SECONDS', 'rate_limiter.api_rate_limit.window_seconds', 'number'),
  bind('RATE_LIMITER_API_TRUST_HOPS', 'rate_limiter.api_rate_limit.trust_hops', 'number'),
  bind('RATE_LIMITER_WS_MAX_REQUESTS', 'rate_limiter.websocket_rate_limit.max_requests', 'number'),
  bind('RATE_LIMITER_WS_WINDOW_SECONDS', 'rate_limiter.websocket_rate_limit.window_seconds', 'number'),
  bind('RATE_LIMITER_WS_TRUST_HOPS', 'rate_limiter.websocket_rate_limit.trust_hops', 'number'),
  bind('RATE_LIMITER_REDIS_PREFIX', 'rate_limiter.redis.prefix'),
  bind('QUEUE_REDIS_CONCURRENCY', 'queue.redis.concurrency', 'number'),
  bind('QUEUE_REDIS_RESPONSE_TIMEOUT_MS', 'queue.redis.response_timeout_ms', 'number'),
  bind('QUEUE_REDIS_PREFIX', 'queue.redis.prefix'),
  bind('CORS_ORIGINS', 'cors.origin', 'list'),
  bind('CORS_METHODS', 'cors.methods', 'list'),
  bind('CORS_HEADERS', 'cors.allowed_headers', 'list'),
  bind('CORS_CREDENTIALS', 'cors.credentials', 'boolean'),
  bind('DATABASE_REDIS_HOST', 'database.redis.host'),
  bind('DATABASE_REDIS_PORT', 'database.redis.port', 'number'),
  bind('DATABASE_REDIS_USERNAME', 'database.redis.username'),
  bind('DATABASE_REDIS_PASSWORD', 'database.redis.password'),
  bind('DATABASE_REDIS_DB', 'database.redis.db', 'number'),
  bind('DATABASE_REDIS_KEY_PREFIX', 'database.redis.key_prefix'),
  bind('REDIS_URL', 'database.redis.url'),
  // Sentinel: Sockudo reads the sentinels' credentials and TLS; the list and the master's
  // name are Chorus's own names (Sockudo has none).
  bind('DATABASE_REDIS_SENTINELS', 'database.redis.sentinels', 'list'),
  bind('DATABASE_REDIS_NAME', 'database.redis.name'),
  bind('DATABASE_REDIS_SENTINEL_USERNAME', 'database.redis.sentinel_username'),
  bind('DATABASE_REDIS_SENTINEL_PASSWORD', 'database.redis.sentinel_password'),
  ...redisTlsBindings('DATABASE_REDIS_SENTINEL_TLS', 'database.redis.sentinel_tls'),
  ...redisTlsBindings('DATABASE_REDIS_MASTER_TLS', 'database.redis.master_tls'),
  bind('REDIS_CLUSTER_NODES', 'database.redis.cluster_nodes', 'list'),
  bind('DATABASE_REDIS_CLUSTER_NODES', 'database.redis.cluster_nodes', 'list'),
  bind('DATABASE_MYSQL_HOST', 'database.mysql.host'),
  bind('DATABASE_MYSQL_PORT', 'database.mysql.port', 'number'),
  bind('DATABASE_MYSQL_USERNAME', 'database.mysql.username'),
  bind('DATABASE_MYSQL_PASSWORD', 'database.mysql.password'),
  bind('DATABASE_MYSQL_DATABASE', 'database.mysql.database'),
  bind('DATABASE_MYSQL_TABLE_NAME', 'database.mysql.table_name'),
  bind('DATABASE_MYSQL_POOL_MIN', 'database.mysql.pool_min', 'number'),
  bind('DATABASE_MYSQL_POOL_MAX', 'database.mysql.pool_max', 'number'),
  bind('DATABASE_CONNECTION_POOL_SIZE', 'database.mysql.connection_pool_size', 'number'),
  bind('DATABASE_POOLING_ENABLED', 'database_pooling.enabled', 'boolean'),
  bind('DATABASE_POOL_MIN', 'database_pooling.min', 'number'),
  bind('DATABASE_POOL_MAX', 'database_pooling.max', 'number'),
  // Sockudo's WEBHOOK_ names; Chorus's older WEBHOOKS_ names (below) win.
  bind('WEBHOOK_BATCHING_ENABLED', 'webhooks.batching.enabled', 'boolean'),
  bind('WEBHOOK_BATCHING_DURATION', 'webhooks.batching.duration', 'number'),
  bind('WEBHOOKS_BATCHING_ENABLED', 'webhooks.batching.enabled', 'boolean'),
  bind('WEBHOOKS_BATCHING_DURATION', 'webhooks.batching.duration', 'number'),
  bind('INSTANCE_PROCESS_ID', 'instance.process_id'),
  bind('CLIENT_ENABLED', 'client.enabled', 'boolean'),
  bind('CLIENT_TOKEN', 'client.token'),
  bind('CONSOLE_ENABLED', 'console.enabled', 'boolean'),
  bind('CONSOLE_TOKEN', 'console.token'),
  bind('SSL_ENABLED', 'ssl.enabled', 'boolean'),
  bind('SSL_CERT_PATH', 'ssl.cert_path'),
  bind('SSL_KEY_PATH', 'ssl.key_path'),
  bind('IDEMPOTENCY_ENABLED', 'idempotency.enabled', 'boolean'),
  bind('HTTP_FALLBACK_ENABLED', 'http_fallback.enabled', 'boolean'),
  bind('IDEMPOTENCY_TTL_SECONDS', 'idempotency.ttl_seconds', 'number'),
  bind('IDEMPOTENCY_MAX_KEY_LENGTH', 'idempotency.max_key_length', 'number'),
];

/** The demo app's fields that Sockudo's SOCKUDO_DEFAULT_APP_* variables set, and their kinds. */
export const DEFAULT_APP_ENV = {
  id: 'SOCKUDO_DEFAULT_APP_ID',
  key: 'SOCKUDO_DEFAULT_APP_KEY',
  secret: 'SOCKUDO_DEFAULT_APP_SECRET',
  enable_client_messages: 'SOCKUDO_DEFAULT_APP_ENABLE_CLIENT_MESSAGES',
  enabled: 'SOCKUDO_DEFAULT_APP_ENABLED',
  enable_user_authentication: 'SOCKUDO_DEFAULT_APP_ENABLE_USER_AUTHENTICATION',
  enable_watchlist_events: 'SOCKUDO_DEFAULT_APP_ENABLE_WATCHLIST_EVENTS',
  max_connections: 'SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS',
  max_backend_events_per_second: 'SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND',
  max_client_events_per_second: 'SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND',
  max_read_requests_per_second: 'SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND',
  max_presence_members_per_channel: 'SOCKUDO_DEFAULT_APP_MAX_PRESENCE_MEMBERS_PER_CHANNEL',
  max_presence_member_size_in_kb: 'SOCKUDO_DEFAULT_APP_MAX_PRESENCE_MEMBER_SIZE_IN_KB',
  max_channel_name_length: 'SOCKUDO_DEFAULT_APP_MAX_CHANNEL_NAME_LENGTH',
  max_event_channels_at_once: 'SOCKUDO_DEFAULT_APP_MAX_EVENT_CHANNELS_AT_ONCE',
  max_event_name_length: 'SOCKUDO_DEFAULT_APP_MAX_EVENT_NAME_LENGTH',
  max_event_payload_in_kb: 'SOCKUDO_DEFAULT_APP_MAX_EVENT_PAYLOAD_IN_KB',
  max_event_batch_size: 'SOCKUDO_DEFAULT_APP_MAX_EVENT_BATCH_SIZE',
  allowed_origins: 'SOCKUDO_DEFAULT_APP_ALLOWED_ORIGINS',
} as const;

/** Sockudo's older name for the default app's client events, read when the new one is unset. */
export const LEGACY_CLIENT_MESSAGES_ENV = 'SOCKUDO_ENABLE_CLIENT_MESSAGES';

function defaultAppFieldKind(field: string): Kind {
  if (field === 'enabled' || field.startsWith('enable_')) return 'boolean';
  if (field.startsWith('max_')) return 'number';
  if (field === 'allowed_origins') return 'list';
  return 'string';
}

export function convertEnvValue(name: string, raw: string, kind: Kind): unknown {
  const value = raw.trim();
  switch (kind) {
    case 'string':
      return raw;
    case 'number': {
      const n = Number(value);
      if (value === '' || !Number.isFinite(n)) {
        throw new ConfigError(`environment variable ${name}: expected a number, got "${value}"`);
      }
      return n;
    }
    case 'boolean': {
      const v = value.toLowerCase();
      if (v === 'true' || v === '1' || v === 'yes' || v === 'on') return true;
      if (v === 'false' || v === '0' || v === 'no' || v === 'off') return false;
      throw new ConfigError(`environment variable ${name}: expected true or false, got "${value}"`);
    }
    case 'list':
      return value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
  }
}

export function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

/** Writes every set environment variable into the raw (not yet validated) config object. */
export function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const binding of ENV_BINDINGS) {
    const value = env[binding.env];
    if (value === undefined || value === '') continue;
    setPath(raw, binding.path, convertEnvValue(binding.env, value, binding.kind));
  }
}

/** The demo app's overrides from SOCKUDO_DEFAULT_APP_* (and SOCKUDO_ENABLE_CLIENT_MESSAGES), already typed. */
export function defaultAppFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, name] of Object.entries(DEFAULT_APP_ENV)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    out[field] = convertEnvValue(name, value, defaultAppFieldKind(field));
  }
  const legacy = env[LEGACY_CLIENT_MESSAGES_ENV];
  if (out.enable_client_messages === undefined && legacy !== undefined && legacy !== '') {
    out.enable_client_messages = convertEnvValue(LEGACY_CLIENT_MESSAGES_ENV, legacy, 'boolean');
  }
  return out;
}
