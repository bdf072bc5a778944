// Webhooks as Pusher sends them: {"time_ms", "events"} signed with the app
// secret, optionally batched per endpoint, channel_vacated and member_removed
// held back to absorb quick reconnects (cluster-wide, through markers), queued
// (memory or Redis) and retried with backoff, then dead-lettered. Each attempt
// first needs a slot of its endpoint and a closed breaker (endpoint-gate.ts).
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AppStore } from '../apps/store.js';
import type { WebhookEvent, WebhookSink } from './events.js';
import { webhookMatches } from './filter.js';
import { endpointOf, type Endpoint } from './endpoint.js';
import type { Admission, EndpointGate, Ticket, Verdict } from './endpoint-gate.js';
import type { WebhookHttpClient } from './http-client.js';
import { newJob, signedRequest, type WebhookJob } from './job.js';
import type { Markers } from './markers.js';
import type { Outcome, WebhookQueue } from './queue.js';
import { redactUrl, scrubReason } from './redact.js';

export { webhookMatches } from './filter.js';

export interface WebhookOptions {
  batching: boolean;
  batchMs: number;
  vacatedDelayMs: number;
  /** attempts per batch before it is dead-lettered */
  maxAttempts: number;
  /** a batch still kept from its endpoint by an open breaker after this long is dead-lettered */
  maxAgeMs: number;
}

export interface WebhookCounters {
  sent(appId: string, latencySeconds: number): void;
  failed(appId: string): void;
  retried(appId: string): void;
  dead(appId: string): void;
  /** a batch not attempted because its endpoint's breaker is open */
  shortCircuited(appId: string): void;
}

/** How attempts reach the network: admission (slots, breakers), then the keep-alive client. */
export interface Delivery {
  gate: EndpointGate;
  client: WebhookHttpClient;
}

/** Spreads the jobs an open breaker sent away, so they do not all come back at once. */
const DEFER_JITTER_MS = 1000;

/** The pair a removal and the addition that cancels it share. */
function markerKey(appId: string, e: WebhookEvent): string | null {
  if (e.name === 'channel_vacated' || e.name === 'channel_occupied') return `${appId}:c:${e.channel}`;
  if (e.name === 'member_removed' || e.name === 'member_added') return `${appId}:m:${e.channel}:${e.user_id}`;
  return null;
}

const isRemoval = (e: WebhookEvent) => e.name === 'channel_vacated' || e.name === 'member_removed';

export class HttpWebhookSink implements WebhookSink {
  private readonly open = new Map<string, { job: WebhookJob; timer: NodeJS.Timeout }>();
  /** removals waiting out the delay on this node */
  private readonly held = new Map<NodeJS.Timeout, { app: App; event: WebhookEvent; key: string }>();
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly options: WebhookOptions,
    private readonly queue: WebhookQueue,
    private readonly markers: Markers,
    private readonly apps: AppStore,
    private readonly counters: WebhookCounters,
    private readonly log: Logger,
    private readonly delivery: Delivery,
  ) {
    queue.start((job) => this.attempt(job));
  }

  emit(app: App, event: WebhookEvent): void {
    if (this.closed) return;
    const key = this.options.vacatedDelayMs > 0 ? markerKey(app.id, event) : null;
    if (!key) {
      this.route(app, event);
      return;
    }
    if (isRemoval(event)) {
      this.track(this.markers.set(key, this.options.vacatedDelayMs * 2 + 5000));
      const timer = setTimeout(() => {
        this.held.delete(timer);
        this.release(app, event, key);
      }, this.options.vacatedDelayMs);
      timer.unref();
      this.held.set(timer, { app, event, key });
      return;
    }
    // An addition within the delay takes the removal's marker: neither is sent.
    this.track(
      this.markers.take(key).then(
        (cancelled) => cancelled || this.route(app, event),
        () => this.route(app, event),
      ),
    );
  }

  /** The delay is over: the removal goes out unless an addition took its marker. */
  private release(app: App, event: WebhookEvent, key: string): void {
    this.track(
      this.markers.take(key).then(
        (stillHeld) => stillHeld && this.route(app, event),
        () => this.route(app, event),
      ),
    );
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch(() => undefined).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  private route(app: App, event: WebhookEvent): void {
    for (const hook of app.webhooks) {
      if (!webhookMatches(hook, event)) continue;
      if (!this.options.batching) {
        this.queue.push(newJob(app, hook, event));
        continue;
      }
      const k = `${app.id}\n${hook.url}`;
      const open = this.open.get(k);
      if (open) {
        open.job.events.push(event);
        continue;
      }
      const job = newJob(app, hook, event);
      const timer = setTimeout(() => {
        this.open.delete(k);
        this.queue.push(job);
      }, this.options.batchMs);
      timer.unref();
      this.open.set(k, { job, timer });
    }
  }

  /** One turn of a job. Admission is synchronous (see `Deliver`); the request is not. */
  private attempt(job: WebhookJob): Promise<Outcome> {
    const endpoint = endpointOf(job);
    if (!endpoint) return Promise.resolve(this.deadLetter(job, 'webhook url cannot be delivered to'));
    const admission = this.delivery.gate.admit(endpoint);
    if (!admission.ok) return Promise.resolve(this.refused(job, endpoint, admission));
    return this.send(job, endpoint, admission.ticket);
  }

  /** Not attempted: the job waits and comes back; no attempt is counted. */
  private refused(job: WebhookJob, endpoint: Endpoint, refusal: Exclude<Admission, { ok: true }>): Outcome {
    if (refusal.reason === 'open') {
      this.counters.shortCircuited(job.appId);
      // A breaker may stay open for long; a batch is not kept past the retry window for it.
      if (Date.now() - job.createdAt > this.options.maxAgeMs) return this.deadLetter(job, `endpoint ${endpoint.label} failing (circuit open)`);
      return { deferMs: refusal.retryInMs + Math.floor(Math.random() * DEFER_JITTER_MS) };
    }
    return { deferMs: refusal.retryInMs };
  }

  private async send(job: WebhookJob, endpoint: Endpoint, ticket: Ticket): Promise<Outcome> {
    let verdict: Verdict = 'unused';
    try {
      const app = await this.apps.findById(job.appId).catch(() => null);
      if (!app) return this.deadLetter(job, 'app unknown');
      job.attempts++;
      const { headers, body } = signedRequest(job, app);
      const result = await this.delivery.client.post(endpoint.url, headers, body);
      verdict = result.ok ? 'ok' : 'failed';
      if (result.ok) {
        this.counters.sent(job.appId, (Date.now() - job.createdAt) / 1000);
        return 'done';
      }
      this.counters.failed(job.appId);
      const reason = scrubReason(result.reason, job.url);
      if (job.attempts >= this.options.maxAttempts || this.closed) return this.deadLetter(job, reason);
      this.counters.retried(job.appId);
      this.log.warn(
        { app_id: job.appId, url: endpoint.label, webhook_id: job.id, reason, attempts: job.attempts },
        'webhook failed, will retry',
      );
      return 'retry';
    } finally {
      ticket.finish(verdict);
    }
  }

  private deadLetter(job: WebhookJob, reason: string): 'dead' {
    this.counters.dead(job.appId);
    this.log.error(
      { app_id: job.appId, url: redactUrl(job.url), webhook_id: job.id, attempts: job.attempts, reason },
      'webhook dead-lettered',
    );
    return 'dead';
  }

  async flush(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    for (const [timer, h] of this.held) {
      clearTimeout(timer);
      this.held.delete(timer);
      this.release(h.app, h.event, h.key);
    }
    await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
    for (const [k, o] of this.open) {
      clearTimeout(o.timer);
      this.open.delete(k);
      this.queue.push(o.job);
    }
    await this.queue.flush(Math.max(0, deadline - Date.now()));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.held.keys()) clearTimeout(timer);
    this.held.clear();
    await this.queue.close();
    // Idle sockets close; a request in flight ends on its own, and the closed queue retries nothing.
    this.delivery.client.close();
  }
}
