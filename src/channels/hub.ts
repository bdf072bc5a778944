// Channel semantics shared by the WebSocket and HTTP sides: publish, join and
// leave, presence edges, cache channels, subscription counts and the webhooks
// those changes trigger. Local fan-out is uWS topics (C++); remote fan-out and
// cluster-wide views go through the adapter.
import type { TemplatedApp } from 'uWebSockets.js';
import type { App } from '../apps/app.js';
import type { Adapter, ClusterNode } from '../cluster/adapter.js';
import type { Metrics } from '../metrics/metrics.js';
import { channelInfo } from '../protocol/channels.js';
import { encodeChannelEvent, errorFrame } from '../protocol/frames.js';
import { CloseCode } from '../protocol/codes.js';
import { wantsWebhook, type WebhookSink } from '../webhooks/events.js';
import { closeWith, sendFrame, type SocketData, type Subscription } from '../ws/socket.js';
import type { LocalRegistry } from './registry.js';

/** Pusher keeps a cache channel's last event for up to 30 minutes. */
export const CACHE_TTL_SECONDS = 30 * 60;
/** Above this many subscribers, subscription_count events are sent at most every 5 s. */
const COUNT_THROTTLE_ABOVE = 100;
const COUNT_THROTTLE_MS = 5000;
/** How long a first subscription waits for the cluster's occupancy set before going on without it. */
const EDGE_WAIT_MS = 3000;

export const topicOf = (appId: string, channel: string): string => appId + '\n' + channel;

export class ChannelHub implements ClusterNode {
  private readonly countTimers = new Map<string, NodeJS.Timeout>();
  private readonly lastCountSent = new Map<string, number>();
  /** occupancy checks in flight, so a drain can wait for their webhooks */
  private readonly pendingEdges = new Set<Promise<unknown>>();

  constructor(
    private readonly uws: TemplatedApp,
    readonly registry: LocalRegistry,
    readonly adapter: Adapter,
    private readonly metrics: Metrics,
    private readonly webhooks: WebhookSink,
  ) {}

  /** Publishes an app event to every subscriber in the cluster; data is already a string. */
  publish(app: App, channel: string, event: string, data: string, exceptSocketId?: string): void {
    const frame = encodeChannelEvent(event, channel, data);
    this.deliver(app.id, channel, frame, exceptSocketId);
    this.adapter.broadcast(app.id, channel, frame, exceptSocketId);
    if (channelInfo(channel).cache) this.adapter.cacheSet(app.id, channel, frame, CACHE_TTL_SECONDS);
    this.metrics.app(app.id).publishes.inc();
  }

  /** Relays a frame from one socket to the channel's other subscribers in the cluster. */
  relayFromSocket(sock: SocketData, channel: string, frame: string): void {
    const appId = sock.app!.id;
    const topic = topicOf(appId, channel);
    const delivered = this.uws.numSubscribers(topic) - 1;
    if (delivered > 0) sock.ws!.publish(topic, frame, false, false);
    this.countDelivery(appId, delivered, frame.length);
    this.adapter.broadcast(appId, channel, frame, sock.socketId);
  }

  // ClusterNode: called for local publishes and by the adapter for remote ones.
  deliver(appId: string, channel: string, frame: string, exceptSocketId: string | undefined): void {
    const topic = topicOf(appId, channel);
    let delivered = this.uws.numSubscribers(topic);
    if (delivered === 0) return;
    const except = exceptSocketId === undefined ? undefined : this.registry.sockets.get(exceptSocketId);
    if (except && except.ws && !except.closed && except.app?.id === appId && except.ws.isSubscribed(topic)) {
      except.ws.publish(topic, frame, false, false);
      delivered -= 1;
    } else {
      this.uws.publish(topic, frame, false, false);
    }
    this.countDelivery(appId, delivered, frame.length);
  }

  private countDelivery(appId: string, sockets: number, bytes: number): void {
    if (sockets <= 0) return;
    const m = this.metrics.app(appId);
    m.messagesOut.inc(sockets);
    m.bytesOut.inc(sockets * bytes);
  }

  /**
   * Adds a socket to a channel. Bookkeeping is synchronous; the uWS subscription and
   * the returned promise wait until the adapter confirms cross-node delivery, so
   * subscription_succeeded (sent by the caller) precedes every event the socket gets.
   * Resolves false when the socket closed or unsubscribed meanwhile.
   */
  async join(sock: SocketData, channel: string, presence: { userId: string; info: unknown } | null): Promise<boolean> {
    const sub: Subscription = { userId: presence?.userId ?? null, ready: false };
    sock.channels.set(channel, sub);
    try {
      return await this.joinSteps(sock, channel, presence, sub);
    } catch (err) {
      // Never leave a half-joined socket behind (counted, but never told it succeeded).
      if (sock.channels.get(channel) === sub) this.leave(sock, channel);
      throw err;
    }
  }

  private async joinSteps(
    sock: SocketData,
    channel: string,
    presence: { userId: string; info: unknown } | null,
    sub: Subscription,
  ): Promise<boolean> {
    const app = sock.app!;
    const first = this.registry.addSubscriber(app.id, channel);
    const newMember = presence ? this.adapter.presenceJoin(app.id, channel, presence.userId, presence.info) : false;
    this.metrics.app(app.id).subscriptions.inc();
    if (first) {
      // Counted in the cluster's occupancy set before subscription_succeeded: otherwise a
      // leave on another node right after could find the set empty while this add is
      // still on its way (NATS KV takes several round trips): a phantom vacated/occupied pair.
      await Promise.all([this.adapter.watchChannel(app.id, channel), this.occupiedEdge(app, channel)]);
    }
    if (sock.closed || sock.channels.get(channel) !== sub) return false;
    sub.ready = true;
    sock.ws!.subscribe(topicOf(app.id, channel));
    if (newMember && presence) {
      const frame = encodeChannelEvent(
        'pusher_internal:member_added',
        channel,
        JSON.stringify({ user_id: presence.userId, user_info: presence.info }),
      );
      this.relayFromSocket(sock, channel, frame);
      if (wantsWebhook(app, 'member_added')) {
        this.webhooks.emit(app, { name: 'member_added', channel, user_id: presence.userId });
      }
    }
    return true;
  }

  /** Removes a socket from a channel; a no-op when it was not subscribed. */
  leave(sock: SocketData, channel: string): void {
    const sub = sock.channels.get(channel);
    if (!sub) return;
    const app = sock.app!;
    sock.channels.delete(channel);
    if (sub.ready && !sock.closed) sock.ws!.unsubscribe(topicOf(app.id, channel));
    const last = this.registry.removeSubscriber(app.id, channel);
    this.metrics.app(app.id).unsubscriptions.inc();
    if (sub.userId !== null && this.adapter.presenceLeave(app.id, channel, sub.userId)) {
      this.memberRemoved(app, channel, sub.userId);
    }
    if (last) {
      this.adapter.unwatchChannel(app.id, channel);
      this.vacatedEdge(app, channel);
    }
    if (sub.ready) this.subscriptionCountChanged(app, channel);
  }

  /** Tells everyone in the cluster that a user left a presence channel. */
  private memberRemoved(app: App, channel: string, userId: string): void {
    const frame = encodeChannelEvent('pusher_internal:member_removed', channel, JSON.stringify({ user_id: userId }));
    this.deliver(app.id, channel, frame, undefined);
    this.adapter.broadcast(app.id, channel, frame);
    if (wantsWebhook(app, 'member_removed')) this.webhooks.emit(app, { name: 'member_removed', channel, user_id: userId });
  }

  /**
   * Local 0 -> 1: the adapter decides whether it is the cluster's edge too (exactly once).
   * Resolves when the adapter has answered, or after EDGE_WAIT_MS (a broker outage delays
   * a subscription, it does not block it).
   */
  private occupiedEdge(app: App, channel: string): Promise<unknown> {
    const edge = this.adapter.channelOccupied(app.id, channel).then((isEdge) => {
      if (isEdge && wantsWebhook(app, 'channel_occupied')) this.webhooks.emit(app, { name: 'channel_occupied', channel });
    });
    this.track(edge);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise((r) => (timer = setTimeout(r, EDGE_WAIT_MS)).unref());
    return Promise.race([edge.catch(() => undefined), bound]).finally(() => clearTimeout(timer));
  }

  private vacatedEdge(app: App, channel: string): void {
    this.track(
      this.adapter.channelVacated(app.id, channel).then((edge) => {
        if (edge && wantsWebhook(app, 'channel_vacated')) this.webhooks.emit(app, { name: 'channel_vacated', channel });
      }),
    );
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch(() => undefined).finally(() => this.pendingEdges.delete(tracked));
    this.pendingEdges.add(tracked);
  }

  /** Waits for occupancy checks in flight (drain), at most `deadlineMs`. */
  async settle(deadlineMs: number): Promise<void> {
    if (this.pendingEdges.size === 0) return;
    await Promise.race([Promise.allSettled([...this.pendingEdges]), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
  }

  /** Sends pusher_internal:subscription_count (opt-in per app; not on presence channels), throttled when busy. */
  subscriptionCountChanged(app: App, channel: string): void {
    const kind = channelInfo(channel).kind;
    if (kind === 'presence' || kind === 'user') return;
    const wantsEvent = app.enable_subscription_count;
    const wantsHook = wantsWebhook(app, 'subscription_count');
    if (!wantsEvent && !wantsHook) return;
    const key = topicOf(app.id, channel);
    if (this.countTimers.has(key)) return;
    const count = this.registry.subscriberCount(app.id, channel);
    const since = Date.now() - (this.lastCountSent.get(key) ?? 0);
    if (count > COUNT_THROTTLE_ABOVE && since < COUNT_THROTTLE_MS) {
      const timer = setTimeout(() => {
        this.countTimers.delete(key);
        this.subscriptionCountChanged(app, channel);
      }, COUNT_THROTTLE_MS - since);
      timer.unref();
      this.countTimers.set(key, timer);
      return;
    }
    this.lastCountSent.set(key, Date.now());
    void this.sendSubscriptionCount(app, channel, wantsEvent, wantsHook);
  }

  private async sendSubscriptionCount(app: App, channel: string, event: boolean, hook: boolean): Promise<void> {
    const { subscriptionCount } = await this.adapter.channelCounts(app.id, channel);
    if (subscriptionCount === 0) this.lastCountSent.delete(topicOf(app.id, channel));
    if (event && subscriptionCount > 0) {
      const frame = encodeChannelEvent(
        'pusher_internal:subscription_count',
        channel,
        JSON.stringify({ subscription_count: subscriptionCount }),
      );
      this.deliver(app.id, channel, frame, undefined);
      this.adapter.broadcast(app.id, channel, frame);
    }
    if (hook) this.webhooks.emit(app, { name: 'subscription_count', channel, subscription_count: subscriptionCount });
  }

  // ClusterNode

  terminateUser(appId: string, userId: string): void {
    const sockets = this.registry.peek(appId)?.users.get(userId);
    if (!sockets) return;
    for (const sock of [...sockets]) {
      closeWith(sock, CloseCode.UNAUTHORIZED, errorFrame(CloseCode.UNAUTHORIZED, 'Connection terminated by the app'), 'terminated');
    }
  }

  userPresenceChanged(appId: string, userId: string, online: boolean): void {
    const watchers = this.registry.peek(appId)?.watchers.get(userId);
    if (!watchers || watchers.size === 0) return;
    const frame = watchlistFrame(online ? [userId] : [], online ? [] : [userId]);
    for (const sock of watchers) if (sock.app?.enable_watchlist_events) sendFrame(sock, frame);
  }

  membersLost(refs: Array<{ appId: string; channel: string; userId: string }>): void {
    for (const { appId, channel, userId } of refs) {
      const frame = encodeChannelEvent('pusher_internal:member_removed', channel, JSON.stringify({ user_id: userId }));
      this.deliver(appId, channel, frame, undefined);
    }
  }

  membersFound(refs: Array<{ appId: string; channel: string; userId: string; info: unknown }>): void {
    for (const { appId, channel, userId, info } of refs) {
      const frame = encodeChannelEvent('pusher_internal:member_added', channel, JSON.stringify({ user_id: userId, user_info: info }));
      this.deliver(appId, channel, frame, undefined);
    }
  }

  close(): void {
    for (const t of this.countTimers.values()) clearTimeout(t);
    this.countTimers.clear();
  }
}

/** `pusher_internal:watchlist_events` as pusher-js's watchlist facade reads it. */
export function watchlistFrame(online: string[], offline: string[]): string {
  const events: Array<{ name: string; user_ids: string[] }> = [];
  if (online.length) events.push({ name: 'online', user_ids: online });
  if (offline.length) events.push({ name: 'offline', user_ids: offline });
  return JSON.stringify({ event: 'pusher_internal:watchlist_events', data: JSON.stringify({ events }) });
}
