// The replicated cluster state: presence members, signed-in users and channel
// interest of every node, this one included. Own changes apply at once and go to
// the peers as numbered delta batches. An addition (a channel held, a member or user
// joined) goes out at once, before the client hears it succeeded, so no peer can see
// a later change before it; a removal waits a few milliseconds and nets out against
// an addition that follows (a subscribe/unsubscribe flood costs the bus nothing), but a
// member's last socket leaving goes out at once, ahead of the member_removed its caller sends.
// Own sign-outs reach the watchers at their echo, as own removals reach the edge emitter.
// Peers' batches apply in sequence order. Snapshots carry a node's whole part; heartbeats carry a
// digest of it, and a mismatch (or a sequence gap) fetches a snapshot: anti-entropy.
import type { EdgeEmitter } from '../edges.js';
import { PresenceBook } from '../presence-book.js';
import type { ClusterNode, MemberRef, MemberWithInfo } from '../ports.js';
import { EdgeFeed } from './edge-feed.js';
import { InterestReplica } from './interest.js';
import { UsersReplica } from './users.js';
import type { DeltaOp, MessageOf, Outgoing, PendingWire } from './wire.js';

/** How long own changes wait to be sent together. */
export const DELTA_FLUSH_MS = 5;

export interface ReplicaPeers {
  /** a live peer (deltas of unknown nodes are dropped until their snapshot) */
  isLive(nodeId: string): boolean;
  send(message: Outgoing, to?: string): void;
}

export class Replica {
  readonly book = new PresenceBook();
  readonly users: UsersReplica;
  readonly interest: InterestReplica;
  private node: ClusterNode | null = null;
  private seq = 0;
  /** peer -> highest sequence number applied from it */
  private readonly applied = new Map<string, number>();
  /** own presence ops not yet sent, in order */
  private ops: DeltaOp[] = [];
  /** own interest and sign-in changes since the last batch: what the peers believe (the value before the first change) */
  private readonly dirtyInterest = new Map<string, { appId: string; channel: string; announced: boolean }>();
  private readonly dirtyUsers = new Map<string, { appId: string; userId: string; announced: boolean }>();
  private flushTimer: NodeJS.Timeout | null = null;
  /** peers whose first snapshot has not arrived yet */
  readonly awaitingSnapshot = new Set<string>();
  readonly feed: EdgeFeed;
  /** true while this node's own change is applied (its removals wait for their echo) */
  private own = false;
  /** true while this node's own sign-in or sign-out is applied */
  private ownSignIn = false;
  /**
   * Users this node's sign-out took offline, not reported yet: reported when the batch carrying
   * the sign-out comes back from the broker (as own presence removals, edge-feed.ts), so a peer's
   * sign-in the broker carried first is seen first, as every peer sees it (no offline/online
   * flap for a user who signs in elsewhere, then closes here). Until then the user counts online.
   */
  private readonly offlineUnsaid = new Map<string, { appId: string; userId: string; seq: number | null; at: number }>();

  constructor(
    readonly selfId: string,
    edges: EdgeEmitter,
    private readonly peers: ReplicaPeers,
  ) {
    this.feed = new EdgeFeed(edges);
    // A peer's sign-in or sign-out only: an own one is reported by its caller (setSignedIn's
    // answer) or at its echo; reported here too, local watchers would hear it twice.
    this.users = new UsersReplica((appId, userId, online) => {
      if (this.ownSignIn) return;
      // A peer's sign-in while this node's sign-out of the user awaits its echo: the watchers never heard it leave.
      if (online && this.offlineUnsaid.delete(JSON.stringify([appId, userId]))) return;
      this.node?.userPresenceChanged(appId, userId, online);
    });
    this.interest = new InterestReplica((appId, channel, occupied) =>
      this.feed.feed({ kind: 'channel', appId, channel, present: occupied }, this.own),
    );
  }

  attach(node: ClusterNode): void {
    this.node = node;
  }

  /** The digest a heartbeat carries: presence, users and interest of a node. */
  digestOf(nodeId: string): number {
    return (this.book.digestOf(nodeId) + this.users.digestOf(nodeId) + this.interest.digestOf(nodeId)) >>> 0;
  }

  get sequence(): number {
    return this.seq;
  }

  appliedFrom(nodeId: string): number {
    return this.applied.get(nodeId) ?? 0;
  }

  // own changes

  presenceJoin(appId: string, channel: string, userId: string, info: unknown): boolean {
    const isNew = this.book.join(appId, channel, this.selfId, userId, info);
    this.ops.push(['pj', appId, channel, userId, info]);
    this.flush();
    if (isNew) this.feed.feed({ kind: 'member', appId, channel, userId, present: true }, true);
    return isNew;
  }

  presenceLeave(appId: string, channel: string, userId: string): boolean {
    const gone = this.book.leave(appId, channel, this.selfId, userId);
    if (!gone) {
      this.queue(['pl', appId, channel, userId]);
      return false;
    }
    this.feed.feed({ kind: 'member', appId, channel, userId, present: false }, true);
    // The member's last socket: the caller tells the channel's subscribers (member_removed) next,
    // and every peer must hold the removal by then (a peer's client, told, may take its place).
    this.ops.push(['pl', appId, channel, userId]);
    this.flush();
    return true;
  }

  /** True when a batch announcing a new hold went out now (its sender may wait for it to be routed). */
  setInterest(appId: string, channel: string, held: boolean): boolean {
    const before = this.interest.holds(this.selfId, appId, channel);
    this.own = true;
    const changed = this.interest.set(this.selfId, appId, channel, held);
    this.own = false;
    if (!changed) return false;
    const key = JSON.stringify([appId, channel]);
    if (!this.dirtyInterest.has(key)) this.dirtyInterest.set(key, { appId, channel, announced: before });
    if (!held) {
      this.schedule();
      return false;
    }
    const sent = this.seq;
    this.flush();
    return this.seq !== sent;
  }

  /** Online as this node reports it: a sign-out of this node not reported yet still counts online. */
  isOnline(appId: string, userId: string): boolean {
    return this.users.isOnline(appId, userId) || this.offlineUnsaid.has(JSON.stringify([appId, userId]));
  }

  /** True when the user came online now (to be reported by the caller); a sign-out is reported at its echo. */
  setSignedIn(appId: string, userId: string, signedIn: boolean): boolean {
    const key = JSON.stringify([appId, userId]);
    const wasOnline = this.isOnline(appId, userId);
    this.ownSignIn = true;
    const changed = this.users.set(this.selfId, appId, userId, signedIn);
    this.ownSignIn = false;
    if (changed && !this.dirtyUsers.has(key)) this.dirtyUsers.set(key, { appId, userId, announced: !signedIn });
    if (changed && signedIn) this.flush();
    else if (changed) this.schedule();
    if (signedIn) {
      // Back before its sign-out was reported: the watchers never heard it leave.
      if (this.offlineUnsaid.delete(key)) return false;
      return !wasOnline && this.users.isOnline(appId, userId);
    }
    if (wasOnline && !this.users.isOnline(appId, userId)) this.offlineUnsaid.set(key, { appId, userId, seq: null, at: Date.now() });
    return false;
  }

  /** Our own batch `seq` came back from the broker: the removals it carries (and earlier ones) are reported now. */
  echoed(seq: number): void {
    this.feed.echoed(seq);
    for (const [key, u] of this.offlineUnsaid) if (u.seq !== null && u.seq <= seq) this.sayOffline(key);
  }

  /** Without an echo (the broker is down), own removals are reported after `maxWaitMs` anyway. */
  expire(maxWaitMs: number, now = Date.now()): void {
    this.feed.expire(maxWaitMs, now);
    for (const [key, u] of this.offlineUnsaid) if (now - u.at >= maxWaitMs) this.sayOffline(key);
  }

  /** Every own removal waiting is reported now (the node is leaving). */
  drain(): void {
    this.feed.drain();
    for (const key of [...this.offlineUnsaid.keys()]) this.sayOffline(key);
  }

  private sayOffline(key: string): void {
    const u = this.offlineUnsaid.get(key);
    if (!u) return;
    this.offlineUnsaid.delete(key);
    if (!this.users.isOnline(u.appId, u.userId)) this.node?.userPresenceChanged(u.appId, u.userId, false);
  }

  private queue(op: DeltaOp): void {
    this.ops.push(op);
    this.schedule();
  }

  private schedule(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), DELTA_FLUSH_MS);
    this.flushTimer.unref();
  }

  /** Sends what changed since the last batch as one numbered step. */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const ops = this.ops;
    this.ops = [];
    for (const d of this.dirtyInterest.values()) {
      const held = this.interest.holds(this.selfId, d.appId, d.channel);
      if (held !== d.announced) ops.push([held ? 'ci' : 'cx', d.appId, d.channel]);
    }
    this.dirtyInterest.clear();
    for (const d of this.dirtyUsers.values()) {
      const on = this.users.has(this.selfId, d.appId, d.userId);
      if (on !== d.announced) ops.push([on ? 'uon' : 'uoff', d.appId, d.userId]);
    }
    this.dirtyUsers.clear();
    if (ops.length === 0) return;
    this.peers.send({ t: 'd', s: ++this.seq, ops });
    this.feed.sent(this.seq);
    for (const u of this.offlineUnsaid.values()) if (u.seq === null) u.seq = this.seq;
  }

  // peers' changes

  /** A numbered batch from a peer: applied unless an earlier snapshot or batch already holds it. */
  applyDelta(m: MessageOf<'d'>): void {
    if (!this.peers.isLive(m.n)) return;
    if (m.s <= this.appliedFrom(m.n)) return;
    this.applied.set(m.n, m.s);
    for (const op of m.ops) {
      switch (op[0]) {
        case 'pj':
          if (this.book.join(op[1], op[2], m.n, op[3], op[4] ?? null)) {
            this.feed.feed({ kind: 'member', appId: op[1], channel: op[2], userId: op[3], present: true }, false);
          }
          break;
        case 'pl':
          if (this.book.leave(op[1], op[2], m.n, op[3])) {
            this.feed.feed({ kind: 'member', appId: op[1], channel: op[2], userId: op[3], present: false }, false);
          }
          break;
        case 'uon':
        case 'uoff':
          this.users.set(m.n, op[1], op[2], op[0] === 'uon');
          break;
        case 'ci':
        case 'cx':
          this.interest.set(m.n, op[1], op[2], op[0] === 'ci');
          break;
      }
    }
  }

  /** This node's whole part, for a peer (pending changes are sent first, so the sequence number covers them). */
  snapshot(pending: PendingWire[]): Outgoing {
    this.flush();
    return {
      t: 'snap',
      s: this.seq,
      e: this.book
        .entriesOf(this.selfId)
        .map((e) => [e.appId, e.channel, e.userId, e.info, e.sockets] as [string, string, string, unknown, number]),
      o: this.users.entriesOf(this.selfId),
      ch: this.interest.entriesOf(this.selfId),
      pend: pending,
    };
  }

  /** Applies a peer's snapshot; false when it is older than a batch already applied (ask again). */
  applySnapshot(m: MessageOf<'snap'>): boolean {
    if (m.s < this.appliedFrom(m.n)) return false;
    this.applied.set(m.n, m.s);
    // Still awaited while its changes are reported: the peer cannot own them yet.
    this.replaceNode(
      m.n,
      m.e.map(([appId, channel, userId, info, sockets]) => ({ appId, channel, userId, info: info ?? null, sockets })),
      m.o,
      m.ch,
    );
    this.awaitingSnapshot.delete(m.n);
    return true;
  }

  /** Forgets a node that is gone. */
  dropNode(nodeId: string): void {
    this.applied.delete(nodeId);
    this.awaitingSnapshot.delete(nodeId);
    this.replaceNode(nodeId, [], [], []);
  }

  private replaceNode(
    nodeId: string,
    entries: Parameters<PresenceBook['replaceNode']>[1],
    online: ReadonlyArray<readonly [string, string]>,
    channels: ReadonlyArray<readonly [string, string]>,
  ): void {
    const { added, removed } = this.book.replaceNode(nodeId, entries);
    this.users.replace(nodeId, online);
    this.interest.replace(nodeId, channels);
    this.memberChanges(added, removed);
  }

  private memberChanges(added: MemberWithInfo[], removed: MemberRef[]): void {
    for (const r of removed) this.feed.feed({ kind: 'member', ...r, present: false }, false);
    for (const a of added) this.feed.feed({ kind: 'member', appId: a.appId, channel: a.channel, userId: a.userId, present: true }, false);
    if (removed.length) this.node?.membersLost(removed);
    if (added.length) this.node?.membersFound(added);
  }

  close(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }
}
