// Delivery: a frame is encoded once, fanned out to this node's subscribers by the
// engine's topics (uWebSockets.js: a C++ loop), and handed once to the cluster for
// the other nodes. Counted per app for metrics.
//
// History channels (core/history-policy.ts) go through the cluster's history instead:
// it numbers and stores the event and delivers it back to every node, this one
// included, in serial order (deliverNumbered). Connections that opted in to recovery
// get those events wrapped with their serial, on a second topic of the channel; while
// one of them resumes, it gets the channel's frames from its Resumer instead.
import type { App } from '../apps/app.js';
import type { ChannelBus, ChannelCache, ChannelHistory, NumberedEvent } from '../cluster/ports.js';
import type { Connection, Subscription } from '../conn/connection.js';
import type { LocalRegistry } from '../conn/registry.js';
import type { Metrics } from '../metrics/metrics.js';
import { channelInfo } from '../protocol/channels.js';
import { encodeChannelEvent } from '../protocol/frames.js';
import { CACHE_TTL_SECONDS } from '../protocol/limits.js';
import { numberedEventFrame } from '../protocol/recovery-frames.js';
import { historyOf, type ChannelHistoryPolicy } from './history-policy.js';

/** The local engine's topics (the uWS app implements it). */
export interface TopicFanout {
  publish(topic: string, frame: string): void;
  subscribers(topic: string): number;
}

/**
 * The local topic of a channel. App ids never hold a newline (the config refuses
 * them) and channel names never do (the protocol's name rules): the pair is unique.
 */
export const topicOf = (appId: string, channel: string): string => appId + '\n' + channel;

/** The channel's topic for opted-in connections (numbered events wrapped); no plain topic ends so. */
const numberedTopicOf = (topic: string): string => topic + '\n#';

/** A connection catching up on a history channel: it gets the channel's frames from here. */
export interface Resumer {
  readonly conn: Connection;
  numbered(event: NumberedEvent, wrapped: string): void;
  plain(frame: string, exceptSocketId: string | undefined): void;
}

interface NumberedChannel {
  /** connections on the numbered topic */
  joined: number;
  resuming: Set<Resumer>;
}

export class Fanout {
  /** per local topic, only for history channels with opted-in connections here */
  private readonly numbered = new Map<string, NumberedChannel>();

  constructor(
    private readonly topics: TopicFanout,
    private readonly registry: LocalRegistry,
    private readonly bus: ChannelBus,
    private readonly cache: () => ChannelCache,
    private readonly history: () => ChannelHistory,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Publishes an app event to every subscriber in the cluster; data is already a string.
   * A promise when the publish waits for the broker: a history channel (rejects with
   * HistoryUnavailable when the event could not be stored), or a cache channel whose cache
   * is on a broker (settles once stored).
   */
  publish(app: App, channel: string, event: string, data: string, exceptSocketId?: string): Promise<void> | undefined {
    const frame = encodeChannelEvent(event, channel, data);
    this.metrics.app(app.id).publishes.inc();
    const policy = historyOf(app, channel);
    if (policy) return this.appendThenCache(app.id, channel, frame, exceptSocketId, policy);
    this.deliver(app.id, channel, frame, exceptSocketId);
    this.bus.broadcast(app.id, channel, frame, exceptSocketId);
    return channelInfo(channel).cache ? this.cache().set(app.id, channel, frame, CACHE_TTL_SECONDS) : undefined;
  }

  private async appendThenCache(appId: string, channel: string, frame: string, except: string | undefined, policy: ChannelHistoryPolicy) {
    await this.history().append(appId, channel, frame, except, policy);
    if (channelInfo(channel).cache) await this.cache().set(appId, channel, frame, CACHE_TTL_SECONDS);
  }

  /** A client event to a history channel: numbered and stored, then delivered like a publish. */
  async relayNumbered(conn: Connection, channel: string, frame: string, policy: ChannelHistoryPolicy): Promise<void> {
    await this.history().append(conn.app.id, channel, frame, conn.socketId, policy);
  }

  /** A frame from one connection to the channel's other subscribers in the cluster (client events, member_added). */
  relay(conn: Connection, channel: string, frame: string): void {
    const appId = conn.app.id;
    const topic = topicOf(appId, channel);
    const sub = conn.channels.get(channel);
    const self = sub?.ready ? 1 : 0;
    let delivered = this.topics.subscribers(topic) - (sub?.numbered ? 0 : self);
    if (delivered > 0) conn.publishToOthers(topic, frame);
    const numbered = this.numbered.size === 0 ? undefined : this.numbered.get(topic);
    if (numbered) {
      if (numbered.joined > 0) {
        const others = this.topics.subscribers(numberedTopicOf(topic)) - (sub?.numbered ? self : 0);
        if (others > 0) conn.publishToOthers(numberedTopicOf(topic), frame);
        delivered += Math.max(0, others);
      }
      for (const r of numbered.resuming) r.plain(frame, conn.socketId);
    }
    this.count(appId, delivered, frame.length);
    this.bus.broadcast(appId, channel, frame, conn.socketId);
  }

  /** A frame to every subscriber of a channel in the cluster (member_removed, subscription_count). */
  toAll(appId: string, channel: string, frame: string): void {
    this.deliver(appId, channel, frame, undefined);
    this.bus.broadcast(appId, channel, frame);
  }

  /** Local delivery: for this node's publishes and for frames from peers. */
  deliver(appId: string, channel: string, frame: string, exceptSocketId: string | undefined): void {
    const topic = topicOf(appId, channel);
    this.deliverOn(appId, channel, topic, frame, exceptSocketId, false);
    if (this.numbered.size === 0) return;
    const numbered = this.numbered.get(topic);
    if (!numbered) return;
    if (numbered.joined > 0) this.deliverOn(appId, channel, numberedTopicOf(topic), frame, exceptSocketId, true);
    for (const r of numbered.resuming) r.plain(frame, exceptSocketId);
  }

  /** A numbered event of a history channel, in serial order: plain to plain subscribers, wrapped to opted-in ones. */
  deliverNumbered(appId: string, channel: string, event: NumberedEvent): void {
    const topic = topicOf(appId, channel);
    this.deliverOn(appId, channel, topic, event.frame, event.except, false);
    const numbered = this.numbered.size === 0 ? undefined : this.numbered.get(topic);
    if (!numbered) return;
    const wrapped = numberedEventFrame(channel, event);
    if (numbered.joined > 0) this.deliverOn(appId, channel, numberedTopicOf(topic), wrapped, event.except, true);
    for (const r of numbered.resuming) r.numbered(event, wrapped);
  }

  private deliverOn(
    appId: string,
    channel: string,
    topic: string,
    frame: string,
    exceptSocketId: string | undefined,
    numbered: boolean,
  ): void {
    let delivered = this.topics.subscribers(topic);
    if (delivered === 0) return;
    const except = exceptSocketId === undefined ? undefined : this.registry.get(exceptSocketId);
    const sub = except && !except.closed && except.app.id === appId ? except.channels.get(channel) : undefined;
    if (except && sub?.ready && (sub.numbered === true) === numbered) {
      except.publishToOthers(topic, frame);
      delivered -= 1;
    } else {
      this.topics.publish(topic, frame);
    }
    this.count(appId, delivered, frame.length);
  }

  // opted-in connections on history channels

  private numberedChannel(topic: string): NumberedChannel {
    let n = this.numbered.get(topic);
    if (!n) {
      n = { joined: 0, resuming: new Set() };
      this.numbered.set(topic, n);
    }
    return n;
  }

  /** The resumer gets the channel's frames (held or filtered) until it ends. */
  private startResume(r: Resumer, appId: string, channel: string): void {
    this.numberedChannel(topicOf(appId, channel)).resuming.add(r);
  }

  /** The resumer stops; with `join`, its connection moves to the numbered topic (it is caught up). */
  endResume(r: Resumer, appId: string, channel: string, join: boolean): void {
    const topic = topicOf(appId, channel);
    const n = this.numbered.get(topic);
    if (!n || !n.resuming.delete(r)) return;
    const sub = r.conn.channels.get(channel);
    if (join && sub && !r.conn.closed) {
      r.conn.subscribeTopic(numberedTopicOf(topic));
      sub.numbered = true;
      n.joined += 1;
    }
    if (n.joined === 0 && n.resuming.size === 0) this.numbered.delete(topic);
  }

  /** Subscribes the connection's delivery of the channel: the plain topic, or (opted in, history) a resume. */
  join(conn: Connection, channel: string, resumer: Resumer | null): void {
    if (resumer) this.startResume(resumer, conn.app.id, channel);
    else conn.subscribeTopic(topicOf(conn.app.id, channel));
  }

  /** Ends the connection's delivery of a channel it held (ready), whichever way it came. */
  leave(conn: Connection, appId: string, channel: string, sub: Subscription): void {
    const topic = topicOf(appId, channel);
    const n = this.numbered.size === 0 ? undefined : this.numbered.get(topic);
    if (n) {
      for (const r of n.resuming) if (r.conn === conn) n.resuming.delete(r);
      if (sub.numbered) {
        n.joined -= 1;
        if (!conn.closed) conn.unsubscribeTopic(numberedTopicOf(topic));
      }
      if (n.joined <= 0 && n.resuming.size === 0) this.numbered.delete(topic);
    }
    if (!sub.numbered && !conn.closed) conn.unsubscribeTopic(topic);
  }

  private count(appId: string, sockets: number, bytes: number): void {
    if (sockets <= 0) return;
    const m = this.metrics.app(appId);
    m.messagesOut.inc(sockets);
    m.bytesOut.inc(sockets * bytes);
  }
}
