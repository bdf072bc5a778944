// A map whose entries expire; expired entries are dropped on read and by a
// periodic sweep, so a cache that is written but never read stays bounded in time.

export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly sweepEveryMs = 60_000) {}

  set(key: string, value: V, ttlMs: number): void {
    this.entries.set(key, { value, expiresAt: Date.now() + ttlMs });
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), this.sweepEveryMs);
      this.sweeper.unref();
    }
  }

  get(key: string): { value: V; remainingMs: number } | null {
    const entry = this.entries.get(key);
    if (!entry) return null;
    const remainingMs = entry.expiresAt - Date.now();
    if (remainingMs <= 0) {
      this.entries.delete(key);
      return null;
    }
    return { value: entry.value, remainingMs };
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    if (this.entries.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }
}
