// The single source of truth for every option Chorus reads, with its default.
// Key names follow Sockudo's config.json so an existing file starts unchanged.
import { z } from 'zod';
import { serverWideLimitSchemas } from './server-wide-limits.js';
import { corsSchema, httpApiSchema } from './http-sections.js';
import { appIdempotencySchema, idempotencySchema } from './idempotency.js';
import { partRedisSchema, pubSubOptionsSchema, queueRedisSchema } from './redis-parts.js';
import { sentinelFields } from './redis-sentinel.js';
import { lenient } from './lenient.js';

const integer = lenient(z.number().int());

/** A size limit: missing or null takes the default; a negative number means "no limit". */
const limit = (fallback: number | null) =>
  z
    .union([integer, z.null()])
    .optional()
    .transform((v) => (v === undefined || v === null ? fallback : v < 0 ? null : v));

/** A quota or rate: as in Sockudo, 0 (or null, or negative) means "no limit". */
const quota = (fallback: number | null) =>
  z
    .union([integer, z.null()])
    .optional()
    .transform((v) => (v === undefined ? fallback : v === null || v <= 0 ? null : v));

/**
 * App ids appear in URLs and broker keys: letters, digits and `. _ ~ -` only (numbers
 * are accepted as Pusher's numeric ids). Keys: no whitespace, slash or URL syntax.
 */
const appId = z.union([
  z.string().regex(/^[A-Za-z0-9._~-]{1,100}$/, 'app id must be 1-100 letters, digits or . _ ~ -'),
  z.number().int().nonnegative().transform(String),
]);
const appKey = z.string().regex(/^[^\s/?#%]{1,256}$/, 'app key must be 1-256 characters without whitespace, "/", "?", "#" or "%"');

export const webhookEventTypes = [
  'channel_occupied',
  'channel_vacated',
  'member_added',
  'member_removed',
  'client_event',
  'cache_miss',
  'subscription_count',
] as const;

/**
 * A webhook target: http: or https: only, and no `user:pass@` (Node's fetch refuses such URLs,
 * and a URL is logged when a delivery fails). Messages never echo the URL: it may hold a secret.
 */
const webhookUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'webhook url is not a valid URL' });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `webhook url must use http: or https: (got ${url.protocol})` });
  }
  if (url.username !== '' || url.password !== '') {
    ctx.addIssue({
      code: 'custom',
      message: 'webhook url must not contain credentials; send them with a header (headers: {"Authorization": ...})',
    });
  }
});

export const webhookSchema = z.object({
  url: webhookUrl,
  event_types: z.array(z.enum(webhookEventTypes)).min(1),
  filter: z
    .object({
      channel_prefix: z.string().optional(),
      channel_suffix: z.string().optional(),
      channel_pattern: z.string().optional(),
    })
    .optional(),
  headers: z.record(z.string(), z.string()).prefault({}),
});

/**
 * Channel history (opt-in per app): events to matching channels get a cluster-wide serial and are
 * kept in the broker, for the history API and for gap-free recovery (docs/RECOVERY.md).
 */
export const historySchema = z
  .object({
    enabled: z.boolean().default(false),
    /** name prefixes, a trailing `*` allowed; empty = every channel of the app */
    channels: z
      .array(z.string().min(1).max(200))
      .max(100)
      .nullish()
      .transform((v) => v ?? []),
    /** kept per channel (the oldest go first) */
    max_messages: z.number().int().positive().max(100_000).default(1000),
    /** how long an event is kept */
    ttl_seconds: z
      .number()
      .int()
      .positive()
      .max(7 * 86_400)
      .default(3600),
    /** the most events one resume replays; a client further behind is told recovery failed */
    max_replay_messages: z.number().int().positive().max(10_000).default(1000),
  })
  .prefault({});

export type HistoryConfig = z.output<typeof historySchema>;

export const appSchema = z.object({
  id: appId,
  key: appKey,
  secret: z.string().min(1),
  enabled: z.boolean().default(true),
  enable_client_messages: z.boolean().default(false),
  enable_user_authentication: z.boolean().default(false),
  enable_watchlist_events: z.boolean().default(true),
  /** Opt-in `pusher_internal:subscription_count` events (Pusher's "subscription counting"). */
  enable_subscription_count: z.boolean().default(false),
  /** Idempotent publish: unset values take the server-wide `idempotency` section's. */
  idempotency: appIdempotencySchema,
  max_connections: quota(null),
  max_backend_events_per_second: quota(null),
  max_client_events_per_second: quota(10),
  max_read_requests_per_second: quota(null),
  max_presence_members_per_channel: limit(100),
  max_presence_member_size_in_kb: limit(1),
  max_channel_name_length: limit(200),
  max_event_channels_at_once: limit(100),
  max_event_name_length: limit(200),
  max_event_payload_in_kb: limit(10),
  max_event_batch_size: limit(10),
  allowed_origins: z
    .array(z.string())
    .nullish()
    .transform((v) => v ?? []),
  webhooks: z
    .array(webhookSchema)
    .nullish()
    .transform((v) => v ?? []),
  history: historySchema,
});

export type AppConfig = z.output<typeof appSchema>;
export type WebhookConfig = z.output<typeof webhookSchema>;

const port = z.number().int().min(0).max(65535);

const rateLimit = (maxRequests: number, windowSeconds: number) =>
  z
    .object({
      max_requests: lenient(z.number().int().positive().default(maxRequests)),
      window_seconds: lenient(z.number().int().positive().default(windowSeconds)),
      identifier: z.string().optional(),
      trust_hops: lenient(z.number().int().nonnegative().default(0)),
    })
    .prefault({});

export const configSchema = z.object({
  ...serverWideLimitSchemas,
  debug: z.boolean().default(false),
  mode: z.string().default('production'),
  host: z.string().default('0.0.0.0'),
  port: lenient(port.default(6001)),
  path_prefix: z
    .string()
    .default('')
    .transform((p) => p.replace(/\/+$/, ''))
    .refine((p) => p === '' || p.startsWith('/'), 'must be empty or start with "/"'),
  /** Seconds advertised to clients in connection_established; the server pings after this much silence. */
  activity_timeout: lenient(z.number().int().positive().default(120)),
  /** Processes serving the port together (`auto`: one per available core); they act as one node. */
  workers: lenient(z.union([z.number().int().min(1).max(1024), z.literal('auto')]).default(1)),
  /** Seconds a drain may take before the process exits anyway. */
  shutdown_grace_period: lenient(z.number().nonnegative().default(10)),
  /** Seconds a connection of an app with enable_user_authentication has to sign in. */
  user_authentication_timeout: lenient(z.number().positive().default(30)),
  websocket_max_payload_kb: lenient(z.number().int().positive().default(64)),
  /** Node-wide connection cap across all apps (null: none). */
  max_connections: quota(null),
  /** Channels one connection may hold; a subscribe flood costs a broker subscription each (0: no cap). */
  max_channels_per_connection: quota(1000),
  /**
   * Connections one client address may hold at once (0: no cap). Off by default: behind a proxy
   * every client has the proxy's address unless trust_hops says how many hops to trust.
   */
  max_connections_per_ip: quota(null),
  /** A connection's budget of subscribe/unsubscribe/sign-in frames: refilled per second, up to a burst (0: no budget). */
  max_control_frames_per_second: quota(20),
  max_control_frames_burst: lenient(z.number().int().positive().default(1100)),
  adapter: z
    .object({
      driver: z.enum(['local', 'redis', 'redis-cluster', 'nats']).default('local'),
      redis: z
        .object({
          prefix: z.string().default('chorus'),
          requests_timeout: lenient(z.number().int().positive().default(5000)),
          cluster_mode: z.boolean().default(false),
          redis_pub_options: pubSubOptionsSchema,
          redis_sub_options: pubSubOptionsSchema,
        })
        .prefault({}),
      /** Sockudo's redis-cluster adapter block; `nodes` is used when database.redis.cluster_nodes is empty. */
      cluster: z
        .object({
          nodes: z.array(z.union([z.string(), z.object({ host: z.string(), port: lenient(port) })])).default([]),
          prefix: z.string().optional(),
          request_timeout_ms: lenient(z.number().int().positive().optional()),
        })
        .prefault({}),
      nats: z
        .object({
          servers: z.array(z.string()).default(['nats://127.0.0.1:4222']),
          prefix: z.string().default('chorus'),
          username: z.string().nullish(),
          password: z.string().nullish(),
          token: z.string().nullish(),
          // Per dial, and nats.js redials the server it just lost first: a frozen server (TCP
          // accepted, no INFO) costs this much of a failover. A live server answers in one RTT.
          connection_timeout_ms: lenient(z.number().int().positive().default(2000)),
          requests_timeout: lenient(z.number().int().positive().default(5000)),
          /** Sockudo's name for the same timeout; wins over requests_timeout. */
          request_timeout_ms: lenient(z.number().int().positive().optional()),
          /** JetStream replicas of Chorus's key-value buckets: 3 on a three-server NATS cluster. */
          replicas: lenient(z.number().int().min(1).max(5).default(1)),
        })
        .prefault({}),
      cluster_health: z
        .object({
          enabled: z.boolean().default(true),
          heartbeat_interval_ms: lenient(z.number().int().positive().default(1000)),
          node_timeout_ms: lenient(z.number().int().positive().default(5000)),
          cleanup_interval_ms: lenient(z.number().int().positive().default(1000)),
        })
        // A heartbeat slower than the timeout would declare every healthy peer dead.
        .refine((h) => h.heartbeat_interval_ms * 2 <= h.node_timeout_ms, {
          message: 'heartbeat_interval_ms must be at most half of node_timeout_ms',
          path: ['heartbeat_interval_ms'],
        })
        .prefault({}),
    })
    .prefault({}),
  database: z
    .object({
      redis: z
        .object({
          host: z.string().default('127.0.0.1'),
          port: lenient(port.default(6379)),
          username: z.string().nullish(),
          password: z.string().nullish(),
          db: lenient(z.number().int().nonnegative().default(0)),
          key_prefix: z.string().default('chorus:'),
          url: z.string().nullish(),
          cluster_nodes: z.array(z.union([z.string(), z.object({ host: z.string(), port })])).default([]),
          ...sentinelFields,
        })
        .prefault({}),
      mysql: z
        .object({
          host: z.string().default('127.0.0.1'),
          port: lenient(port.default(3306)),
          username: z.string().default('root'),
          password: z.string().default(''),
          database: z.string().default('chorus'),
          table_name: z.string().default('applications'),
          connection_pool_size: lenient(z.number().int().positive().default(10)),
          /** Sockudo's per-database override of `database_pooling.min` / `.max`. */
          pool_min: lenient(z.number().int().positive().nullish()),
          pool_max: lenient(z.number().int().positive().nullish()),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Sockudo's pool sizing for the app database: when enabled (its default) the MySQL pool
   * holds at most `database.mysql.pool_max ?? max` connections and keeps `pool_min ?? min`
   * idle ones; when disabled, `database.mysql.connection_pool_size` is the limit.
   */
  database_pooling: z
    .object({
      enabled: z.boolean().default(true),
      min: lenient(z.number().int().positive().default(2)),
      max: lenient(z.number().int().positive().default(10)),
    })
    .refine((p) => p.min <= p.max, { message: 'database_pooling.min must be at most database_pooling.max' })
    .prefault({}),
  app_manager: z
    .object({
      driver: z.enum(['memory', 'array', 'mysql']).default('memory'),
      array: z.object({ apps: z.array(appSchema).optional() }).prefault({}),
      cache: z
        .object({
          enabled: z.boolean().default(true),
          ttl: lenient(z.number().int().positive().default(300)),
        })
        .prefault({}),
    })
    .prefault({}),
  cache: z.object({ driver: z.enum(['memory', 'redis', 'redis-cluster', 'none']).default('memory'), redis: partRedisSchema }).prefault({}),
  queue: z.object({ driver: z.enum(['memory', 'sync', 'redis', 'redis-cluster']).default('memory'), redis: queueRedisSchema }).prefault({}),
  webhooks: z
    .object({
      batching: z
        .object({
          enabled: z.boolean().default(false),
          duration: lenient(z.number().int().positive().default(50)),
        })
        .prefault({}),
      vacated_delay_ms: lenient(z.number().int().nonnegative().default(3000)),
      /** One request: connect, send, answer and body. */
      request_timeout_ms: lenient(z.number().int().positive().default(5000)),
      /** Requests (sockets) one node has open to one origin; more wait in the queue. */
      max_concurrency_per_endpoint: lenient(z.number().int().positive().default(8)),
      /** Requests (sockets) one node has open to all webhook endpoints together. */
      max_concurrency: lenient(z.number().int().positive().default(64)),
      /** Batches one app may have queued (waiting, in flight, retrying); past it, its newest are dropped. */
      max_queued_per_app: lenient(z.number().int().positive().default(1000)),
      /** Batches all apps together may have queued. */
      max_queued: lenient(z.number().int().positive().default(10_000)),
      circuit_breaker: z
        .object({
          /** Failures in a row that open an endpoint's circuit. */
          failure_threshold: lenient(z.number().int().positive().default(5)),
          /** First cool-down; doubles each time the probe after it fails. */
          cooldown_ms: lenient(z.number().int().positive().default(30_000)),
          max_cooldown_ms: lenient(z.number().int().positive().default(300_000)),
        })
        .refine((b) => b.cooldown_ms <= b.max_cooldown_ms, {
          message: 'cooldown_ms must be at most max_cooldown_ms',
          path: ['cooldown_ms'],
        })
        .prefault({}),
    })
    .prefault({}),
  metrics: z
    .object({
      enabled: z.boolean().default(true),
      driver: z.string().default('prometheus'),
      host: z.string().default('0.0.0.0'),
      port: lenient(port.default(9601)),
      prometheus: z.object({ prefix: z.string().default('chorus_') }).prefault({}),
    })
    .prefault({}),
  rate_limiter: z
    .object({
      enabled: z.boolean().default(false),
      driver: z.enum(['memory', 'local', 'redis', 'redis-cluster']).default('memory'),
      fail_open: z.boolean().default(true),
      api_rate_limit: rateLimit(100, 60),
      websocket_rate_limit: rateLimit(20, 60),
      /**
       * Chorus's own: how an address over websocket_rate_limit is refused. 'http_429' as Sockudo
       * (no upgrade); 'close_4100' accepts and closes with Pusher's over-capacity code.
       */
      websocket_refusal: z.enum(['http_429', 'close_4100']).default('http_429'),
      redis: partRedisSchema,
    })
    .prefault({}),
  http_api: httpApiSchema,
  idempotency: idempotencySchema,
  /** pusher-js's xhr_streaming and xhr_polling transports, for clients that cannot open a WebSocket. */
  http_fallback: z
    .object({
      enabled: z.boolean().default(true),
      /** sessions one client address may hold on a node (0: no cap); they count toward max_connections_per_ip too */
      max_sessions_per_ip: quota(1000),
      /** seconds a session may go without a receive request before it is closed (SockJS's disconnect_delay) */
      disconnect_delay_seconds: lenient(z.number().positive().max(300).default(5)),
      /** seconds between heartbeats on a quiet stream, and the longest a poll is held */
      heartbeat_interval_seconds: lenient(z.number().positive().max(29).default(25)),
    })
    .prefault({}),
  cors: corsSchema,
  instance: z.object({ process_id: z.string().optional() }).prefault({}),
  ssl: z
    .object({
      enabled: z.boolean().default(false),
      cert_path: z.string().default(''),
      key_path: z.string().default(''),
      passphrase: z.string().nullish(),
    })
    .prefault({}),
  /** The operator console on the metrics port (docs/CONSOLE.md): off unless enabled, and then only with a token. */
  console: z
    .object({
      enabled: z.boolean().default(false),
      /** what a browser logs in with (kept in an HttpOnly cookie) or a script sends as `Authorization: Bearer` */
      token: z.string().nullish(),
      /** live events one node sends per app and second to the console's viewers; the rest are counted as skipped */
      max_events_per_second: lenient(z.number().int().positive().max(10_000).default(200)),
    })
    .prefault({}),
  client: z
    .object({
      enabled: z.boolean().optional(),
      /** Required when the test client listens beyond loopback: its endpoints sign for whoever asks. */
      token: z.string().min(16, 'client.token must be at least 16 characters').nullish(),
    })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
