// Joining and leaving channels. Bookkeeping is synchronous (limits and counts see
// the connection at once); the first local subscriber of a channel waits until the
// cluster confirms cross-node delivery before the connection is told it succeeded,
// so it receives every event published after it saw success.
import type { App } from '../apps/app.js';
import { bothWaits, type Cluster } from '../cluster/ports.js';
import type { Connection, Subscription } from '../conn/connection.js';
import type { LocalRegistry } from '../conn/registry.js';
import type { Metrics } from '../metrics/metrics.js';
import { channelInfo } from '../protocol/channels.js';
import {
  cacheMissFrame,
  memberAddedFrame,
  memberRemovedFrame,
  presenceSucceededData,
  subscriptionSucceededFrame,
} from '../protocol/frames.js';
import { recoveryFailedFrame } from '../protocol/recovery-frames.js';
import type { Logger } from 'pino';
import type { SubscriptionCounts } from './counts.js';
import { wantsWebhook, type DomainEvents } from './events.js';
import type { Fanout } from './fanout.js';
import { historyOf } from './history-policy.js';
import { Resume } from './resume.js';

/**
 * The subscription of a ready connection on a channel without presence or a resume: one
 * (frozen) object for all of them, 40 bytes less per connection and channel. Nothing writes
 * to a ready plain subscription; a write would throw rather than reach every connection.
 */
const READY_PLAIN: Subscription = Object.freeze({ userId: null, ready: true });

export interface PresenceJoin {
  userId: string;
  info: unknown;
}

export class Subscriptions {
  constructor(
    private readonly registry: LocalRegistry,
    private readonly cluster: Cluster,
    private readonly fanout: Fanout,
    private readonly counts: SubscriptionCounts,
    private readonly events: DomainEvents,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /**
   * Subscribes a connection to a channel it does not hold yet, then tells it (succeeded,
   * the cache or a cache miss) and the others (member_added, subscription_count).
   * False when the connection closed or unsubscribed meanwhile. Synchronous unless something
   * waits (the cluster confirming the channel's topic, a cache read): a connect that joins a
   * channel makes no promise on one node.
   */
  subscribe(conn: Connection, channel: string, presence: PresenceJoin | null): boolean | Promise<boolean> {
    const sub: Subscription = { userId: presence?.userId ?? null, ready: false };
    const app = conn.app;
    let newMember: boolean;
    let waiting: Promise<void> | undefined;
    conn.channels.set(channel, sub);
    try {
      const first = this.registry.addSubscriber(app.id, channel);
      newMember = presence ? this.cluster.presence.join(app.id, channel, presence.userId, presence.info) : false;
      this.metrics.app(app.id).subscriptions.inc();
      // A later subscriber waits for a first one's pending watch: nobody is told it succeeded (nor resumes) before it holds.
      waiting = first ? this.cluster.channels.watch(app.id, channel) : this.cluster.channels.ready(app.id, channel);
      // A member's join is routed before it is told: its other tab leaving another node next must reach the owner after it.
      if (presence) waiting = bothWaits(waiting, this.cluster.presence.routed());
    } catch (err) {
      this.undoJoin(conn, channel, sub);
      throw err;
    }
    if (!waiting) return this.joined(conn, channel, sub, presence, newMember);
    return waiting.then(
      () => this.joined(conn, channel, sub, presence, newMember),
      (err: unknown) => {
        this.undoJoin(conn, channel, sub);
        throw err;
      },
    );
  }

  /** Never leave a half-joined connection behind (counted, but never told it succeeded). */
  private undoJoin(conn: Connection, channel: string, sub: Subscription): void {
    if (conn.channels.get(channel) === sub) this.unsubscribe(conn, channel);
  }

  /** The channel's events reach this node: the connection joins the fan-out and is told. */
  private joined(
    conn: Connection,
    channel: string,
    sub: Subscription,
    presence: PresenceJoin | null,
    newMember: boolean,
  ): boolean | Promise<boolean> {
    if (conn.closed || conn.channels.get(channel) !== sub) return false;
    const app = conn.app;
    let resume: Resume | null;
    try {
      sub.ready = true;
      resume = this.resumeFor(conn, sub, channel);
      this.fanout.join(conn, channel, resume);
      const data = presence ? presenceSucceededData(this.cluster.presence.members(app.id, channel)) : undefined;
      conn.send(subscriptionSucceededFrame(channel, data));
      if (newMember && presence) this.fanout.relay(conn, channel, memberAddedFrame(channel, presence.userId, presence.info));
      // Last in the try: undoJoin recognises its own subscription by identity.
      if (!resume && sub.userId === null && sub.numbered === undefined) conn.channels.set(channel, READY_PLAIN);
    } catch (err) {
      this.undoJoin(conn, channel, sub);
      throw err;
    }
    if (resume) void resume.run();
    if (channelInfo(channel).cache) {
      return this.replayCache(conn, app, channel).then(() => this.countChanged(app, channel));
    }
    return this.countChanged(app, channel);
  }

  private countChanged(app: App, channel: string): true {
    if (this.counts.wanted(app)) this.counts.changed(app, channel, this.registry.subscriberCount(app.id, channel));
    return true;
  }

  /** An opted-in connection on a history channel resumes (from its position, if it gave one). */
  private resumeFor(conn: Connection, sub: Subscription, channel: string): Resume | null {
    const recovery = conn.recovery;
    if (!recovery) return null;
    const position = recovery.positions.get(channel);
    recovery.positions.delete(channel);
    const policy = historyOf(conn.app, channel);
    if (!policy) {
      if (position) conn.send(recoveryFailedFrame(channel, 'no_history', position.serial, position.epoch));
      return null;
    }
    return new Resume(conn, sub, channel, policy, position, { fanout: this.fanout, history: this.cluster.history, log: this.log });
  }

  private async replayCache(conn: Connection, app: App, channel: string): Promise<void> {
    const cached = await this.cluster.cache.get(app.id, channel);
    if (cached) {
      conn.send(cached.frame);
      return;
    }
    conn.send(cacheMissFrame(channel));
    if (wantsWebhook(app, 'cache_miss')) this.events.emit(app, { name: 'cache_miss', channel });
  }

  /** Removes a connection from a channel; a no-op when it does not hold it. */
  unsubscribe(conn: Connection, channel: string): void {
    const sub = conn.channels.get(channel);
    if (!sub) return;
    const app = conn.app;
    conn.channels.delete(channel);
    if (sub.ready) this.fanout.leave(conn, app.id, channel, sub);
    const last = this.registry.removeSubscriber(app.id, channel);
    this.metrics.app(app.id).unsubscriptions.inc();
    if (sub.userId !== null && this.cluster.presence.leave(app.id, channel, sub.userId)) {
      this.fanout.toAll(app.id, channel, memberRemovedFrame(channel, sub.userId));
    }
    if (last) this.cluster.channels.unwatch(app.id, channel);
    if (sub.ready) this.countChanged(app, channel);
  }

  /** Everything a closing connection held. */
  unsubscribeAll(conn: Connection): void {
    for (const channel of [...conn.channels.keys()]) this.unsubscribe(conn, channel);
  }
}
