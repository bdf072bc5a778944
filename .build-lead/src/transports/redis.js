// Redis pub/sub: one publisher and one subscriber connection per node.
// Publishes are dropped, not queued, while Redis is down (no unbounded buffers);
// ioredis reconnects with backoff and restores subscriptions itself.
import { Redis } from 'ioredis';
import * as commands from './redis-commands.js';
import { Backlog } from './backlog.js';
export class RedisTransport {
    log;
    pub;
    sub;
    events = null;
    down = false;
    backlog;
    constructor(options, log) {
        this.log = log;
        this.backlog = new Backlog(log);
        this.pub = new Redis({ ...options, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
        // The subscriber keeps its offline queue: only (un)subscribe commands go there, bounded by channels held.
        this.sub = new Redis({ ...options, autoResubscribe: true, maxRetriesPerRequest: null });
    }
    topic(...parts) {
        return parts.join('#');
    }
    async connect(events) {
        this.events = events;
        for (const client of [this.pub, this.sub]) {
            client.on('error', (err) => this.log.debug({ err: err.message }, 'redis error'));
            client.on('close', () => this.setDown(true));
            client.on('ready', () => {
                if (this.pub.status === 'ready' && this.sub.status === 'ready')
                    this.setDown(false);
            });
        }
        this.sub.on('message', (topic, payload) => this.events?.message(topic, payload));
        await Promise.all([this.pub.connect(), this.sub.connect()]);
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
        this.pub.publish(topic, payload).then(settle, settle);
    }
    async subscribe(topic) {
        await this.sub.subscribe(topic);
    }
    async unsubscribe(topic) {
        await this.sub.unsubscribe(topic);
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
    /** The publisher connection, for other parts that share Redis (rate limits, queues). */
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
