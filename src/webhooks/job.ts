// A batch of webhook events for one endpoint: what queues hold and delivery sends.
// Plain JSON, so a Redis queue can hold it and another node deliver it.
import { randomUUID } from 'node:crypto';
import type { App } from '../apps/app.js';
import type { WebhookConfig } from '../config/schema.js';
import { hmacSha256Hex } from '../protocol/signatures.js';
import type { WebhookEvent } from './events.js';

export interface WebhookJob {
  /** sent as X-Chorus-Webhook-Id so a receiver can drop a rare duplicate */
  id: string;
  appId: string;
  url: string;
  headers: Record<string, string>;
  /** unix ms when the first event happened (the payload's time_ms) */
  timeMs: number;
  events: WebhookEvent[];
  attempts: number;
  /** unix ms when the job was created (delivery latency) */
  createdAt: number;
}

export const newJob = (app: App, hook: WebhookConfig, event: WebhookEvent, now = Date.now()): WebhookJob => ({
  id: randomUUID(),
  appId: app.id,
  url: hook.url,
  headers: hook.headers,
  timeMs: now,
  events: [event],
  attempts: 0,
  createdAt: now,
});

/**
 * The body Pusher sends and its headers: signed with the app's secret (looked up at
 * send time, so a rotated secret applies to retries too).
 */
export function signedRequest(job: WebhookJob, app: App): { headers: Record<string, string>; body: string } {
  const body = JSON.stringify({ time_ms: job.timeMs, events: job.events });
  return {
    body,
    headers: {
      ...job.headers,
      'Content-Type': 'application/json',
      'X-Pusher-Key': app.key,
      'X-Pusher-Signature': hmacSha256Hex(app.secret, body),
      'X-Chorus-Webhook-Id': job.id,
    },
  };
}

/** Exponential backoff with jitter: about 1 s, 2 s, 4 s ... capped at 60 s (Pusher retries for minutes). */
export function retryDelayMs(attempts: number): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, attempts - 1));
  return Math.floor(base / 2 + Math.random() * (base / 2));
}
