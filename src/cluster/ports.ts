// What a node needs from its peers, as small ports (one job each), and what the
// cluster asks of the node in return. The local cluster answers from this node
// alone; the horizontal one (redis, redis-cluster, nats, memory) for the whole
// cluster. Every call that asks peers has a deadline and never rejects because
// a peer is slow or gone. A newcomer learns the cluster from this file.

// ---- upward: implemented by the node's core, called by the cluster ----

export interface MemberRef {
  readonly appId: string;
  readonly channel: string;
  readonly userId: string;
}

export interface MemberWithInfo extends MemberRef {
  readonly info: unknown;
}

/**
 * A cluster-wide edge, decided by exactly one node (the channel's owner): a channel
 * gained its first subscriber anywhere / lost its last one, a presence user joined a
 * channel / left it on every node. Removals are reported after the configured delay
 * and are not reported at all when the addition comes back within it.
 */
export type ClusterEdge =
  | { readonly kind: 'channel'; readonly appId: string; readonly channel: string; readonly present: boolean }
  | { readonly kind: 'member'; readonly appId: string; readonly channel: string; readonly userId: string; readonly present: boolean };

export interface ClusterNode {
  /** Delivers a frame to this node's local subscribers of a channel. */
  deliver(appId: string, channel: string, frame: string, exceptSocketId: string | undefined): void;
  /** Closes every local connection signed in (or present) as the user, with this close code. */
  disconnectUser(appId: string, userId: string, code: number, message: string): void;
  /** A signed-in user went online/offline somewhere in the cluster (watchlists). */
  userPresenceChanged(appId: string, userId: string, online: boolean): void;
  /** Presence members gone with their node: the node tells its local subscribers. */
  membersLost(refs: readonly MemberRef[]): void;
  /** Presence members that came back with a peer (a false alarm): local subscribers are told. */
  membersFound(refs: readonly MemberWithInfo[]): void;
  /** A cluster-wide edge this node is the one to report (webhooks). */
  edge(edge: ClusterEdge): void;
  /** A peer is gone (not a graceful leave); `mine` is true on exactly one survivor. */
  peerLost(nodeId: string, mine: boolean): void;
  /** start() is still waiting for an unreachable broker (said every few seconds, with why). */
  brokerWaiting(reason: string): void;
  /**
   * A numbered event of a history channel for this node's local subscribers, this node's own
   * publishes included: per channel, always in serial order.
   */
  deliverNumbered(appId: string, channel: string, event: NumberedEvent): void;
  /** This node's own figures for the operator console (a peer asked; plain JSON). */
  report(kind: ReportKind): Promise<unknown>;
  /** A peer's live events of an app that this node's console viewers watch. */
  consoleEvents(appId: string, batch: ConsoleBatch): void;
  /** A peer's webhook events of an app whose batches this node forms (delivered from here). */
  webhooksRelayed(appId: string, events: readonly WebhookEvent[]): void;
}

/** What the cluster reads of this node's own connections (the registry implements it). */
export interface LocalView {
  subscriberCount(appId: string, channel: string): number;
  localChannels(appId: string): ReadonlyMap<string, number>;
  connectionCount(appId: string): number;
}

// ---- downward: the ports the core calls ----

const NOTHING = (): void => undefined;

/** The ports answer a wait as a promise, or undefined when nothing waits: two such waits as one. */
export function bothWaits(a: Promise<void> | undefined, b: Promise<void> | undefined): Promise<void> | undefined {
  if (!a || !b) return a ?? b;
  return Promise.all([a, b]).then(NOTHING);
}

/** Channel events between nodes, routed by interest. */
export interface ChannelBus {
  /** Sends a frame to the channel's subscribers on other nodes (local delivery is the caller's). */
  broadcast(appId: string, channel: string, frame: string, exceptSocketId?: string): void;
  /**
   * This node gained its first local subscriber: undefined when events published anywhere
   * already reach it (one node, or a topic still held), else a promise that resolves once they do.
   */
  watch(appId: string, channel: string): Promise<void> | undefined;
  /**
   * Another local subscriber: undefined when events published anywhere already reach this node,
   * else the pending watch's confirmation (a subscriber that joins while it is pending waits too).
   */
  ready(appId: string, channel: string): Promise<void> | undefined;
  /** This node lost its last local subscriber. */
  unwatch(appId: string, channel: string): void;
}

export interface PresenceMember {
  readonly info: unknown;
}

/** The cluster-wide presence membership, replicated on every node: reads are local. */
export interface PresenceDirectory {
  /** A local connection joined; true when the user is new to the channel cluster-wide. */
  join(appId: string, channel: string, userId: string, info: unknown): boolean;
  /** A local connection left; true when the user has no connection left in the channel anywhere. */
  leave(appId: string, channel: string, userId: string): boolean;
  members(appId: string, channel: string): ReadonlyMap<string, PresenceMember>;
  memberCount(appId: string, channel: string): number;
  has(appId: string, channel: string, userId: string): boolean;
  /**
   * For a decision on the channel's member count (the member limit): undefined when no peer can
   * change it (a single node); else resolves, never rejecting, once no other node decides on it
   * until `release` and every change a peer made before (in the broker's order) is applied here
   * (each bounded in time: past it, the count held here decides). Release after the join.
   */
  holdCount(appId: string, channel: string): Promise<CountHold> | undefined;
  /**
   * After a join: resolves, never rejecting, once this node's joins so far are routed to every
   * peer (bounded in time), so a client told it joined cannot make another node's change (its
   * other tab leaving there) reach an owner first; undefined when nothing can be in between (a
   * single node, no peers, the broker down).
   */
  routed(): Promise<void> | undefined;
}

export interface CountHold {
  release(): void;
}

/** Signed-in users across the cluster (watchlists, terminate, force reconnect). */
export interface UserDirectory {
  /** The user's first local connection signed in; true when the user was offline everywhere. */
  online(appId: string, userId: string): boolean;
  /** The user's last local connection went; true when the user is now offline everywhere. */
  offline(appId: string, userId: string): boolean;
  isOnline(appId: string, userId: string): boolean;
  /** Asks every other node to close the user's connections (the caller closes its own). */
  disconnectEverywhere(appId: string, userId: string, code: number, message: string): void;
}

/** Cluster-wide figures for one channel. */
export interface ChannelCounts {
  readonly subscriptionCount: number;
  /** distinct presence users (presence channels only) */
  readonly userCount: number;
}

export interface ClusterQueries {
  channelCounts(appId: string, channel: string): Promise<ChannelCounts>;
  /** Occupied channels of an app with their subscription counts. */
  occupiedChannels(appId: string): Promise<Map<string, number>>;
  connectionCount(appId: string): Promise<number>;
}

/** Per-app connection quotas, cluster-wide. */
export interface ConnectionQuotas {
  /** Takes one of `max` slots of the app atomically; false when none is left. */
  reserve(appId: string, max: number): Promise<boolean>;
  release(appId: string): void;
}

/** A stored answer of a completed idempotent publish (HTTP status and body). */
export interface LedgerAnswer {
  readonly status: number;
  readonly body: string;
}

/** Single publishes and batch items share `event`; a whole batch (the header's key) is `batch`. */
export type LedgerScope = 'event' | 'batch';

/** What begin found: this caller publishes, the key's first publish completed, or it is in flight elsewhere. */
export type LedgerBegin = { readonly kind: 'first' } | { readonly kind: 'done'; readonly answer: LedgerAnswer } | { readonly kind: 'busy' };

/**
 * Idempotency keys of publishes, per app: exactly one caller anywhere gets `first` for a key
 * (an atomic claim that expires after an in-flight bound of its own, so a node that dies
 * mid-publish frees the key soon); it then completes (the answer is kept for the window) or
 * abandons (a failed publish does not use the key up). Cluster-wide where the broker has shared
 * state, per node otherwise. Calls reject when the broker cannot answer (callers fail closed).
 */
export interface PublishLedger {
  begin(appId: string, scope: LedgerScope, key: string, windowMs: number): Promise<LedgerBegin>;
  complete(appId: string, scope: LedgerScope, key: string, answer: LedgerAnswer, windowMs: number): Promise<void>;
  abandon(appId: string, scope: LedgerScope, key: string): Promise<void>;
}

/** Cache channels: the last event's frame, shared by the cluster where the broker can. */
export interface ChannelCache {
  /**
   * Stores the frame. Where it goes to a broker, a promise that settles (never rejects) once it is
   * stored: a publish answers after it, so a subscriber on any node that subscribes after the
   * answer replays this frame (read-your-writes). Undefined when the write was synchronous.
   */
  set(appId: string, channel: string, frame: string, ttlSeconds: number): Promise<void> | undefined;
  get(appId: string, channel: string): Promise<{ frame: string; ttl: number } | null>;
}

/** An event of a history channel, as stored and as delivered. */
export interface NumberedEvent {
  /** strictly increasing per channel within an epoch (no gaps where the broker numbers: redis, local) */
  readonly serial: number;
  /** changes whenever the channel's history was reset or lost */
  readonly epoch: string;
  readonly publishedAtMs: number;
  /** the plain frame every subscriber gets */
  readonly frame: string;
  /** the socket it was not delivered to (a publish's socket_id, a client event's sender) */
  readonly except: string | undefined;
}

export interface HistoryBounds {
  readonly maxMessages: number;
  readonly ttlSeconds: number;
}

/** A read of a channel's history, serials inclusive. */
export interface HistoryRange {
  readonly fromSerial: number;
  readonly toSerial: number;
  readonly limit: number;
  readonly newestFirst: boolean;
}

export interface HistoryRead {
  /** null when the channel has no history at all (never published, expired, flushed) */
  readonly epoch: string | null;
  /** the channel's last serial (0 when none) */
  readonly lastSerial: number;
  /** events inside the range still kept (ttl applied), in the order asked */
  readonly events: NumberedEvent[];
  /**
   * No event from range.fromSerial on was dropped (trimmed, expired) before the first returned
   * one: a resume from fromSerial - 1 loses nothing. Serials may have gaps (NATS), so this
   * cannot be told from the serials alone.
   */
  readonly continuous: boolean;
}

/** Thrown (as a rejection) when the history cannot be written or read right now. */
export class HistoryUnavailable extends Error {
  readonly code = 'HISTORY_UNAVAILABLE';
}

/** Channel history: a cluster-wide numbered log per channel, kept in the broker. */
export interface ChannelHistory {
  /**
   * Numbers and stores the frame (one broker round trip) and sends it to the channel's
   * subscribers on every node, this one included, through ClusterNode.deliverNumbered.
   * Resolves with the event once stored; rejects with HistoryUnavailable.
   */
  append(appId: string, channel: string, frame: string, except: string | undefined, bounds: HistoryBounds): Promise<NumberedEvent>;
  read(appId: string, channel: string, range: HistoryRange, bounds: HistoryBounds): Promise<HistoryRead>;
  /** Why history cannot work on this cluster (known once started), or null when it can. */
  unavailable(): string | null;
}

export interface ClusterMember {
  readonly nodeId: string;
  readonly processId: string;
  readonly self: boolean;
  /** ms since the last heartbeat (0 for this node) */
  readonly lastSeenMs: number;
  /** knows the cluster's state and may own keys (webhook edges, dead-node cleanup) */
  readonly ready: boolean;
}

export interface MembershipView {
  /** The live members, this node first. */
  members(): ClusterMember[];
  /** True on exactly one live node for a key (while the nodes agree on who is live). */
  owns(key: string): boolean;
}

// ---- the operator console (docs/CONSOLE.md) ----

/** What the console asks every node of itself: its process and broker link, or its per-app figures. */
export type ReportKind = 'node' | 'apps';

export const CONSOLE_EVENT_TYPES = [
  'connection_opened',
  'connection_closed',
  'subscribed',
  'subscription_failed',
  'unsubscribed',
  'api_message',
  'client_event',
  'webhook',
] as const;
export type ConsoleEventType = (typeof CONSOLE_EVENT_TYPES)[number];

/** One thing that happened on a node, for the console's live stream: small, plain JSON, payloads clipped. */
export interface ConsoleEvent {
  readonly ts: number;
  readonly node: string;
  readonly type: ConsoleEventType;
  readonly socket_id?: string;
  readonly channel?: string;
  readonly event?: string;
  readonly data?: string;
  readonly truncated?: boolean;
  readonly code?: number;
  readonly reason?: string;
  readonly transport?: string;
  readonly user_id?: string;
  readonly status?: number;
  readonly ok?: boolean;
  readonly attempts?: number;
  readonly url?: string;
  readonly events?: string[];
}

/** Most events one batch carries (a sender flushes more often rather than more at once). */
export const CONSOLE_BATCH_MAX = 500;

/** Events of one app from one node, with how many it skipped (sampling) since its previous batch. */
export interface ConsoleBatch {
  readonly events: readonly ConsoleEvent[];
  readonly skipped: number;
}

export interface BrokerLink {
  /** 'none' for the local adapter */
  readonly state: 'up' | 'down' | 'none';
  /** the latest measured round trip (null before the first, or without a broker) */
  readonly rttMs: number | null;
}

/**
 * What the operator console needs of the cluster: every node's report, and the live events of
 * an app from every node to the nodes whose viewers watch it. Nothing here is on the data path
 * while nobody watches: `wanted` is one map lookup.
 */
export interface OperatorLink {
  /** Each live peer's report by node id (a peer that does not answer in time is missing). Never rejects. */
  reports(kind: ReportKind): Promise<Map<string, unknown>>;
  /** This node's viewers watch the app: peers send its events here. Renewed by calling again (lapses after ~10 s). */
  watch(appId: string): void;
  /** Whether a peer's viewers watch the app. */
  wanted(appId: string): boolean;
  /** This node's events of the app to the peers that watch it. */
  send(appId: string, batch: ConsoleBatch): void;
  broker(): BrokerLink;
}

/** Pusher's webhook events, as the backend hears of them (what the core emits, what peers relay). */
export type WebhookEvent =
  | { name: 'channel_occupied' | 'channel_vacated' | 'cache_miss'; channel: string }
  | { name: 'member_added' | 'member_removed'; channel: string; user_id: string }
  | { name: 'subscription_count'; channel: string; subscription_count: number }
  | {
      name: 'client_event';
      channel: string;
      event: string;
      data: string;
      socket_id: string;
      user_id?: string;
    };

/**
 * With webhook batching on, one node forms an app's batches (so events from every node of the
 * cluster share its requests, as on one server): the others hand it their events.
 */
export interface WebhookRelay {
  /** True when this node forms the app's batches (always on a single node, and while the broker is down). */
  batchesHere(appId: string): boolean;
  /** Hands events to the node that forms the app's batches. */
  forward(appId: string, events: readonly WebhookEvent[]): void;
}

export interface Cluster {
  readonly nodeId: string;
  /** Whether cluster-wide state (quotas, cache) is exact here, or per node (a broker without shared state). */
  readonly sharedState: boolean;
  readonly channels: ChannelBus;
  readonly presence: PresenceDirectory;
  readonly users: UserDirectory;
  readonly queries: ClusterQueries;
  readonly quotas: ConnectionQuotas;
  readonly ledger: PublishLedger;
  readonly cache: ChannelCache;
  readonly history: ChannelHistory;
  readonly membership: MembershipView;
  readonly operator: OperatorLink;
  readonly webhooks: WebhookRelay;
  start(node: ClusterNode, local: LocalView): Promise<void>;
  /** Leaves the cluster, telling peers at once. */
  stop(): Promise<void>;
}
