// Webhook jobs in Redis, so they outlive the node that queued them.
// - `queue` (list): jobs ready to send. A node moves one at a time into its own
//   `processing:<node>` list (BLMOVE: exactly one node takes each job), sends it,
//   then removes it.
// - `delayed` (sorted set by due time): retries; every node moves due ones back.
// - A node that dies leaves jobs in its processing list: the survivor that wins
//   the claim on it (or, for lists no live node accounts for, an orphan sweep)
//   moves them back to the queue.
// All keys share one hash tag, so the scripts stay on one Redis Cluster slot.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { WebhookJob } from './job.js';
import type { Deliver, WebhookQueue } from './queue.js';

/** Deliveries one node runs at once. */
const CONCURRENCY = 16;
const POLL_MS = 250;

const PROMOTE_DUE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('LPUSH', KEYS[2], job)
end
return #due
`;

const REQUEUE_ALL = `
local moved = 0
while redis.call('RPOPLPUSH', KEYS[1], KEYS[2]) do moved = moved + 1 end
return moved
`;

export interface RedisQueueOptions {
  keyPrefix: string;
  nodeId: string;
  maxQueued: number;
  retryDelay(attempts: number): number;
}

export class RedisQueue implements WebhookQueue {
  private deliver: Deliver | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private running = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly keys: { queue: string; delayed: string; processing: (node: string) => string; prefix: string };

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

  push(job: WebhookJob): void {
    this.client.lpush(this.keys.queue, JSON.stringify(job)).catch((err: Error) => {
      this.log.error({ app_id: job.appId, webhook_id: job.id, err: err.message }, 'webhook could not be queued in Redis, dropped');
    });
  }

  /** Takes jobs one by one, never more than CONCURRENCY in flight. */
  private async loop(): Promise<void> {
    const processing = this.keys.processing(this.options.nodeId);
    while (this.running) {
      if (this.inFlight.size >= CONCURRENCY) {
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
    const outcome = await this.deliver!(job).catch(() => 'retry' as const);
    const tx = this.client.multi().lrem(processing, 1, raw);
    if (outcome === 'retry') tx.zadd(this.keys.delayed, Date.now() + this.options.retryDelay(job.attempts), JSON.stringify(job));
    else if (typeof outcome === 'object') tx.zadd(this.keys.delayed, Date.now() + outcome.deferMs, JSON.stringify(job));
    await tx.exec().catch((err: Error) => this.log.warn({ webhook_id: job.id, err: err.message }, 'webhook queue update failed'));
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
    const servers = 'nodes' in this.client ? (this.client as Cluster).nodes('master') : [this.client as Redis];
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
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Whatever is still in this node's processing list goes back for another node.
    await this.recover(this.options.nodeId).catch(() => undefined);
    this.blocking.disconnect();
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
