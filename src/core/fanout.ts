// Delivery: a frame is encoded once, fanned out to this node's subscribers by the
// engine's topics (uWebSockets.js: a C++ loop), and handed once to the cluster for
// the other nodes. Counted per app for metrics.
import type { App } from '../apps/app.js';
import type { ChannelCache, ChannelBus } from '../cluster/ports.js';
import type { Connection } from '../conn/connection.js';
import type { LocalRegistry } from '../conn/registry.js';
import type { Metrics } from '../metrics/metrics.js';
import { channelInfo } from '../protocol/channels.js';
import { encodeChannelEvent } from '../protocol/frames.js';
import { CACHE_TTL_SECONDS } from '../protocol/limits.js';

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

export class Fanout {
  constructor(
    private readonly topics: TopicFanout,
    private readonly registry: LocalRegistry,
    private readonly bus: ChannelBus,
    private readonly cache: () => ChannelCache,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Publishes an app event to every subscriber in the cluster; data is already a string.
   * For a cache channel whose cache is on a broker, a promise that settles once it is stored.
   */
  publish(app: App, channel: string, event: string, data: string, exceptSocketId?: string): Promise<void> | undefined {
    const frame = encodeChannelEvent(event, channel, data);
    this.deliver(app.id, channel, frame, exceptSocketId);
    this.bus.broadcast(app.id, channel, frame, exceptSocketId);
    this.metrics.app(app.id).publishes.inc();
    return channelInfo(channel).cache ? this.cache().set(app.id, channel, frame, CACHE_TTL_SECONDS) : undefined;
  }

  /** A frame from one connection to the channel's other subscribers in the cluster (client events, member_added). */
  relay(conn: Connection, channel: string, frame: string): void {
    const appId = conn.app.id;
    const topic = topicOf(appId, channel);
    const delivered = this.topics.subscribers(topic) - (conn.channels.get(channel)?.ready ? 1 : 0);
    if (delivered > 0) conn.publishToOthers(topic, frame);
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
    let delivered = this.topics.subscribers(topic);
    if (delivered === 0) return;
    const except = exceptSocketId === undefined ? undefined : this.registry.get(exceptSocketId);
    if (except && !except.closed && except.app.id === appId && except.channels.get(channel)?.ready) {
      except.publishToOthers(topic, frame);
      delivered -= 1;
    } else {
      this.topics.publish(topic, frame);
    }
    this.count(appId, delivered, frame.length);
  }

  private count(appId: string, sockets: number, bytes: number): void {
    if (sockets <= 0) return;
    const m = this.metrics.app(appId);
    m.messagesOut.inc(sockets);
    m.bytesOut.inc(sockets * bytes);
  }
}
