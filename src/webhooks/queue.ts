// Where webhook jobs wait for delivery and retries. The memory queue is this
// node's; the Redis queue survives a node's crash (src/webhooks/redis-queue.ts).
import type { Logger } from 'pino';
import type { WebhookJob } from './job.js';
import { redactUrl } from './redact.js';

/** Runs one attempt; the queue decides about retries from the answer. */
export type Deliver = (job: WebhookJob) => Promise<'done' | 'retry' | 'dead'>;

export interface WebhookQueue {
  start(deliver: Deliver): void;
  push(job: WebhookJob): void;
  /** jobs waiting or retrying (for the queue-depth metric) */
  depth(): Promise<number>;
  /** Delivers what can be delivered now; resolves at the latest after `deadlineMs`. */
  flush(deadlineMs: number): Promise<void>;
  close(): Promise<void>;
}

export class MemoryQueue implements WebhookQueue {
  private deliver: Deliver | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly retries = new Map<NodeJS.Timeout, WebhookJob>();
  private closed = false;

  constructor(
    private readonly maxQueued: number,
    private readonly retryDelay: (attempts: number) => number,
    private readonly log: Logger,
  ) {}

  start(deliver: Deliver): void {
    this.deliver = deliver;
  }

  push(job: WebhookJob): void {
    if (this.closed || !this.deliver) return;
    if (this.inFlight.size + this.retries.size >= this.maxQueued) {
      this.log.error({ app_id: job.appId, url: redactUrl(job.url), events: job.events.length }, 'webhook queue full, batch dropped');
      return;
    }
    const deliver = this.deliver;
    const p = deliver(job)
      .then((outcome) => {
        if (outcome !== 'retry' || this.closed) return;
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          this.push(job);
        }, this.retryDelay(job.attempts));
        timer.unref();
        this.retries.set(timer, job);
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  async depth(): Promise<number> {
    return this.inFlight.size + this.retries.size;
  }

  async flush(deadlineMs: number): Promise<void> {
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.retries.keys()) clearTimeout(timer);
    this.retries.clear();
  }
}
