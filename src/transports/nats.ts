// NATS core pub/sub for events; JetStream key-value buckets for claims and the
// cache-channel store. Subjects are tokens joined by "."; parts are escaped so
// channel names with dots stay one token.
import { connect, type ConnectionOptions, type KV, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from 'pino';
import type { Transport, TransportEvents } from '../cluster/transport.js';
import { Backlog } from './backlog.js';

/** Cache channels keep their last event for 30 minutes (the bucket's max age). */
const CACHE_TTL_MS = 30 * 60 * 1000;
/** Claims live long enough to outlast any cleanup race. */
const CLAIM_TTL_MS = 10 * 60 * 1000;

const escapeToken = (s: string): string =>
  s.replace(/%/g, '%25').replace(/\./g, '%2E').replace(/\*/g, '%2A').replace(/>/g, '%3E').replace(/\s/g, (c) => encodeURIComponent(c));

type Bucket = 'claims' | 'cache' | 'sets';
const BUCKET_TTL_MS: Record<Bucket, number> = { claims: CLAIM_TTL_MS, cache: CACHE_TTL_MS, sets: 0 };
/** Compare-and-set retries before a set change gives up (contention is a handful of nodes). */
const CAS_ATTEMPTS = 25;

/** KV keys allow [-/_=.a-zA-Z0-9]; base64url stays inside that set. */
const kvKey = (key: string): string => Buffer.from(key).toString('base64url');

export interface NatsSettings {
  servers: string[];
  username?: string | null;
  password?: string | null;
  token?: string | null;
  connectTimeoutMs: number;
  /** bucket name prefix */
  prefix: string;
}

export class NatsTransport implements Transport {
  private nc: NatsConnection | null = null;
  private readonly subs = new Map<string, Subscription>();
  private readonly buckets = new Map<Bucket, Promise<KV>>();
  /** JetStream (key-value buckets) is enabled on the server; probed at connect. */
  sharedState = true;
  private events: TransportEvents | null = null;
  /** nats.js buffers publishes while reconnecting without a bound; we drop them instead. */
  private up = false;
  /** nats.js does not report what is still unsent: a periodic flush round trip confirms it. */
  private readonly backlog: Backlog;
  private unflushed = 0;
  private flushing = false;
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(private readonly settings: NatsSettings, private readonly log: Logger) {
    this.backlog = new Backlog(log);
  }

  /** Every 250 ms: a flush round trip; when it returns, what was published before it was sent. */
  private confirmSent(): void {
    const nc = this.nc;
    if (!nc || this.flushing || this.unflushed === 0) return;
    const covered = this.unflushed;
    this.unflushed = 0;
    this.flushing = true;
    nc.flush().then(
      () => {
        this.flushing = false;
        this.backlog.release(covered);
      },
      () => {
        // Connection gone: nats.js drops its buffer on close; reconnects start clean.
        this.flushing = false;
        this.backlog.release(covered);
      },
    );
  }

  topic(...parts: string[]): string {
    return parts.map(escapeToken).join('.');
  }

  async connect(events: TransportEvents): Promise<void> {
    this.events = events;
    const s = this.settings;
    const options: ConnectionOptions = {
      servers: s.servers,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // A server that stops answering (not just closing) is declared gone in about 4 s.
      pingInterval: 2000,
      maxPingOut: 2,
      timeout: s.connectTimeoutMs,
      ...(s.username ? { user: s.username, pass: s.password ?? undefined } : {}),
      ...(s.token ? { token: s.token } : {}),
    };
    this.nc = await connect(options);
    this.up = true;
    try {
      await this.nc.jetstreamManager();
    } catch {
      this.sharedState = false;
      this.log.warn(
        'NATS server has no JetStream: claims, occupancy edges, connection quotas and cache channels fall back to per-node answers (start nats-server with -js)',
      );
    }
    this.flushTimer = setInterval(() => this.confirmSent(), 250);
    this.flushTimer.unref();
    void this.watchStatus(this.nc);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.up = false;
        this.events?.status(false);
      } else if (status.type === 'reconnect') {
        this.up = true;
        this.events?.status(true);
      }
    }
  }

  publish(topic: string, payload: string): void {
    if (!this.up || !this.nc) return;
    const bytes = payload.length;
    if (!this.backlog.take(bytes)) return;
    this.unflushed += bytes;
    try {
      this.nc.publish(topic, payload);
    } catch {
      // closed or buffer full: dropped by design
    }
  }

  async subscribe(topic: string): Promise<void> {
    const nc = this.nc;
    if (!nc || this.subs.has(topic)) return;
    const sub = nc.subscribe(topic, {
      callback: (err, msg) => {
        if (!err) this.events?.message(msg.subject, msg.string());
      },
    });
    this.subs.set(topic, sub);
    // The server has the subscription once a flush round-trip returns.
    await nc.flush();
  }

  async unsubscribe(topic: string): Promise<void> {
    const sub = this.subs.get(topic);
    if (!sub) return;
    this.subs.delete(topic);
    sub.unsubscribe();
  }

  private bucket(kind: Bucket): Promise<KV> {
    const nc = this.nc;
    if (!nc) return Promise.reject(new Error('not connected'));
    let kv = this.buckets.get(kind);
    if (!kv) {
      const name = `${this.settings.prefix.replace(/[^-_a-zA-Z0-9]/g, '_')}_${kind}`;
      kv = nc.jetstream().views.kv(name, { ttl: BUCKET_TTL_MS[kind], history: 1 });
      kv.catch(() => this.buckets.delete(kind));
      this.buckets.set(kind, kv);
    }
    return kv;
  }

  async claim(key: string, _ttlMs: number): Promise<boolean> {
    const kv = await this.bucket('claims');
    try {
      await kv.create(kvKey(key), '1');
      return true;
    } catch (err) {
      if (/wrong last sequence|exists/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  /** Markers from `claim` live as long as the claims bucket; the value-less delete is the atomic part. */
  async take(key: string): Promise<boolean> {
    const kv = await this.bucket('claims');
    const entry = await kv.get(kvKey(key));
    if (!entry || entry.operation !== 'PUT') return false;
    try {
      await kv.delete(kvKey(key), { previousSeq: entry.revision });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Read-modify-write of a JSON value under compare-and-set: `change` returns the
   * next value (or undefined to leave it) and the result; a concurrent writer makes it retry.
   */
  private async casJson<T, R>(key: string, change: (current: T | null) => { next?: T; result: R }): Promise<R> {
    const kv = await this.bucket('sets');
    const k = kvKey(key);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const entry = await kv.get(k);
      const current = entry && entry.operation === 'PUT' ? entry.json<T>() : null;
      const { next, result } = change(current);
      if (next === undefined) return result;
      try {
        if (entry) await kv.update(k, JSON.stringify(next), entry.revision);
        else await kv.create(k, JSON.stringify(next));
        return result;
      } catch {
        // Another node wrote first: read again.
      }
    }
    throw new Error(`key ${key} too contended`);
  }

  setChange(op: 'add' | 'remove', key: string, member: string): Promise<{ changed: boolean; members: string[] }> {
    return this.casJson<string[], { changed: boolean; members: string[] }>(key, (current) => {
      const members = current ?? [];
      if ((op === 'add') === members.includes(member)) return { result: { changed: false, members } };
      const next = op === 'add' ? [...members, member] : members.filter((m) => m !== member);
      return { next, result: { changed: true, members: next } };
    });
  }

  quotaTake(key: string, member: string, max: number, live: string[] | null): Promise<boolean> {
    return this.casJson<Record<string, number>, boolean>(key, (current) => {
      const counts: Record<string, number> = {};
      let sum = 0;
      for (const [node, n] of Object.entries(current ?? {})) {
        if (live && node !== member && !live.includes(node)) continue;
        counts[node] = n;
        sum += n;
      }
      if (sum >= max) return { next: counts, result: false };
      counts[member] = (counts[member] ?? 0) + 1;
      return { next: counts, result: true };
    });
  }

  async quotaRelease(key: string, member: string): Promise<void> {
    await this.casJson<Record<string, number>, void>(key, (current) => {
      const counts = { ...(current ?? {}) };
      const left = (counts[member] ?? 0) - 1;
      if (left > 0) counts[member] = left;
      else delete counts[member];
      return { next: counts, result: undefined };
    });
  }

  async put(key: string, value: string, _ttlMs: number): Promise<void> {
    const kv = await this.bucket('cache');
    await kv.put(kvKey(key), value);
  }

  async get(key: string): Promise<{ value: string; ttlMs: number } | null> {
    const kv = await this.bucket('cache');
    const entry = await kv.get(kvKey(key));
    if (!entry || entry.operation !== 'PUT') return null;
    const ttlMs = CACHE_TTL_MS - (Date.now() - entry.created.getTime());
    return ttlMs > 0 ? { value: entry.string(), ttlMs } : null;
  }

  async ping(): Promise<void> {
    await this.nc?.rtt();
  }

  async close(): Promise<void> {
    this.events = null;
    if (this.flushTimer) clearInterval(this.flushTimer);
    const nc = this.nc;
    this.nc = null;
    if (!nc) return;
    await nc.drain().catch(() => nc.close());
  }
}
