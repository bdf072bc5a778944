// Where the operator console's live stream is fed from: the edges and the webhooks
// call `wants(appId)` first (a lookup or two, nothing built) and only then `record`.
// Events are sampled per app (at most maxPerSecond a node, the rest counted as
// skipped), batched, and sent to this node's viewers and the peers that watch the app.
import { CONSOLE_BATCH_MAX, type ConsoleBatch, type ConsoleEvent, type OperatorLink } from '../cluster/ports.js';

export type { ConsoleBatch, ConsoleEvent };

/** The console's viewers on this node (implemented by the admin edge). */
export interface ConsoleViewers {
  watching(appId: string): boolean;
  deliver(appId: string, batch: ConsoleBatch): void;
}

export interface ConsoleTapSettings {
  maxEventsPerSecond: number;
}

/** Longest payload a console event carries (characters); the stream says when it was clipped. */
export const CONSOLE_DATA_MAX = 2048;
const FLUSH_MS = 200;

type Recorded = Omit<ConsoleEvent, 'ts' | 'node'>;

interface Pending {
  events: ConsoleEvent[];
  skipped: number;
  /** the current second and the events taken in it */
  windowStart: number;
  taken: number;
}

/** A payload clipped for the console: the part kept, and whether anything was cut. */
export function clipData(data: string): { data: string; truncated?: true } {
  return data.length <= CONSOLE_DATA_MAX ? { data } : { data: data.slice(0, CONSOLE_DATA_MAX), truncated: true };
}

export class ConsoleTap {
  private viewers: ConsoleViewers | null = null;
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly nodeId: string,
    private readonly link: OperatorLink,
    private readonly settings: ConsoleTapSettings,
  ) {}

  attach(viewers: ConsoleViewers): void {
    this.viewers = viewers;
  }

  /** Whether anyone watches the app's events: the only call made while nobody does. */
  wants(appId: string): boolean {
    return (this.viewers !== null && this.viewers.watching(appId)) || this.link.wanted(appId);
  }

  record(appId: string, event: Recorded): void {
    const now = Date.now();
    let p = this.pending.get(appId);
    if (!p) this.pending.set(appId, (p = { events: [], skipped: 0, windowStart: now, taken: 0 }));
    if (now - p.windowStart >= 1000) {
      p.windowStart = now;
      p.taken = 0;
    }
    if (p.taken >= this.settings.maxEventsPerSecond || p.events.length >= CONSOLE_BATCH_MAX) {
      p.skipped++;
    } else {
      p.taken++;
      p.events.push({ ts: now, node: this.nodeId, ...event });
    }
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** A peer's batch for this node's viewers. */
  fromPeer(appId: string, batch: ConsoleBatch): void {
    if (this.viewers?.watching(appId)) this.viewers.deliver(appId, batch);
  }

  /** Keeps the peers sending the app's events here (called while viewers watch it). */
  watch(appId: string): void {
    this.link.watch(appId);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const [appId, p] of this.pending) {
      if (p.events.length === 0 && p.skipped === 0) {
        // Quiet for a whole window: forgotten, so the table holds only apps with traffic.
        if (Date.now() - p.windowStart >= 1000) this.pending.delete(appId);
        continue;
      }
      const batch: ConsoleBatch = { events: p.events, skipped: p.skipped };
      p.events = [];
      p.skipped = 0;
      if (this.viewers?.watching(appId)) this.viewers.deliver(appId, batch);
      this.link.send(appId, batch);
    }
    if (this.pending.size > 0 && !this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
  }
}
