// The channel core: the only API the edges (WebSocket, HTTP, admin) call for
// connections, joins, leaves, publishes, users and queries. It owns the local
// registry and talks to the cluster through its ports; the cluster talks back
// through the ClusterNode this file implements.
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AppStore } from '../apps/store.js';
import type {
  ChannelCounts,
  Cluster,
  ClusterEdge,
  ClusterMember,
  ClusterNode,
  CountHold,
  HistoryRange,
  HistoryRead,
  LedgerAnswer,
  LedgerBegin,
  LedgerScope,
  MemberRef,
  MemberWithInfo,
  PresenceMember,
  ReportKind,
} from '../cluster/ports.js';
import type { Connection, SignedInUser } from '../conn/connection.js';
import type { LocalRegistry } from '../conn/registry.js';
import type { Metrics } from '../metrics/metrics.js';
import { CloseCode, protocolError, type ProtocolError } from '../protocol/codes.js';
import { errorFrame, memberAddedFrame, memberRemovedFrame } from '../protocol/frames.js';
import { clipData, type ConsoleTap } from './console-tap.js';
import { SubscriptionCounts } from './counts.js';
import { wantsWebhook, type DomainEvents, type WebhookEvent } from './events.js';
import { Fanout, type TopicFanout } from './fanout.js';
import { historyOf } from './history-policy.js';
import { Subscriptions, type PresenceJoin } from './subscriptions.js';
import { Users } from './users.js';
import { WebhookRouting } from './webhook-routing.js';

/** The idempotency ledger's types, for the edges (they import the core, never the cluster). */
export type { CountHold, LedgerAnswer, LedgerBegin, LedgerScope } from '../cluster/ports.js';

export interface AdmitVerdict {
  refusal: ProtocolError | null;
  /** a slot of the app's connection quota was taken */
  quota: boolean;
}

/** How far below a presence member limit the count held here is trusted without settling first. */
export const MEMBER_LIMIT_SLACK = 16;

const ADMITTED_WITHOUT_QUOTA: AdmitVerdict = Object.freeze({ refusal: null, quota: false });
const OVER_CAPACITY: AdmitVerdict = Object.freeze({
  refusal: protocolError(CloseCode.OVER_CAPACITY, 'Node is over capacity', true),
  quota: false,
});

/**
 * Where the node-wide cap is counted when this process is one worker of a box (the box is one
 * node): a hold per connection, taken when the box holds fewer than `max`.
 */
export interface ConnectionSeats {
  take(max: number): Promise<boolean>;
  /** Gives back one hold taken by this process. */
  release(): void;
}

export interface CoreSettings {
  /** node-wide connection cap across apps (null: none) */
  maxConnections: number | null;
  /** webhook batching is on: an app's batches are formed on one node of the cluster */
  gatherWebhookBatches?: boolean;
}

export interface CoreDeps {
  topics: TopicFanout;
  registry: LocalRegistry;
  cluster: Cluster;
  apps: AppStore;
  metrics: Metrics;
  events: DomainEvents;
  log: Logger;
  /** a lost node's queued webhooks go back to the queue (on the one survivor that owns the duty) */
  onPeerLost?: (nodeId: string) => void;
  /** the operator console's live stream (edges record into it too) */
  tap: ConsoleTap;
  /** this node's figures for the console, as a peer asks for them */
  report(kind: ReportKind): Promise<unknown>;
  /** the box-wide count of maxConnections (a worker of a box); else this registry's count */
  seats?: ConnectionSeats | null;
}

export class Core {
  readonly registry: LocalRegistry;
  readonly tap: ConsoleTap;
  private readonly cluster: Cluster;
  private readonly fanout: Fanout;
  private readonly subscriptions: Subscriptions;
  private readonly users: Users;
  private readonly counts: SubscriptionCounts;
  private readonly webhooks: WebhookRouting;
  private draining = false;
  private serving = false;
  private waitingFor: string | null = null;

  constructor(
    private readonly settings: CoreSettings,
    private readonly deps: CoreDeps,
  ) {
    this.registry = deps.registry;
    this.cluster = deps.cluster;
    this.tap = deps.tap;
    this.fanout = new Fanout(
      deps.topics,
      deps.registry,
      deps.cluster.channels,
      () => deps.cluster.cache,
      () => deps.cluster.history,
      deps.metrics,
    );
    this.webhooks = new WebhookRouting(deps.events, deps.cluster.webhooks, settings.gatherWebhookBatches ?? false);
    this.counts = new SubscriptionCounts(deps.cluster.queries, this.fanout, this.webhooks, (err) =>
      deps.log.warn({ err: err.message }, 'subscription count failed'),
    );
    this.subscriptions = new Subscriptions(deps.registry, deps.cluster, this.fanout, this.counts, this.webhooks, deps.metrics, deps.log);
    this.users = new Users(deps.registry, deps.cluster.users);
  }

  get nodeId(): string {
    return this.cluster.nodeId;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Joins the cluster; waits as long as the broker is unreachable (see brokerWaiting). */
  async start(): Promise<void> {
    await this.cluster.start(this.clusterNode, this.registry);
    this.serving = true;
    this.waitingFor = null;
  }

  // (declared before firstWait, whose initializer sets it)
  private onFirstWait!: () => void;
  /** Resolves the first time start() reports it is waiting for the broker. */
  readonly firstWait: Promise<void> = new Promise((resolve) => (this.onFirstWait = resolve));

  /** Null once serving; until then why not (the broker's latest error while start() waits). */
  get notServingReason(): string | null {
    return this.serving ? null : (this.waitingFor ?? 'starting');
  }

  // connections

  /**
   * Whether a new connection of the app may open here; takes a quota slot (and the box's seat)
   * when it may. An admission that does not become a connection is given back with `withdraw`.
   */
  async admit(app: App): Promise<AdmitVerdict> {
    const now = this.admitNow(app);
    if (now) return now;
    const seats = this.deps.seats;
    if (seats && !(await seats.take(this.settings.maxConnections!))) return OVER_CAPACITY;
    if (app.max_connections === null) return ADMITTED_WITHOUT_QUOTA;
    if (await this.cluster.quotas.reserve(app.id, app.max_connections)) return { refusal: null, quota: true };
    seats?.release();
    return { refusal: protocolError(CloseCode.APP_OVER_QUOTA, 'App is over its connection quota', true), quota: false };
  }

  /** The verdict when it needs no waiting, or null when a quota slot or a seat must be taken (`admit`). */
  admitNow(app: App): AdmitVerdict | null {
    if (this.draining) return { refusal: protocolError(CloseCode.RECONNECT, 'Server is shutting down', true), quota: false };
    // 4100: pusher-js backs off and retries (4200 would make it retry at once, in a loop).
    if (!this.serving)
      return { refusal: protocolError(CloseCode.OVER_CAPACITY, 'Server is starting: its broker is not ready', true), quota: false };
    const cap = this.settings.maxConnections;
    if (cap !== null) {
      if (this.deps.seats) return null;
      if (this.registry.totalConnections() >= cap) return OVER_CAPACITY;
    }
    return app.max_connections === null ? ADMITTED_WITHOUT_QUOTA : null;
  }

  /** An admission whose client went away before its connection opened: its quota slot and seat go back. */
  withdraw(appId: string, quota: boolean): void {
    if (quota) this.cluster.quotas.release(appId);
    this.releaseSeat();
  }

  private releaseSeat(): void {
    if (this.settings.maxConnections !== null) this.deps.seats?.release();
  }

  /** An admitted upgrade: counted before its connection opens. */
  reserve(appId: string): void {
    this.registry.reserve(appId);
  }

  opened(conn: Connection): void {
    this.registry.add(conn);
  }

  /** Releases everything a closed connection held. */
  closed(conn: Connection): void {
    this.subscriptions.unsubscribeAll(conn);
    this.users.signOut(conn);
    this.registry.remove(conn);
    if (conn.quota) this.cluster.quotas.release(conn.app.id);
    this.releaseSeat();
  }

  // channels

  subscribe(conn: Connection, channel: string, presence: PresenceJoin | null): boolean | Promise<boolean> {
    return this.subscriptions.subscribe(conn, channel, presence);
  }

  unsubscribe(conn: Connection, channel: string): void {
    this.subscriptions.unsubscribe(conn, channel);
  }

  /**
   * Undefined, or a promise: for a history channel, settling once the event is numbered and
   * stored (rejecting with HistoryUnavailable when it could not be); for a cache channel on a
   * broker, once the cache holds it.
   */
  publish(app: App, channel: string, event: string, data: string, exceptSocketId?: string): Promise<void> | undefined {
    if (this.tap.wants(app.id)) {
      this.tap.record(app.id, {
        type: 'api_message',
        channel,
        event,
        ...clipData(data),
        ...(exceptSocketId ? { socket_id: exceptSocketId } : {}),
      });
    }
    return this.fanout.publish(app, channel, event, data, exceptSocketId);
  }

  /**
   * Idempotent publish: `first` claims the app's key for this caller (exactly one caller anywhere),
   * `done` carries the answer of the key's completed first publish, `busy` says it is in flight.
   * Rejects when the ledger cannot answer (the broker is away).
   */
  idempotencyBegin(appId: string, scope: LedgerScope, key: string, windowMs: number): Promise<LedgerBegin> {
    return this.cluster.ledger.begin(appId, scope, key, windowMs);
  }

  /** The first publish succeeded: its answer is kept for the window. */
  idempotencyComplete(appId: string, scope: LedgerScope, key: string, answer: LedgerAnswer, windowMs: number): Promise<void> {
    return this.cluster.ledger.complete(appId, scope, key, answer, windowMs);
  }

  /** The first publish failed: the key is free again, so a retry publishes. */
  idempotencyAbandon(appId: string, scope: LedgerScope, key: string): Promise<void> {
    return this.cluster.ledger.abandon(appId, scope, key);
  }

  /** A client event (already checked by the edge) to the channel's other subscribers, and its webhook. */
  clientEvent(conn: Connection, channel: string, frame: string, webhook: WebhookEvent | null): void {
    const policy = historyOf(conn.app, channel);
    if (!policy) this.fanout.relay(conn, channel, frame);
    else {
      this.fanout.relayNumbered(conn, channel, frame, policy).catch((err: Error) => {
        this.deps.log.warn({ app_id: conn.app.id, channel, err: err.message }, 'client event not stored');
        conn.send(errorFrame(null, 'Client event not delivered: the channel history is unavailable, try again', channel));
      });
    }
    this.deps.metrics.app(conn.app.id).clientEvents.inc();
    if (webhook) this.webhooks.emit(conn.app, webhook);
  }

  // users

  signIn(conn: Connection, user: SignedInUser, watchlistOverflow: boolean): void {
    this.users.signIn(conn, user, watchlistOverflow);
  }

  /** Closes the user's connections everywhere (terminate_connections: 4009; force_reconnect: 4200). */
  disconnectUser(appId: string, userId: string, code: number, message: string): void {
    this.users.disconnectEverywhere(appId, userId, code, message);
  }

  // queries

  channelCounts(appId: string, channel: string): Promise<ChannelCounts> {
    return this.cluster.queries.channelCounts(appId, channel);
  }

  occupiedChannels(appId: string): Promise<Map<string, number>> {
    return this.cluster.queries.occupiedChannels(appId);
  }

  presenceMembers(appId: string, channel: string): ReadonlyMap<string, PresenceMember> {
    return this.cluster.presence.members(appId, channel);
  }

  presenceMemberCount(appId: string, channel: string): number {
    return this.cluster.presence.memberCount(appId, channel);
  }

  isPresent(appId: string, channel: string, userId: string): boolean {
    return this.cluster.presence.has(appId, channel, userId);
  }

  /**
   * Before a member-limit decision on a channel near its limit: the hold under which to decide
   * and join (peers' earlier joins and leaves counted, no other node deciding meanwhile);
   * undefined when the count held here already decides. Further below the limit, only joins
   * racing in faster than a broker round trip could be missing, and those are concurrent.
   */
  presenceHoldNear(appId: string, channel: string, limit: number): Promise<CountHold> | undefined {
    if (this.cluster.presence.memberCount(appId, channel) + MEMBER_LIMIT_SLACK < limit) return undefined;
    return this.cluster.presence.holdCount(appId, channel);
  }

  /** The channel's history (null when the app keeps none for it); rejects with HistoryUnavailable. */
  async history(app: App, channel: string, range: HistoryRange): Promise<HistoryRead | null> {
    const policy = historyOf(app, channel);
    return policy ? this.cluster.history.read(app.id, channel, range, policy) : null;
  }

  cached(appId: string, channel: string): Promise<{ frame: string; ttl: number } | null> {
    return this.cluster.cache.get(appId, channel);
  }

  clusterMembers(): ClusterMember[] {
    return this.cluster.membership.members();
  }

  /** The operator console: every live peer's report (the slow are missing), and this node's own. */
  peerReports(kind: ReportKind): Promise<Map<string, unknown>> {
    return this.cluster.operator.reports(kind);
  }

  ownReport(kind: ReportKind): Promise<unknown> {
    return this.deps.report(kind);
  }

  // lifecycle

  /**
   * Closes every connection with 4200 (clients reconnect at once, elsewhere) and waits,
   * at most `deadlineMs`, until their leaves went through the core (closes are reported
   * by the engine a little later than they are asked for).
   */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    const frame = errorFrame(CloseCode.RECONNECT, 'Server is shutting down, reconnect');
    for (const conn of this.registry.all()) conn.close(CloseCode.RECONNECT, 'shutting down', frame);
    const deadline = Date.now() + deadlineMs;
    while (this.registry.all().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  async stop(): Promise<void> {
    this.counts.close();
    this.tap.stop();
    await this.cluster.stop();
  }

  // what the cluster asks of this node

  private readonly clusterNode: ClusterNode = {
    deliver: (appId, channel, frame, except) => this.fanout.deliver(appId, channel, frame, except),
    deliverNumbered: (appId, channel, event) => this.fanout.deliverNumbered(appId, channel, event),
    disconnectUser: (appId, userId, code, message) => this.users.disconnectLocal(appId, userId, code, message),
    userPresenceChanged: (appId, userId, online) => this.users.presenceChanged(appId, userId, online),
    membersLost: (refs: readonly MemberRef[]) => {
      for (const r of refs) this.fanout.deliver(r.appId, r.channel, memberRemovedFrame(r.channel, r.userId), undefined);
    },
    membersFound: (refs: readonly MemberWithInfo[]) => {
      for (const r of refs) this.fanout.deliver(r.appId, r.channel, memberAddedFrame(r.channel, r.userId, r.info), undefined);
    },
    edge: (edge) => this.reportEdge(edge),
    report: (kind) => this.deps.report(kind),
    consoleEvents: (appId, batch) => this.tap.fromPeer(appId, batch),
    webhooksRelayed: (appId, events) => {
      this.deps.apps.findById(appId).then(
        (app) => {
          if (app) this.webhooks.relayed(app, events);
        },
        (err: Error) => this.deps.log.warn({ app_id: appId, err: err.message }, 'app lookup for relayed webhooks failed'),
      );
    },
    peerLost: (nodeId, mine) => {
      if (mine) this.deps.onPeerLost?.(nodeId);
    },
    brokerWaiting: (reason) => {
      // The detail (addresses, host names) goes to the log only; /up and the API say this much.
      this.waitingFor = 'waiting for the broker';
      this.deps.log.warn({ reason }, 'waiting for the broker; not serving clients until it answers');
      this.onFirstWait();
    },
  };

  /**
   * A cluster-wide edge this node reports: the app is looked up (it may come from a database;
   * one known without waiting, as every static app, is answered at once and costs no promise).
   */
  private reportEdge(edge: ClusterEdge): void {
    const event: WebhookEvent =
      edge.kind === 'channel'
        ? { name: edge.present ? 'channel_occupied' : 'channel_vacated', channel: edge.channel }
        : { name: edge.present ? 'member_added' : 'member_removed', channel: edge.channel, user_id: edge.userId };
    const send = (app: App | null) => {
      if (app && wantsWebhook(app, event.name)) this.webhooks.emit(app, event);
    };
    const known = this.deps.apps.peekById(edge.appId);
    if (known !== undefined) return send(known);
    this.deps.apps
      .findById(edge.appId)
      .then(send, (err: Error) => this.deps.log.warn({ app_id: edge.appId, err: err.message }, 'app lookup for a webhook failed'));
  }
}
