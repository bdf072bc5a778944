// Builds the webhook pipeline from the config: queue (memory or Redis), markers
// (local or in the broker), the endpoint gate (concurrency limits, circuit
// breakers), the keep-alive HTTP client, the sink, and the recovery of a lost
// node's jobs.
import { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AppStore } from '../apps/store.js';
import type { Adapter } from '../cluster/adapter.js';
import { HorizontalAdapter } from '../cluster/horizontal-adapter.js';
import type { Config } from '../config/schema.js';
import type { Metrics, WebhookMetrics } from '../metrics/metrics.js';
import { clusterNodes, redisOptions } from '../transports/redis-options.js';
import { CircuitBreakers, type BreakerObserver } from './circuit-breaker.js';
import { DropReport } from './drop-report.js';
import { EndpointGate } from './endpoint-gate.js';
import { WebhookHttpClient } from './http-client.js';
import { HttpWebhookSink } from './http-sink.js';
import { retryDelayMs } from './job.js';
import { BrokerMarkers, LocalMarkers } from './markers.js';
import { MemoryQueue, type WebhookQueue } from './queue.js';
import { RedisQueue } from './redis-queue.js';

/** Pusher retries for about five minutes; ten attempts with backoff capped at a minute cover that. */
const MAX_ATTEMPTS = 10;
/** A batch an open breaker keeps from its endpoint is given up after twice Pusher's retry window. */
const MAX_AGE_MS = 10 * 60 * 1000;
const ORPHAN_SWEEP_MS = 30_000;

export interface Webhooks {
  sink: HttpWebhookSink;
  /** Requeues what a lost node was delivering (called by the survivor that won its claim). */
  recoverNode(nodeId: string): Promise<void>;
}

function redisClient(config: Config): Redis | Cluster {
  const base = { ...redisOptions(config), lazyConnect: false, maxRetriesPerRequest: null };
  return config.queue.driver === 'redis-cluster'
    ? new Cluster(clusterNodes(config), { redisOptions: base })
    : new Redis(base);
}

export function createWebhooks(config: Config, adapter: Adapter, apps: AppStore, metrics: Metrics, log: Logger): Webhooks {
  const w = config.webhooks;
  let queue: WebhookQueue | null = null;
  const counters = metrics.webhooks(
    () => queue?.depth() ?? Promise.resolve(0),
    () => gate.inFlight(),
  );
  const breakers = new CircuitBreakers(
    {
      failureThreshold: w.circuit_breaker.failure_threshold,
      cooldownMs: w.circuit_breaker.cooldown_ms,
      maxCooldownMs: w.circuit_breaker.max_cooldown_ms,
      probeWaitMs: w.request_timeout_ms,
    },
    breakerLog(counters, log),
  );
  const gate = new EndpointGate({ perEndpoint: w.max_concurrency_per_endpoint, total: w.max_concurrency }, breakers);
  const client = new WebhookHttpClient({
    maxSocketsPerEndpoint: w.max_concurrency_per_endpoint,
    maxSockets: w.max_concurrency,
    timeoutMs: w.request_timeout_ms,
  });
  const drops = new DropReport(counters, log);
  let redisQueue: RedisQueue | null = null;
  if (config.queue.driver === 'redis' || config.queue.driver === 'redis-cluster') {
    redisQueue = new RedisQueue(
      redisClient(config),
      redisClient(config),
      {
        keyPrefix: config.database.redis.key_prefix,
        nodeId: adapter.nodeId,
        maxQueuedPerApp: w.max_queued_per_app,
        maxQueued: w.max_queued,
        concurrency: w.max_concurrency,
        retryDelay: retryDelayMs,
        dropped: (job, reason, detail) => drops.dropped(job, reason, detail),
      },
      log,
    );
    queue = redisQueue;
  } else {
    queue = new MemoryQueue({
      maxQueuedPerApp: w.max_queued_per_app,
      maxQueued: w.max_queued,
      retryDelay: retryDelayMs,
      capacity: gate,
      dropped: (job, reason) => drops.dropped(job, reason),
    });
  }
  const markers = adapter instanceof HorizontalAdapter ? new BrokerMarkers(adapter) : new LocalMarkers();
  const sink = new HttpWebhookSink(
    {
      batching: w.batching.enabled,
      batchMs: w.batching.duration,
      vacatedDelayMs: w.vacated_delay_ms,
      maxAttempts: MAX_ATTEMPTS,
      maxAgeMs: MAX_AGE_MS,
    },
    queue,
    markers,
    apps,
    counters,
    log,
    { gate, client },
  );
  if (redisQueue) startOrphanSweep(redisQueue, adapter, config, log);
  return {
    sink,
    recoverNode: async (nodeId) => {
      await redisQueue?.recover(nodeId).catch((err: Error) => log.error({ node: nodeId, err: err.message }, 'requeue failed'));
    },
  };
}

/** Breaker changes: logged once per change (origin and path only) and kept in the open-breakers gauge. */
function breakerLog(counters: WebhookMetrics, log: Logger): BreakerObserver {
  return {
    opened: (e, failures, cooldownMs) => {
      counters.breakerOpened(e.appId);
      log.warn({ app_id: e.appId, url: e.label, failures, cooldown_ms: cooldownMs }, 'webhook endpoint failing, circuit opened');
    },
    reopened: (e, cooldownMs) =>
      log.warn({ app_id: e.appId, url: e.label, cooldown_ms: cooldownMs }, 'webhook endpoint still failing, circuit open again'),
    closed: (e) => {
      counters.breakerClosed(e.appId);
      log.info({ app_id: e.appId, url: e.label }, 'webhook endpoint answering again, circuit closed');
    },
  };
}

/**
 * Processing lists that no live node accounts for (a node lost while no survivor
 * was there to clean up, or a restart under a new id) go back to the queue, once
 * this node has been up long enough to know every live peer.
 */
function startOrphanSweep(queue: RedisQueue, adapter: Adapter, config: Config, log: Logger): void {
  const startedAt = Date.now();
  const settleMs = config.adapter.cluster_health.node_timeout_ms * 2;
  const timer = setInterval(() => {
    if (Date.now() - startedAt < settleMs) return;
    void (async () => {
      const live = new Set(adapter.members().map((m) => m.nodeId));
      for (const nodeId of await queue.processingNodes()) {
        if (live.has(nodeId)) continue;
        const claimed = adapter instanceof HorizontalAdapter ? await adapter.claim(`webhook-orphans:${nodeId}`, 60_000) : true;
        if (claimed) await queue.recover(nodeId);
      }
    })().catch((err: Error) => log.warn({ err: err.message }, 'webhook orphan sweep failed'));
  }, Math.min(ORPHAN_SWEEP_MS, settleMs));
  timer.unref();
}
