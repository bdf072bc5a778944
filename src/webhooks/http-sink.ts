// Delivers webhooks over HTTP as Pusher does: {"time_ms", "events"} signed with
// the app secret, optionally batched per endpoint, channel_vacated and
// member_removed held back to absorb quick reconnects, retried with backoff.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { WebhookConfig } from '../config/schema.js';
import { hmacSha256Hex } from '../protocol/signatures.js';
import type { WebhookEvent, WebhookSink } from './events.js';

export interface WebhookOptions {
  batching: boolean;
  batchMs: number;
  vacatedDelayMs: number;
  /** attempts per batch before it is dead-lettered */
  maxAttempts: number;
  /** bound on batches waiting to be sent or retried */
  maxQueued: number;
  requestTimeoutMs: number;
}

interface Batch {
  id: string;
  app: App;
  hook: WebhookConfig;
  events: Array<WebhookEvent & { time_ms?: number }>;
  attempts: number;
}

/** Does the event pass the webhook's type list and channel filter? */
export function webhookMatches(hook: WebhookConfig, event: WebhookEvent): boolean {
  if (!(hook.event_types as readonly string[]).includes(event.name)) return false;
  const f = hook.filter;
  if (!f) return true;
  if (f.channel_prefix && !event.channel.startsWith(f.channel_prefix)) return false;
  if (f.channel_suffix && !event.channel.endsWith(f.channel_suffix)) return false;
  if (f.channel_pattern) {
    try {
      if (!new RegExp(f.channel_pattern).test(event.channel)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

const heldKey = (appId: string, e: WebhookEvent): string | null => {
  if (e.name === 'channel_vacated' || e.name === 'channel_occupied') return `${appId}\nc\n${e.channel}`;
  if (e.name === 'member_removed' || e.name === 'member_added') return `${appId}\nm\n${e.channel}\n${e.user_id}`;
  return null;
};

export class HttpWebhookSink implements WebhookSink {
  private readonly open = new Map<string, { batch: Batch; timer: NodeJS.Timeout }>();
  private readonly held = new Map<string, { app: App; event: WebhookEvent; timer: NodeJS.Timeout }>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private queued = 0;
  private closed = false;

  constructor(private readonly options: WebhookOptions, private readonly log: Logger) {}

  emit(app: App, event: WebhookEvent): void {
    if (this.closed) return;
    const key = heldKey(app.id, event);
    if (key) {
      const pending = this.held.get(key);
      if (event.name === 'channel_occupied' || event.name === 'member_added') {
        // Back within the delay: neither the held removal nor this addition is sent.
        if (pending) {
          clearTimeout(pending.timer);
          this.held.delete(key);
          return;
        }
      } else if (this.options.vacatedDelayMs > 0) {
        if (pending) return;
        const timer = setTimeout(() => {
          this.held.delete(key);
          this.route(app, event);
        }, this.options.vacatedDelayMs);
        timer.unref();
        this.held.set(key, { app, event, timer });
        return;
      }
    }
    this.route(app, event);
  }

  private route(app: App, event: WebhookEvent): void {
    const stamped = { ...event, time_ms: Date.now() };
    for (const hook of app.webhooks) {
      if (!webhookMatches(hook, event)) continue;
      if (!this.options.batching) {
        this.enqueue({ id: randomUUID(), app, hook, events: [stamped], attempts: 0 });
        continue;
      }
      const k = `${app.id}\n${hook.url}`;
      const open = this.open.get(k);
      if (open) {
        open.batch.events.push(stamped);
        continue;
      }
      const batch: Batch = { id: randomUUID(), app, hook, events: [stamped], attempts: 0 };
      const timer = setTimeout(() => {
        this.open.delete(k);
        this.enqueue(batch);
      }, this.options.batchMs);
      timer.unref();
      this.open.set(k, { batch, timer });
    }
  }

  private enqueue(batch: Batch): void {
    if (this.queued >= this.options.maxQueued) {
      this.log.error({ app_id: batch.app.id, url: batch.hook.url, events: batch.events.length }, 'webhook queue full, batch dropped');
      return;
    }
    this.queued++;
    const p = this.attempt(batch).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async attempt(batch: Batch): Promise<void> {
    batch.attempts++;
    const timeMs = Math.min(...batch.events.map((e) => e.time_ms ?? Date.now()));
    const events = batch.events.map(({ time_ms: _t, ...e }) => e);
    const body = JSON.stringify({ time_ms: timeMs, events });
    let failure: string | null = null;
    try {
      const res = await fetch(batch.hook.url, {
        method: 'POST',
        headers: {
          ...batch.hook.headers,
          'Content-Type': 'application/json',
          'X-Pusher-Key': batch.app.key,
          'X-Pusher-Signature': hmacSha256Hex(batch.app.secret, body),
          'X-Chorus-Webhook-Id': batch.id,
        },
        body,
        signal: AbortSignal.timeout(this.options.requestTimeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) failure = `HTTP ${res.status}`;
    } catch (err) {
      failure = (err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).message;
    }
    if (failure === null) {
      this.queued--;
      return;
    }
    if (batch.attempts >= this.options.maxAttempts || this.closed) {
      this.queued--;
      this.log.error(
        { app_id: batch.app.id, url: batch.hook.url, webhook_id: batch.id, attempts: batch.attempts, reason: failure },
        'webhook dead-lettered',
      );
      return;
    }
    // Exponential backoff with full jitter: 1 s, 2 s, 4 s ... capped at 60 s.
    const base = Math.min(60_000, 1000 * 2 ** (batch.attempts - 1));
    const delay = Math.floor(base / 2 + Math.random() * (base / 2));
    this.log.warn({ app_id: batch.app.id, url: batch.hook.url, webhook_id: batch.id, reason: failure, retry_in_ms: delay }, 'webhook failed, will retry');
    this.queued--;
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.enqueue(batch);
    }, delay);
    timer.unref();
    this.retryTimers.add(timer);
  }

  async flush(deadlineMs: number): Promise<void> {
    for (const [k, h] of this.held) {
      clearTimeout(h.timer);
      this.held.delete(k);
      this.route(h.app, h.event);
    }
    for (const [k, o] of this.open) {
      clearTimeout(o.timer);
      this.open.delete(k);
      this.enqueue(o.batch);
    }
    const all = Promise.allSettled([...this.inFlight]);
    await Promise.race([all, new Promise((r) => setTimeout(r, deadlineMs).unref())]);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
  }
}
