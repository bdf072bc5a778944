// What the Redis and the Redis Cluster transports share: a publisher and a
// subscriber client, up/down tracking with confirmed resubscription, the bounded
// publish backlog, and the broker-side operations of redis-commands.ts. Subclasses
// choose the clients and the pub/sub flavour (plain or sharded).
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Backlog } from './backlog.js';
import { connectRedis, type Patience, type RedisSettings } from './redis-client.js';
import * as commands from './redis-commands.js';
import { redisLog } from './redis-log.js';
import { joinParts, partEscaper } from './topic-escape.js';
import { WAITING_REPORT_MS, type NumberedLog, type Transport, type TransportEvents } from './transport.js';
import { validTtl } from './ttl.js';

type Client = Redis | Cluster;

export interface PubSubCommands {
  publish(client: Client, topic: string, payload: string): Promise<unknown>;
  /** Subscribes every topic, in as few commands as the flavour allows; resolves once all are confirmed. */
  subscribe(client: Client, topics: readonly string[]): Promise<void>;
  unsubscribe(client: Client, topics: readonly string[]): Promise<void>;
  /** After a reconnect: makes sure every held topic is subscribed, confirmed by the broker. */
  resubscribe(client: Client, topics: readonly string[]): Promise<void>;
  /** the event the subscriber emits for a message */
  messageEvent: 'message' | 'smessage';
  /** the publish command a script calls (numbered logs publish from inside their append) */
  scriptPublish: 'PUBLISH' | 'SPUBLISH';
}

/** Topics per (UN)SUBSCRIBE command: long enough to save round trips, short enough not to stall the connection. */
export const TOPICS_PER_COMMAND = 500;

export function chunks<T>(items: readonly T[], size = TOPICS_PER_COMMAND): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Redis channel names are binary-safe: only the separator and the escape mark need escaping. */
const escapeRedisPart = partEscaper('[%#]');

/** Between attempts to restore subscriptions after a reconnect (the broker may still be settling). */
const RESTORE_RETRY_MS = 250;

export abstract class RedisTransportBase<C extends Client> implements Transport {
  abstract readonly name: string;
  readonly sharedState = true;
  private events: TransportEvents | null = null;
  /** What the last status event said (connect() leaves it up). */
  private up = false;
  /** connect() finished: from here on, losing and regaining the broker are status events. */
  private connected = false;
  private restoring = false;
  private closed = false;
  /** Ends a patient first connect when the transport closes while it waits. */
  private readonly closing = new AbortController();
  /** Held topics and the confirmation of the batch that subscribed each. */
  private readonly held = new Map<string, Promise<void>>();
  /** Bumped on every disconnect: a restore that started before it is stale. */
  private epoch = 0;
  private restoreTimer: NodeJS.Timeout | null = null;
  readonly numbered: NumberedLog;
  private readonly backlog: Backlog;
  private publishErrorLogged = false;

  protected constructor(
    protected readonly pub: C,
    protected readonly sub: C,
    private readonly pubsub: PubSubCommands,
    protected readonly settings: RedisSettings,
    protected readonly log: Logger,
    /** Sockudo's redis_sub_options can point the subscriber elsewhere; by default it is `settings`. */
    private readonly subscriberSettings: RedisSettings = settings,
  ) {
    this.backlog = new Backlog(log);
    this.numbered = redisLog(pub, pubsub.scriptPublish);
  }

  topic(...parts: string[]): string {
    return joinParts(parts, '#', escapeRedisPart);
  }

  async connect(events: TransportEvents): Promise<void> {
    this.events = events;
    for (const client of [this.pub, this.sub]) {
      client.on('error', (err: Error) => this.log.debug({ err: err.message, transport: this.name }, 'redis error'));
      client.on('close', () => this.down());
      client.on('ready', () => this.maybeUp());
    }
    this.sub.on(this.pubsub.messageEvent, (topic: string, payload: string) => this.deliver(topic, payload));
    try {
      await this.open(events.waiting);
    } catch (err) {
      this.pub.disconnect();
      this.sub.disconnect();
      throw err;
    }
    this.up = true;
    this.connected = true;
    // A drop during the connect's last steps was not reported: catch up.
    if (this.pub.status !== 'ready' || this.sub.status !== 'ready') this.down();
  }

  /** Connects both clients, bounded, failing with the broker's own error (a cluster does more). */
  /** `waiting`: see TransportEvents (the publisher reports; the subscriber waits with it). */
  protected async open(waiting?: (reason: string) => void): Promise<void> {
    const [loud, quiet] = this.patience(waiting);
    await Promise.all([connectRedis(this.pub, this.settings, loud), connectRedis(this.sub, this.subscriberSettings, quiet)]);
  }

  /**
   * Patience for the publisher and the subscriber, or none. Either may be the one still waiting
   * (the subscriber can point elsewhere): both report, the second within a report's time is not.
   */
  protected patience(waiting: ((reason: string) => void) | undefined): [Patience?, Patience?] {
    if (!waiting) return [];
    const signal = this.closing.signal;
    let last = 0;
    const report = (reason: string) => {
      if (Date.now() - last < WAITING_REPORT_MS / 2) return;
      last = Date.now();
      waiting(reason);
    };
    return [
      { waiting: report, signal },
      { waiting: (reason) => report(`subscriber: ${reason}`), signal },
    ];
  }

  private deliver(topic: string, payload: string): void {
    try {
      this.events?.message(topic, payload);
    } catch (err) {
      this.log.error({ err: (err as Error).message, topic }, 'transport message handler threw');
    }
  }

  private status(up: boolean): void {
    try {
      this.events?.status(up);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'transport status handler threw');
    }
  }

  private down(): void {
    this.epoch++;
    this.restoring = false;
    if (this.restoreTimer) clearTimeout(this.restoreTimer);
    this.restoreTimer = null;
    if (!this.up || this.closed || !this.events) return;
    this.up = false;
    this.status(false);
  }

  /** Both clients ready again: confirm every held subscription, then report up. */
  private maybeUp(): void {
    if (!this.connected || this.up || this.closed || this.restoring) return;
    if (this.pub.status !== 'ready' || this.sub.status !== 'ready') return;
    this.restoring = true;
    const epoch = this.epoch;
    const stale = () => epoch !== this.epoch || this.closed;
    const attempt = () => {
      this.restoreTimer = null;
      if (stale()) return;
      this.pubsub.resubscribe(this.sub, [...this.held.keys()]).then(
        () => {
          if (stale()) return;
          this.restoring = false;
          this.up = true;
          this.status(true);
        },
        (err: Error) => {
          if (stale()) return;
          this.log.debug({ err: err.message, transport: this.name }, 'restoring subscriptions failed; retrying');
          this.restoreTimer = setTimeout(attempt, RESTORE_RETRY_MS);
        },
      );
    };
    attempt();
  }

  publish(topic: string, payload: string): void {
    if (!this.up || this.pub.status !== 'ready') return;
    const bytes = payload.length;
    if (!this.backlog.take(bytes)) return;
    const settle = () => this.backlog.release(bytes);
    this.pubsub.publish(this.pub, topic, payload).then(settle, (err: Error) => {
      settle();
      // A refused publish (NOPERM, a read-only replica) repeats for every message: say it once.
      if (!this.publishErrorLogged && !/closed|offline|Stream isn't writeable|max retries/i.test(err.message)) {
        this.publishErrorLogged = true;
        this.log.error({ err: err.message, transport: this.name }, 'broker refused a publish');
      }
    });
  }

  async subscribe(topics: readonly string[]): Promise<void> {
    if (this.closed) throw new Error(`${this.name} transport is closed`);
    const waits: Promise<void>[] = [];
    const fresh: string[] = [];
    for (const topic of new Set(topics)) {
      const pending = this.held.get(topic);
      if (pending) waits.push(pending);
      else fresh.push(topic);
    }
    if (fresh.length > 0) {
      const sent = this.pubsub.subscribe(this.sub, fresh);
      for (const topic of fresh) this.held.set(topic, sent);
      sent.catch(() => {
        for (const topic of fresh) if (this.held.get(topic) === sent) this.held.delete(topic);
      });
      waits.push(sent);
    }
    await Promise.all(waits);
  }

  async unsubscribe(topics: readonly string[]): Promise<void> {
    const gone = [...new Set(topics)].filter((t) => this.held.delete(t));
    if (gone.length > 0 && !this.closed) await this.pubsub.unsubscribe(this.sub, gone);
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    return commands.claim(this.pub, key, validTtl(ttlMs));
  }

  take(key: string): Promise<boolean> {
    return commands.take(this.pub, key);
  }

  /** Not part of the Transport contract: kept for the old cluster adapter's occupancy sets. */
  setChange(op: 'add' | 'remove', key: string, member: string): Promise<{ changed: boolean; members: string[] }> {
    return commands.setChange(this.pub, op, key, member);
  }

  quotaTake(key: string, member: string, max: number, live: readonly string[] | null): Promise<boolean> {
    return commands.quotaTake(this.pub, key, member, max, live);
  }

  quotaRelease(key: string, member: string): Promise<void> {
    return commands.quotaRelease(this.pub, key, member);
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    return commands.put(this.pub, key, value, validTtl(ttlMs));
  }

  get(key: string): Promise<{ value: string; ttlMs: number } | null> {
    return commands.get(this.pub, key);
  }

  async ping(): Promise<void> {
    await this.pub.ping();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    this.events = null;
    if (this.restoreTimer) clearTimeout(this.restoreTimer);
    this.held.clear();
    // QUIT only on a live connection: ioredis queues it while reconnecting, and after a failed
    // connect disconnect() leaves the status at "reconnecting", so it would wait forever.
    const quit = (c: C) => (c.status === 'ready' ? c.quit().then(() => undefined) : Promise.resolve());
    await Promise.allSettled([quit(this.pub), quit(this.sub)]);
    this.pub.disconnect();
    this.sub.disconnect();
  }
}
