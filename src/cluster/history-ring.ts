// Channel history kept in this process: a bounded ring per channel, numbered here.
// The local cluster's history (one node is the whole cluster). Entries past their
// time to live read as gone; a channel idle past its time to live plus a day is
// forgotten, so a restart or a long silence starts a new epoch.
import { randomBytes } from 'node:crypto';
import type { HistoryBounds, HistoryRange, HistoryRead, NumberedEvent } from './ports.js';

const FORGET_AFTER_MS = 86_400_000;
const SWEEP_EVERY_MS = 60_000;

interface Ring {
  epoch: string;
  serial: number;
  /** oldest first */
  events: NumberedEvent[];
  lastAppendMs: number;
  keepMs: number;
}

export const newEpoch = (): string => randomBytes(6).toString('base64url');

export class HistoryRing {
  private readonly rings = new Map<string, Ring>();
  private sweptAt = Date.now();

  append(appId: string, channel: string, frame: string, except: string | undefined, bounds: HistoryBounds): NumberedEvent {
    const now = Date.now();
    if (now - this.sweptAt > SWEEP_EVERY_MS) this.sweep(now);
    const key = JSON.stringify([appId, channel]);
    let ring = this.rings.get(key);
    if (!ring) {
      ring = { epoch: newEpoch(), serial: 0, events: [], lastAppendMs: now, keepMs: 0 };
      this.rings.set(key, ring);
    }
    ring.serial += 1;
    ring.lastAppendMs = now;
    ring.keepMs = bounds.ttlSeconds * 1000;
    const event: NumberedEvent = { serial: ring.serial, epoch: ring.epoch, publishedAtMs: now, frame, except };
    ring.events.push(event);
    const over = ring.events.length - bounds.maxMessages;
    if (over > 0) ring.events.splice(0, over);
    return event;
  }

  read(appId: string, channel: string, range: HistoryRange, bounds: HistoryBounds): HistoryRead {
    const ring = this.rings.get(JSON.stringify([appId, channel]));
    if (!ring) return { epoch: null, lastSerial: 0, events: [], continuous: true };
    const oldest = Date.now() - bounds.ttlSeconds * 1000;
    const inside = (e: NumberedEvent) => e.serial >= range.fromSerial && e.serial <= range.toSerial && e.publishedAtMs >= oldest;
    const events: NumberedEvent[] = [];
    if (range.newestFirst) {
      for (let i = ring.events.length - 1; i >= 0 && events.length < range.limit; i--)
        if (inside(ring.events[i])) events.push(ring.events[i]);
    } else {
      for (let i = 0; i < ring.events.length && events.length < range.limit; i++) if (inside(ring.events[i])) events.push(ring.events[i]);
    }
    // Serials have no gaps here: continuous when the oldest kept is at most fromSerial.
    const kept = ring.events.find((e) => e.publishedAtMs >= oldest);
    const continuous = range.fromSerial > ring.serial || (kept !== undefined && kept.serial <= Math.max(1, range.fromSerial));
    return { epoch: ring.epoch, lastSerial: ring.serial, events, continuous };
  }

  clear(): void {
    this.rings.clear();
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [key, ring] of this.rings) {
      if (now - ring.lastAppendMs > ring.keepMs + FORGET_AFTER_MS) this.rings.delete(key);
      else {
        const oldest = now - ring.keepMs;
        let drop = 0;
        while (drop < ring.events.length && ring.events[drop].publishedAtMs < oldest) drop++;
        if (drop > 0) ring.events.splice(0, drop);
      }
    }
  }
}
