// The replicated cluster state: presence members, signed-in users and channel
// interest of every node, this one included. Own changes apply at once and go to
// the peers as numbered delta batches. An addition (a channel held, a member or user
// joined) goes out at once, before the client hears it succeeded, so no peer can see
// a later change before it; a removal waits a few milliseconds and nets out against
// an addition that follows (a subscribe/unsubscribe flood costs the bus nothing).
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

  constructor(
    readonly selfId: string,
    edges: EdgeEmitter,
    private readonly peers: ReplicaPeers,
  ) {
    this.feed = new EdgeFeed(edges);
    this.users = new UsersReplica((appId, userId, online) => this.node?.userPresenceChanged(appId, userId, online));
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
    this.queue(['pl', appId, channel, userId]);
    if (gone) this.feed.feed({ kind: 'member', appId, channel, userId, present: false }, true);
    return gone;
  }

  setInterest(appId: string, channel: string, held: boolean): void {
    const before = this.interest.holds(this.selfId, appId, channel);
    this.own = true;
    const changed = this.interest.set(this.selfId, appId, channel, held);
    this.own = false;
    if (!changed) return;
    const key = JSON.stringify([appId, channel]);
    if (!this.dirtyInterest.has(key)) this.dirtyInterest.set(key, { appId, channel, announced: before });
    if (held) this.flush();
    else this.schedule();
  }

  setSignedIn(appId: string, userId: string, signedIn: boolean): boolean {
    const key = JSON.stringify([appId, userId]);
    const wasOnline = this.users.isOnline(appId, userId);
    const changed = this.users.set(this.selfId, appId, userId, signedIn);
    if (changed && !this.dirtyUsers.has(key)) this.dirtyUsers.set(key, { appId, userId, announced: !signedIn });
    if (changed && signedIn) this.flush();
    else if (changed) this.schedule();
    return signedIn ? !wasOnline && this.users.isOnline(appId, userId) : wasOnline && !this.users.isOnline(appId, userId);
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
