// Deadlines for request bodies, on one shared timer instead of one per request: a
// timer per request (created, then cleared a moment later when the body arrives) was
// about 3% of an HTTP publish's CPU. Checked every TICK_MS, so a deadline fires up to
// that much late; the body timeout is seconds long.

const TICK_MS = 250;

export interface Deadline {
  readonly at: number;
  readonly fire: () => void;
}

class DeadlineWheel {
  private readonly pending = new Set<Deadline>();
  private timer: NodeJS.Timeout | null = null;

  /** `fire` runs once, at or up to TICK_MS after `afterMs`, unless cancelled first. */
  add(afterMs: number, fire: () => void): Deadline {
    const d: Deadline = { at: Date.now() + afterMs, fire };
    this.pending.add(d);
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), TICK_MS);
      // Pending bodies alone do not keep the process alive (as the per-request timers did not stop a drain).
      this.timer.unref();
    }
    return d;
  }

  cancel(d: Deadline): void {
    this.pending.delete(d);
  }

  private tick(): void {
    const now = Date.now();
    for (const d of this.pending) {
      if (d.at > now) continue;
      this.pending.delete(d);
      try {
        d.fire();
      } catch {
        // A body's timeout answers its own request; one failing must not stop the others'.
      }
    }
    if (this.pending.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

/** The node's one wheel for body deadlines. */
export const bodyDeadlines = new DeadlineWheel();
