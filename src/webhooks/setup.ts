// Builds the webhook pipeline from its settings: queue (memory or Redis), the
// endpoint gate (concurrency limits, circuit breakers), the keep-alive HTTP client,
// the sink, and the recovery of a lost node's jobs. When and by which node an edge
// (occupied, vacated, member added/removed) is reported is the cluster's business:
// the sink sends what it is given.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AppStore } from '../apps/store.js';
import { WEBHOOK_MAX_ATTEMPTS, WEBHOOK_ORPHAN_SWEEP_MS } from '../config/limits.js';
import type { Metrics, WebhookMetrics } from '../metrics/metrics.js';
import { CircuitBreakers, type BreakerObserver } from './circuit-breaker.js';
import { DropReport } from './drop-report.js';
import { EndpointGate } from './endpoint-gate.js';
import { WebhookHttpClient } from './http-client.js';
import { HttpWebhookSink, type AttemptObserver } from './http-sink.js';
import { retryDelayMs } from './job.js';
import { MemoryQueue, type WebhookQueue } from './queue.js';
import { RedisQueue } from './redis-queue.js';

/** A batch an open breaker keeps from its endpoint is given up after twice Pusher's retry window. */
const MAX_AGE_MS = 10 * 60 * 1000;

export interface WebhookSettings {
  batching: boolean;
  batchMs: number;
  requestTimeoutMs: number;
  maxConcurrencyPerEndpoint: number;
  maxConcurrency: number;
  maxQueuedPerApp: number;
  maxQueued: number;
  breaker: { failureThreshold: number; cooldownMs: number; maxCooldownMs: number };
  /** a Redis client factory when queue.driver is redis or redis-cluster, else null */
  redis: ((role: 'command' | 'blocking') => Redis | Cluster) | null;
  keyPrefix: string;
  nodeId: string;
  /** how long after start the orphan sweep begins (the node must know its live peers first) */
  settleMs: number;
}

/** What the orphan sweep needs to know of the cluster. */
export interface WebhookCluster {
  liveIds(): string[];
  /** true on exactly one live node for the key */
  owns(key: string): boolean;
}

export interface Webhooks {
  sink: HttpWebhookSink;
  /** Requeues what a lost node was delivering (called by the survivor that owns the duty). */
  recoverNode(nodeId: string): Promise<void>;
}

export function createWebhooks(
  s: WebhookSettings,
  cluster: WebhookCluster,
  apps: AppStore,
  metrics: Metrics,
  log: Logger,
  observer: AttemptObserver | null = null,
): Webhooks {
  let queue: WebhookQueue | null = null;
  const counters = metrics.webhooks(
    () => queue?.depth() ?? Promise.resolve(0),
    () => gate.inFlight(),
  );
  const breakers = new CircuitBreakers({ ...s.breaker, probeWaitMs: s.requestTimeoutMs }, breakerLog(counters, log));
  const gate = new EndpointGate({ perEndpoint: s.maxConcurrencyPerEndpoint, total: s.maxConcurrency }, breakers);
  const client = new WebhookHttpClient({
    maxSocketsPerEndpoint: s.maxConcurrencyPerEndpoint,
    maxSockets: s.maxConcurrency,
    timeoutMs: s.requestTimeoutMs,
  });
  const drops = new DropReport(counters, log);
  let redisQueue: RedisQueue | null = null;
  if (s.redis) {
    redisQueue = new RedisQueue(
      s.redis('command'),
      s.redis('blocking'),
      {
        keyPrefix: s.keyPrefix,
        nodeId: s.nodeId,
        maxQueuedPerApp: s.maxQueuedPerApp,
        maxQueued: s.maxQueued,
        concurrency: s.maxConcurrency,
        retryDelay: retryDelayMs,
        dropped: (job, reason, detail) => drops.dropped(job, reason, detail),
      },
      log,
    );
    queue = redisQueue;
  } else {
    queue = new MemoryQueue({
      maxQueuedPerApp: s.maxQueuedPerApp,
      maxQueued: s.maxQueued,
      retryDelay: retryDelayMs,
      capacity: gate,
      dropped: (job, reason) => drops.dropped(job, reason),
    });
  }
  const sink = new HttpWebhookSink(
    { batching: s.batching, batchMs: s.batchMs, maxAttempts: WEBHOOK_MAX_ATTEMPTS, maxAgeMs: MAX_AGE_MS },
    queue,
    apps,
    counters,
    log,
    { gate, client },
    observer,
  );
  if (redisQueue) startOrphanSweep(redisQueue, cluster, s.settleMs, log);
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
function startOrphanSweep(queue: RedisQueue, cluster: WebhookCluster, settleMs: number, log: Logger): void {
  const startedAt = Date.now();
  const timer = setInterval(
    () => {
      if (Date.now() - startedAt < settleMs) return;
      (async () => {
        const live = new Set(cluster.liveIds());
        for (const nodeId of await queue.processingNodes()) {
          // Requeueing is idempotent (RPOPLPUSH until empty); one owner keeps it from running N times.
          if (!live.has(nodeId) && cluster.owns(JSON.stringify(['webhook-orphans', nodeId]))) await queue.recover(nodeId);
        }
      })().catch((err: Error) => log.warn({ err: err.message }, 'webhook orphan sweep failed'));
    },
    Math.min(WEBHOOK_ORPHAN_SWEEP_MS, settleMs),
  );
  timer.unref();
}
