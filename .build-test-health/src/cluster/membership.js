// Who is in the cluster: a peer is live while its last heartbeat is younger than
// node_timeout_ms, measured on this node's clock (no clock sync needed). A node
// that restarts under the same process id is a new member; its old self is gone.
export class Membership {
    nodeTimeoutMs;
    events;
    peers = new Map();
    constructor(nodeTimeoutMs, events) {
        this.nodeTimeoutMs = nodeTimeoutMs;
        this.events = events;
    }
    /** Records a sign of life; returns the peer (new peers are announced first). */
    seen(nodeId, processId, now = Date.now()) {
        let peer = this.peers.get(nodeId);
        if (peer) {
            peer.lastSeen = now;
            return peer;
        }
        for (const other of [...this.peers.values()]) {
            if (other.processId === processId)
                this.drop(other, 'restarted');
        }
        peer = { nodeId, processId, lastSeen: now, digest: 0, mismatches: 0 };
        this.peers.set(nodeId, peer);
        this.events.joined(peer);
        return peer;
    }
    left(nodeId) {
        const peer = this.peers.get(nodeId);
        if (peer)
            this.drop(peer, 'left');
    }
    /** Declares every peer past its deadline dead. */
    sweep(now = Date.now()) {
        for (const peer of [...this.peers.values()]) {
            if (now - peer.lastSeen > this.nodeTimeoutMs)
                this.drop(peer, 'timeout');
        }
    }
    drop(peer, reason) {
        if (!this.peers.delete(peer.nodeId))
            return;
        this.events.lost(peer, reason);
    }
    get(nodeId) {
        return this.peers.get(nodeId);
    }
    isLive(nodeId) {
        return this.peers.has(nodeId);
    }
    liveIds() {
        return [...this.peers.keys()];
    }
    list() {
        return [...this.peers.values()];
    }
    get size() {
        return this.peers.size;
    }
}
