// Redis pub/sub: one publisher and one subscriber connection per node.
// Publishes are dropped, not queued, while Redis is down (no unbounded buffers);
// ioredis reconnects with backoff and restores subscriptions itself.
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Transport, TransportEvents } from '../cluster/transport.js';
import * as commands from './redis-commands.js';
import { Backlog } from './backlog.js';

export class RedisTransport implements Transport {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private events: TransportEvents | null = null;
  private down = false;
  private readonly backlog: Backlog;

  constructor(options: RedisOptions, private readonly log: Logger) {
    this.backlog = new Backlog(log);
    this.pub = new Redis({ ...options, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    // The subscriber keeps its offline queue: only (un)subscribe commands go there, bounded by channels held.
    this.sub = new Redis({ ...options, autoResubscribe: true, maxRetriesPerRequest: null });
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
    this.sub.on('message', (topic: string, payload: string) => this.events?.message(topic, payload));
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
    this.pub.publish(topic, payload).then(settle, settle);
  }

  async subscribe(topic: string): Promise<void> {
    await this.sub.subscribe(topic);
  }

  async unsubscribe(topic: string): Promise<void> {
    await this.sub.unsubscribe(topic);
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

  /** The publisher connection, for other parts that share Redis (rate limits, queues). */
  get client(): Redis {
    return this.pub;
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
