// Cluster-wide edges (a channel occupied/vacated, a presence user added/removed),
// reported by one node. Every node sees the same truth (replicated interest and
// presence) and feeds it here; only the key's owner reports. An addition is reported
// at once; a removal after `removalDelayMs`, and not at all when the addition comes
// back within the delay (Pusher's 3 s vacated/member_removed delay).
//
// Every node — owner or not — remembers removals still within their delay, so when
// ownership moves (a node died, joined, or a peer's snapshot arrived) the new owner
// reports exactly what the old one would have: no second addition, no lost removal.
import type { ClusterEdge } from './ports.js';

export interface EdgeSettings {
  /** how long a removal waits for its addition to come back (webhooks.vacated_delay_ms) */
  removalDelayMs: number;
}

interface Pending {
  readonly edge: ClusterEdge;
  readonly owner: string;
  readonly dueAt: number;
}

/** Owner key of an edge: a channel's edges (occupancy and members) all have one owner. */
export const ownerKeyOf = (appId: string, channel: string): string => JSON.stringify([appId, channel]);

/** An injective key per edge subject (never split again). */
const keyOf = (e: ClusterEdge): string =>
  e.kind === 'channel' ? JSON.stringify(['c', e.appId, e.channel]) : JSON.stringify(['m', e.appId, e.channel, e.userId]);

export interface PendingRemoval {
  readonly edge: ClusterEdge;
  readonly remainingMs: number;
}

export class EdgeEmitter {
  /** removals within their delay, in due order (insertion order: the delay is constant) */
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;
  /** false while this node does not yet know the cluster's state (it reports nothing) */
  private live = true;

  constructor(
    private readonly settings: EdgeSettings,
    private readonly owns: (ownerKey: string) => boolean,
    private readonly report: (edge: ClusterEdge) => void,
  ) {}

  /** While muted (a node still learning its peers' state) changes are tracked but not reported. */
  setLive(live: boolean): void {
    this.live = live;
  }

  /** The truth about a subject changed: `edge.present` is what holds now. */
  changed(edge: ClusterEdge): void {
    const key = keyOf(edge);
    const owner = ownerKeyOf(edge.appId, edge.channel);
    if (edge.present) {
      // Back within the delay: the removal is cancelled and neither is reported.
      if (this.pending.delete(key)) return;
      if (this.live && this.owns(owner)) this.report(edge);
      return;
    }
    if (this.settings.removalDelayMs <= 0) {
      if (this.live && this.owns(owner)) this.report(edge);
      return;
    }
    this.pending.delete(key);
    this.pending.set(key, { edge, owner, dueAt: Date.now() + this.settings.removalDelayMs });
    this.arm();
  }

  /** Removals still waiting (a peer's snapshot carries them to a node that joins). */
  pendingRemovals(now = Date.now()): PendingRemoval[] {
    return [...this.pending.values()].map((p) => ({ edge: p.edge, remainingMs: Math.max(0, p.dueAt - now) }));
  }

  /** Learns removals a peer is waiting out; what this node already tracks wins. */
  adoptPending(removals: readonly PendingRemoval[]): void {
    const now = Date.now();
    for (const r of removals) {
      if (r.edge.present) continue;
      const key = keyOf(r.edge);
      if (this.pending.has(key)) continue;
      // Inserted out of due order: the sweep checks every entry's own due time.
      this.pending.set(key, { edge: r.edge, owner: ownerKeyOf(r.edge.appId, r.edge.channel), dueAt: now + r.remainingMs });
    }
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.pending.size === 0) return;
    const first = this.pending.values().next().value!;
    this.timer = setTimeout(() => this.sweep(), Math.max(1, first.dueAt - Date.now()));
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = null;
    const now = Date.now();
    let nextDue = Infinity;
    for (const [key, p] of this.pending) {
      if (p.dueAt > now) {
        nextDue = Math.min(nextDue, p.dueAt);
        continue;
      }
      this.pending.delete(key);
      if (this.live && this.owns(p.owner)) this.report(p.edge);
    }
    if (nextDue !== Infinity) {
      this.timer = setTimeout(() => this.sweep(), Math.max(1, nextDue - Date.now()));
      this.timer.unref();
    }
  }

  /** Reports every waiting removal now (a drain: the node is about to leave). */
  flush(): void {
    for (const [key, p] of this.pending) {
      this.pending.delete(key);
      if (this.live && this.owns(p.owner)) this.report(p.edge);
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
  }
}
