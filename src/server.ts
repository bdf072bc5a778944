// The composition root: builds every part from the config and owns the
// lifecycle (start, drain, stop). Nothing else reads the config's raw shape.
import uWS, { type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { Cluster, Redis } from 'ioredis';
import { CachedAppStore } from './apps/cached-store.js';
import { MysqlAppStore } from './apps/mysql-store.js';
import { StaticAppStore } from './apps/static-store.js';
import { RedisRateLimiter } from './rate-limit/redis-limiter.js';
import type { AppStore } from './apps/store.js';
import { ChannelHub } from './channels/hub.js';
import { LocalRegistry } from './channels/registry.js';
import type { Adapter } from './cluster/adapter.js';
import { HorizontalAdapter } from './cluster/horizontal-adapter.js';
import { LocalAdapter } from './cluster/local-adapter.js';
import { PeerWebhooks } from './cluster/peer-webhooks.js';
import type { Transport } from './cluster/transport.js';
import { NatsTransport } from './transports/nats.js';
import { RedisClusterTransport } from './transports/redis-cluster.js';
import { clusterNodes, redisOptions } from './transports/redis-options.js';
import { RedisTransport } from './transports/redis.js';
import { ConfigError } from './config/errors.js';
import type { Config } from './config/schema.js';
import type { NodeContext } from './context.js';
import { registerHttpRoutes } from './http/router.js';
import { Metrics } from './metrics/metrics.js';
import { startMetricsServer } from './metrics/server.js';
import { nativeUwsProblem } from './native-check.js';
import { CloseCode } from './protocol/codes.js';
import { errorFrame } from './protocol/frames.js';
import { LocalRateLimiter, type RateLimiter } from './rate-limit/limiter.js';
import { createWebhooks } from './webhooks/setup.js';
import { websocketBehavior } from './ws/behavior.js';
import { startLiveness } from './ws/liveness.js';
import { closeWith } from './ws/socket.js';

export interface RunningServer {
  ctx: NodeContext;
  /** the bound WebSocket/HTTP port (useful with port 0) */
  port: number;
  metricsPort: number | null;
  /** Drains (4200 to every client, webhooks flushed, cluster left) and stops, within the grace period. */
  shutdown(): Promise<void>;
}

export class StartupError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

function listen(app: TemplatedApp, host: string, port: number): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (socket) resolve(socket);
      else reject(new StartupError(`cannot listen on ${host}:${port} (in use or not permitted)`, 'LISTEN_FAILED'));
    });
  });
}

function createApp(config: Config): TemplatedApp {
  if (!config.ssl.enabled) return uWS.App();
  if (!config.ssl.cert_path || !config.ssl.key_path) {
    throw new ConfigError('ssl.enabled needs ssl.cert_path and ssl.key_path');
  }
  return uWS.SSLApp({
    cert_file_name: config.ssl.cert_path,
    key_file_name: config.ssl.key_path,
    ...(config.ssl.passphrase ? { passphrase: config.ssl.passphrase } : {}),
  });
}

function createTransport(config: Config, log: Logger): Transport {
  switch (config.adapter.driver) {
    case 'redis':
      return new RedisTransport(redisOptions(config), log);
    case 'redis-cluster': {
      const nodes = clusterNodes(config);
      if (nodes.length === 0) {
        throw new ConfigError('adapter.driver "redis-cluster" needs REDIS_CLUSTER_NODES, database.redis.cluster_nodes or adapter.cluster.nodes');
      }
      return new RedisClusterTransport(nodes, redisOptions(config), log);
    }
    case 'nats': {
      const n = config.adapter.nats;
      return new NatsTransport(
        { servers: n.servers, username: n.username, password: n.password, token: n.token, connectTimeoutMs: n.connection_timeout_ms, prefix: n.prefix },
        log,
      );
    }
    default:
      throw new ConfigError(`adapter.driver "${config.adapter.driver}" has no transport`);
  }
}

function createAdapter(config: Config, registry: LocalRegistry, log: Logger, metrics: Metrics): Adapter {
  if (config.adapter.driver === 'local') return new LocalAdapter(registry, config.instance.process_id);
  const health = config.adapter.cluster_health;
  const isNats = config.adapter.driver === 'nats';
  return new HorizontalAdapter(createTransport(config, log), registry, {
    prefix: isNats ? config.adapter.nats.prefix : config.adapter.redis.prefix,
    keyPrefix: config.database.redis.key_prefix,
    processId: config.instance.process_id,
    heartbeatIntervalMs: health.heartbeat_interval_ms,
    nodeTimeoutMs: health.node_timeout_ms,
    cleanupIntervalMs: health.cleanup_interval_ms,
    requestTimeoutMs: isNats ? config.adapter.nats.requests_timeout : config.adapter.redis.requests_timeout,
    observer: metrics.bus(),
  }, log);
}

export function createAppStore(config: Config, log: Logger): AppStore {
  if (config.app_manager.driver === 'memory' || config.app_manager.driver === 'array') {
    return new StaticAppStore(config.app_manager.array.apps ?? []);
  }
  const m = config.database.mysql;
  const store = new MysqlAppStore({
    host: m.host,
    port: m.port,
    username: m.username,
    password: m.password,
    database: m.database,
    table: m.table_name,
    poolSize: m.connection_pool_size,
  });
  if (!config.app_manager.cache.enabled) return store;
  let warned = 0;
  return new CachedAppStore(store, config.app_manager.cache.ttl * 1000, (err) => {
    // Once a minute at most: the database is down and known apps are served from cache.
    if (Date.now() - warned > 60_000) {
      warned = Date.now();
      log.warn({ err: err.message }, 'app database unavailable, serving cached apps');
    }
  });
}

function createRateLimiter(config: Config, log: Logger): RateLimiter {
  const driver = config.rate_limiter.driver;
  if (driver === 'memory' || driver === 'local') return new LocalRateLimiter();
  const client =
    driver === 'redis-cluster'
      ? new Cluster(clusterNodes(config), { redisOptions: { ...redisOptions(config), lazyConnect: false }, enableOfflineQueue: false })
      : new Redis({ ...redisOptions(config), lazyConnect: false, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  return new RedisRateLimiter(client, config.database.redis.key_prefix, config.rate_limiter.fail_open, log);
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const nativeProblem = nativeUwsProblem();
  if (nativeProblem) throw new StartupError(nativeProblem, 'UWS_NOT_NATIVE');

  const uws = createApp(config);
  const registry = new LocalRegistry();
  const metrics = new Metrics(config.metrics.prometheus.prefix);
  const adapter = createAdapter(config, registry, log, metrics);
  const apps = createAppStore(config, log);
  const rateLimiter = createRateLimiter(config, log);
  const { sink: webhooks, recoverNode } = createWebhooks(config, adapter, apps, metrics, log);
  const hub = new ChannelHub(uws, registry, adapter, metrics, webhooks);
  metrics.watchCluster(() => adapter.members().length);
  if (adapter instanceof HorizontalAdapter) adapter.peerEvents = new PeerWebhooks(adapter, apps, webhooks, log, recoverNode);
  const ctx: NodeContext = { config, log, apps, registry, adapter, hub, metrics, webhooks, rateLimiter, draining: false };

  uws.ws('/*', websocketBehavior(ctx));
  // Apps from a database are not known up front: their bodies get the generous default bound.
  registerHttpRoutes(ctx, uws, config.app_manager.driver === 'mysql' ? [] : config.app_manager.array.apps ?? []);
  try {
    await adapter.start(hub);
  } catch (err) {
    await adapter.stop().catch(() => undefined);
    throw new StartupError(`cannot reach the ${config.adapter.driver} broker: ${(err as Error).message}`, 'BROKER_UNREACHABLE');
  }

  // Bounded: a Redis that is down at start leaves the limiter failing open or closed as configured.
  if (rateLimiter instanceof RedisRateLimiter) await rateLimiter.ready(5000);
  const listenSocket = await listen(uws, config.host, config.port);
  const port = uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket);
  const stopLiveness = startLiveness(ctx);
  const metricsServer = config.metrics.enabled ? await startMetricsServer(ctx, config.metrics.host, config.metrics.port) : null;

  log.info(
    { host: config.host, port, metrics_port: metricsServer?.port ?? null, adapter: config.adapter.driver, node_id: adapter.nodeId },
    'chorus listening',
  );

  let shuttingDown: Promise<void> | null = null;
  const shutdown = () =>
    (shuttingDown ??= (async () => {
      ctx.draining = true;
      const graceMs = config.shutdown_grace_period * 1000;
      const deadline = Date.now() + graceMs;
      log.info({ sockets: registry.totalConnections(), grace_ms: graceMs }, 'draining');
      uWS.us_listen_socket_close(listenSocket);
      stopLiveness();
      const frame = errorFrame(CloseCode.RECONNECT, 'Server is shutting down, reconnect');
      for (const sock of [...registry.sockets.values()]) closeWith(sock, CloseCode.RECONNECT, frame, 'shutting down');
      await hub.settle(Math.max(0, deadline - Date.now()));
      await webhooks.flush(Math.max(0, deadline - Date.now()));
      await adapter.stop();
      hub.close();
      await webhooks.close();
      await rateLimiter.close();
      await apps.close();
      metricsServer?.close();
      log.info('stopped');
    })());

  return { ctx, port, metricsPort: metricsServer?.port ?? null, shutdown };
}
