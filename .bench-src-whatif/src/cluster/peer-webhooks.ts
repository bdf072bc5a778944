// Webhooks for what a lost peer leaves behind, sent by exactly one survivor:
// the node that wins an atomic claim on the dead peer's id (Redis SET NX,
// NATS KV create). Every survivor has already told its own clients
// (member_removed frames); only the backend's webhooks need a single sender.
// If the "dead" peer comes back (a false alarm), the same winner reports the
// users who returned, and channels it refills are re-occupied through the
// broker's occupancy sets (exactly once there too).
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AppStore } from '../apps/store.js';
import type { MemberRef } from '../channels/presence-book.js';
import { wantsWebhook, type WebhookSink } from '../webhooks/events.js';
import type { HorizontalAdapter, PeerEvents } from './horizontal-adapter.js';
import type { LossReason, Peer } from './membership.js';

/** How long a claim on a dead peer holds (node ids are unique per boot, so it never needs reuse). */
const CLAIM_TTL_MS = 10 * 60 * 1000;

export class PeerWebhooks implements PeerEvents {
  /** dead peers whose cleanup this node won */
  private readonly won = new Set<string>();

  constructor(
    private readonly adapter: HorizontalAdapter,
    private readonly apps: AppStore,
    private readonly webhooks: WebhookSink,
    private readonly log: Logger,
    /** requeues the webhooks the lost node was delivering (Redis queue) */
    private readonly recoverQueue: (nodeId: string) => Promise<void> = async () => undefined,
  ) {}

  lost(peer: Peer, reason: LossReason, removed: MemberRef[], channels: string[]): void {
    // A graceful leaver closed its own sockets first and sent its own webhooks.
    if (reason === 'left') return;
    this.cleanUp(peer, removed, channels).catch((err: Error) =>
      this.log.error({ peer: peer.nodeId, err: err.message }, 'cleanup after lost peer failed'),
    );
  }

  private async cleanUp(peer: Peer, removed: MemberRef[], channels: string[]): Promise<void> {
    if (!(await this.adapter.claim(`dead:${peer.nodeId}`, CLAIM_TTL_MS))) return;
    this.won.add(peer.nodeId);
    await this.recoverQueue(peer.nodeId);
    this.log.info({ peer: peer.nodeId, members: removed.length, channels: channels.length }, 'cleaning up after lost peer');
    for (const ref of removed) {
      const app = await this.app(ref.appId);
      if (app && wantsWebhook(app, 'member_removed')) {
        this.webhooks.emit(app, { name: 'member_removed', channel: ref.channel, user_id: ref.userId });
      }
    }
    for (const entry of channels) {
      const [appId, channel] = entry.split('\n', 2);
      if (!(await this.adapter.removeOccupant(appId, channel, peer.nodeId))) continue;
      const app = await this.app(appId);
      if (app && wantsWebhook(app, 'channel_vacated')) this.webhooks.emit(app, { name: 'channel_vacated', channel });
    }
  }

  revived(peer: Peer, added: Array<MemberRef & { info: unknown }>, channels: string[]): void {
    this.restore(peer, added, channels).catch((err: Error) =>
      this.log.error({ peer: peer.nodeId, err: err.message }, 'restoring a returned peer failed'),
    );
  }

  private async restore(peer: Peer, added: Array<MemberRef & { info: unknown }>, channels: string[]): Promise<void> {
    this.log.warn({ peer: peer.nodeId, members: added.length }, 'peer declared dead is back');
    if (this.won.delete(peer.nodeId)) {
      for (const ref of added) {
        const app = await this.app(ref.appId);
        if (app && wantsWebhook(app, 'member_added')) {
          this.webhooks.emit(app, { name: 'member_added', channel: ref.channel, user_id: ref.userId });
        }
      }
    }
    for (const entry of channels) {
      const [appId, channel] = entry.split('\n', 2);
      if (!(await this.adapter.restoreOccupant(appId, channel, peer.nodeId))) continue;
      const app = await this.app(appId);
      if (app && wantsWebhook(app, 'channel_occupied')) this.webhooks.emit(app, { name: 'channel_occupied', channel });
    }
  }

  private async app(appId: string): Promise<App | null> {
    try {
      return await this.apps.findById(appId);
    } catch {
      return null;
    }
  }
}
