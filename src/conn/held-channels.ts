// The channels one connection holds, with their subscriptions. Almost every connection
// holds one or two (its own channel, a shared one): those sit in the object itself, and a
// Map is made only for a third. A Map per connection was ~180 bytes of the ~800 a
// connection cost in the heap (bench/README.md, "Memory per connection").

/** A connection's hold on one channel. */
export interface Subscription {
  /** presence user id, null on other channel types */
  readonly userId: string | null;
  /** false while the cluster confirms cross-node delivery */
  ready: boolean;
  /** on the channel's numbered topic (opted-in connections on history channels, once resumed) */
  numbered?: boolean;
}

export class HeldChannels {
  // Invariant: the inline slots fill first and hold the oldest entries (k0 before k1), so
  // keys() is in insertion order like a Map's; `more` is null when empty.
  private k0: string | null = null;
  private v0: Subscription | null = null;
  private k1: string | null = null;
  private v1: Subscription | null = null;
  private more: Map<string, Subscription> | null = null;

  get size(): number {
    return (this.k0 === null ? 0 : 1) + (this.k1 === null ? 0 : 1) + (this.more === null ? 0 : this.more.size);
  }

  get(channel: string): Subscription | undefined {
    if (this.k0 === channel) return this.v0!;
    if (this.k1 === channel) return this.v1!;
    return this.more === null ? undefined : this.more.get(channel);
  }

  has(channel: string): boolean {
    return this.get(channel) !== undefined;
  }

  /** Adds the channel, or replaces its subscription (keeping its place). */
  set(channel: string, sub: Subscription): void {
    if (this.k0 === channel) this.v0 = sub;
    else if (this.k1 === channel) this.v1 = sub;
    else if (this.more !== null) this.more.set(channel, sub);
    else if (this.k0 === null) {
      this.k0 = channel;
      this.v0 = sub;
    } else if (this.k1 === null) {
      this.k1 = channel;
      this.v1 = sub;
    } else this.more = new Map([[channel, sub]]);
  }

  delete(channel: string): boolean {
    if (this.k0 === channel) {
      // The second slot moves up and the oldest of `more` takes its place: order is kept.
      this.k0 = this.k1;
      this.v0 = this.v1;
      this.k1 = null;
      this.v1 = null;
      this.refill();
      return true;
    }
    if (this.k1 === channel) {
      this.k1 = null;
      this.v1 = null;
      this.refill();
      return true;
    }
    if (this.more === null || !this.more.delete(channel)) return false;
    if (this.more.size === 0) this.more = null;
    return true;
  }

  /** The channels, oldest first (a copy: safe to change the set while going through it). */
  keys(): string[] {
    const out: string[] = [];
    if (this.k0 !== null) out.push(this.k0);
    if (this.k1 !== null) out.push(this.k1);
    if (this.more !== null) for (const k of this.more.keys()) out.push(k);
    return out;
  }

  /** Moves the oldest of `more` into a free inline slot (k1 is the only one that can be free). */
  private refill(): void {
    if (this.more === null) return;
    const first = this.more.entries().next();
    if (first.done) return;
    const [channel, sub] = first.value;
    this.more.delete(channel);
    if (this.k0 === null) {
      this.k0 = channel;
      this.v0 = sub;
    } else {
      this.k1 = channel;
      this.v1 = sub;
    }
    if (this.more.size === 0) this.more = null;
  }
}
