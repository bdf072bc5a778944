// Builds the webhook pipeline from its settings: queue (memory or Redis), the
// sink, and the recovery of a lost node's jobs. When and by which node an edge
// (occupied, vacated, member added/removed) is reported is the cluster's business:
// the sink sends what it is given.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AppStore } from '../apps/store.js';
import { WEBHOOK_MAX_ATTEMPTS, WEBHOOK_ORPHAN_SWEEP_MS, WEBHOOK_TIMEOUT_MS } from '../config/limits.js';
import type { Metrics } from '../metrics/metrics.js';
import { HttpWebhookSink } from './http-sink.js';
import { retryDelayMs } from './job.js';
import { LocalMarkers } from './markers.js';
import { MemoryQueue, type WebhookQueue } from './queue.js';
import { RedisQueue } from './redis-queue.js';

const MAX_QUEUED = 10_000;

export interface WebhookSettings {
  batching: boolean;
  batchMs: number;
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
  /** Requeues what a lost node was delivering (called by the survivor that won its claim). */
  recoverNode(nodeId: string): Promise<void>;
}

export function createWebhooks(settings: WebhookSettings, cluster: WebhookCluster, apps: AppStore, metrics: Metrics, log: Logger): Webhooks {
  let queue: WebhookQueue;
  let redisQueue: RedisQueue | null = null;
  if (settings.redis) {
    redisQueue = new RedisQueue(
      settings.redis('command'),
      settings.redis('blocking'),
      { keyPrefix: settings.keyPrefix, nodeId: settings.nodeId, maxQueued: MAX_QUEUED, retryDelay: retryDelayMs },
      log,
    );
    queue = redisQueue;
  } else {
    queue = new MemoryQueue(MAX_QUEUED, retryDelayMs, log);
  }
  const sink = new HttpWebhookSink(
    {
      batching: settings.batching,
      batchMs: settings.batchMs,
      vacatedDelayMs: 0,
      maxAttempts: WEBHOOK_MAX_ATTEMPTS,
      requestTimeoutMs: WEBHOOK_TIMEOUT_MS,
    },
    queue,
    new LocalMarkers(),
    apps,
    metrics.webhooks(() => queue.depth()),
    log,
  );
  if (redisQueue) startOrphanSweep(redisQueue, cluster, settings.settleMs, log);
  return {
    sink,
    recoverNode: async (nodeId) => {
      await redisQueue?.recover(nodeId).catch((err: Error) => log.error({ node: nodeId, err: err.message }, 'requeue failed'));
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
  const timer = setInterval(() => {
    if (Date.now() - startedAt < settleMs) return;
    (async () => {
      const live = new Set(cluster.liveIds());
      for (const nodeId of await queue.processingNodes()) {
        // Requeueing is idempotent (RPOPLPUSH until empty); one owner keeps it from running N times.
        if (!live.has(nodeId) && cluster.owns(JSON.stringify(['webhook-orphans', nodeId]))) await queue.recover(nodeId);
      }
    })().catch((err: Error) => log.warn({ err: err.message }, 'webhook orphan sweep failed'));
  }, Math.min(WEBHOOK_ORPHAN_SWEEP_MS, settleMs));
  timer.unref();
}
