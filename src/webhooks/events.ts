// The webhook side of the core's domain events: a sink that takes them and owns
// delivery (batching, signing, queueing, retries).
import type { App } from '../apps/app.js';
import type { DomainEvents, WebhookEvent } from '../core/events.js';

export type { WebhookEvent } from '../core/events.js';
export { wantsWebhook } from '../core/events.js';

export interface WebhookSink extends DomainEvents {
  emit(app: App, event: WebhookEvent): void;
  /** Sends what is queued; resolves when done or when the deadline passes. */
  flush(deadlineMs: number): Promise<void>;
  close(): Promise<void>;
}
