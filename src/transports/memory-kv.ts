// The key-value side of the in-memory broker: the same semantics as the Redis
// commands (redis-commands.ts), as plain synchronous functions. The broker calls
// each one at a single instant, which is what makes it atomic.

interface Entry {
  value: string;
  expiresAt: number;
}

export class MemoryKv {
  private readonly entries = new Map<string, Entry>();
  private readonly quotas = new Map<string, Map<string, number>>();
  private writes = 0;

  constructor(private readonly now: () => number) {}

  private set(key: string, value: string, ttlMs: number): void {
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
    // Expired entries nobody reads again are swept now and then, so long runs stay small.
    if (++this.writes % 1000 === 0) {
      const now = this.now();
      for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    }
  }

  private live(key: string): Entry | null {
    const entry = this.entries.get(key);
    if (!entry) return null;
    if (entry.expiresAt > this.now()) return entry;
    this.entries.delete(key);
    return null;
  }

  claim(key: string, ttlMs: number): boolean {
    if (this.live(key)) return false;
    this.set(key, '1', ttlMs);
    return true;
  }

  take(key: string): boolean {
    if (!this.live(key)) return false;
    this.entries.delete(key);
    return true;
  }

  put(key: string, value: string, ttlMs: number): void {
    this.set(key, value, ttlMs);
  }

  get(key: string): { value: string; ttlMs: number } | null {
    const entry = this.live(key);
    return entry ? { value: entry.value, ttlMs: entry.expiresAt - this.now() } : null;
  }

  quotaTake(key: string, member: string, max: number, live: readonly string[] | null): boolean {
    const counts = this.quotas.get(key) ?? new Map<string, number>();
    let sum = 0;
    for (const [node, n] of counts) {
      if (live && node !== member && !live.includes(node)) counts.delete(node);
      else sum += n;
    }
    if (sum >= max) return false;
    counts.set(member, (counts.get(member) ?? 0) + 1);
    this.quotas.set(key, counts);
    return true;
  }

  quotaRelease(key: string, member: string): void {
    const counts = this.quotas.get(key);
    const left = (counts?.get(member) ?? 0) - 1;
    if (!counts) return;
    if (left > 0) counts.set(member, left);
    else counts.delete(member);
    if (counts.size === 0) this.quotas.delete(key);
  }

  /** The broker lost its state (a restart without persistence, a failover to an empty replica). */
  flush(): void {
    this.entries.clear();
    this.quotas.clear();
  }

  /** For tests: the counts of one quota key. */
  quotaCounts(key: string): Record<string, number> {
    return Object.fromEntries(this.quotas.get(key) ?? []);
  }
}
