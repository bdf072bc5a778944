// The node that forms an app's webhook batches is the owner of the key ["webhooks", app]
// (rendezvous over the ready members, as every owned key). Events for another owner are
// gathered for one turn of the event loop and sent to its own topic in one message; while
// the broker is down every node forms its own batches (nothing would carry them).
import type { WebhookEvent, WebhookRelay } from '../ports.js';
import { RELAY_BATCH_MAX, type Outgoing } from './wire.js';

export interface WebhookRelayDeps {
  selfId: string;
  ownerOf(key: string): string;
  brokerUp(): boolean;
  send(message: Outgoing, to: string): void;
  /** events this node forms batches of after all (the owner turned out to be itself) */
  here(appId: string, events: readonly WebhookEvent[]): void;
}

export const webhookKey = (appId: string): string => JSON.stringify(['webhooks', appId]);

export class HorizontalWebhookRelay implements WebhookRelay {
  /** owner -> app -> events of this turn */
  private gathered = new Map<string, Map<string, WebhookEvent[]>>();
  private scheduled = false;

  constructor(private readonly d: WebhookRelayDeps) {}

  batchesHere(appId: string): boolean {
    return !this.d.brokerUp() || this.d.ownerOf(webhookKey(appId)) === this.d.selfId;
  }

  forward(appId: string, events: readonly WebhookEvent[]): void {
    const owner = this.d.ownerOf(webhookKey(appId));
    let apps = this.gathered.get(owner);
    if (!apps) this.gathered.set(owner, (apps = new Map<string, WebhookEvent[]>()));
    const list = apps.get(appId);
    if (list) list.push(...events);
    else apps.set(appId, [...events]);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.send());
  }

  /** Sends what this turn gathered (also when the node stops). */
  send(): void {
    this.scheduled = false;
    const gathered = this.gathered;
    this.gathered = new Map();
    for (const [owner, apps] of gathered) {
      for (const [appId, events] of apps) {
        if (owner === this.d.selfId) {
          this.d.here(appId, events);
          continue;
        }
        for (let i = 0; i < events.length; i += RELAY_BATCH_MAX) {
          this.d.send({ t: 'wh', a: appId, ev: events.slice(i, i + RELAY_BATCH_MAX) }, owner);
        }
      }
    }
  }
}
