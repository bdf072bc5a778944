// Webhook jobs in Redis, so they outlive the node that queued them.
// - `queue` (list): jobs ready to send. A node moves one at a time into its own
//   `processing:<node>` list (BLMOVE: exactly one node takes each job), sends it,
//   then removes it.
// - `delayed` (sorted set by due time): retries, and jobs deferred because their
//   endpoint was saturated or its breaker open; every node moves due ones back.
// - `queued:<app>` (counter): the app's batches anywhere in the above, bounded
//   (max_queued_per_app) so one app's backlog cannot grow Redis without bound.
// - A node that dies leaves jobs in its processing list: the survivor that wins
//   the claim on it (or, for lists no live node accounts for, an orphan sweep)
//   moves them back to the queue.
// All keys share one hash tag, so the scripts stay on one Redis Cluster slot.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DropReason } from './drop-report.js';
import type { WebhookJob } from './job.js';
import type { Deliver, Outcome, WebhookQueue } from './queue.js';
import { FINISH, PROMOTE_DUE, PUSH, REQUEUE_ALL, RESCHEDULE } from './redis-queue-scripts.js';

const POLL_MS = 250;
/**
 * An app's counter outlives every job it counts (each is touched at least every few minutes:
 * backoff 60 s, breaker cool-down 5 min); should it ever drift (keys removed by hand), it
 * heals after an hour without a change.
 */
const COUNT_TTL_MS = 60 * 60 * 1000;
/**
 * A batch Redis could not take (down, failing over) is offered again by this node for this
 * long, every RETRY_PUSH_MS, before it counts as dropped; at most MAX_RETRYING at once, so an
 * outage costs bounded memory.
 */
const PUSH_PATIENCE_MS = 30_000;
const RETRY_PUSH_MS = 500;
const MAX_RETRYING = 10_000;

export interface RedisQueueOptions {
  keyPrefix: string;
  nodeId: string;
  /** batches one app may have queued, retrying or in flight, cluster-wide */
  maxQueuedPerApp: number;
  /** batches waiting or retrying, cluster-wide */
  maxQueued: number;
  /** jobs this node works on at once (the gate's total): more are left in Redis for other nodes */
  concurrency: number;
  retryDelay(attempts: number): number;
  dropped(job: WebhookJob, reason: DropReason, detail?: string): void;
}

export class RedisQueue implements WebhookQueue {
  private deliver: Deliver | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private running = false;
  /** batches waiting here to be offered to Redis again, by their timer */
  private readonly waitingToOffer = new Map<NodeJS.Timeout, WebhookJob>();
  private timers: NodeJS.Timeout[] = [];
  private readonly keys: {
    queue: string;
    delayed: string;
    processing: (node: string) => string;
    prefix: string;
    count: (appId: string) => string;
  };

  constructor(
    private readonly client: Redis | Cluster,
    /** a second connection: BLMOVE blocks it */
    private readonly blocking: Redis | Cluster,
    private readonly options: RedisQueueOptions,
    private readonly log: Logger,
  ) {
    const tag = `${options.keyPrefix}{webhooks}`;
    this.keys = {
      queue: `${tag}:queue`,
      delayed: `${tag}:delayed`,
      processing: (node) => `${tag}:processing:${node}`,
      prefix: `${tag}:processing:`,
      count: (appId) => `${tag}:queued:${appId}`,
    };
    for (const c of [client, blocking]) c.on('error', () => undefined);
  }

  start(deliver: Deliver): void {
    this.deliver = deliver;
    this.running = true;
    void this.loop();
    const poll = setInterval(() => {
      this.client.eval(PROMOTE_DUE, 2, this.keys.delayed, this.keys.queue, String(Date.now())).catch(() => undefined);
    }, POLL_MS);
    poll.unref();
    this.timers.push(poll);
  }

  /** Queued unless the app (or the whole queue) is at its bound: then this, its newest batch, is dropped. */
  push(job: WebhookJob): void {
    this.offer(job, Date.now());
  }

  private offer(job: WebhookJob, since: number): void {
    const { maxQueuedPerApp, maxQueued } = this.options;
    this.client
      .eval(
        PUSH,
        3,
        this.keys.queue,
        this.keys.delayed,
        this.keys.count(job.appId),
        JSON.stringify(job),
        maxQueuedPerApp,
        maxQueued,
        COUNT_TTL_MS,
      )
      .then((answer) => {
        if (answer === 1) this.options.dropped(job, 'app_full');
        else if (answer === 2) this.options.dropped(job, 'queue_full');
      })
      .catch((err: Error) => {
        // A timed-out command may still run when Redis wakes up: offering it again could queue
        // the batch twice, so only a push that was refused outright is offered again.
        const mayHaveRun = /timed? ?out/i.test(err.message);
        if (!this.running || mayHaveRun || Date.now() - since > PUSH_PATIENCE_MS || this.waitingToOffer.size >= MAX_RETRYING) {
          this.options.dropped(job, 'queue_unavailable', err.message);
          return;
        }
        const timer = setTimeout(() => {
          this.waitingToOffer.delete(timer);
          this.offer(job, since);
        }, RETRY_PUSH_MS);
        timer.unref();
        this.waitingToOffer.set(timer, job);
      });
  }

  /**
   * Takes jobs one by one, never more than `concurrency` at once. A job its endpoint cannot
   * take now (saturated, breaker open) comes back from `deliver` at once as deferred and is
   * put back as a delayed retry, so the loop goes on to other apps' jobs.
   */
  private async loop(): Promise<void> {
    const processing = this.keys.processing(this.options.nodeId);
    while (this.running) {
      if (this.inFlight.size >= this.options.concurrency) {
        await Promise.race(this.inFlight);
        continue;
      }
      let raw: string | null;
      try {
        raw = await this.blocking.blmove(this.keys.queue, processing, 'RIGHT', 'LEFT', 1);
      } catch {
        if (!this.running) return;
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (raw === null) continue;
      const p = this.handle(raw, processing).finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }
  }

  private async handle(raw: string, processing: string): Promise<void> {
    let job: WebhookJob;
    try {
      job = JSON.parse(raw) as WebhookJob;
    } catch {
      await this.client.lrem(processing, 1, raw).catch(() => undefined);
      return;
    }
    const outcome: Outcome = await this.deliver!(job).catch((): Outcome => 'retry');
    const count = this.keys.count(job.appId);
    // Removed from this node's processing list only now, with the answer: a crash before this requeues it.
    const update =
      outcome === 'done' || outcome === 'dead'
        ? this.client.eval(FINISH, 2, processing, count, raw, COUNT_TTL_MS)
        : this.client.eval(
            RESCHEDULE,
            3,
            processing,
            this.keys.delayed,
            count,
            raw,
            Date.now() + (outcome === 'retry' ? this.options.retryDelay(job.attempts) : outcome.deferMs),
            JSON.stringify(job),
            COUNT_TTL_MS,
          );
    await update.catch((err: Error) => this.log.warn({ webhook_id: job.id, err: err.message }, 'webhook queue update failed'));
  }

  /** Moves a (dead) node's in-flight jobs back to the queue. */
  async recover(nodeId: string): Promise<number> {
    const moved = (await this.client.eval(REQUEUE_ALL, 2, this.keys.processing(nodeId), this.keys.queue)) as number;
    if (moved > 0) this.log.info({ node: nodeId, jobs: moved }, 'requeued webhooks of a lost node');
    return moved;
  }

  /** Node ids that have a processing list (for the orphan sweep). */
  async processingNodes(): Promise<string[]> {
    const nodes = new Set<string>();
    // On a cluster every master is scanned: the keys live on whichever owns their slot.
    const servers = 'nodes' in this.client ? this.client.nodes('master') : [this.client];
    for (const server of servers) {
      let cursor = '0';
      for (let i = 0; i < 1000; i++) {
        const [next, keys] = await server.scan(cursor, 'MATCH', `${this.keys.prefix}*`, 'COUNT', 200);
        for (const k of keys) nodes.add(k.slice(this.keys.prefix.length));
        cursor = next;
        if (cursor === '0') break;
      }
    }
    return [...nodes];
  }

  async depth(): Promise<number> {
    try {
      const [[, q], [, d]] = (await this.client.multi().llen(this.keys.queue).zcard(this.keys.delayed).exec()) as [
        [unknown, number],
        [unknown, number],
      ];
      return q + d;
    } catch {
      return 0;
    }
  }

  async flush(deadlineMs: number): Promise<void> {
    // Jobs in Redis outlive this node; only what is in flight here is waited for.
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
  }

  async close(): Promise<void> {
    this.running = false;
    for (const [timer, job] of this.waitingToOffer) {
      clearTimeout(timer);
      this.options.dropped(job, 'queue_unavailable', 'the node stopped before Redis took it');
    }
    this.waitingToOffer.clear();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Whatever is still in this node's processing list goes back for another node.
    await this.recover(this.options.nodeId).catch(() => undefined);
    this.blocking.disconnect();
    // QUIT waits in ioredis's offline queue while the broker is away: only on a live connection.
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }
}
