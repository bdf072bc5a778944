// Redis Cluster with sharded pub/sub (SPUBLISH/SSUBSCRIBE): a channel's events
// touch only the shard that owns its slot, so pub/sub load spreads with the
// cluster instead of every message reaching every Redis node.
import { Cluster, type ClusterNode, type Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { RedisTransportBase, type PubSubCommands } from './redis-base.js';
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

const SHARDED_PUBSUB: PubSubCommands = {
  publish: (c, topic, payload) => c.spublish(topic, payload),
  subscribe: (c, topic) => c.ssubscribe(topic),
  unsubscribe: (c, topic) => c.sunsubscribe(topic),
  messageEvent: 'smessage',
};

function clusterClients(nodes: ClusterNode[], redisOptions: RedisOptions): [Cluster, Cluster] {
  const { host: _h, port: _p, db: _db, lazyConnect: _l, retryStrategy: _r, ...shared } = redisOptions;
  const common = {
    lazyConnect: true,
    clusterRetryStrategy: reconnectDelay,
    redisOptions: shared,
    slotsRefreshTimeout: 2000,
  };
  return [
    new Cluster(nodes, { ...common, enableOfflineQueue: false, maxRedirections: 16 }),
    new Cluster(nodes, { ...common, shardedSubscribers: true }),
  ];
}

export class RedisClusterTransport extends RedisTransportBase<Cluster> {
  constructor(nodes: ClusterNode[], redisOptions: RedisOptions, log: Logger) {
    const [pub, sub] = clusterClients(nodes, redisOptions);
    super(pub, sub, SHARDED_PUBSUB, log);
  }

  protected override async open(): Promise<void> {
    // ioredis opens a shard's connection on first use and, with the offline queue off, bounces the
    // commands sent while it opens to random nodes and back: a topic's publishes overtake each other.
    // Opening every node's connection as soon as the slot map names it keeps them in order. (Not
    // before the cluster is ready: its ready check would be bounced too, and connect() never settle.)
    const open = (node: Redis) => void (this.pub.status === 'ready' && node.status === 'wait' && node.connect().catch(() => undefined));
    this.pub.on('+node', open);
    this.pub.on('ready', () => this.pub.nodes('all').forEach(open));
    await super.open();
    await Promise.all(this.pub.nodes('all').map((node) => nodeReady(node, 2000)));
  }
}
