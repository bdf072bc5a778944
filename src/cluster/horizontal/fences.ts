// Read-your-peers'-writes for decisions on replicated counts (the presence member limit):
// a fence is a message this node sends on the cluster topic, where every node's state
// changes travel; when it comes back, every change the broker carried before it has been
// applied here. A client told by one node that it joined is, from then on, counted by a
// node that settles first — as one server would count it.
//
// Callers within one turn of the event loop share one fence (sent at the end of the turn,
// so it leaves after each of them arrived). A fence the broker never returns (down, or
// dropped) resolves after its bound: the caller decides on what it holds, as without one.

/** Resolves anyway after this long: a fence waits for one broker round trip, not an outage. */
export const FENCE_TIMEOUT_MS = 1000;

interface InFlight {
  readonly resolvers: Array<() => void>;
  readonly timer: NodeJS.Timeout;
}

export interface FenceLink {
  /** peers to settle with: none means nothing is in flight to this node */
  hasPeers(): boolean;
  /** the broker carries messages now */
  brokerUp(): boolean;
  /** puts the fence on the cluster topic */
  send(id: number): void;
}

export class Fences {
  private nextId = 1;
  /** callers of this turn, waiting for the fence to be sent */
  private gathering: Array<() => void> | null = null;
  private readonly inFlight = new Map<number, InFlight>();

  constructor(
    private readonly link: FenceLink,
    private readonly timeoutMs = FENCE_TIMEOUT_MS,
  ) {}

  /** False when nothing can be on its way to this node (no peers) or nothing can come (the broker is down). */
  get active(): boolean {
    return this.link.hasPeers() && this.link.brokerUp();
  }

  /** Undefined when there is nothing to wait for; else resolves at the fence's echo (never rejects). */
  settle(): Promise<void> | undefined {
    if (!this.active) return undefined;
    return new Promise((resolve) => {
      if (this.gathering) {
        this.gathering.push(resolve);
        return;
      }
      this.gathering = [resolve];
      setImmediate(() => this.sendGathered());
    });
  }

  /** Our fence `id` came back from the broker. */
  echoed(id: number): void {
    const f = this.inFlight.get(id);
    if (!f) return;
    this.inFlight.delete(id);
    clearTimeout(f.timer);
    // Fences come back in the order they were sent: an earlier one still out was dropped.
    for (const [earlier, g] of this.inFlight) if (earlier < id) this.release(earlier, g);
    for (const r of f.resolvers) r();
  }

  /** Everyone waiting goes on (the node stops, or the broker went down). */
  releaseAll(): void {
    for (const [id, f] of this.inFlight) this.release(id, f);
    const gathered = this.gathering;
    this.gathering = null;
    if (gathered) for (const r of gathered) r();
  }

  get waiting(): number {
    return this.inFlight.size;
  }

  private sendGathered(): void {
    const resolvers = this.gathering;
    this.gathering = null;
    if (!resolvers) return;
    if (!this.link.brokerUp()) {
      for (const r of resolvers) r();
      return;
    }
    const id = this.nextId++;
    const timer = setTimeout(() => {
      const f = this.inFlight.get(id);
      if (f) this.release(id, f);
    }, this.timeoutMs);
    this.inFlight.set(id, { resolvers, timer });
    this.link.send(id);
  }

  private release(id: number, f: InFlight): void {
    this.inFlight.delete(id);
    clearTimeout(f.timer);
    for (const r of f.resolvers) r();
  }
}
