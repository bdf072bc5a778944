// The transport's key-value operations on JetStream KV buckets. nats-server 2.9 has
// no per-message TTL, so each value carries its own: "<ttlMs>|<value>", expiring at
// the entry's server timestamp + ttlMs. An expired entry reads as absent, and writing
// over it is a compare-and-set on its revision, so claims stay exactly-once. The
// bucket's max age only collects garbage; it bounds the longest TTL (kvMaxAgeMs).
//
// Expiry compares the NATS server's clock (entry timestamps) with this node's: node
// clocks must be NTP-synced with the servers, or TTLs are off by the skew.
import type { KV, KvEntry, NatsConnection } from 'nats';
import type { Logger } from 'pino';
import { validTtl } from './ttl.js';

export interface NatsKvSettings {
  /** bucket name prefix */
  prefix: string;
  /** JetStream replicas per bucket (1 for a single server, 3 for a cluster) */
  replicas: number;
  /** max age of the claims/values bucket, so the longest TTL accepted */
  maxAgeMs: number;
}

/**
 * kv: claims, takes, put/get (one keyspace, as on Redis). sets: quotas and the old
 * adapter's occupancy sets (JSON under compare-and-set, never expiring).
 */
type Bucket = 'kv' | 'sets';

/** KV keys allow [-/_=.a-zA-Z0-9]; base64url stays inside that set. */
const kvKey = (key: string): string => Buffer.from(key).toString('base64url');

/** Compare-and-set rounds before giving up; each round one contender wins, so this covers dozens. */
const CAS_ATTEMPTS = 60;
const casPause = (attempt: number): Promise<void> => new Promise((r) => setTimeout(r, Math.random() * Math.min(20, 1 + attempt * 2)));

/**
 * Two nodes creating the same bucket at once: one stream add wins and the other fails
 * with "stream name already in use" (10058) or "subjects overlap" (10065). The bucket
 * exists then, so opening it again binds to the winner's.
 */
const isCreateRace = (err: unknown): boolean => {
  const code = (err as { api_error?: { err_code?: number } }).api_error?.err_code;
  return code === 10058 || code === 10065 || /already in use|subjects overlap/i.test((err as Error).message);
};
const CREATE_ATTEMPTS = 5;

const isConflict = (err: unknown): boolean =>
  (err as { api_error?: { err_code?: number } }).api_error?.err_code === 10071 || /wrong last sequence/i.test((err as Error).message);

/** The live value of an entry and its remaining time, or null when deleted, expired or not ours. */
function live(entry: KvEntry | null, now: number): { value: string; ttlMs: number } | null {
  if (!entry || entry.operation !== 'PUT') return null;
  const text = entry.string();
  const bar = text.indexOf('|');
  const ttl = bar > 0 ? Number(text.slice(0, bar)) : NaN;
  if (!(ttl > 0)) return null;
  const remaining = Math.min(ttl, entry.created.getTime() + ttl - now);
  return remaining > 0 ? { value: text.slice(bar + 1), ttlMs: remaining } : null;
}

export class NatsKv {
  private readonly buckets = new Map<Bucket, Promise<KV>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly settings: NatsKvSettings,
    private readonly log: Logger,
  ) {}

  private bucket(kind: Bucket): Promise<KV> {
    let kv = this.buckets.get(kind);
    if (!kv) {
      kv = this.open(kind);
      kv.catch(() => this.buckets.delete(kind));
      this.buckets.set(kind, kv);
    }
    return kv;
  }

  private async open(kind: Bucket): Promise<KV> {
    const name = `${this.settings.prefix.replace(/[^-_a-zA-Z0-9]/g, '_')}_${kind}`;
    const ttl = kind === 'kv' ? this.settings.maxAgeMs : 0;
    const kv = await this.openOrJoin(name, ttl);
    // An existing bucket keeps the configuration it was created with.
    const status = await kv.status();
    if (status.replicas !== this.settings.replicas || status.ttl !== ttl) {
      this.log.warn(
        {
          bucket: name,
          replicas: status.replicas,
          max_age_ms: status.ttl,
          wanted_replicas: this.settings.replicas,
          wanted_max_age_ms: ttl,
        },
        'NATS key-value bucket exists with other settings; it keeps them (edit or delete the bucket to change them)',
      );
    }
    return kv;
  }

  private async openOrJoin(name: string, ttl: number): Promise<KV> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.nc.jetstream().views.kv(name, { ttl, history: 1, replicas: this.settings.replicas });
      } catch (err) {
        if (!isCreateRace(err) || attempt >= CREATE_ATTEMPTS) throw err;
        await casPause(attempt);
      }
    }
  }

  private checkTtl(ttlMs: number): number {
    const ttl = validTtl(ttlMs);
    if (ttl > this.settings.maxAgeMs)
      throw new RangeError(`ttlMs ${ttl} is longer than the NATS bucket max age (${this.settings.maxAgeMs} ms)`);
    return ttl;
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    const value = `${this.checkTtl(ttlMs)}|1`;
    const kv = await this.bucket('kv');
    const k = kvKey(key);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const entry = await kv.get(k);
      if (live(entry, Date.now())) return false;
      try {
        // Over an expired or deleted entry: only if nobody wrote since we read it.
        if (entry) await kv.update(k, value, entry.revision);
        else await kv.create(k, value);
        return true;
      } catch (err) {
        if (!isConflict(err)) throw err;
        // Someone wrote first; a take may have deleted it again, so read once more.
      }
    }
    throw new Error(`claim on ${key}: too contended`);
  }

  async take(key: string): Promise<boolean> {
    const kv = await this.bucket('kv');
    const k = kvKey(key);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const entry = await kv.get(k);
      if (!entry || !live(entry, Date.now())) return false;
      try {
        await kv.delete(k, { previousSeq: entry.revision });
        return true;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
    throw new Error(`take on ${key}: too contended`);
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    const ttl = this.checkTtl(ttlMs);
    const kv = await this.bucket('kv');
    await kv.put(kvKey(key), `${ttl}|${value}`);
  }

  async get(key: string): Promise<{ value: string; ttlMs: number } | null> {
    const kv = await this.bucket('kv');
    return live(await kv.get(kvKey(key)), Date.now());
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
      let current: T | null = null;
      try {
        current = entry && entry.operation === 'PUT' ? entry.json<T>() : null;
      } catch {
        // Not JSON (written by something else): start over.
      }
      const { next, result } = change(current);
      if (next === undefined) return result;
      try {
        if (entry) await kv.update(k, JSON.stringify(next), entry.revision);
        else await kv.create(k, JSON.stringify(next));
        return result;
      } catch (err) {
        if (!isConflict(err)) throw err;
        await casPause(attempt);
      }
    }
    throw new Error(`key ${key}: too contended`);
  }

  setChange(op: 'add' | 'remove', key: string, member: string): Promise<{ changed: boolean; members: string[] }> {
    return this.casJson<string[], { changed: boolean; members: string[] }>(key, (current) => {
      const members = Array.isArray(current) ? current : [];
      if ((op === 'add') === members.includes(member)) return { result: { changed: false, members } };
      const next = op === 'add' ? [...members, member] : members.filter((m) => m !== member);
      return { next, result: { changed: true, members: next } };
    });
  }

  quotaTake(key: string, member: string, max: number, liveMembers: readonly string[] | null): Promise<boolean> {
    return this.casJson<Record<string, number>, boolean>(key, (current) => {
      const counts: Record<string, number> = {};
      let sum = 0;
      let pruned = false;
      for (const [node, n] of Object.entries(current ?? {})) {
        if (liveMembers && node !== member && !liveMembers.includes(node)) {
          pruned = true;
          continue;
        }
        counts[node] = n;
        sum += n;
      }
      if (sum >= max) return { next: pruned ? counts : undefined, result: false };
      counts[member] = (counts[member] ?? 0) + 1;
      return { next: counts, result: true };
    });
  }

  async quotaRelease(key: string, member: string): Promise<void> {
    await this.casJson<Record<string, number>, void>(key, (current) => {
      if (!current || !(member in current)) return { result: undefined };
      const counts = { ...current };
      const left = (counts[member] ?? 0) - 1;
      if (left > 0) counts[member] = left;
      else delete counts[member];
      return { next: counts, result: undefined };
    });
  }
}
