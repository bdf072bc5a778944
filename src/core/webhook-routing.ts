// Where the core's webhook events go. With batching on, an app's batches are formed on one
// node of the cluster (the relay says which), so events from every node share its requests
// as on one server; the others hand their events over. Without batching, each event is sent
// from the node that has it (the fewest hops).
import type { App } from '../apps/app.js';
import type { WebhookRelay } from '../cluster/ports.js';
import { wantsWebhook, type DomainEvents, type WebhookEvent } from './events.js';

export class WebhookRouting implements DomainEvents {
  constructor(
    private readonly sink: DomainEvents,
    private readonly relay: WebhookRelay,
    private readonly gatherBatches: boolean,
  ) {}

  emit(app: App, event: WebhookEvent): void {
    if (this.gatherBatches && !this.relay.batchesHere(app.id)) this.relay.forward(app.id, [event]);
    else this.sink.emit(app, event);
  }

  /** A peer's events for the app's batches formed here: never handed on again (no loops while ownership moves). */
  relayed(app: App, events: readonly WebhookEvent[]): void {
    for (const event of events) if (wantsWebhook(app, event.name)) this.sink.emit(app, event);
  }
}
