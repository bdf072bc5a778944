// Where webhook jobs wait for delivery and retries. The memory queue is this
// node's; the Redis queue survives a node's crash (src/webhooks/redis-queue.ts).
import type { DropReason } from './drop-report.js';
import type { Capacity } from './endpoint-gate.js';
import { endpointOf } from './endpoint.js';
import { FairLanes } from './fair-lanes.js';
import type { WebhookJob } from './job.js';

/**
 * What one turn of a job came to: sent (`done`), failed and to be retried with backoff
 * (`retry`), given up (`dead`), or not attempted because its endpoint is saturated or its
 * breaker open (`deferMs`: take it again after that long; no attempt was counted).
 */
export type Outcome = 'done' | 'retry' | 'dead' | { deferMs: number };

/**
 * Runs one turn. It claims the endpoint's slot (or refuses) before it returns its promise,
 * so a queue that checks `Capacity` and then calls it never starts more than the limits.
 */
export type Deliver = (job: WebhookJob) => Promise<Outcome>;

export interface WebhookQueue {
  start(deliver: Deliver): void;
  push(job: WebhookJob): void;
  /** jobs waiting or retrying (for the queue-depth metric) */
  depth(): Promise<number>;
  /** Delivers what can be delivered now; resolves at the latest after `deadlineMs`. */
  flush(deadlineMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface MemoryQueueOptions {
  /** batches one app may hold (ready, in flight, waiting to retry) */
  maxQueuedPerApp: number;
  /** batches all apps together may hold */
  maxQueued: number;
  retryDelay(attempts: number): number;
  capacity: Capacity;
  dropped(job: WebhookJob, reason: DropReason): void;
}

/** Lane of a job whose URL cannot be parsed: it is taken at once and dead-lettered. */
const INVALID_LANE = '';

export class MemoryQueue implements WebhookQueue {
  private deliver: Deliver | null = null;
  private readonly ready = new FairLanes<WebhookJob>();
  private readonly inFlight = new Set<Promise<void>>();
  /** retries and deferred jobs, by their timer */
  private readonly waiting = new Map<NodeJS.Timeout, WebhookJob>();
  private readonly heldByApp = new Map<string, number>();
  private held = 0;
  private closed = false;

  constructor(private readonly options: MemoryQueueOptions) {}

  start(deliver: Deliver): void {
    this.deliver = deliver;
  }

  push(job: WebhookJob): void {
    if (this.closed || !this.deliver) return;
    const mine = this.heldByApp.get(job.appId) ?? 0;
    // The app's own newest batch goes, never another app's.
    if (mine >= this.options.maxQueuedPerApp) return this.options.dropped(job, 'app_full');
    if (this.held >= this.options.maxQueued) return this.options.dropped(job, 'queue_full');
    this.heldByApp.set(job.appId, mine + 1);
    this.held++;
    this.enqueue(job);
    this.dispatch();
  }

  private enqueue(job: WebhookJob): void {
    this.ready.push(job.appId, endpointOf(job)?.origin ?? INVALID_LANE, job);
  }

  /** Starts ready jobs, fairly, while their origins have free slots. */
  private dispatch(): void {
    const deliver = this.deliver;
    if (!deliver || this.closed) return;
    const { capacity } = this.options;
    const canStart = (lane: string) => lane === INVALID_LANE || capacity.canStart(lane);
    for (let job: WebhookJob | null; capacity.available() && (job = this.ready.take(canStart));) this.run(deliver, job);
  }

  private run(deliver: Deliver, job: WebhookJob): void {
    const p: Promise<void> = deliver(job)
      .catch((): Outcome => 'retry')
      .then((outcome) => this.settle(job, outcome))
      .finally(() => {
        this.inFlight.delete(p);
        this.dispatch();
      });
    this.inFlight.add(p);
  }

  private settle(job: WebhookJob, outcome: Outcome): void {
    if (this.closed) return;
    if (outcome === 'done' || outcome === 'dead') {
      this.release(job);
      return;
    }
    const delay = outcome === 'retry' ? this.options.retryDelay(job.attempts) : outcome.deferMs;
    const timer = setTimeout(() => {
      this.waiting.delete(timer);
      this.enqueue(job);
      this.dispatch();
    }, delay);
    timer.unref();
    this.waiting.set(timer, job);
  }

  private release(job: WebhookJob): void {
    this.held--;
    const n = (this.heldByApp.get(job.appId) ?? 1) - 1;
    if (n <= 0) this.heldByApp.delete(job.appId);
    else this.heldByApp.set(job.appId, n);
  }

  async depth(): Promise<number> {
    return this.held;
  }

  /** Waits for what is in flight or ready (not for scheduled retries), at most `deadlineMs`. */
  async flush(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    for (let left = deadlineMs; (this.inFlight.size > 0 || this.ready.size > 0) && left > 0; left = deadline - Date.now()) {
      const tick = new Promise((r) => setTimeout(r, Math.min(left, 100)).unref());
      await Promise.race([tick, ...this.inFlight]);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.waiting.keys()) clearTimeout(timer);
    this.waiting.clear();
    this.ready.clear();
    this.heldByApp.clear();
    this.held = 0;
  }
}
