// What the Redis and the Redis Cluster transports share: a publisher and a
// subscriber client, up/down tracking, the bounded publish backlog, and the
// broker-side operations (claims, sets, quotas, cache) of redis-commands.ts.
// Subclasses choose the clients and the pub/sub flavour (plain or sharded).
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Transport, TransportEvents } from '../cluster/transport.js';
import { Backlog } from './backlog.js';
import * as commands from './redis-commands.js';

type Client = Redis | Cluster;

export interface PubSubCommands {
  publish(client: Client, topic: string, payload: string): Promise<unknown>;
  subscribe(client: Client, topic: string): Promise<unknown>;
  unsubscribe(client: Client, topic: string): Promise<unknown>;
  /** the event the subscriber emits for a message */
  messageEvent: 'message' | 'smessage';
}

export abstract class RedisTransportBase<C extends Client> implements Transport {
  readonly sharedState = true;
  private events: TransportEvents | null = null;
  private down = false;
  private readonly backlog: Backlog;

  protected constructor(
    protected readonly pub: C,
    protected readonly sub: C,
    private readonly pubsub: PubSubCommands,
    protected readonly log: Logger,
  ) {
    this.backlog = new Backlog(log);
  }

  topic(...parts: string[]): string {
    return parts.join('#');
  }

  async connect(events: TransportEvents): Promise<void> {
    this.events = events;
    for (const client of [this.pub, this.sub]) {
      client.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis error'));
      client.on('close', () => this.setDown(true));
      client.on('ready', () => {
        if (this.pub.status === 'ready' && this.sub.status === 'ready') this.setDown(false);
      });
    }
    this.sub.on(this.pubsub.messageEvent, (topic: string, payload: string) => this.events?.message(topic, payload));
    await this.open();
  }

  /** Connects both clients (a cluster does more). */
  protected async open(): Promise<void> {
    await Promise.all([this.pub.connect(), this.sub.connect()]);
  }

  private setDown(down: boolean): void {
    if (down === this.down) return;
    this.down = down;
    this.events?.status(!down);
  }

  publish(topic: string, payload: string): void {
    if (this.pub.status !== 'ready') return;
    const bytes = payload.length;
    if (!this.backlog.take(bytes)) return;
    const settle = () => this.backlog.release(bytes);
    this.pubsub.publish(this.pub, topic, payload).then(settle, settle);
  }

  async subscribe(topic: string): Promise<void> {
    await this.pubsub.subscribe(this.sub, topic);
  }

  async unsubscribe(topic: string): Promise<void> {
    await this.pubsub.unsubscribe(this.sub, topic);
  }

  claim(key: string, ttlMs: number): Promise<boolean> {
    return commands.claim(this.pub, key, ttlMs);
  }

  take(key: string): Promise<boolean> {
    return commands.take(this.pub, key);
  }

  setChange(op: 'add' | 'remove', key: string, member: string): Promise<{ changed: boolean; members: string[] }> {
    return commands.setChange(this.pub, op, key, member);
  }

  quotaTake(key: string, member: string, max: number, live: string[] | null): Promise<boolean> {
    return commands.quotaTake(this.pub, key, member, max, live);
  }

  quotaRelease(key: string, member: string): Promise<void> {
    return commands.quotaRelease(this.pub, key, member);
  }

  put(key: string, value: string, ttlMs: number): Promise<void> {
    return commands.put(this.pub, key, value, ttlMs);
  }

  get(key: string): Promise<{ value: string; ttlMs: number } | null> {
    return commands.get(this.pub, key);
  }

  async ping(): Promise<void> {
    await this.pub.ping();
  }

  async close(): Promise<void> {
    this.events = null;
    await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
    this.pub.disconnect();
    this.sub.disconnect();
  }
}
