// NATS core pub/sub for events; JetStream key-value buckets for claims and the
// cache-channel store. Subjects are tokens joined by "."; parts are escaped so
// channel names with dots stay one token.
import { connect } from 'nats';
/** Cache channels keep their last event for 30 minutes (the bucket's max age). */
const CACHE_TTL_MS = 30 * 60 * 1000;
/** Claims live long enough to outlast any cleanup race. */
const CLAIM_TTL_MS = 10 * 60 * 1000;
const escapeToken = (s) => s.replace(/%/g, '%25').replace(/\./g, '%2E').replace(/\*/g, '%2A').replace(/>/g, '%3E').replace(/\s/g, (c) => encodeURIComponent(c));
const BUCKET_TTL_MS = { claims: CLAIM_TTL_MS, cache: CACHE_TTL_MS, sets: 0 };
/** Compare-and-set retries before a set change gives up (contention is a handful of nodes). */
const CAS_ATTEMPTS = 25;
/** KV keys allow [-/_=.a-zA-Z0-9]; base64url stays inside that set. */
const kvKey = (key) => Buffer.from(key).toString('base64url');
export class NatsTransport {
    settings;
    log;
    nc = null;
    subs = new Map();
    buckets = new Map();
    events = null;
    /** nats.js buffers publishes while reconnecting without a bound; we drop them instead. */
    up = false;
    constructor(settings, log) {
        this.settings = settings;
        this.log = log;
    }
    topic(...parts) {
        return parts.map(escapeToken).join('.');
    }
    async connect(events) {
        this.events = events;
        const s = this.settings;
        const options = {
            servers: s.servers,
            reconnect: true,
            maxReconnectAttempts: -1,
            reconnectTimeWait: 500,
            timeout: s.connectTimeoutMs,
            ...(s.username ? { user: s.username, pass: s.password ?? undefined } : {}),
            ...(s.token ? { token: s.token } : {}),
        };
        this.nc = await connect(options);
        this.up = true;
        void this.watchStatus(this.nc);
    }
    async watchStatus(nc) {
        for await (const status of nc.status()) {
            if (status.type === 'disconnect') {
                this.up = false;
                this.events?.status(false);
            }
            else if (status.type === 'reconnect') {
                this.up = true;
                this.events?.status(true);
            }
        }
    }
    publish(topic, payload) {
        if (!this.up)
            return;
        try {
            this.nc?.publish(topic, payload);
        }
        catch {
            // closed or buffer full: dropped by design
        }
    }
    async subscribe(topic) {
        const nc = this.nc;
        if (!nc || this.subs.has(topic))
            return;
        const sub = nc.subscribe(topic, {
            callback: (err, msg) => {
                if (!err)
                    this.events?.message(msg.subject, msg.string());
            },
        });
        this.subs.set(topic, sub);
        // The server has the subscription once a flush round-trip returns.
        await nc.flush();
    }
    async unsubscribe(topic) {
        const sub = this.subs.get(topic);
        if (!sub)
            return;
        this.subs.delete(topic);
        sub.unsubscribe();
    }
    bucket(kind) {
        const nc = this.nc;
        if (!nc)
            return Promise.reject(new Error('not connected'));
        let kv = this.buckets.get(kind);
        if (!kv) {
            const name = `${this.settings.prefix.replace(/[^-_a-zA-Z0-9]/g, '_')}_${kind}`;
            kv = nc.jetstream().views.kv(name, { ttl: BUCKET_TTL_MS[kind], history: 1 });
            kv.catch(() => this.buckets.delete(kind));
            this.buckets.set(kind, kv);
        }
        return kv;
    }
    async claim(key, _ttlMs) {
        const kv = await this.bucket('claims');
        try {
            await kv.create(kvKey(key), '1');
            return true;
        }
        catch (err) {
            if (/wrong last sequence|exists/i.test(err.message))
                return false;
            throw err;
        }
    }
    /** Markers from `claim` live as long as the claims bucket; the value-less delete is the atomic part. */
    async take(key) {
        const kv = await this.bucket('claims');
        const entry = await kv.get(kvKey(key));
        if (!entry || entry.operation !== 'PUT')
            return false;
        try {
            await kv.delete(kvKey(key), { previousSeq: entry.revision });
            return true;
        }
        catch {
            return false;
        }
    }
    async setChange(op, key, member) {
        const kv = await this.bucket('sets');
        const k = kvKey(key);
        for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
            const entry = await kv.get(k);
            const current = entry && entry.operation === 'PUT' ? (entry.json() ?? []) : [];
            const has = current.includes(member);
            if ((op === 'add') === has)
                return { changed: false, members: current };
            const next = op === 'add' ? [...current, member] : current.filter((m) => m !== member);
            try {
                if (entry)
                    await kv.update(k, JSON.stringify(next), entry.revision);
                else
                    await kv.create(k, JSON.stringify(next));
                return { changed: true, members: next };
            }
            catch {
                // Another node changed the set first: read again.
            }
        }
        throw new Error(`set ${key} too contended`);
    }
    async put(key, value, _ttlMs) {
        const kv = await this.bucket('cache');
        await kv.put(kvKey(key), value);
    }
    async get(key) {
        const kv = await this.bucket('cache');
        const entry = await kv.get(kvKey(key));
        if (!entry || entry.operation !== 'PUT')
            return null;
        const ttlMs = CACHE_TTL_MS - (Date.now() - entry.created.getTime());
        return ttlMs > 0 ? { value: entry.string(), ttlMs } : null;
    }
    async close() {
        this.events = null;
        const nc = this.nc;
        this.nc = null;
        if (!nc)
            return;
        await nc.drain().catch(() => nc.close());
    }
}
