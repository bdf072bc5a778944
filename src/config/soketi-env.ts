// soketi's SOKETI_* environment variables (soketi's src/cli/cli.ts), so a soketi compose file
// starts a working Chorus. They are applied before Sockudo's names, which win where both are
// set. As in soketi a value is read as JSON when it parses ("true", "3000", "[...]"). soketi
// gives the shutdown and sign-in timeouts in milliseconds; Chorus's keys are in seconds.
import { ConfigError } from './errors.js';
import { setPath } from './env.js';

type SoketiKind = 'string' | 'number' | 'boolean' | 'list' | 'ms-to-seconds';

/** soketi name (without SOKETI_) → Chorus key and how the value is read. */
const KEYS: Readonly<Record<string, readonly [string, SoketiKind]>> = {
  HOST: ['host', 'string'],
  PORT: ['port', 'number'],
  PATH_PREFIX: ['path_prefix', 'string'],
  MODE: ['mode', 'string'],
  DEBUG: ['debug', 'boolean'],
  SHUTDOWN_GRACE_PERIOD: ['shutdown_grace_period', 'ms-to-seconds'],
  USER_AUTHENTICATION_TIMEOUT: ['user_authentication_timeout', 'ms-to-seconds'],
  ADAPTER_DRIVER: ['adapter.driver', 'string'],
  ADAPTER_REDIS_PREFIX: ['adapter.redis.prefix', 'string'],
  ADAPTER_REDIS_CLUSTER_MODE: ['adapter.redis.cluster_mode', 'boolean'],
  ADAPTER_REDIS_REQUESTS_TIMEOUT: ['adapter.redis.requests_timeout', 'number'],
  ADAPTER_NATS_PREFIX: ['adapter.nats.prefix', 'string'],
  ADAPTER_NATS_SERVERS: ['adapter.nats.servers', 'list'],
  ADAPTER_NATS_USER: ['adapter.nats.username', 'string'],
  ADAPTER_NATS_PASSWORD: ['adapter.nats.password', 'string'],
  ADAPTER_NATS_TOKEN: ['adapter.nats.token', 'string'],
  ADAPTER_NATS_TIMEOUT: ['adapter.nats.connection_timeout_ms', 'number'],
  ADAPTER_NATS_REQUESTS_TIMEOUT: ['adapter.nats.requests_timeout', 'number'],
  APP_MANAGER_DRIVER: ['app_manager.driver', 'string'],
  APP_MANAGER_CACHE_ENABLED: ['app_manager.cache.enabled', 'boolean'],
  APP_MANAGER_CACHE_TTL: ['app_manager.cache.ttl', 'number'],
  APP_MANAGER_MYSQL_TABLE: ['database.mysql.table_name', 'string'],
  CHANNEL_LIMITS_MAX_NAME_LENGTH: ['channel_limits.max_name_length', 'number'],
  CACHE_DRIVER: ['cache.driver', 'string'],
  DB_POOLING_ENABLED: ['database_pooling.enabled', 'boolean'],
  DB_POOLING_MIN: ['database_pooling.min', 'number'],
  DB_POOLING_MAX: ['database_pooling.max', 'number'],
  DB_MYSQL_HOST: ['database.mysql.host', 'string'],
  DB_MYSQL_PORT: ['database.mysql.port', 'number'],
  DB_MYSQL_USERNAME: ['database.mysql.username', 'string'],
  DB_MYSQL_PASSWORD: ['database.mysql.password', 'string'],
  DB_MYSQL_DATABASE: ['database.mysql.database', 'string'],
  DB_REDIS_HOST: ['database.redis.host', 'string'],
  DB_REDIS_PORT: ['database.redis.port', 'number'],
  DB_REDIS_DB: ['database.redis.db', 'number'],
  DB_REDIS_USERNAME: ['database.redis.username', 'string'],
  DB_REDIS_PASSWORD: ['database.redis.password', 'string'],
  DB_REDIS_KEY_PREFIX: ['database.redis.key_prefix', 'string'],
  DB_REDIS_CLUSTER_NODES: ['database.redis.cluster_nodes', 'list'],
  DB_REDIS_SENTINELS: ['database.redis.sentinels', 'list'],
  DB_REDIS_SENTINEL_PASSWORD: ['database.redis.sentinel_password', 'string'],
  DB_REDIS_INSTANCE_NAME: ['database.redis.name', 'string'],
  EVENT_MAX_BATCH_SIZE: ['event_limits.max_batch_size', 'number'],
  EVENT_MAX_CHANNELS_AT_ONCE: ['event_limits.max_channels_at_once', 'number'],
  EVENT_MAX_NAME_LENGTH: ['event_limits.max_name_length', 'number'],
  EVENT_MAX_SIZE_IN_KB: ['event_limits.max_payload_in_kb', 'number'],
  METRICS_ENABLED: ['metrics.enabled', 'boolean'],
  METRICS_DRIVER: ['metrics.driver', 'string'],
  METRICS_HOST: ['metrics.host', 'string'],
  METRICS_PROMETHEUS_PREFIX: ['metrics.prometheus.prefix', 'string'],
  METRICS_SERVER_PORT: ['metrics.port', 'number'],
  PRESENCE_MAX_MEMBER_SIZE: ['presence.max_member_size_in_kb', 'number'],
  PRESENCE_MAX_MEMBERS: ['presence.max_members_per_channel', 'number'],
  QUEUE_DRIVER: ['queue.driver', 'string'],
  QUEUE_REDIS_CONCURRENCY: ['queue.redis.concurrency', 'number'],
  QUEUE_REDIS_CLUSTER_MODE: ['queue.redis.cluster_mode', 'boolean'],
  RATE_LIMITER_DRIVER: ['rate_limiter.driver', 'string'],
  RATE_LIMITER_REDIS_CLUSTER_MODE: ['rate_limiter.redis.cluster_mode', 'boolean'],
  SSL_CERT: ['ssl.cert_path', 'string'],
  SSL_KEY: ['ssl.key_path', 'string'],
  SSL_PASS: ['ssl.passphrase', 'string'],
  WEBHOOKS_BATCHING: ['webhooks.batching.enabled', 'boolean'],
  WEBHOOKS_BATCHING_DURATION: ['webhooks.batching.duration', 'number'],
};

/** soketi's default-app variables → the app field (the same fields as SOCKUDO_DEFAULT_APP_*). */
const DEFAULT_APP: Readonly<Record<string, readonly [string, SoketiKind | 'webhooks']>> = {
  DEFAULT_APP_ID: ['id', 'string'],
  DEFAULT_APP_KEY: ['key', 'string'],
  DEFAULT_APP_SECRET: ['secret', 'string'],
  DEFAULT_APP_MAX_CONNS: ['max_connections', 'number'],
  DEFAULT_APP_ENABLE_CLIENT_MESSAGES: ['enable_client_messages', 'boolean'],
  DEFAULT_APP_ENABLED: ['enabled', 'boolean'],
  DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SEC: ['max_backend_events_per_second', 'number'],
  DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SEC: ['max_client_events_per_second', 'number'],
  DEFAULT_APP_MAX_READ_REQ_PER_SEC: ['max_read_requests_per_second', 'number'],
  DEFAULT_APP_USER_AUTHENTICATION: ['enable_user_authentication', 'boolean'],
  DEFAULT_APP_WEBHOOKS: ['webhooks', 'webhooks'],
};

/** soketi variables with no Chorus equivalent, and what to do instead. */
const WITHOUT_EQUIVALENT: ReadonlyArray<readonly [string, string]> = [
  ['ADAPTER_CLUSTER_', 'soketi\'s "cluster" adapter has no equivalent: use ADAPTER_DRIVER redis or nats'],
  ['CLUSTER_', "soketi's UDP discovery has no equivalent: use ADAPTER_DRIVER redis or nats"],
  ['ADAPTER_REDIS_SUB_OPTIONS', 'give the Redis in DATABASE_REDIS_* or REDIS_URL, or adapter.redis.redis_sub_options.url'],
  ['ADAPTER_REDIS_PUB_OPTIONS', 'give the Redis in DATABASE_REDIS_* or REDIS_URL, or adapter.redis.redis_pub_options.url'],
  ['ADAPTER_NATS_NODES_NUMBER', 'Chorus discovers nodes by their heartbeats'],
  ['APP_MANAGER_DYNAMODB_', 'app stores: memory (array), mysql'],
  ['APP_MANAGER_POSTGRES_', 'app stores: memory (array), mysql'],
  ['DB_POSTGRES_', 'app stores: memory (array), mysql'],
  ['APP_MANAGER_MYSQL_VERSION', 'Chorus talks to MySQL/MariaDB with mysql2'],
  ['APP_MANAGER_MYSQL_USE_V2', 'Chorus talks to MySQL/MariaDB with mysql2'],
  ['CHANNEL_CACHE_TTL', 'cache channels keep their last event until the channel is vacated'],
  ['CACHE_REDIS_', 'the cache uses database.redis'],
  ['QUEUE_REDIS_OPTIONS', 'give the Redis in queue.redis.url_override'],
  ['QUEUE_SQS_', 'queue drivers: memory, sync, redis, redis-cluster'],
  ['RATE_LIMITER_REDIS_OPTIONS', 'give the Redis in rate_limiter.redis.url_override'],
  ['SSL_CA', 'give the chain in the certificate file (SSL_CERT)'],
  ['HTTP_ACCEPT_TRAFFIC_MEMORY_THRESHOLD', "Chorus bounds each connection's buffer instead"],
];

const PREFIX = 'SOKETI_';

function parsedJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function convert(name: string, raw: string, kind: SoketiKind | 'webhooks'): unknown {
  const value = parsedJson(raw.trim());
  const fail = (expected: string): never => {
    throw new ConfigError(`environment variable ${name}: expected ${expected}, got "${raw.trim()}"`);
  };
  switch (kind) {
    case 'string':
      // The text as given ("1e3" stays "1e3"), unless it was a quoted JSON string.
      return typeof value === 'string' ? value : raw;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? value : fail('a number');
    case 'ms-to-seconds':
      return typeof value === 'number' && value >= 0 ? value / 1000 : fail('a number of milliseconds');
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 1 || value === 0) return value === 1;
      return fail('true or false');
    case 'list':
      if (Array.isArray(value)) return value;
      return String(value)
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    case 'webhooks':
      return Array.isArray(value) ? value.map(webhookFromSoketi) : fail('a JSON array of webhooks');
  }
}

/** soketi's webhook filter keys are Sockudo's channel_prefix / channel_suffix. */
function webhookFromSoketi(hook: unknown): unknown {
  if (!hook || typeof hook !== 'object' || Array.isArray(hook)) return hook;
  const { filter, ...rest } = hook as Record<string, unknown>;
  if (!filter || typeof filter !== 'object') return rest;
  const f = filter as Record<string, unknown>;
  return {
    ...rest,
    filter: {
      channel_prefix: f.channel_name_starts_with ?? f.channel_prefix,
      channel_suffix: f.channel_name_ends_with ?? f.channel_suffix,
    },
  };
}

const matches = (name: string, key: string) => (key.endsWith('_') ? name.startsWith(key) : name === key);

export interface SoketiEnv {
  /** The default app's fields from SOKETI_DEFAULT_APP_*; SOCKUDO_DEFAULT_APP_* win over these. */
  defaultApp: Record<string, unknown>;
  /** Set SOKETI_ variables that Chorus does not use, each with what to do instead. */
  warnings: string[];
}

/** Writes every set SOKETI_* variable with an equivalent into the raw config. */
export function applySoketiEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): SoketiEnv {
  const defaultApp: Record<string, unknown> = {};
  const warnings: string[] = [];
  let sslFiles = 0;
  for (const [fullName, value] of Object.entries(env)) {
    if (!fullName.startsWith(PREFIX) || value === undefined || value === '') continue;
    const name = fullName.slice(PREFIX.length);
    const key = KEYS[name];
    if (key) {
      setPath(raw, key[0].split('.'), convert(fullName, value, key[1]));
      if (name === 'SSL_CERT' || name === 'SSL_KEY') sslFiles++;
      continue;
    }
    const field = DEFAULT_APP[name];
    if (field) {
      defaultApp[field[0]] = convert(fullName, value, field[1]);
      continue;
    }
    const without = WITHOUT_EQUIVALENT.find(([k]) => matches(name, k));
    warnings.push(`environment variable ${fullName} is not read by Chorus: ${without ? without[1] : 'not a soketi variable Chorus knows'}`);
  }
  // soketi serves TLS as soon as both files are given.
  if (sslFiles === 2) setPath(raw, ['ssl', 'enabled'], true);
  return { defaultApp, warnings: warnings.sort() };
}
