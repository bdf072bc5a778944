// Feeds the edge emitter in the order the broker saw the changes. A removal made
// here is applied to this node's replica at once (its reads must see it), but it
// reaches the emitter only when its own delta comes back from the broker: a peer's
// addition the broker carried before it is then seen first, as every other node
// sees it. Otherwise the owner's own quick leave could make a channel look empty
// for a moment while a peer's earlier join is still on its way (a spurious
// vacated/occupied pair). Additions go to the emitter at once; one that follows a
// removal still waiting for its echo cancels both.
import type { EdgeEmitter } from '../edges.js';
import type { ClusterEdge } from '../ports.js';

interface Deferred {
  readonly edge: ClusterEdge;
  /** the delta batch that carries it, once sent */
  seq: number | null;
  readonly at: number;
}

const keyOf = (e: ClusterEdge): string =>
  e.kind === 'channel' ? JSON.stringify(['c', e.appId, e.channel]) : JSON.stringify(['m', e.appId, e.channel, e.userId]);

export class EdgeFeed {
  private readonly deferred = new Map<string, Deferred>();

  constructor(private readonly edges: EdgeEmitter) {}

  /** A change of the truth; `own` when this node's own removal caused it. */
  feed(edge: ClusterEdge, own: boolean): void {
    const key = keyOf(edge);
    if (edge.present) {
      // The emitter never saw the removal: it still believes the subject present.
      if (this.deferred.delete(key)) return;
      this.edges.changed(edge);
      return;
    }
    if (own) this.deferred.set(key, { edge, seq: null, at: Date.now() });
    else this.edges.changed(edge);
  }

  /** The own removals not yet sent travel in batch `seq`. */
  sent(seq: number): void {
    for (const d of this.deferred.values()) if (d.seq === null) d.seq = seq;
  }

  /** Our own batch `seq` came back from the broker: its removals (and earlier ones) apply now. */
  echoed(seq: number): void {
    for (const [key, d] of this.deferred) {
      if (d.seq === null || d.seq > seq) continue;
      this.deferred.delete(key);
      this.edges.changed(d.edge);
    }
  }

  /** Without an echo (the broker is down), removals apply after `maxWaitMs` anyway. */
  expire(maxWaitMs: number, now = Date.now()): void {
    for (const [key, d] of this.deferred) {
      if (now - d.at < maxWaitMs) continue;
      this.deferred.delete(key);
      this.edges.changed(d.edge);
    }
  }

  /** Everything waiting applies now (the node is leaving). */
  drain(): void {
    for (const [key, d] of this.deferred) {
      this.deferred.delete(key);
      this.edges.changed(d.edge);
    }
  }
}
