// What happened, as the backend hears of it (Pusher's webhook events). The core
// produces them; the webhooks part listens through this interface and owns
// everything about delivery.
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

export interface DomainEvents {
  emit(app: App, event: WebhookEvent): void;
}

/** True when any of the app's webhooks wants this event type (checked before building the event). */
export const wantsWebhook = (app: App, name: WebhookEvent['name']): boolean =>
  app.webhooks.length > 0 && app.webhooks.some((w) => (w.event_types as readonly string[]).includes(name));
