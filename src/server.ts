// The composition root: builds every part from the config (through compose/) and
// owns the lifecycle (start, drain, stop).
import uWS, { type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { existsSync } from 'node:fs';
import type { AppStore } from './apps/store.js';
import { createCluster, type BoxSeat } from './compose/cluster.js';
import { BoxCounts } from './compose/box-counts.js';
import { BoxSessionDirectory } from './compose/box-directory.js';
import { coreSettings, fallbackSettings, httpSettings, partKeyPrefix, partRedisSettings, wsSettings } from './compose/settings.js';
import { createAppStore, createRateLimiter } from './compose/stores.js';
import { ConfigError } from './config/errors.js';
import type { Config } from './config/schema.js';
import { LocalRegistry } from './conn/registry.js';
import { SessionTopics } from './conn/session-topics.js';
import { Core } from './core/core.js';
import { startMetricsServer } from './edge/admin/metrics-server.js';
import { registerFallbackRoutes } from './edge/fallback/routes.js';
import { FallbackSessions } from './edge/fallback/sessions.js';
import { BodyBudget } from './edge/http/body.js';
import { CorsPolicy } from './edge/http/cors.js';
import { registerDevClient } from './edge/http/dev-client.js';
import { registerCatchAll, registerHealthRoutes } from './edge/http/health.js';
import { registerApiRoutes } from './edge/http/router.js';
import type { HttpDeps } from './edge/http/settings.js';
import { websocketBehavior } from './edge/ws/behavior.js';
import { IpGate } from './edge/ws/ip-gate.js';
import { startLiveness } from './edge/ws/liveness.js';
import { Metrics } from './metrics/metrics.js';
import { NodeReporter } from './metrics/node-report.js';
import { VERSION } from './version.js';
import { ConsoleTap } from './core/console-tap.js';
import { nativeUwsProblem } from './native-check.js';
import { createWebhooks } from './webhooks/setup.js';
import type { RedisSettings } from './transports/redis-client.js';
import type { Cluster as RedisCluster, Redis } from 'ioredis';

type RedisClient = Redis | RedisCluster;

export interface RunningServer {
  core: Core;
  apps: AppStore;
  /** the bound WebSocket/HTTP port (useful with port 0) */
  port: number;
  metricsPort: number | null;
  metrics: Metrics;
  /** Settles once the node serves: at once when the broker answered first; rejects if it refused. */
  ready: Promise<void>;
  /** Drains (4200 to every client, webhooks flushed, cluster left) and stops, within the grace period. */
  shutdown(): Promise<void>;
}

export class StartupError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** uWS's LIBUS_LISTEN_EXCLUSIVE_PORT (exported by the native module, not by its typings). */
const LISTEN_EXCLUSIVE_PORT = 1;

function listen(app: TemplatedApp, host: string, port: number, shared: boolean): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    // Exclusive: uWS otherwise sets SO_REUSEPORT, and a second node started on a port another holds
    // would listen without an error while the kernel splits connections between them.
    // The typings know the options only without a host; the native module takes both.
    const listenWithOptions = app as unknown as {
      listen(h: string, p: number, o: number, cb: (s: us_listen_socket | false) => void): void;
    };
    // Workers of one box share the port on purpose (their primary checked nobody else holds it).
    listenWithOptions.listen(host, port, shared ? 0 : LISTEN_EXCLUSIVE_PORT, (socket) => {
      if (socket) resolve(socket);
      else reject(new StartupError(`cannot listen on ${host}:${port} (in use or not permitted)`, 'LISTEN_FAILED'));
    });
  });
}

function createApp(config: Config): TemplatedApp {
  if (!config.ssl.enabled) return uWS.App();
  const { cert_path: cert, key_path: key } = config.ssl;
  if (!cert || !key) throw new ConfigError('ssl.enabled needs ssl.cert_path and ssl.key_path');
  for (const [name, path] of [
    ['ssl.cert_path', cert],
    ['ssl.key_path', key],
  ] as const) {
    if (!existsSync(path)) throw new ConfigError(`${name}: file ${path} does not exist`);
  }
  try {
    return uWS.SSLApp({
      cert_file_name: cert,
      key_file_name: key,
      ...(config.ssl.passphrase ? { passphrase: config.ssl.passphrase } : {}),
    });
  } catch (err) {
    throw new ConfigError(
      `ssl: the certificate ${cert} and key ${key} could not be loaded (${(err as Error).message}); check they are PEM files that belong together and the passphrase`,
    );
  }
}

/** A factory of Redis clients for the webhook queue, its client library loaded only now. */
async function redisClientsFor(settings: RedisSettings): Promise<(role: 'command' | 'blocking') => RedisClient> {
  const { createRedisClient } = await import('./transports/redis-client.js');
  return (role) => createRedisClient(settings, role);
}

export async function startServer(config: Config, log: Logger, box: BoxSeat | null = null): Promise<RunningServer> {
  const nativeProblem = nativeUwsProblem();
  if (nativeProblem) throw new StartupError(nativeProblem, 'UWS_NOT_NATIVE');

  const uws = createApp(config);
  const metrics = new Metrics(config.metrics.prometheus.prefix);
  const cluster = await createCluster(config, log, metrics, box);
  const apps = await createAppStore(config, log);
  const rateLimiter = await createRateLimiter(config, log, box);
  const registry = new LocalRegistry();
  // The operator console's live stream: every node feeds it (a viewer may sit on any node).
  const tap = new ConsoleTap(cluster.nodeId, cluster.operator, { maxEventsPerSecond: config.console.max_events_per_second });
  let boundPort = config.port;
  const reporter = new NodeReporter({
    metrics,
    port: () => boundPort,
    connections: () => registry.totalConnections(),
    broker: () => cluster.operator.broker(),
    version: VERSION,
  });
  const queueOnRedis = config.queue.driver === 'redis' || config.queue.driver === 'redis-cluster';
  const queueRedis = queueOnRedis
    ? {
        ...partRedisSettings(config, config.queue.driver, config.queue.redis, 'queue.redis'),
        commandTimeoutMs: config.queue.redis.response_timeout_ms ?? undefined,
      }
    : null;
  const webhooks = createWebhooks(
    {
      batching: config.webhooks.batching.enabled,
      batchMs: config.webhooks.batching.duration,
      requestTimeoutMs: config.webhooks.request_timeout_ms,
      maxConcurrencyPerEndpoint: config.webhooks.max_concurrency_per_endpoint,
      maxConcurrency: config.webhooks.max_concurrency,
      maxQueuedPerApp: config.webhooks.max_queued_per_app,
      maxQueued: config.webhooks.max_queued,
      breaker: {
        failureThreshold: config.webhooks.circuit_breaker.failure_threshold,
        cooldownMs: config.webhooks.circuit_breaker.cooldown_ms,
        maxCooldownMs: config.webhooks.circuit_breaker.max_cooldown_ms,
      },
      redis: queueRedis ? await redisClientsFor(queueRedis) : null,
      keyPrefix: partKeyPrefix(config, config.queue.redis),
      nodeId: cluster.nodeId,
      settleMs: config.adapter.cluster_health.node_timeout_ms * 2,
    },
    { liveIds: () => cluster.membership.members().map((m) => m.nodeId), owns: (key) => cluster.membership.owns(key) },
    apps,
    metrics,
    log,
    {
      wants: (appId) => tap.wants(appId),
      attempted: (appId, a) => tap.record(appId, { type: 'webhook', ...a }),
    },
  );
  // uWS's topics hold the WebSockets; HTTP fallback sessions have their own, asked only while they hold any.
  const sessionTopics = new SessionTopics();
  const publishToEngine = (topic: string, frame: string) => void uws.publish(topic, frame, false, false);
  const ws = wsSettings(config);
  const fallback = fallbackSettings(config);
  // The workers of a box count the node's caps once, in the primary's hub (the box is one node).
  const capped = {
    connections: config.max_connections !== null,
    addresses: ws.ipLimits?.maxConnections != null,
    sessions: fallback.enabled && fallback.maxSessionsPerIp !== null,
  };
  const boxCounts =
    box && (capped.connections || capped.addresses || capped.sessions) ? new BoxCounts(box.hubPath, `worker ${box.index}`) : null;
  const core = new Core(coreSettings(config), {
    topics: {
      publish: (topic, frame) => {
        publishToEngine(topic, frame);
        if (sessionTopics.size !== 0) sessionTopics.publish(topic, frame, null);
      },
      subscribers: (topic) => uws.numSubscribers(topic) + (sessionTopics.size !== 0 ? sessionTopics.count(topic) : 0),
    },
    registry,
    cluster,
    apps,
    metrics,
    events: webhooks.sink,
    log,
    onPeerLost: (nodeId) => void webhooks.recoverNode(nodeId),
    tap,
    report: (kind) => reporter.report(kind),
    seats: boxCounts && capped.connections ? boxCounts.seats() : null,
  });
  metrics.watchCluster(() => cluster.membership.members().length);

  const addressCap = boxCounts && capped.addresses ? boxCounts.addressCap() : null;
  const wsDeps = { settings: ws, core, apps, metrics, ipGate: new IpGate(ws.ipLimits, rateLimiter, addressCap), sessionTopics, log };
  uws.ws('/*', websocketBehavior(wsDeps));
  const bodyBudget = new BodyBudget({ nodeBytes: 64 * 1024 * 1024, ipBytes: 16 * 1024 * 1024, perIpAbove: 256 * 1024 });
  const httpPart = httpSettings(config);
  const sessions = new FallbackSessions(fallback.timing);
  // A box's workers pass fallback requests for each other's sessions over private loopback ports.
  const directory = box && fallback.enabled ? new BoxSessionDirectory(box.hubPath, `worker ${box.index}`) : null;
  registerFallbackRoutes(
    {
      ...wsDeps,
      fallback,
      sessions,
      cors: new CorsPolicy(httpPart.cors),
      bodyBudget,
      publishToEngine,
      isDraining: () => core.isDraining,
      directory,
      sessionCap: boxCounts && capped.sessions ? boxCounts.sessionCap() : null,
    },
    uws,
  );
  const http: HttpDeps = {
    settings: httpPart,
    core,
    apps,
    metrics,
    rateLimiter,
    bodyBudget,
    isDraining: () => core.isDraining,
    notServing: () => core.notServingReason,
    log,
  };
  registerApiRoutes(http, uws);
  registerHealthRoutes(http, uws, () => core.notServingReason);
  registerDevClient(http, uws, {
    enabled: config.client.enabled === true,
    defaultKey: config.app_manager.array.apps?.[0]?.key ?? 'app-key',
    token: config.client.token ?? null,
  });
  registerCatchAll(uws);

  // The start-up contract (docs/RELIABILITY.md): a broker that refuses (wrong password, ACL,
  // protected mode) ends the start at once with its own words; an unreachable one is waited
  // for. While it is, the node listens after the first report, /up answers 503 with the
  // reason, clients and the API are refused with a retry, and it serves once the broker answers.
  const joined = core.start().then(
    async () => {
      // Refused rather than pretended: history needs a broker that keeps logs.
      const missing = cluster.history.unavailable();
      const wanting = (config.app_manager.array.apps ?? []).filter((a) => a.history.enabled).map((a) => a.id);
      if (missing && wanting.length > 0) {
        await cluster.stop().catch(() => undefined);
        throw new ConfigError(`apps ${wanting.join(', ')} set history.enabled, but ${missing}`);
      }
      // Bounded: a Redis that is down leaves the limiter failing open or closed as configured.
      await rateLimiter.ready?.(5000);
    },
    async (err: Error) => {
      await cluster.stop().catch(() => undefined);
      // Only the broker's own answer is a refusal (RedisConnectError and NatsRefusedError say so).
      const refused = (err as { fromBroker?: boolean }).fromBroker === true;
      throw new StartupError(
        `${refused ? 'the broker refused the connection' : 'cannot reach the broker'} (${config.adapter.driver}): ${err.message}`,
        refused ? 'BROKER_REFUSED' : 'BROKER_UNREACHABLE',
      );
    },
  );
  const servingAtOnce = await Promise.race([joined.then(() => true), core.firstWait.then(() => false)]);
  const listenSocket = await listen(uws, config.host, config.port, box !== null);
  const port = uWS.us_socket_local_port(listenSocket);
  boundPort = port;
  const privateSocket = directory ? await listen(uws, '127.0.0.1', 0, false) : null;
  if (directory && privateSocket) directory.self = `127.0.0.1:${uWS.us_socket_local_port(privateSocket)}`;
  const stopLiveness = startLiveness(registry, ws, metrics.loopLag);
  const metricsServer = config.metrics.enabled
    ? await startMetricsServer(
        {
          core,
          metrics,
          log,
          driver: config.adapter.driver,
          connections: () => registry.totalConnections(),
          apps,
          console:
            config.console.enabled && config.console.token
              ? { token: config.console.token, maxEventsPerSecond: config.console.max_events_per_second }
              : null,
        },
        config.metrics.host,
        config.metrics.port,
      )
    : null;

  log.info(
    { host: config.host, port, metrics_port: metricsServer?.port ?? null, adapter: config.adapter.driver, node_id: cluster.nodeId },
    // A worker's line differs: only its primary's "chorus listening" speaks for the box.
    `chorus ${box ? 'worker ' : ''}listening${servingAtOnce ? '' : '; not serving until the broker answers (/up: 503)'}`,
  );
  const ready = servingAtOnce ? Promise.resolve() : joined.then(() => log.info({ node_id: cluster.nodeId }, 'broker ready: serving'));

  let shuttingDown: Promise<void> | null = null;
  const shutdown = () =>
    (shuttingDown ??= (async () => {
      const graceMs = config.shutdown_grace_period * 1000;
      const deadline = Date.now() + graceMs;
      log.info({ sockets: registry.totalConnections(), grace_ms: graceMs }, 'draining');
      uWS.us_listen_socket_close(listenSocket);
      stopLiveness();
      await core.drain(Math.max(0, deadline - Date.now()));
      sessions.stop();
      // After the drain: sessions still closing were reachable through it until now.
      if (privateSocket) uWS.us_listen_socket_close(privateSocket);
      directory?.close();
      await core.stop();
      await webhooks.sink.flush(Math.max(0, deadline - Date.now()));
      await webhooks.sink.close();
      await rateLimiter.close();
      boxCounts?.close();
      await apps.close();
      metricsServer?.close();
      log.info('stopped');
    })());

  return { core, apps, port, metricsPort: metricsServer?.port ?? null, metrics, ready, shutdown };
}
