// Sockudo environment variables Chorus does not read. A Sockudo .env carried over unchanged
// must not lose a setting without a word, so each one that is set is named at start-up with
// what to use instead. Names Chorus reads are never reported.

/** [name or prefix ending in "_", what Chorus does instead] — the first match wins. */
const UNREAD: ReadonlyArray<readonly [string, string]> = [
  ['SOCKUDO_SERVER_ROLE', 'every Chorus node serves every role'],
  ['SOCKUDO_DEFAULT_APP_ANNOTATIONS_ENABLED', 'Chorus has no annotations'],
  ['SOCKUDO_SKIP_INLINE_APPS', "the file's apps are always loaded; remove them from app_manager.array.apps"],
  ['APP_MANAGER_REGISTER_INLINE_APPS', "the file's apps are always loaded; remove them from app_manager.array.apps"],
  ['SOCKUDO_ABLY_COMPAT_', 'Chorus speaks the Pusher protocol only'],
  ['SOCKUDO_LOG_', 'set LOG_LEVEL (Chorus logs JSON lines)'],
  ['SOCKUDO_', 'not a Sockudo variable Chorus knows'],
  ['ADAPTER_BUFFER_MULTIPLIER_PER_CPU', 'no equivalent tuning is needed'],
  ['ADAPTER_ENABLE_SOCKET_COUNTING', 'Chorus always counts sockets cluster-wide'],
  ['ADAPTER_AGGREGATE_COUNTS', 'Chorus always counts sockets cluster-wide'],
  ['ADAPTER_FAST_PRESENCE_TRANSITIONS', 'no equivalent tuning is needed'],
  ['ADAPTER_FALLBACK_TO_LOCAL', 'a node keeps serving its own sockets while the broker is away'],
  ['ADAPTER_IGGY_', 'adapters: local, redis, redis-cluster, nats'],
  ['NATS_', 'Chorus reads NATS_SERVERS, NATS_USERNAME, NATS_PASSWORD, NATS_TOKEN, NATS_PREFIX and NATS_*_TIMEOUT_MS'],
  ['PULSAR_', 'adapters: local, redis, redis-cluster, nats'],
  ['RABBITMQ_', 'adapters: local, redis, redis-cluster, nats'],
  ['GOOGLE_PUBSUB_', 'adapters: local, redis, redis-cluster, nats'],
  ['KAFKA_', 'adapters: local, redis, redis-cluster, nats'],
  ['IGGY_', 'adapters: local, redis, redis-cluster, nats'],
  ['QUEUE_IGGY_', 'queue drivers: memory, sync, redis, redis-cluster'],
  ['QUEUE_SQS_', 'queue drivers: memory, sync, redis, redis-cluster'],
  ['QUEUE_SNS_', 'queue drivers: memory, sync, redis, redis-cluster'],
  ['REDIS_CLUSTER_QUEUE_', 'set QUEUE_REDIS_CONCURRENCY, QUEUE_REDIS_RESPONSE_TIMEOUT_MS, QUEUE_REDIS_PREFIX'],
  ['QUEUE_', 'Chorus retries a webhook for about five minutes; see webhooks.* in README'],
  ['DATABASE_REDIS_CLUSTER_', 'give credentials and TLS in REDIS_URL (rediss://user:password@host)'],
  [
    'DATABASE_REDIS_SENTINEL_',
    'Chorus reads DATABASE_REDIS_SENTINELS, DATABASE_REDIS_NAME, DATABASE_REDIS_SENTINEL_USERNAME|PASSWORD and _TLS_*',
  ],
  [
    'DATABASE_REDIS_MASTER_TLS_',
    'Chorus reads DATABASE_REDIS_MASTER_TLS_ENABLED, _ACCEPT_INVALID_CERTS, _CA_PATH, _CLIENT_CERT_PATH, _CLIENT_KEY_PATH',
  ],
  ['DATABASE_POSTGRES_', 'app stores: memory (array), mysql'],
  ['DATABASE_DYNAMODB_', 'app stores: memory (array), mysql'],
  ['DATABASE_SURREALDB_', 'app stores: memory (array), mysql'],
  ['CACHE_', 'Chorus reads CACHE_DRIVER and CACHE_TTL_SECONDS'],
  ['SSL_REDIRECT_HTTP', 'redirect HTTP to HTTPS in the load balancer'],
  ['SSL_HTTP_PORT', 'redirect HTTP to HTTPS in the load balancer'],
  ['UNIX_SOCKET_', 'Chorus listens on TCP only (HOST, PORT)'],
  ['METRICS_TCP_EXPORTER_', 'metrics are served for Prometheus on METRICS_PORT'],
  ['HTTP_API_USAGE_ENABLED', 'Chorus has no usage endpoints'],
  ['PRESENCE_', 'presence limits are per app (max_presence_members_per_channel) or in the presence section'],
  ['WEBHOOK_BATCHING_SIZE', 'batches are bounded by WEBHOOK_BATCHING_DURATION'],
  ['HEALTH_CHECK_TIMEOUT_MS', '/up answers from the node itself'],
  ['LOG_OUTPUT_FORMAT', 'set LOG_LEVEL (Chorus logs JSON lines)'],
  ['LOG_COLORS_ENABLED', 'set LOG_LEVEL (Chorus logs JSON lines)'],
  ['LOG_INCLUDE_TARGET', 'set LOG_LEVEL (Chorus logs JSON lines)'],
  ['RUST_LOG', 'set LOG_LEVEL'],
  ['CLEANUP_', 'dead-node clean-up is tuned by ADAPTER_CLUSTER_HEALTH_*'],
  ['WEBSOCKET_', 'Chorus reads WEBSOCKET_MAX_PAYLOAD_KB; slow consumers are closed past a fixed buffer'],
  ['TAG_FILTERING_', 'Chorus has no tag filtering'],
  ['CONNECTION_RECOVERY_', 'Chorus has no connection recovery yet'],
  ['HISTORY_', "Chorus's channel history is set per app: apps[].history (enabled, channels, max_messages, ttl_seconds)"],
  ['IDEMPOTENCY_', 'Chorus reads IDEMPOTENCY_ENABLED, IDEMPOTENCY_TTL_SECONDS and IDEMPOTENCY_MAX_KEY_LENGTH'],
  ['EPHEMERAL_', 'Chorus speaks the Pusher protocol v7 only'],
  ['ECHO_CONTROL_', 'Chorus speaks the Pusher protocol v7 only'],
  ['EVENT_NAME_FILTERING_', 'Chorus speaks the Pusher protocol v7 only'],
  ['VERSIONED_MESSAGES_', 'Chorus speaks the Pusher protocol v7 only'],
  ['ANNOTATIONS_ENABLED', 'Chorus has no annotations'],
  ['AI_TRANSPORT_', 'Chorus speaks the Pusher protocol v7 only'],
  ['PUSH_', 'Chorus sends no push notifications'],
  ['APNS_', 'Chorus sends no push notifications'],
  ['FCM_', 'Chorus sends no push notifications'],
  ['HMS_', 'Chorus sends no push notifications'],
  ['WNS_', 'Chorus sends no push notifications'],
  ['VAPID_', 'Chorus sends no push notifications'],
];

/** One line per set variable that looks like Sockudo's (or soketi's) and that Chorus does not read. */
export function findUnreadEnv(env: NodeJS.ProcessEnv, read: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === '' || read.has(name)) continue;
    const match = UNREAD.find(([key]) => (key.endsWith('_') ? name.startsWith(key) : name === key));
    if (match) found.push(`environment variable ${name} is not read by Chorus: ${match[1]}`);
  }
  return found.sort();
}
