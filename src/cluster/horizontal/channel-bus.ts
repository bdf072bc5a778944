// Channel events between nodes, routed by interest: one broker topic per (app,
// channel), held while this node has local subscribers. Broker work is coalesced
// and bounded: subscriptions asked for in one tick go to the broker as one batch,
// and a topic whose last subscriber left lingers a while before it is unsubscribed,
// so subscribe/unsubscribe churn on a channel costs the broker nothing.
import type { Logger } from 'pino';
import { SUBSCRIBE_WAIT_MS, TOPIC_LINGER_MS } from '../../config/limits.js';
import type { Transport } from '../../transports/transport.js';
import { bothWaits, type ChannelBus, type ClusterNode } from '../ports.js';
import { decodeChannelPayload, decodeNumberedPayload, encodeChannelPayload, type NumberedPayload } from './wire.js';

interface Held {
  readonly topic: string;
  readonly appId: string;
  readonly channel: string;
  /** resolves once the broker confirmed the subscription (or the wait bound passed) */
  ready: Promise<void>;
  /** set once `ready` resolved */
  confirmed: boolean;
  /** set while the topic lingers without local subscribers */
  lingerUntil: number;
  /** this node's new hold on its way through the broker (a fence), until it is routed */
  announcing: Promise<void> | null;
}

export interface ChannelBusObserver {
  /** a payload from the bus (a node without interest in a channel sees none of its traffic) */
  received(bytes: number): void;
  /** a channel payload this version cannot read */
  invalid(): void;
}

export class HorizontalChannelBus implements ChannelBus {
  private node: ClusterNode | null = null;
  /** topic -> what it carries, for every topic this node subscribes (or lingers on) */
  private readonly byTopic = new Map<string, Held>();
  private readonly byChannel = new Map<string, Held>();
  /** lingering topics in expiry order (insertion order: the linger time is constant) */
  private readonly lingering = new Map<string, Held>();
  private lingerTimer: NodeJS.Timeout | null = null;
  private toSubscribe: Array<{ held: Held; resolve: () => void }> = [];
  private toUnsubscribe = new Set<string>();
  private flushScheduled = false;

  constructor(
    private readonly transport: Transport,
    private readonly prefix: string,
    private readonly nodeId: string,
    /**
     * The interest the rest of the cluster sees (occupancy), told on every local 0 <-> 1 change;
     * for a new hold, what to wait for until the broker has routed it (undefined: nothing).
     */
    private readonly interest: (appId: string, channel: string, held: boolean) => Promise<void> | undefined,
    private readonly observer: ChannelBusObserver,
    private readonly log: Logger,
    /** every numbered payload seen (the history keeps the highest serial, to notice lost writes) */
    private readonly numbered: (topic: string, payload: NumberedPayload) => void = () => undefined,
  ) {}

  attach(node: ClusterNode): void {
    this.node = node;
  }

  /** The broker topic of a channel (a numbered append publishes on it too). */
  topicOf(appId: string, channel: string): string {
    return this.transport.topic(this.prefix, 'ch', appId, channel);
  }

  broadcast(appId: string, channel: string, frame: string, exceptSocketId?: string): void {
    const topic = this.byChannel.get(JSON.stringify([appId, channel]))?.topic ?? this.topicOf(appId, channel);
    this.transport.publish(topic, encodeChannelPayload(this.nodeId, exceptSocketId, frame));
  }

  watch(appId: string, channel: string): Promise<void> | undefined {
    const announced = this.interest(appId, channel, true);
    const key = JSON.stringify([appId, channel]);
    let held = this.byChannel.get(key);
    if (held) {
      if (held.lingerUntil !== 0) {
        held.lingerUntil = 0;
        this.lingering.delete(key);
        this.toUnsubscribe.delete(held.topic);
      }
    } else {
      const topic = this.topicOf(appId, channel);
      const entry: Held = { topic, appId, channel, ready: Promise.resolve(), confirmed: false, lingerUntil: 0, announcing: null };
      entry.ready = new Promise<void>((resolve) => this.toSubscribe.push({ held: entry, resolve })).then(() => {
        entry.confirmed = true;
      });
      this.byChannel.set(key, (held = entry));
      this.byTopic.set(topic, entry);
      this.toUnsubscribe.delete(topic);
      this.scheduleFlush();
    }
    if (announced) {
      const entry = held;
      const routed = announced.then(() => {
        if (entry.announcing === routed) entry.announcing = null;
      });
      entry.announcing = routed;
    }
    return this.pendingOf(held);
  }

  ready(appId: string, channel: string): Promise<void> | undefined {
    const held = this.byChannel.get(JSON.stringify([appId, channel]));
    return held ? this.pendingOf(held) : undefined;
  }

  /** What a subscriber waits for: the topic's confirmation and this node's hold being routed. */
  private pendingOf(held: Held): Promise<void> | undefined {
    return bothWaits(held.confirmed ? undefined : held.ready, held.announcing ?? undefined);
  }

  unwatch(appId: string, channel: string): void {
    void this.interest(appId, channel, false); // a removal: nothing to wait for
    const key = JSON.stringify([appId, channel]);
    const held = this.byChannel.get(key);
    if (!held || held.lingerUntil !== 0) return;
    held.lingerUntil = Date.now() + TOPIC_LINGER_MS;
    this.lingering.set(key, held);
    this.armLinger();
  }

  private armLinger(): void {
    if (this.lingerTimer || this.lingering.size === 0) return;
    const first = this.lingering.values().next().value!;
    this.lingerTimer = setTimeout(() => this.expireLingering(), Math.max(1, first.lingerUntil - Date.now()));
    this.lingerTimer.unref();
  }

  private expireLingering(): void {
    this.lingerTimer = null;
    const now = Date.now();
    for (const [key, held] of this.lingering) {
      if (held.lingerUntil > now) break;
      this.lingering.delete(key);
      this.byChannel.delete(key);
      this.byTopic.delete(held.topic);
      this.toUnsubscribe.add(held.topic);
    }
    this.scheduleFlush();
    this.armLinger();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Sends the tick's subscriptions and unsubscriptions to the broker, one batch each. */
  private flush(): void {
    this.flushScheduled = false;
    const subscribing = this.toSubscribe;
    this.toSubscribe = [];
    const leaving = [...this.toUnsubscribe];
    this.toUnsubscribe.clear();
    if (leaving.length) {
      this.transport
        .unsubscribe(leaving)
        .catch((err: Error) => this.log.debug({ err: err.message, topics: leaving.length }, 'unsubscribe failed'));
    }
    if (subscribing.length === 0) return;
    const done = () => subscribing.forEach((s) => s.resolve());
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), SUBSCRIBE_WAIT_MS)));
    void Promise.race([this.transport.subscribe(subscribing.map((s) => s.held.topic)).then(() => 'ok' as const), bound])
      .catch((err: Error) => err)
      .then((result) => {
        clearTimeout(timer);
        if (result !== 'ok') {
          // Local delivery still works; the broker subscription is restored when it comes back.
          const reason = result instanceof Error ? result.message : result;
          this.log.warn({ topics: subscribing.length, reason }, 'channel subscription not confirmed by the broker');
        }
        done();
      });
  }

  /** A payload on a channel topic; false when the topic is not one of ours. */
  receive(topic: string, payload: string): boolean {
    const held = this.byTopic.get(topic);
    if (!held) return false;
    this.observer.received(payload.length);
    if (payload.charCodeAt(0) === 110 /* n */) {
      const numbered = decodeNumberedPayload(payload);
      if (!numbered) this.observer.invalid();
      else {
        this.numbered(held.topic, numbered);
        this.node?.deliverNumbered(held.appId, held.channel, {
          serial: numbered.serial,
          epoch: numbered.epoch,
          publishedAtMs: numbered.timeMs,
          frame: numbered.frame,
          except: numbered.except,
        });
      }
      return true;
    }
    const decoded = decodeChannelPayload(payload);
    if (!decoded) {
      this.observer.invalid();
      return true;
    }
    if (decoded.origin !== this.nodeId) this.node?.deliver(held.appId, held.channel, decoded.frame, decoded.except);
    return true;
  }

  close(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
  }
}
