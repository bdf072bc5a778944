// Keeping every node's copy of the others' state in step: heartbeats carry each node's
// sequence number and state digest, a gap or two mismatches in a row ask for a snapshot
// (anti-entropy), a snapshot also hands over the removals its sender is waiting out, and
// a node is ready to own keys once it has been up a few heartbeats and holds every known
// peer's snapshot. Also the broker's round trip, measured once per heartbeat.
import { READY_AFTER_HEARTBEATS } from '../../config/limits.js';
import type { Transport } from '../../transports/transport.js';
import type { EdgeEmitter } from '../edges.js';
import type { ControlBus } from './control-bus.js';
import type { Membership } from './membership.js';
import type { Replica } from './replica.js';
import type { MessageOf, PendingWire } from './wire.js';

export interface StateSyncDeps {
  nodeId: string;
  processId: string;
  heartbeatIntervalMs: number;
  control: ControlBus;
  membership: Membership;
  replica: Replica;
  edges: EdgeEmitter;
  transport: Pick<Transport, 'ping'>;
  brokerUp(): boolean;
  rtt(seconds: number): void;
}

export class StateSync {
  private lastRtt: number | null = null;
  private readonly startedAt = Date.now();

  constructor(private readonly d: StateSyncDeps) {}

  /** The broker's last measured round trip. */
  get lastRttMs(): number | null {
    return this.lastRtt;
  }

  /** Until this node has heard every peer's heartbeat it cannot tell dead counts from live ones. */
  get settledForCounts(): boolean {
    return Date.now() - this.startedAt >= this.d.heartbeatIntervalMs * 3;
  }

  /** A new peer: its snapshot is asked for, and it owns nothing here until it arrives. */
  peerJoined(nodeId: string): void {
    this.d.replica.awaitingSnapshot.add(nodeId);
    this.d.control.send({ t: 'snapreq' }, nodeId);
  }

  onHeartbeat(m: MessageOf<'hb'>): void {
    const known = this.d.membership.isLive(m.n);
    const peer = this.d.membership.seen(m.n, m.p, m.r ?? false);
    if (!known) return; // peerJoined asked for its snapshot
    if (this.d.replica.awaitingSnapshot.has(m.n)) {
      // The first request may have crossed the peer's own view of us: ask until it answers.
      this.d.control.send({ t: 'snapreq' }, m.n);
      return;
    }
    // Deltas travel on this topic ahead of the heartbeat, so a gap means some were lost.
    const inStep = this.d.replica.appliedFrom(m.n) >= m.s && this.d.replica.digestOf(m.n) === m.d;
    if (inStep) {
      peer.mismatches = 0;
      return;
    }
    if (++peer.mismatches >= 2) {
      peer.mismatches = 0;
      this.d.control.send({ t: 'snapreq' }, m.n);
    }
  }

  onSnapshot(m: MessageOf<'snap'>): void {
    if (!this.d.membership.isLive(m.n)) return;
    if (!this.d.replica.applySnapshot(m)) {
      // Older than a batch already applied: it would undo it. Ask again.
      this.d.control.send({ t: 'snapreq' }, m.n);
      return;
    }
    if (m.pend) {
      this.d.edges.adoptPending(
        m.pend.map((p) =>
          p[0] === 'c'
            ? { edge: { kind: 'channel' as const, appId: p[1], channel: p[2], present: false }, remainingMs: p[3] }
            : { edge: { kind: 'member' as const, appId: p[1], channel: p[2], userId: p[3], present: false }, remainingMs: p[4] },
        ),
      );
    }
  }

  sendSnapshot(to: string): void {
    const pend: PendingWire[] = this.d.edges
      .pendingRemovals()
      .map(({ edge, remainingMs }) =>
        edge.kind === 'channel' ? ['c', edge.appId, edge.channel, remainingMs] : ['m', edge.appId, edge.channel, edge.userId, remainingMs],
      );
    this.d.control.send(this.d.replica.snapshot(pend), to);
  }

  heartbeat(): void {
    this.measureRtt();
    // Without an echo (the broker dropped it, or is down) own removals apply after a while anyway.
    this.d.replica.expire(Math.max(1000, this.d.heartbeatIntervalMs * 3));
    this.updateReadiness();
    this.sendHeartbeat();
  }

  sendHeartbeat(): void {
    this.d.replica.flush();
    this.d.control.send({
      t: 'hb',
      p: this.d.processId,
      s: this.d.replica.sequence,
      d: this.d.replica.digestOf(this.d.nodeId),
      r: this.d.membership.isSelfReady,
    });
  }

  /** Ready to own keys once it has been up a few heartbeats and holds every known peer's snapshot. */
  private updateReadiness(): void {
    if (this.d.membership.isSelfReady) return;
    const settled = Date.now() - this.startedAt >= this.d.heartbeatIntervalMs * READY_AFTER_HEARTBEATS;
    if (settled && this.d.replica.awaitingSnapshot.size === 0) this.d.membership.setSelfReady(true);
  }

  private measureRtt(): void {
    if (!this.d.brokerUp()) return;
    const started = process.hrtime.bigint();
    this.d.transport.ping().then(
      () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.lastRtt = seconds * 1000;
        this.d.rtt(seconds);
      },
      () => undefined,
    );
  }
}
