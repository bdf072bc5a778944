// Builds the webhook pipeline from the config: queue (memory or Redis), markers
// (local or in the broker), the sink, and the recovery of a lost node's jobs.
import { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AppStore } from '../apps/store.js';
import type { Adapter } from '../cluster/adapter.js';
import { HorizontalAdapter } from '../cluster/horizontal-adapter.js';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics/metrics.js';
import { clusterNodes, redisOptions } from '../transports/redis-options.js';
import { HttpWebhookSink } from './http-sink.js';
import { retryDelayMs } from './job.js';
import { BrokerMarkers, LocalMarkers } from './markers.js';
import { MemoryQueue, type WebhookQueue } from './queue.js';
import { RedisQueue } from './redis-queue.js';

/** Pusher retries for about five minutes; ten attempts with backoff capped at a minute cover that. */
const MAX_ATTEMPTS = 10;
const MAX_QUEUED = 10_000;
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
  let queue: WebhookQueue;
  let redisQueue: RedisQueue | null = null;
  if (config.queue.driver === 'redis' || config.queue.driver === 'redis-cluster') {
    redisQueue = new RedisQueue(
      redisClient(config),
      redisClient(config),
      { keyPrefix: config.database.redis.key_prefix, nodeId: adapter.nodeId, maxQueued: MAX_QUEUED, retryDelay: retryDelayMs },
      log,
    );
    queue = redisQueue;
  } else {
    queue = new MemoryQueue(MAX_QUEUED, retryDelayMs, log);
  }
  const markers = adapter instanceof HorizontalAdapter ? new BrokerMarkers(adapter) : new LocalMarkers();
  const sink = new HttpWebhookSink(
    {
      batching: config.webhooks.batching.enabled,
      batchMs: config.webhooks.batching.duration,
      vacatedDelayMs: config.webhooks.vacated_delay_ms,
      maxAttempts: MAX_ATTEMPTS,
      requestTimeoutMs: 5000,
    },
    queue,
    markers,
    apps,
    metrics.webhooks(() => queue.depth()),
    log,
  );
  if (redisQueue) startOrphanSweep(redisQueue, adapter, config, log);
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
