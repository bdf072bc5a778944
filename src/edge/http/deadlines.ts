// Deadlines for request bodies, on one shared timer instead of one per request: a
// timer per request (created, then cleared a moment later when the body arrives) was
// about 3% of an HTTP publish's CPU. Checked every TICK_MS, so a deadline fires up to
// that much late; the body timeout is seconds long. The pending deadlines form a list
// threaded through the deadlines themselves: adding and cancelling touch two links and
// allocate nothing (a Set's hashing was ~2% of a publish).

const TICK_MS = 250;

export interface Deadline {
  /** ms timestamp */
  readonly at: number;
  fire(): void;
  /** the wheel's links; null while not pending */
  prevDeadline: Deadline | null;
  nextDeadline: Deadline | null;
}

/** The list's two ends: a sentinel that is never fired. */
class Sentinel implements Deadline {
  readonly at = Infinity;
  prevDeadline: Deadline | null = this;
  nextDeadline: Deadline | null = this;
  fire(): void {}
}

class DeadlineWheel {
  private readonly ends = new Sentinel();
  private count = 0;
  private timer: NodeJS.Timeout | null = null;
  private arming = false;

  /** `fire` runs once, at or up to TICK_MS after `afterMs`, unless cancelled first. */
  add(afterMs: number, fire: () => void): Deadline {
    const d: Deadline = { at: Date.now() + afterMs, fire, prevDeadline: null, nextDeadline: null };
    this.insert(d);
    return d;
  }

  /** An object that is its own deadline (no closure and no wrapper per request). */
  insert(d: Deadline): void {
    if (d.nextDeadline !== null) return;
    const last = this.ends.prevDeadline!;
    d.prevDeadline = last;
    d.nextDeadline = this.ends;
    last.nextDeadline = d;
    this.ends.prevDeadline = d;
    this.count++;
    if (this.timer === null && !this.arming) {
      this.arming = true;
      setImmediate(this.arm);
    }
  }

  /**
   * Started after the turn that added a deadline, and only if one is still pending: most bodies
   * come whole in the packet with their headers and are done within it. Started at once, the
   * timer would wake an otherwise idle loop 250 ms after each lone request, and a node woken
   * between publishes fans out later (metrics/loop-lag.ts says why).
   */
  private readonly arm = (): void => {
    this.arming = false;
    if (this.count === 0 || this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    // Pending bodies alone do not keep the process alive (as the per-request timers did not stop a drain).
    this.timer.unref();
  };

  /** whether the wheel's timer runs (tests) */
  get ticking(): boolean {
    return this.timer !== null;
  }

  cancel(d: Deadline): void {
    const prev = d.prevDeadline;
    const next = d.nextDeadline;
    if (prev === null || next === null) return;
    prev.nextDeadline = next;
    next.prevDeadline = prev;
    d.prevDeadline = d.nextDeadline = null;
    this.count--;
  }

  get pending(): number {
    return this.count;
  }

  private tick(): void {
    const now = Date.now();
    // Found first, fired after: a fire may cancel (or add) other deadlines, due ones included.
    const due: Deadline[] = [];
    for (let d = this.ends.nextDeadline!; d !== this.ends; d = d.nextDeadline!) if (d.at <= now) due.push(d);
    for (const d of due) {
      if (d.nextDeadline === null) continue; // cancelled by an earlier one's fire
      this.cancel(d);
      try {
        d.fire();
      } catch {
        // A body's timeout answers its own request; one failing must not stop the others'.
      }
    }
    if (this.count === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

/** The node's one wheel for body deadlines. */
export const bodyDeadlines = new DeadlineWheel();
