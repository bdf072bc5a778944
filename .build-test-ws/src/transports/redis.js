// Redis pub/sub: one publisher and one subscriber connection per node.
// Publishes are dropped, not queued, while Redis is down (no unbounded buffers);
// ioredis reconnects with backoff and restores subscriptions itself.
import { Redis } from 'ioredis';
export class RedisTransport {
    log;
    pub;
    sub;
    events = null;
    down = false;
    constructor(options, log) {
        this.log = log;
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
        this.pub.publish(topic, payload).catch(() => undefined);
    }
    async subscribe(topic) {
        await this.sub.subscribe(topic);
    }
    async unsubscribe(topic) {
        await this.sub.unsubscribe(topic);
    }
    async claim(key, ttlMs) {
        return (await this.pub.set(key, '1', 'PX', ttlMs, 'NX')) === 'OK';
    }
    async put(key, value, ttlMs) {
        await this.pub.set(key, value, 'PX', ttlMs);
    }
    async get(key) {
        const result = await this.pub.multi().get(key).pttl(key).exec();
        const value = result?.[0]?.[1];
        const ttl = result?.[1]?.[1];
        return value == null ? null : { value, ttlMs: ttl !== undefined && ttl > 0 ? ttl : 0 };
    }
    /** The publisher connection, for other parts that share Redis (rate limits, queues). */
    get client() {
        return this.pub;
    }
    async close() {
        this.events = null;
        await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
        this.pub.disconnect();
        this.sub.disconnect();
    }
}
