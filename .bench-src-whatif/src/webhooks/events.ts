// The webhook events Chorus emits, as Pusher names and shapes them.
import type { App } from '../apps/app.js';

export type WebhookEvent =
  | { name: 'channel_occupied' | 'channel_vacated' | 'cache_miss'; channel: string }
  | { name: 'member_added' | 'member_removed'; channel: string; user_id: string }
  | { name: 'subscription_count'; channel: string; subscription_count: number }
  | {
      name: 'client_event';
      channel: string;
      event: string;
      data: string;
      socket_id: string;
      user_id?: string;
    };

/** Receives webhook events as they happen; delivery (batching, signing, retries) is its business. */
export interface WebhookSink {
  emit(app: App, event: WebhookEvent): void;
  /** Sends what is queued; resolves when done or when the deadline passes. */
  flush(deadlineMs: number): Promise<void>;
  close(): Promise<void>;
}

/** True when any of the app's webhooks wants this event type. */
export const wantsWebhook = (app: App, name: WebhookEvent['name']): boolean =>
  app.webhooks.length > 0 && app.webhooks.some((w) => (w.event_types as readonly string[]).includes(name));
