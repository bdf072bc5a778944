// Redis Cluster with sharded pub/sub (SPUBLISH/SSUBSCRIBE): a channel's events
// touch only the shard that owns its slot, so pub/sub load spreads with the
// cluster instead of every message reaching every Redis node.
import { Cluster } from 'ioredis';
import * as commands from './redis-commands.js';
import { Backlog } from './backlog.js';
import { reconnectDelay } from './redis-options.js';
/** Resolves once a node connection is ready (connecting it if idle), ended, or after timeoutMs. */
function nodeReady(node, timeoutMs) {
    if (node.status === 'ready' || node.status === 'end')
        return Promise.resolve();
    return new Promise((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
            clearTimeout(timer);
            node.off('ready', done).off('end', done);
            resolve();
        }
        node.once('ready', done).once('end', done);
        if (node.status === 'wait')
            node.connect().catch(done);
    });
}
export class RedisClusterTransport {
    log;
    pub;
    sub;
    events = null;
    down = false;
    backlog;
    constructor(nodes, redisOptions, log) {
        this.log = log;
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
    topic(...parts) {
        return parts.join('#');
    }
    async connect(events) {
        this.events = events;
        for (const client of [this.pub, this.sub]) {
            client.on('error', (err) => this.log.debug({ err: err.message }, 'redis cluster error'));
            client.on('close', () => this.setDown(true));
            client.on('ready', () => {
                if (this.pub.status === 'ready' && this.sub.status === 'ready')
                    this.setDown(false);
            });
        }
        this.sub.on('smessage', (topic, payload) => this.events?.message(topic, payload));
        // ioredis opens a shard's connection on first use and, with the offline queue off, bounces the
        // commands sent while it opens to random nodes and back: a topic's publishes overtake each other.
        // Opening every node's connection as soon as the slot map names it keeps them in order. (Not
        // before the cluster is ready: its ready check would be bounced too, and connect() never settle.)
        const open = (node) => void (this.pub.status === 'ready' && node.status === 'wait' && node.connect().catch(() => undefined));
        this.pub.on('+node', open);
        this.pub.on('ready', () => this.pub.nodes('all').forEach(open));
        await Promise.all([this.pub.connect(), this.sub.connect()]);
        await Promise.all(this.pub.nodes('all').map((node) => nodeReady(node, 2000)));
    }
    setDown(down) {
        if (down === this.down)
            return;
        this.down = down;
        this.events?.status(!down);
    }
    publish(topic, payload) {
        if (this.pub.status !== 'ready')
            return;
        const bytes = payload.length;
        if (!this.backlog.take(bytes))
            return;
        const settle = () => this.backlog.release(bytes);
        this.pub.spublish(topic, payload).then(settle, settle);
    }
    async subscribe(topic) {
        await this.sub.ssubscribe(topic);
    }
    async unsubscribe(topic) {
        await this.sub.sunsubscribe(topic);
    }
    claim(key, ttlMs) {
        return commands.claim(this.pub, key, ttlMs);
    }
    take(key) {
        return commands.take(this.pub, key);
    }
    setChange(op, key, member) {
        return commands.setChange(this.pub, op, key, member);
    }
    quotaTake(key, member, max, live) {
        return commands.quotaTake(this.pub, key, member, max, live);
    }
    quotaRelease(key, member) {
        return commands.quotaRelease(this.pub, key, member);
    }
    put(key, value, ttlMs) {
        return commands.put(this.pub, key, value, ttlMs);
    }
    get(key) {
        return commands.get(this.pub, key);
    }
    get client() {
        return this.pub;
    }
    async ping() {
        await this.pub.ping();
    }
    async close() {
        this.events = null;
        await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
        this.pub.disconnect();
        this.sub.disconnect();
    }
}
