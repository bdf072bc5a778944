// Webhooks as Pusher sends them: {"time_ms", "events"} signed with the app
// secret, optionally batched per endpoint, queued (memory or Redis) and retried
// with backoff, then dead-lettered. Each attempt first needs a slot of its endpoint
// and a closed breaker (endpoint-gate.ts). When an edge is reported at all (the 3 s
// vacated delay, one reporting node) is decided in the cluster layer.
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AppStore } from '../apps/store.js';
import type { WebhookEvent, WebhookSink } from './events.js';
import { webhookMatches } from './filter.js';
import { endpointOf, type Endpoint } from './endpoint.js';
import type { Admission, EndpointGate, Ticket, Verdict } from './endpoint-gate.js';
import type { WebhookHttpClient } from './http-client.js';
import { newJob, signedRequest, type WebhookJob } from './job.js';
import type { Outcome, WebhookQueue } from './queue.js';
import { redactUrl, scrubReason } from './redact.js';

export { webhookMatches } from './filter.js';

export interface WebhookOptions {
  batching: boolean;
  batchMs: number;
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
  /** a batch put on the queue */
  enqueued(appId: string): void;
}

/** Who hears of each attempt (the operator console's live stream); asked first whether it listens. */
export interface AttemptObserver {
  wants(appId: string): boolean;
  attempted(
    appId: string,
    attempt: { url: string; ok: boolean; status?: number; reason?: string; attempts: number; events: string[] },
  ): void;
}

/** How attempts reach the network: admission (slots, breakers), then the keep-alive client. */
export interface Delivery {
  gate: EndpointGate;
  client: WebhookHttpClient;
}

/** Spreads the jobs an open breaker sent away, so they do not all come back at once. */
const DEFER_JITTER_MS = 1000;

export class HttpWebhookSink implements WebhookSink {
  private readonly open = new Map<string, { job: WebhookJob; timer: NodeJS.Timeout }>();
  private closed = false;

  constructor(
    private readonly options: WebhookOptions,
    private readonly queue: WebhookQueue,
    private readonly apps: AppStore,
    private readonly counters: WebhookCounters,
    private readonly log: Logger,
    private readonly delivery: Delivery,
    private readonly observer: AttemptObserver | null = null,
  ) {
    queue.start((job) => this.attempt(job));
  }

  emit(app: App, event: WebhookEvent): void {
    if (!this.closed) this.route(app, event);
  }

  private route(app: App, event: WebhookEvent): void {
    for (const hook of app.webhooks) {
      if (!webhookMatches(hook, event)) continue;
      if (!this.options.batching) {
        this.enqueue(newJob(app, hook, event));
        continue;
      }
      const k = JSON.stringify([app.id, hook.url]);
      const open = this.open.get(k);
      if (open) {
        open.job.events.push(event);
        continue;
      }
      const job = newJob(app, hook, event);
      const timer = setTimeout(() => {
        this.open.delete(k);
        this.enqueue(job);
      }, this.options.batchMs);
      timer.unref();
      this.open.set(k, { job, timer });
    }
  }

  private enqueue(job: WebhookJob): void {
    this.counters.enqueued(job.appId);
    this.queue.push(job);
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
      if (Date.now() - job.createdAt > this.options.maxAgeMs)
        return this.deadLetter(job, `endpoint ${endpoint.label} failing (circuit open)`);
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
      if (this.observer?.wants(job.appId)) {
        this.observer.attempted(job.appId, {
          url: endpoint.label,
          ok: result.ok,
          ...(result.status !== undefined ? { status: result.status } : {}),
          ...(result.ok ? {} : { reason: scrubReason(result.reason, job.url) }),
          attempts: job.attempts,
          events: job.events.map((e) => e.name),
        });
      }
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
    for (const [k, o] of this.open) {
      clearTimeout(o.timer);
      this.open.delete(k);
      this.enqueue(o.job);
    }
    await this.queue.flush(Math.max(0, deadline - Date.now()));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.close();
    // Idle sockets close; a request in flight ends on its own, and the closed queue retries nothing.
    this.delivery.client.close();
  }
}
