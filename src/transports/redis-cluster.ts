// Redis Cluster with sharded pub/sub (SPUBLISH/SSUBSCRIBE): a channel's events
// touch only the shard that owns its slot, so pub/sub load spreads with the
// cluster instead of every message reaching every Redis node.
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { chunks, RedisTransportBase, type PubSubCommands } from './redis-base.js';
import { connectRedis, createClusterClient, type RedisSettings } from './redis-client.js';

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

/** SSUBSCRIBE takes channels of one slot per command: topics grouped by slot, then chunked. */
function bySlot(topics: readonly string[]): string[][] {
  const groups = new Map<number, string[]>();
  for (const topic of topics) {
    const slot = calculateSlot(topic);
    const group = groups.get(slot);
    if (group) group.push(topic);
    else groups.set(slot, [topic]);
  }
  return [...groups.values()].flatMap((group) => chunks(group));
}

const each = async (topics: readonly string[], send: (batch: string[]) => Promise<unknown>): Promise<void> =>
  void (await Promise.all(bySlot(topics).map(send)));

const SHARDED_PUBSUB: PubSubCommands = {
  publish: (c, topic, payload) => c.spublish(topic, payload),
  subscribe: (c, topics) => each(topics, (batch) => c.ssubscribe(...batch)),
  unsubscribe: (c, topics) => each(topics, (batch) => c.sunsubscribe(...batch)),
  // ioredis resubscribes shards itself but unconfirmed, and appends (never dedupes) the channels
  // of every SSUBSCRIBE to its own list: out and in again confirms without growing that list.
  // Messages missed in between fall inside the outage being recovered from.
  resubscribe: (c, topics) =>
    each(topics, async (batch) => {
      await c.sunsubscribe(...batch);
      await c.ssubscribe(...batch);
    }),
  messageEvent: 'smessage',
  scriptPublish: 'SPUBLISH',
};

export class RedisClusterTransport extends RedisTransportBase<Cluster> {
  readonly name = 'redis-cluster';

  /** `settings.clusterNodes` are the seeds; the slot map names the rest. */
  constructor(settings: RedisSettings, log: Logger) {
    super(createClusterClient(settings, 'publisher'), createClusterClient(settings, 'subscriber'), SHARDED_PUBSUB, settings, log);
  }

  protected override async open(waiting?: (reason: string) => void): Promise<void> {
    // ioredis opens a shard's connection on first use and, with the offline queue off, bounces the
    // commands sent while it opens to random nodes and back: a topic's publishes overtake each other.
    // Opening every node's connection as soon as the slot map names it keeps them in order. (Not
    // before the cluster is ready: its ready check would be bounced too, and connect() never settle.)
    const open = (node: Redis) => void (this.pub.status === 'ready' && node.status === 'wait' && node.connect().catch(() => undefined));
    this.pub.on('+node', open);
    this.pub.on('ready', () => this.pub.nodes('all').forEach(open));
    const [loud, quiet] = this.patience(waiting);
    await Promise.all([connectRedis(this.pub, this.settings, loud), connectRedis(this.sub, this.settings, quiet)]);
    await Promise.all(this.pub.nodes('all').map((node) => nodeReady(node, 2000)));
  }
}
