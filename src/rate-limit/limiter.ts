// Rate limits for the HTTP API: a fixed one-second window per key, which keeps
// "accepted per second" within the limit. Local by default; a Redis driver
// shares the window between nodes.

export interface RateLimiter {
  /** Takes `points` from the key's budget for the current window; false when that would pass `limit`. */
  consume(key: string, points: number, limit: number, windowMs?: number): Promise<boolean>;
  /** Where the windows live elsewhere (Redis): resolves once that answers, or after timeoutMs. */
  ready?(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Whole seconds until the current window ends (windows start at multiples of windowMs, on every driver). */
export function secondsToWindowEnd(windowMs: number, now = Date.now()): number {
  return Math.max(1, Math.ceil((windowMs - (now % windowMs)) / 1000));
}

export class LocalRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { start: number; used: number; len: number }>();
  private sweeps = 0;

  async consume(key: string, points: number, limit: number, windowMs = 1000): Promise<boolean> {
    return this.consumeSync(key, points, limit, windowMs);
  }

  consumeSync(key: string, points: number, limit: number, windowMs = 1000): boolean {
    const now = Date.now();
    const start = now - (now % windowMs);
    let w = this.windows.get(key);
    if (!w || w.start !== start) {
      if (++this.sweeps % 1024 === 0) this.sweep(now);
      w = { start, used: 0, len: windowMs };
      this.windows.set(key, w);
    }
    if (w.used + points > limit) return false;
    w.used += points;
    return true;
  }

  private sweep(now: number): void {
    for (const [k, w] of this.windows) if (now - w.start > w.len * 2) this.windows.delete(k);
  }

  async close(): Promise<void> {
    this.windows.clear();
  }
}
