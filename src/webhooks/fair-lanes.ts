// Ready webhook jobs in lanes: one per app, and inside it one per origin.
// `take` serves apps round-robin and, inside an app, origins round-robin,
// skipping lanes whose origin cannot start a request now; so one app's backlog
// (or one app's dead endpoint) never stands in front of another's jobs.

/** FIFO with O(1) amortised shift. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    // Compact once the dead prefix is half the array.
    if (this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

export class FairLanes<T> {
  /** Map order is the round-robin order: a served app (and lane) moves to the back. */
  private readonly apps = new Map<string, Map<string, Fifo<T>>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(appId: string, lane: string, item: T): void {
    let lanes = this.apps.get(appId);
    if (!lanes) this.apps.set(appId, (lanes = new Map<string, Fifo<T>>()));
    let fifo = lanes.get(lane);
    if (!fifo) lanes.set(lane, (fifo = new Fifo()));
    fifo.push(item);
    this.count++;
  }

  /** The next item whose lane `ready` accepts, or null when there is none. */
  take(ready: (lane: string) => boolean): T | null {
    for (const [appId, lanes] of this.apps) {
      for (const [lane, fifo] of lanes) {
        if (!ready(lane)) continue;
        const item = fifo.shift() as T;
        this.count--;
        lanes.delete(lane);
        if (fifo.size > 0) lanes.set(lane, fifo);
        this.apps.delete(appId);
        if (lanes.size > 0) this.apps.set(appId, lanes);
        return item;
      }
    }
    return null;
  }

  clear(): void {
    this.apps.clear();
    this.count = 0;
  }
}
