// pusher_internal:subscription_count events (opt-in per app) and the
// subscription_count webhook: sent after a channel's subscriptions change, at most
// every 5 s while it has more than 100 subscribers.
import type { App } from '../apps/app.js';
import type { ClusterQueries } from '../cluster/ports.js';
import { channelInfo } from '../protocol/channels.js';
import { subscriptionCountFrame } from '../protocol/frames.js';
import { COUNT_THROTTLE_ABOVE, COUNT_THROTTLE_MS } from '../protocol/limits.js';
import { wantsWebhook, type DomainEvents } from './events.js';
import type { Fanout } from './fanout.js';

export class SubscriptionCounts {
  /** per app and channel: a throttled send waiting, or when the last one went */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly lastSent = new Map<string, number>();

  constructor(
    private readonly queries: ClusterQueries,
    private readonly fanout: Fanout,
    private readonly events: DomainEvents,
    private readonly fail: (err: Error) => void,
  ) {}

  /** Whether the app asks for counts at all (most do not: the caller then skips counting). */
  wanted(app: App): boolean {
    return app.enable_subscription_count || wantsWebhook(app, 'subscription_count');
  }

  changed(app: App, channel: string, localCount: number): void {
    const wantsEvent = app.enable_subscription_count;
    const wantsHook = wantsWebhook(app, 'subscription_count');
    if (!wantsEvent && !wantsHook) return;
    const kind = channelInfo(channel).kind;
    if (kind === 'presence' || kind === 'user') return;
    const key = JSON.stringify([app.id, channel]);
    if (this.timers.has(key)) return;
    const since = Date.now() - (this.lastSent.get(key) ?? 0);
    if (localCount > COUNT_THROTTLE_ABOVE && since < COUNT_THROTTLE_MS) {
      const timer = setTimeout(() => {
        this.timers.delete(key);
        this.changed(app, channel, COUNT_THROTTLE_ABOVE + 1);
      }, COUNT_THROTTLE_MS - since);
      timer.unref();
      this.timers.set(key, timer);
      return;
    }
    this.lastSent.set(key, Date.now());
    this.send(app, channel, key, wantsEvent, wantsHook).catch(this.fail);
  }

  private async send(app: App, channel: string, key: string, event: boolean, hook: boolean): Promise<void> {
    const { subscriptionCount } = await this.queries.channelCounts(app.id, channel);
    if (subscriptionCount === 0) this.lastSent.delete(key);
    if (event && subscriptionCount > 0) this.fanout.toAll(app.id, channel, subscriptionCountFrame(channel, subscriptionCount));
    if (hook) this.events.emit(app, { name: 'subscription_count', channel, subscription_count: subscriptionCount });
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
