// N nodes as one server over a broker: the parts composed. Each part has one job —
// control bus (wire), membership (heartbeats, ownership), replica (presence, users,
// interest, anti-entropy), channel bus (events by interest), queries, shared state —
// and this file wires them and routes what the transport delivers.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { DEFAULT_REQUEST_TIMEOUT_MS, DISCOVERY_MS } from '../../config/limits.js';
import type { Transport } from '../../transports/transport.js';
import { EdgeEmitter, type EdgeSettings } from '../edges.js';
import { brokerKey } from '../keys.js';
import type {
  Cluster,
  ClusterMember,
  ClusterNode,
  LocalView,
  MembershipView,
  OperatorLink,
  PresenceDirectory,
  UserDirectory,
} from '../ports.js';
import { HorizontalChannelBus } from './channel-bus.js';
import { HorizontalHistory } from './history.js';
import { ControlBus } from './control-bus.js';
import { onPeerControl, type ControlParts } from './control-router.js';
import { CountHolds } from './count-holds.js';
import { Fences } from './fences.js';
import { Membership, type LossReason, type Peer } from './membership.js';
import { HorizontalOperator } from './operator.js';
import { HorizontalQueries } from './queries.js';
import { Replica } from './replica.js';
import { RequestTracker } from './requests.js';
import { brokerState, nodeLocalState, type SharedState } from './shared-state.js';
import { StateSync } from './state-sync.js';
import { HorizontalWebhookRelay } from './webhook-relay.js';

export interface BusObserver {
  /** a payload arrived (a node without interest in a channel sees none of its traffic) */
  message(kind: 'channel' | 'control', bytes: number): void;
  /** a payload that was dropped: its type and why */
  invalid(type: string, reason: string): void;
  /** the broker connection came back after an outage */
  reconnected(): void;
  /** a round trip to the broker, measured once per heartbeat */
  rtt(seconds: number): void;
}

export interface HorizontalSettings extends EdgeSettings {
  /** topic prefix (adapter.redis.prefix / adapter.nats.prefix) */
  prefix: string;
  /** key prefix for broker state */
  keyPrefix: string;
  processId?: string;
  heartbeatIntervalMs: number;
  nodeTimeoutMs: number;
  cleanupIntervalMs: number;
  requestTimeoutMs?: number;
}

const noObserver: BusObserver = { message: () => undefined, invalid: () => undefined, reconnected: () => undefined, rtt: () => undefined };

export class HorizontalCluster implements Cluster {
  readonly nodeId: string;
  readonly processId: string;
  private node: ClusterNode | null = null;
  private local: LocalView | null = null;
  private readonly control: ControlBus;
  private readonly membershipTable: Membership;
  private readonly replica: Replica;
  private readonly edges: EdgeEmitter;
  private readonly requests: RequestTracker;
  private readonly bus: HorizontalChannelBus;
  readonly history: HorizontalHistory;
  private readonly queryPort: HorizontalQueries;
  private readonly operatorPort: HorizontalOperator;
  private readonly fences: Fences;
  private readonly countHolds: CountHolds;
  private readonly sync: StateSync;
  private readonly controlParts: ControlParts;
  readonly webhooks: HorizontalWebhookRelay;
  private state: SharedState | null = null;
  private timers: NodeJS.Timeout[] = [];
  private brokerUp = true;

  constructor(
    private readonly transport: Transport,
    private readonly settings: HorizontalSettings,
    private readonly log: Logger,
    private readonly observer: BusObserver = noObserver,
  ) {
    this.processId = settings.processId ?? `${hostname()}-${process.pid}`;
    this.nodeId = `${this.processId}~${randomUUID().slice(0, 8)}`;
    this.control = new ControlBus(transport, settings.prefix, this.nodeId, observer, log);
    this.membershipTable = new Membership(
      this.nodeId,
      settings,
      {
        joined: (peer) => this.peerJoined(peer),
        lost: (peer, reason) => this.peerLost(peer, reason),
        ownersChanged: () => undefined,
      },
      (id) => !this.replica.awaitingSnapshot.has(id),
    );
    this.edges = new EdgeEmitter(
      { removalDelayMs: settings.removalDelayMs, overdueGraceMs: settings.nodeTimeoutMs + settings.cleanupIntervalMs * 2 },
      { selfId: this.nodeId, ownerOf: (key) => this.membershipTable.ownerOf(key) },
      (edge) => this.node?.edge(edge),
    );
    this.replica = new Replica(this.nodeId, this.edges, {
      isLive: (id) => this.membershipTable.isLive(id),
      send: (m, to) => this.control.send(m, to),
    });
    this.sync = new StateSync({
      nodeId: this.nodeId,
      processId: this.processId,
      heartbeatIntervalMs: settings.heartbeatIntervalMs,
      control: this.control,
      membership: this.membershipTable,
      replica: this.replica,
      edges: this.edges,
      transport,
      brokerUp: () => this.brokerUp,
      rtt: (seconds) => observer.rtt(seconds),
    });
    this.webhooks = new HorizontalWebhookRelay({
      selfId: this.nodeId,
      ownerOf: (key) => this.membershipTable.ownerOf(key),
      brokerUp: () => this.brokerUp,
      send: (m, to) => this.control.send(m, to),
      here: (appId, events) => this.node?.webhooksRelayed(appId, events),
    });
    this.requests = new RequestTracker(Math.min(settings.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, settings.nodeTimeoutMs));
    this.bus = new HorizontalChannelBus(
      transport,
      settings.prefix,
      this.nodeId,
      // A new hold is routed before anyone here is told they joined: a client told so may make
      // another node change next, and every owner must see the two in that order.
      (appId, channel, held) => (this.replica.setInterest(appId, channel, held) ? this.fences.settle() : undefined),
      { received: (n) => observer.message('channel', n), invalid: () => observer.invalid('channel', 'invalid') },
      log,
      (topic, numbered) => this.history.noted(topic, numbered),
    );
    this.history = new HorizontalHistory(
      () => transport.numbered,
      (appId, channel) => this.bus.topicOf(appId, channel),
      this.nodeId,
      log,
    );
    this.fences = new Fences({
      hasPeers: () => this.membershipTable.liveIds().length > 0,
      brokerUp: () => this.brokerUp,
      send: (id) => this.control.send({ t: 'f', id }),
    });
    this.countHolds = new CountHolds({
      fences: this.fences,
      transport,
      lockKey: (appId, channel) => brokerKey(settings.keyPrefix, 'seats', appId, channel),
      log,
    });
    this.queryPort = new HorizontalQueries({
      requests: this.requests,
      liveIds: () => this.membershipTable.liveIds(),
      send: (m) => this.control.send(m),
      local: () => this.local,
      presence: this.presence,
    });
    this.operatorPort = new HorizontalOperator({
      requests: this.requests,
      liveIds: () => this.membershipTable.liveIds(),
      send: (m, to) => this.control.send(m, to),
      broker: () => ({ state: this.brokerUp ? 'up' : 'down', rttMs: this.sync.lastRttMs }),
      log: this.log,
    });
    this.controlParts = {
      selfId: this.nodeId,
      control: this.control,
      membership: this.membershipTable,
      sync: this.sync,
      replica: this.replica,
      requests: this.requests,
      operator: this.operatorPort,
      queries: this.queryPort,
      node: () => this.node,
    };
  }

  get sharedState(): boolean {
    return this.transport.sharedState;
  }

  // lifecycle

  async start(node: ClusterNode, local: LocalView): Promise<void> {
    this.node = node;
    this.local = local;
    this.replica.attach(node);
    this.bus.attach(node);
    await this.transport.connect({
      message: (topic, payload) => this.route(topic, payload),
      status: (up) => this.onBrokerStatus(up),
      waiting: (reason) => node.brokerWaiting(reason),
    });
    // Chosen once, at connect: the broker holds shared state or each node answers for itself.
    this.state = this.transport.sharedState
      ? brokerState({
          transport: this.transport,
          keyPrefix: this.settings.keyPrefix,
          nodeId: this.nodeId,
          liveNodes: () => this.settledLiveNodes(),
          log: this.log,
        })
      : nodeLocalState({ local: () => this.local, countElsewhere: (appId) => this.queryPort.elsewhere(appId) });
    if (!this.transport.sharedState) {
      this.log.warn(
        'the broker has no shared state: connection quotas, cache channels and idempotency keys are per node (NATS: start nats-server with -js)',
      );
    }
    await this.control.subscribe();
    this.control.send({ t: 'hello', p: this.processId });
    this.sync.heartbeat();
    // Peers answer the hello with a heartbeat: once they are known, this node's first sockets
    // are seen by every member with the same list of owners.
    await new Promise((r) => setTimeout(r, Math.min(DISCOVERY_MS, this.settings.heartbeatIntervalMs)));
    this.timers.push(setInterval(() => this.sync.heartbeat(), this.settings.heartbeatIntervalMs));
    this.timers.push(setInterval(() => this.membershipTable.sweep(), this.settings.cleanupIntervalMs));
    for (const t of this.timers) t.unref();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Our last changes go out before we say goodbye. Removals we caused reach our emitter now
    // (their echo may never come): one we own is reported by us, as the peers saw it while we
    // still owned it; removals still within their delay are the survivors' to report.
    this.replica.flush();
    this.webhooks.send();
    this.replica.drain();
    // Nobody takes over: what this node alone was waiting for is reported now.
    if (this.membershipTable.liveIds().length === 0) this.edges.flush();
    this.control.send({ t: 'bye' });
    this.requests.close();
    this.fences.releaseAll();
    this.operatorPort.close();
    this.edges.close();
    this.replica.close();
    this.bus.close();
    await this.transport.close();
  }

  /** Until this node has heard every peer's heartbeat it cannot tell dead counts from live ones. */
  private settledLiveNodes(): string[] | null {
    if (!this.sync.settledForCounts) return null;
    return this.membershipTable.liveIds();
  }

  // ports

  readonly channels = {
    broadcast: (appId: string, channel: string, frame: string, exceptSocketId?: string) =>
      this.bus.broadcast(appId, channel, frame, exceptSocketId),
    watch: (appId: string, channel: string) => this.bus.watch(appId, channel),
    ready: (appId: string, channel: string) => this.bus.ready(appId, channel),
    unwatch: (appId: string, channel: string) => this.bus.unwatch(appId, channel),
  };

  readonly presence: PresenceDirectory = {
    join: (appId, channel, userId, info) => this.replica.presenceJoin(appId, channel, userId, info),
    leave: (appId, channel, userId) => this.replica.presenceLeave(appId, channel, userId),
    members: (appId, channel) => this.replica.book.members(appId, channel),
    memberCount: (appId, channel) => this.replica.book.memberCount(appId, channel),
    has: (appId, channel, userId) => this.replica.book.has(appId, channel, userId),
    holdCount: (appId, channel) => this.countHolds.hold(appId, channel),
    routed: () => this.fences.settle(),
  };

  readonly users: UserDirectory = {
    online: (appId, userId) => this.replica.setSignedIn(appId, userId, true),
    offline: (appId, userId) => this.replica.setSignedIn(appId, userId, false),
    isOnline: (appId, userId) => this.replica.isOnline(appId, userId),
    disconnectEverywhere: (appId, userId, code, msg) => this.control.send({ t: 'disc', a: appId, u: userId, code, msg }),
  };

  get operator(): OperatorLink {
    return this.operatorPort;
  }

  get queries(): HorizontalQueries {
    return this.queryPort;
  }

  get quotas(): SharedState['quotas'] {
    return this.sharedStatePort().quotas;
  }

  get cache(): SharedState['cache'] {
    return this.sharedStatePort().cache;
  }

  get ledger(): SharedState['ledger'] {
    return this.sharedStatePort().ledger;
  }

  private sharedStatePort(): SharedState {
    if (!this.state) throw new Error('the cluster is not started');
    return this.state;
  }

  readonly membership: MembershipView = {
    members: (): ClusterMember[] => {
      const now = Date.now();
      return [
        { nodeId: this.nodeId, processId: this.processId, self: true, lastSeenMs: 0, ready: this.membershipTable.isSelfReady },
        ...this.membershipTable
          .list()
          .map((p) => ({ nodeId: p.nodeId, processId: p.processId, self: false, lastSeenMs: now - p.lastSeen, ready: p.ready })),
      ];
    },
    owns: (key) => this.membershipTable.owns(key),
  };

  // the bus

  private route(topic: string, payload: string): void {
    try {
      if (!this.control.isControlTopic(topic)) {
        this.bus.receive(topic, payload);
        return;
      }
      this.observer.message('control', payload.length);
      const message = this.control.decode(payload);
      if (!message) return;
      if (message.n !== this.nodeId) onPeerControl(message, this.controlParts);
      // Our own batch back from the broker: its removals now reach the emitter, in broker order.
      else if (message.t === 'd') this.replica.echoed(message.s);
      else if (message.t === 'f') this.fences.echoed(message.id);
    } catch (err) {
      // Nothing a peer sends may throw into the broker client's callback.
      this.observer.invalid('handler', 'threw');
      this.log.error({ err: (err as Error).message, topic: topic.slice(0, 200) }, 'handling a bus message failed');
    }
  }

  private peerJoined(peer: Peer): void {
    this.log.info({ peer: peer.nodeId }, 'cluster peer joined');
    this.sync.peerJoined(peer.nodeId);
  }

  private peerLost(peer: Peer, reason: LossReason): void {
    if (reason === 'left') this.log.info({ peer: peer.nodeId }, 'cluster peer left');
    else this.log.warn({ peer: peer.nodeId, reason }, 'cluster peer lost');
    this.requests.forget(peer.nodeId);
    this.operatorPort.forget(peer.nodeId);
    this.replica.dropNode(peer.nodeId);
    if (reason !== 'left') this.edges.nodeLost(peer.nodeId, peer.lastSeen);
    // A graceful leaver closed its own connections first and its changes already arrived.
    if (reason !== 'left') this.node?.peerLost(peer.nodeId, this.membershipTable.owns(JSON.stringify(['node', peer.nodeId])));
  }

  private onBrokerStatus(up: boolean): void {
    if (up === this.brokerUp) return;
    this.brokerUp = up;
    if (!up) {
      this.fences.releaseAll();
      this.log.error('broker connection lost; local clients are served, cross-node delivery waits for it');
      return;
    }
    this.log.info('broker connection restored; resynchronising');
    this.observer.reconnected();
    // Peers answer hello with snapshots; they notice our own drift from our heartbeat digest.
    this.control.send({ t: 'hello', p: this.processId });
    this.sync.heartbeat();
  }
}
