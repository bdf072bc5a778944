// Numbered logs kept in one process's memory: the box hub's channel history for workers
// without an external broker. The same contract as the Redis Streams log (redis-log.ts):
// an append numbers, stores and publishes in one step (here: one synchronous call), so
// every subscriber sees a topic's payloads in serial order whichever worker appended them.
import type { LogAppend, LogEntry, LogPosition, LogRange, LogRead } from './transport.js';

interface Log {
  epoch: string;
  serial: number;
  /** oldest first, serials without gaps */
  entries: LogEntry[];
  expiresAt: number;
  /** the serials outlive the entries a day (a stale position then reads as trimmed, not as a new epoch) */
  metaExpiresAt: number;
}

const META_EXTRA_MS = 86_400_000;
/** How often expired logs are dropped (reads ignore them at once). */
const SWEEP_MS = 60_000;

export class MemoryLogs {
  private readonly logs = new Map<string, Log>();
  private lastSweep = 0;

  constructor(
    /** sends the numbered payload to the topic's subscribers */
    private readonly publish: (topic: string, payload: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  append(topic: string, a: LogAppend): LogPosition {
    const now = this.now();
    this.sweep(now);
    let log = this.live(topic, now);
    if (!log || (log.epoch === a.seenEpoch && log.serial < a.seen)) {
      log = { epoch: a.newEpoch, serial: 0, entries: [], expiresAt: 0, metaExpiresAt: 0 };
      this.logs.set(topic, log);
    }
    if (now >= log.expiresAt) log.entries.length = 0;
    log.serial++;
    log.entries.push({ serial: log.serial, timeMs: now, body: a.body, tag: a.tag });
    const max = Math.max(1, a.maxEntries);
    if (log.entries.length > max) log.entries.splice(0, log.entries.length - max);
    log.expiresAt = now + a.ttlMs;
    log.metaExpiresAt = now + a.ttlMs + META_EXTRA_MS;
    this.publish(topic, `${a.head}${log.serial}\n${log.epoch}\n${now}${a.tail}`);
    return { serial: log.serial, epoch: log.epoch, timeMs: now };
  }

  range(topic: string, r: LogRange): LogRead {
    const now = this.now();
    const log = this.live(topic, now);
    if (!log) return { epoch: null, lastSerial: 0, entries: [], continuous: true };
    const kept = now < log.expiresAt ? log.entries : [];
    const from = Math.max(0, r.fromSerial);
    const picked = kept.filter((e) => e.serial >= from && e.serial <= r.toSerial);
    const limit = Math.max(0, r.limit);
    const entries = r.newestFirst ? picked.slice(-limit).reverse() : picked.slice(0, limit);
    const first = r.newestFirst ? entries[entries.length - 1] : entries[0];
    const continuous = r.fromSerial > log.serial || first?.serial === Math.max(1, r.fromSerial);
    return { epoch: log.epoch, lastSerial: log.serial, entries, continuous };
  }

  private live(topic: string, now: number): Log | undefined {
    const log = this.logs.get(topic);
    if (log && now >= log.metaExpiresAt) {
      this.logs.delete(topic);
      return undefined;
    }
    return log;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_MS) return;
    this.lastSweep = now;
    for (const [topic, log] of this.logs) if (now >= log.metaExpiresAt) this.logs.delete(topic);
  }
}
