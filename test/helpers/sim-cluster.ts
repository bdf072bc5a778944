// Several horizontal cluster nodes in one process over the memory transport, with
// a stand-in for each node's core: local subscriber counts, and a record of what
// the cluster asked of the node (deliveries, edges, lost peers). For the cluster
// algorithms' unit tests: milliseconds per scenario, faults injected by seed.
import { pino } from 'pino';
import { HorizontalCluster, type HorizontalSettings } from '../../src/cluster/horizontal/horizontal-cluster.js';
import type {
  ClusterEdge,
  ClusterNode,
  ConsoleBatch,
  LocalView,
  MemberRef,
  MemberWithInfo,
  ReportKind,
  WebhookEvent,
} from '../../src/cluster/ports.js';
import { MemoryBroker, type MemoryBrokerOptions, type MemoryTransport } from '../../src/transports/memory.js';
import { sleep, until } from './wait.js';

export const FAST: Omit<HorizontalSettings, 'prefix' | 'keyPrefix'> = {
  heartbeatIntervalMs: 20,
  nodeTimeoutMs: 150,
  cleanupIntervalMs: 20,
  requestTimeoutMs: 300,
  removalDelayMs: 0,
};

const quiet = pino({ level: 'silent' });

export class SimNode implements ClusterNode, LocalView {
  readonly cluster: HorizontalCluster;
  readonly edges: ClusterEdge[] = [];
  readonly delivered: Array<{ appId: string; channel: string; frame: string; except?: string }> = [];
  readonly lostPeers: Array<{ nodeId: string; mine: boolean }> = [];
  readonly membersLostSeen: MemberRef[] = [];
  readonly membersFoundSeen: MemberWithInfo[] = [];
  readonly disconnects: Array<{ appId: string; userId: string; code: number }> = [];
  readonly watchlist: Array<{ appId: string; userId: string; online: boolean }> = [];
  readonly consoleBatches: Array<{ appId: string; batch: ConsoleBatch }> = [];
  readonly relayedWebhooks: Array<{ appId: string; events: readonly WebhookEvent[] }> = [];
  /** app -> channel -> local subscribers */
  private readonly subs = new Map<string, Map<string, number>>();
  private readonly conns = new Map<string, number>();
  stopped = false;

  constructor(
    readonly name: string,
    readonly transport: MemoryTransport,
    settings: Partial<HorizontalSettings> = {},
    /** every edge any node of the simulation reported, in report order */
    private readonly reported: Array<{ by: SimNode; edge: ClusterEdge }> = [],
  ) {
    this.cluster = new HorizontalCluster(transport, { prefix: 'sim', keyPrefix: 'sim:', processId: name, ...FAST, ...settings }, quiet);
  }

  start(): Promise<void> {
    return this.cluster.start(this, this);
  }

  // the operator console

  async report(kind: ReportKind): Promise<unknown> {
    return { kind, name: this.name };
  }

  consoleEvents(appId: string, batch: ConsoleBatch): void {
    this.consoleBatches.push({ appId, batch });
  }

  webhooksRelayed(appId: string, events: readonly WebhookEvent[]): void {
    this.relayedWebhooks.push({ appId, events });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.cluster.stop();
  }

  // what a core does with the ports

  async subscribe(appId: string, channel: string): Promise<void> {
    let channels = this.subs.get(appId);
    if (!channels) this.subs.set(appId, (channels = new Map()));
    const n = (channels.get(channel) ?? 0) + 1;
    channels.set(channel, n);
    if (n === 1) await this.cluster.channels.watch(appId, channel);
  }

  unsubscribe(appId: string, channel: string): void {
    const channels = this.subs.get(appId);
    const n = channels?.get(channel);
    if (!channels || !n) return;
    if (n > 1) channels.set(channel, n - 1);
    else {
      channels.delete(channel);
      this.cluster.channels.unwatch(appId, channel);
    }
  }

  connect(appId: string): void {
    this.conns.set(appId, (this.conns.get(appId) ?? 0) + 1);
  }

  // LocalView
  subscriberCount(appId: string, channel: string): number {
    return this.subs.get(appId)?.get(channel) ?? 0;
  }
  localChannels(appId: string): ReadonlyMap<string, number> {
    return this.subs.get(appId) ?? new Map();
  }
  connectionCount(appId: string): number {
    return this.conns.get(appId) ?? 0;
  }

  // ClusterNode
  deliver(appId: string, channel: string, frame: string, except: string | undefined): void {
    this.delivered.push({ appId, channel, frame, except });
  }
  disconnectUser(appId: string, userId: string, code: number): void {
    this.disconnects.push({ appId, userId, code });
  }
  userPresenceChanged(appId: string, userId: string, online: boolean): void {
    this.watchlist.push({ appId, userId, online });
  }
  membersLost(refs: readonly MemberRef[]): void {
    this.membersLostSeen.push(...refs);
  }
  membersFound(refs: readonly MemberWithInfo[]): void {
    this.membersFoundSeen.push(...refs);
  }
  edge(edge: ClusterEdge): void {
    this.edges.push(edge);
    this.reported.push({ by: this, edge });
  }
  peerLost(nodeId: string, mine: boolean): void {
    this.lostPeers.push({ nodeId, mine });
  }

  brokerWaiting(): void {
    // the memory broker is always reachable
  }
  deliverNumbered(appId: string, channel: string, event: { frame: string; except: string | undefined }): void {
    this.delivered.push({ appId, channel, frame: event.frame, except: event.except });
  }
}

export class SimCluster {
  readonly broker: MemoryBroker;
  readonly nodes: SimNode[] = [];
  private readonly reported: Array<{ by: SimNode; edge: ClusterEdge }> = [];

  constructor(options: MemoryBrokerOptions = {}) {
    this.broker = new MemoryBroker(options);
  }

  async add(name: string, settings: Partial<HorizontalSettings> = {}): Promise<SimNode> {
    const node = new SimNode(name, this.broker.transport(name), settings, this.reported);
    this.nodes.push(node);
    await node.start();
    return node;
  }

  /** Starts `count` nodes and waits until each sees all the others and all are ready. */
  static async of(count: number, options: MemoryBrokerOptions = {}, settings: Partial<HorizontalSettings> = {}): Promise<SimCluster> {
    const sim = new SimCluster(options);
    for (let i = 0; i < count; i++) await sim.add(`n${i}`, settings);
    await sim.settled();
    return sim;
  }

  live(): SimNode[] {
    return this.nodes.filter((n) => !n.stopped);
  }

  /** Every live node sees every other live node. */
  async settled(timeoutMs = 3000): Promise<void> {
    const live = this.live();
    await until(() => live.every((n) => n.cluster.membership.members().length === live.length), timeoutMs, 'membership to settle');
    // Readiness follows a few heartbeats later.
    await sleep((FAST.heartbeatIntervalMs ?? 20) * 4);
  }

  /**
   * Every edge reported, in report order, except by `cutOff` nodes: a node whose link is
   * paused still runs here (it reports as a split brain would); a frozen process would not.
   */
  allEdges(...cutOff: SimNode[]): ClusterEdge[] {
    return this.reported.filter((r) => !cutOff.includes(r.by)).map((r) => r.edge);
  }

  async close(): Promise<void> {
    for (const n of this.nodes) await n.stop().catch(() => undefined);
    this.broker.close();
  }
}
