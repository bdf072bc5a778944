// What happened, as the backend hears of it (Pusher's webhook events). The core
// produces them; the webhooks part listens through this interface and owns
// everything about delivery.
import type { App } from '../apps/app.js';

import type { WebhookEvent } from '../cluster/ports.js';

export type { WebhookEvent } from '../cluster/ports.js';

export interface DomainEvents {
  emit(app: App, event: WebhookEvent): void;
}

/** True when any of the app's webhooks wants this event type (checked before building the event). */
export const wantsWebhook = (app: App, name: WebhookEvent['name']): boolean =>
  app.webhooks.length > 0 && app.webhooks.some((w) => (w.event_types as readonly string[]).includes(name));
