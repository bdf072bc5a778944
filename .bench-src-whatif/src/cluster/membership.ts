// Who is in the cluster: a peer is live while its last heartbeat is younger than
// node_timeout_ms, measured on this node's clock (no clock sync needed). A node
// that restarts under the same process id is a new member; its old self is gone.

export interface Peer {
  nodeId: string;
  processId: string;
  lastSeen: number;
  /** last presence digest the peer announced */
  digest: number;
  /** consecutive heartbeats whose digest differed from our view of the peer */
  mismatches: number;
}

export type LossReason = 'timeout' | 'left' | 'restarted';

export interface MembershipEvents {
  joined(peer: Peer): void;
  lost(peer: Peer, reason: LossReason): void;
}

export class Membership {
  private readonly peers = new Map<string, Peer>();

  constructor(private readonly nodeTimeoutMs: number, private readonly events: MembershipEvents) {}

  /** Records a sign of life; returns the peer (new peers are announced first). */
  seen(nodeId: string, processId: string, now = Date.now()): Peer {
    let peer = this.peers.get(nodeId);
    if (peer) {
      peer.lastSeen = now;
      return peer;
    }
    for (const other of [...this.peers.values()]) {
      if (other.processId === processId) this.drop(other, 'restarted');
    }
    peer = { nodeId, processId, lastSeen: now, digest: 0, mismatches: 0 };
    this.peers.set(nodeId, peer);
    this.events.joined(peer);
    return peer;
  }

  left(nodeId: string): void {
    const peer = this.peers.get(nodeId);
    if (peer) this.drop(peer, 'left');
  }

  /** Declares every peer past its deadline dead. */
  sweep(now = Date.now()): void {
    for (const peer of [...this.peers.values()]) {
      if (now - peer.lastSeen > this.nodeTimeoutMs) this.drop(peer, 'timeout');
    }
  }

  private drop(peer: Peer, reason: LossReason): void {
    if (!this.peers.delete(peer.nodeId)) return;
    this.events.lost(peer, reason);
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

  get size(): number {
    return this.peers.size;
  }
}
