// The operator console over the bus: reports asked of every live peer with the
// queries' deadline, and live events sent only to the nodes whose viewers watch an
// app. A watch is a lease: the watcher renews it every few seconds, and it lapses
// when the watcher stops or dies, so a closed console costs the data path nothing
// but one map lookup per event.
import type { Logger } from 'pino';
import type { BrokerLink, ClusterNode, ConsoleBatch, OperatorLink, ReportKind } from '../ports.js';
import type { RequestTracker } from './requests.js';
import type { Outgoing } from './wire.js';

/** How long a peer's watch lasts without renewal. */
export const WATCH_LEASE_MS = 10_000;
/** A node renews its own watch at most this often (the viewers' timer asks more often). */
const RENEW_EVERY_MS = 3_000;

export interface OperatorDeps {
  requests: RequestTracker;
  liveIds(): string[];
  send(message: Outgoing, to?: string): void;
  broker(): BrokerLink;
  log: Logger;
}

export class HorizontalOperator implements OperatorLink {
  /** app -> watching peer -> lease end (ms) */
  private readonly watchers = new Map<string, Map<string, number>>();
  private readonly renewedAt = new Map<string, number>();

  constructor(private readonly d: OperatorDeps) {}

  reports(kind: ReportKind): Promise<Map<string, unknown>> {
    return this.d.requests.ask(this.d.liveIds(), (id) => this.d.send({ t: 'req', id, k: kind, a: '' }));
  }

  watch(appId: string): void {
    const now = Date.now();
    if (now - (this.renewedAt.get(appId) ?? 0) < RENEW_EVERY_MS) return;
    this.renewedAt.set(appId, now);
    // Bounded by the apps the viewers may open (the console checks the app exists first).
    if (this.renewedAt.size > 10_000) this.renewedAt.clear();
    this.d.send({ t: 'cw', a: appId });
  }

  wanted(appId: string): boolean {
    const peers = this.watchers.get(appId);
    if (peers === undefined) return false;
    const now = Date.now();
    for (const [peer, until] of peers) if (until <= now) peers.delete(peer);
    if (peers.size === 0) this.watchers.delete(appId);
    return peers.size > 0;
  }

  send(appId: string, batch: ConsoleBatch): void {
    const peers = this.watchers.get(appId);
    if (!peers) return;
    const now = Date.now();
    for (const [peer, until] of peers) {
      if (until > now) this.d.send({ t: 'cev', a: appId, ev: [...batch.events], sk: batch.skipped }, peer);
    }
  }

  broker(): BrokerLink {
    return this.d.broker();
  }

  /** A peer asked for this node's report: the core builds it (metrics are read asynchronously). */
  answer(kind: ReportKind, requestId: number, from: string, node: ClusterNode | null): void {
    if (!node) return;
    node.report(kind).then(
      (val) => this.d.send({ t: 'res', id: requestId, val }, from),
      (err: Error) => this.d.log.warn({ err: err.message, kind }, 'console report failed'),
    );
  }

  /** A peer's watch (from a known, live peer). */
  watched(appId: string, peer: string): void {
    let peers = this.watchers.get(appId);
    if (!peers) {
      // A peer can name any app: bounded, so forged watches cannot grow the table without end.
      if (this.watchers.size >= 10_000) return;
      this.watchers.set(appId, (peers = new Map<string, number>()));
    }
    peers.set(peer, Date.now() + WATCH_LEASE_MS);
  }

  /** A peer left or died: its watches end with it. */
  forget(peer: string): void {
    for (const [appId, peers] of this.watchers) {
      if (peers.delete(peer) && peers.size === 0) this.watchers.delete(appId);
    }
  }

  close(): void {
    this.watchers.clear();
  }
}
