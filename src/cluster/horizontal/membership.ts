// Who is in the cluster: a peer is live while its last heartbeat is younger than
// node_timeout_ms, measured on this node's clock (no clock sync needed). A node that
// restarts under the same process id is a new member; its old self is gone.
// Ownership of a key is decided by rendezvous hashing over the live members that
// say they are ready (they know the cluster's state), so when a node comes or goes
// only about 1/N of the keys move.
import { score } from '../digest.js';

export interface Peer {
  readonly nodeId: string;
  readonly processId: string;
  lastSeen: number;
  /** the peer knows the cluster's state and may own keys */
  ready: boolean;
  /** consecutive heartbeats whose digest or sequence number disagreed with our view of the peer */
  mismatches: number;
}

export type LossReason = 'timeout' | 'left' | 'restarted' | 'declared';

export interface MembershipEvents {
  joined(peer: Peer): void;
  lost(peer: Peer, reason: LossReason): void;
  /** who may own keys changed (a peer came, went, or became ready) */
  ownersChanged(): void;
}

export class Membership {
  private readonly peers = new Map<string, Peer>();
  private selfReady = false;
  private lastSweep = Date.now();

  constructor(
    readonly selfId: string,
    private readonly settings: { nodeTimeoutMs: number; cleanupIntervalMs: number; heartbeatIntervalMs: number },
    private readonly events: MembershipEvents,
    /** whether this node holds the peer's state (its snapshot arrived) */
    private readonly synced: (nodeId: string) => boolean = () => true,
  ) {}

  /** Records a sign of life; returns the peer (new peers are announced first). */
  seen(nodeId: string, processId: string, ready: boolean | undefined, now = Date.now()): Peer {
    let peer = this.peers.get(nodeId);
    if (peer) {
      peer.lastSeen = now;
      if (ready !== undefined && ready !== peer.ready) {
        peer.ready = ready;
        this.events.ownersChanged();
      }
      return peer;
    }
    for (const other of [...this.peers.values()]) {
      if (other.processId === processId) this.drop(other, 'restarted');
    }
    peer = { nodeId, processId, lastSeen: now, ready: ready ?? false, mismatches: 0 };
    this.peers.set(nodeId, peer);
    this.events.joined(peer);
    this.events.ownersChanged();
    return peer;
  }

  /** A message from a known peer other than a heartbeat: also a sign of life. */
  touch(nodeId: string, now = Date.now()): boolean {
    const peer = this.peers.get(nodeId);
    if (peer) peer.lastSeen = now;
    return peer !== undefined;
  }

  left(nodeId: string): void {
    const peer = this.peers.get(nodeId);
    if (peer) this.drop(peer, 'left');
  }

  /** A peer someone authoritative declared gone (a box's primary saw its worker die). */
  declareDead(nodeId: string): void {
    const peer = this.peers.get(nodeId);
    if (peer) this.drop(peer, 'declared');
  }

  /**
   * Declares silent peers dead, but not for silence that is our own: a sweep that runs
   * late means this process was frozen (SIGSTOP, a long stall), and the peers'
   * heartbeats from that time are still unread in the socket. The stall is added to
   * every peer's deadline, so a frozen node that resumes does not declare the healthy
   * cluster dead.
   */
  sweep(now = Date.now()): void {
    const stalledMs = now - this.lastSweep - this.settings.cleanupIntervalMs;
    this.lastSweep = now;
    if (stalledMs > this.settings.heartbeatIntervalMs) {
      for (const peer of this.peers.values()) peer.lastSeen = Math.min(now, peer.lastSeen + stalledMs);
    }
    for (const peer of [...this.peers.values()]) {
      if (now - peer.lastSeen > this.settings.nodeTimeoutMs) this.drop(peer, 'timeout');
    }
  }

  private drop(peer: Peer, reason: LossReason): void {
    if (!this.peers.delete(peer.nodeId)) return;
    this.events.lost(peer, reason);
    this.events.ownersChanged();
  }

  setSelfReady(ready: boolean): void {
    if (ready === this.selfReady) return;
    this.selfReady = ready;
    this.events.ownersChanged();
  }

  get isSelfReady(): boolean {
    return this.selfReady;
  }

  get(nodeId: string): Peer | undefined {
    return this.peers.get(nodeId);
  }

  isLive(nodeId: string): boolean {
    return this.peers.has(nodeId);
  }

  liveIds(): string[] {
    return [...this.peers.keys()];
  }

  list(): Peer[] {
    return [...this.peers.values()];
  }

  /**
   * A peer may own keys once it says it is ready and this node holds its state: a peer that
   * joins, or returns after it was declared lost, first sends its snapshot, and keys do not
   * move to it before the changes that snapshot brings are reported.
   */
  private candidate(peer: Peer): boolean {
    return peer.ready && this.synced(peer.nodeId);
  }

  /**
   * The owner of a key: the highest rendezvous score among the candidates. A node that is
   * not ready yet owns nothing while any peer says it is ready (that peer already reports
   * for the cluster, and this node may not know every peer yet). Only when no member is
   * ready at all (a whole cluster starting) does every live member count.
   */
  ownerOf(key: string): string {
    let anyReady = false;
    let anyCandidate = false;
    for (const peer of this.peers.values()) {
      anyReady ||= peer.ready;
      anyCandidate ||= this.candidate(peer);
    }
    if (this.selfReady || anyCandidate) return this.highest(key, this.selfReady, (p) => this.candidate(p));
    if (anyReady) return this.highest(key, false, (p) => p.ready);
    return this.highest(key, true, () => true);
  }

  private highest(key: string, includeSelf: boolean, counts: (peer: Peer) => boolean): string {
    let best = includeSelf ? this.selfId : '';
    let bestScore = includeSelf ? score(this.selfId, key) : -1;
    for (const peer of this.peers.values()) {
      if (!counts(peer)) continue;
      const s = score(peer.nodeId, key);
      if (s > bestScore || (s === bestScore && peer.nodeId < best)) {
        best = peer.nodeId;
        bestScore = s;
      }
    }
    return best;
  }

  owns(key: string): boolean {
    return this.ownerOf(key) === this.selfId;
  }
}
