// Redis Cluster with sharded pub/sub (SPUBLISH/SSUBSCRIBE): a channel's events
// touch only the shard that owns its slot, so pub/sub load spreads with the
// cluster instead of every message reaching every Redis node.
import { Cluster, type ClusterNode, type Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Transport, TransportEvents } from '../cluster/transport.js';
import * as commands from './redis-commands.js';
import { Backlog } from './backlog.js';
import { reconnectDelay } from './redis-options.js';

/** Resolves once a node connection is ready (connecting it if idle), ended, or after timeoutMs. */
function nodeReady(node: Redis, timeoutMs: number): Promise<void> {
  if (node.status === 'ready' || node.status === 'end') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      node.off('ready', done).off('end', done);
      resolve();
    }
    node.once('ready', done).once('end', done);
    if (node.status === 'wait') node.connect().catch(done);
  });
}

export class RedisClusterTransport implements Transport {
  private readonly pub: Cluster;
  private readonly sub: Cluster;
  private events: TransportEvents | null = null;
  private down = false;
  private readonly backlog: Backlog;

  constructor(nodes: ClusterNode[], redisOptions: RedisOptions, private readonly log: Logger) {
    this.backlog = new Backlog(log);
    const { host: _h, port: _p, db: _db, lazyConnect: _l, retryStrategy: _r, ...shared } = redisOptions;
    const common = {
      lazyConnect: true,
      clusterRetryStrategy: reconnectDelay,
      redisOptions: shared,
      slotsRefreshTimeout: 2000,
    };
    this.pub = new Cluster(nodes, { ...common, enableOfflineQueue: false, maxRedirections: 16 });
    this.sub = new Cluster(nodes, { ...common, shardedSubscribers: true });
  }

  topic(...parts: string[]): string {
    return parts.join('#');
  }

  async connect(events: TransportEvents): Promise<void> {
    this.events = events;
    for (const client of [this.pub, this.sub]) {
      client.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis cluster error'));
      client.on('close', () => this.setDown(true));
      client.on('ready', () => {
        if (this.pub.status === 'ready' && this.sub.status === 'ready') this.setDown(false);
      });
    }
    this.sub.on('smessage', (topic: string, payload: string) => this.events?.message(topic, payload));
    // ioredis opens a shard's connection on first use and, with the offline queue off, bounces the
    // commands sent while it opens to random nodes and back: a topic's publishes overtake each other.
    // Opening every node's connection as soon as the slot map names it keeps them in order. (Not
    // before the cluster is ready: its ready check would be bounced too, and connect() never settle.)
    const open = (node: Redis) => void (this.pub.status === 'ready' && node.status === 'wait' && node.connect().catch(() => undefined));
    this.pub.on('+node', open);
    this.pub.on('ready', () => this.pub.nodes('all').forEach(open));
    await Promise.all([this.pub.connect(), this.sub.connect()]);
    await Promise.all(this.pub.nodes('all').map((node) => nodeReady(node, 2000)));
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
    this.pub.spublish(topic, payload).then(settle, settle);
  }

  async subscribe(topic: string): Promise<void> {
    await this.sub.ssubscribe(topic);
  }

  async unsubscribe(topic: string): Promise<void> {
    await this.sub.sunsubscribe(topic);
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

  get client(): Cluster {
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
