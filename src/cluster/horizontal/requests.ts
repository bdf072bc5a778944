// Requests to every live peer with a deadline: a request waits for exactly the
// peers that were live when it was sent, stops waiting for one that dies, and
// resolves with what arrived when the deadline passes. It never rejects.

interface Pending {
  waiting: Set<string>;
  answers: Map<string, unknown>;
  timer: NodeJS.Timeout;
  resolve(answers: Map<string, unknown>): void;
}

export class RequestTracker {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** requests that resolved without every answer (for metrics) */
  incomplete = 0;

  constructor(private readonly timeoutMs: number) {}

  /** Registers a request to `peers`; `send(id)` puts it on the bus. */
  ask(peers: readonly string[], send: (id: number) => void): Promise<Map<string, unknown>> {
    if (peers.length === 0) return Promise.resolve(new Map<string, unknown>());
    const id = this.nextId++;
    return new Promise((resolve) => {
      const entry: Pending = {
        waiting: new Set(peers),
        answers: new Map(),
        resolve,
        timer: setTimeout(() => {
          this.pending.delete(id);
          this.incomplete++;
          resolve(entry.answers);
        }, this.timeoutMs),
      };
      this.pending.set(id, entry);
      send(id);
    });
  }

  answer(id: number, from: string, value: unknown): void {
    const entry = this.pending.get(id);
    // Only the peers asked may answer, once each.
    if (!entry || !entry.waiting.has(from)) return;
    entry.answers.set(from, value);
    entry.waiting.delete(from);
    this.settleIfDone(id, entry);
  }

  /** A peer died: nobody waits for it any longer. */
  forget(peer: string): void {
    for (const [id, entry] of this.pending) {
      if (entry.waiting.delete(peer)) this.settleIfDone(id, entry);
    }
  }

  private settleIfDone(id: number, entry: Pending): void {
    if (entry.waiting.size > 0) return;
    clearTimeout(entry.timer);
    this.pending.delete(id);
    entry.resolve(entry.answers);
  }

  close(): void {
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      this.pending.delete(id);
      entry.resolve(entry.answers);
    }
  }
}
