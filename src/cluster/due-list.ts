// Entries keyed by subject, each with a time it falls due, swept in insertion order. With a
// constant delay every new entry is due no earlier than the one before, so the list stays
// in due order and a sweep stops at the first entry not due yet: a mass disconnect of n
// channels costs O(n), not a scan of the whole list per removal and per sweep (O(n²)). An
// entry that breaks the order (a peer's removals adopted with their own remaining time, a
// wall clock set back) makes sweeps scan the whole list until it is empty again.
export class DueList<T> {
  private readonly entries = new Map<string, T>();
  private latest = -Infinity;
  private ordered = true;

  constructor(private readonly dueOf: (entry: T) => number) {}

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  delete(key: string): boolean {
    return this.entries.delete(key);
  }

  /** Sets the key's entry, moving it to the end (its new due time is the latest). */
  set(key: string, entry: T): void {
    this.entries.delete(key);
    const due = this.dueOf(entry);
    if (due < this.latest) this.ordered = false;
    else this.latest = due;
    this.entries.set(key, entry);
  }

  values(): IterableIterator<T> {
    return this.entries.values();
  }

  [Symbol.iterator](): IterableIterator<[string, T]> {
    return this.entries[Symbol.iterator]();
  }

  /** The earliest due time of any entry (Infinity when empty). */
  earliest(): number {
    if (this.ordered) {
      for (const entry of this.entries.values()) return this.dueOf(entry);
      return Infinity;
    }
    let next = Infinity;
    for (const entry of this.entries.values()) next = Math.min(next, this.dueOf(entry));
    return next;
  }

  /** Takes out every entry due by `now`, handing each to `take`; returns the earliest due time left. */
  sweep(now: number, take: (key: string, entry: T) => void): number {
    let next = Infinity;
    for (const [key, entry] of this.entries) {
      const due = this.dueOf(entry);
      if (due > now) {
        if (this.ordered) return due;
        next = Math.min(next, due);
        continue;
      }
      this.entries.delete(key);
      take(key, entry);
    }
    if (this.entries.size === 0) this.clear();
    return next;
  }

  clear(): void {
    this.entries.clear();
    this.latest = -Infinity;
    this.ordered = true;
  }
}
