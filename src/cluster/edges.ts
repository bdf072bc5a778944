// Cluster-wide edges (a channel occupied/vacated, a presence user added/removed),
// reported by one node. Every node sees the same truth (replicated interest and
// presence) and feeds it here; only the key's owner reports. An addition is reported
// at once; a removal after `removalDelayMs`, and not at all when the addition comes
// back within the delay (Pusher's 3 s vacated/member_removed delay).
//
// Every node — owner or not — remembers removals still within their delay, so when
// ownership moves (a node died, joined, or a peer's snapshot arrived) the new owner
// reports exactly what the old one would have. A removal that fell due while its
// owner was already dead but not yet declared so is kept a little longer: when that
// owner is declared lost, the next owner reports it unless the dead node was seen
// alive after the removal was due (it reported it then).
import { DueList } from './due-list.js';
import type { ClusterEdge } from './ports.js';

export interface EdgeSettings {
  /** how long a removal waits for its addition to come back (webhooks.vacated_delay_ms) */
  removalDelayMs: number;
}

export interface Ownership {
  /** the node that owns a key now */
  ownerOf(ownerKey: string): string;
  readonly selfId: string;
  /** true when this node owns every key (one node): no key is made to ask */
  readonly ownsAll?: boolean;
}

interface Pending {
  readonly edge: ClusterEdge;
  readonly owner: string;
  readonly dueAt: number;
}

interface Overdue extends Pending {
  /** the node that owned the key when it fell due */
  readonly dueOwner: string;
  readonly keepUntil: number;
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
  /** removals within their delay */
  private readonly pending = new DueList<Pending>((p) => p.dueAt);
  /** removals that fell due owned by another node, kept until that node is known alive or lost */
  private readonly overdue = new DueList<Overdue>((o) => o.keepUntil);
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;

  constructor(
    private readonly settings: EdgeSettings & { overdueGraceMs?: number },
    private readonly ownership: Ownership,
    private readonly report: (edge: ClusterEdge) => void,
  ) {}

  private mine(ownerKey: string): boolean {
    return this.ownership.ownsAll === true || this.ownership.ownerOf(ownerKey) === this.ownership.selfId;
  }

  private mineEdge(edge: ClusterEdge): boolean {
    return this.ownership.ownsAll === true || this.mine(ownerKeyOf(edge.appId, edge.channel));
  }

  /** The truth about a subject changed: `edge.present` is what holds now. */
  changed(edge: ClusterEdge): void {
    if (edge.present) {
      // Nothing waits (a channel's first subscriber on a quiet node): no key to look up.
      if (this.pending.size !== 0 || this.overdue.size !== 0) {
        const key = keyOf(edge);
        this.overdue.delete(key);
        // Back within the delay: the removal is cancelled and neither is reported.
        if (this.pending.delete(key)) return;
      }
      if (this.mineEdge(edge)) this.report(edge);
      return;
    }
    if (this.settings.removalDelayMs <= 0) {
      if (this.mineEdge(edge)) this.report(edge);
      return;
    }
    const key = keyOf(edge);
    const owner = ownerKeyOf(edge.appId, edge.channel);
    const dueAt = Date.now() + this.settings.removalDelayMs;
    this.pending.set(key, { edge, owner, dueAt });
    this.schedule(dueAt);
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
      this.pending.set(key, { edge: r.edge, owner: ownerKeyOf(r.edge.appId, r.edge.channel), dueAt: now + r.remainingMs });
    }
    this.arm();
  }

  /**
   * A node was declared lost, last heard of at `lastSeen`: removals that fell due on its
   * watch after that moment were never reported; the next owner reports them now.
   */
  nodeLost(nodeId: string, lastSeen: number): void {
    for (const [key, o] of this.overdue) {
      if (o.dueOwner !== nodeId) continue;
      this.overdue.delete(key);
      if (o.dueAt > lastSeen && this.mine(o.owner)) this.report(o.edge);
    }
  }

  /**
   * The sweep runs at the earliest time anything waits for. A timer already set for later
   * (an overdue removal kept for node_timeout_ms) is moved forward: a new removal must not
   * wait for it.
   */
  private arm(): void {
    this.schedule(Math.min(this.pending.earliest(), this.overdue.earliest()));
  }

  /** While anything waits, a timer is set no later than its time (every insertion schedules its own). */
  private schedule(at: number): void {
    if (at === Infinity || (this.timer && this.timerAt <= at)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.sweep(), Math.max(1, at - Date.now()));
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = null;
    const now = Date.now();
    const nextPending = this.pending.sweep(now, (key, p) => {
      const dueOwner = this.ownership.ownerOf(p.owner);
      if (dueOwner === this.ownership.selfId) this.report(p.edge);
      else {
        const keepUntil = now + (this.settings.overdueGraceMs ?? 0);
        if (keepUntil > now) this.overdue.set(key, { ...p, dueOwner, keepUntil });
      }
    });
    const nextOverdue = this.overdue.sweep(now, () => undefined);
    this.schedule(Math.min(nextPending, nextOverdue));
  }

  /** Reports every waiting removal now (a node that nobody takes over from is stopping). */
  flush(): void {
    for (const [key, p] of this.pending) {
      this.pending.delete(key);
      if (this.mine(p.owner)) this.report(p.edge);
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
    this.overdue.clear();
  }
}
