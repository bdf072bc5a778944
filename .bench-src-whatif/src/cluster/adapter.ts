// What a node needs from its peers. The local adapter answers from this node
// alone; a horizontal adapter (redis, redis-cluster, nats) answers for the
// cluster. Every method that asks peers has a bounded deadline and never rejects
// because a peer is slow or gone.
import type { PresenceBook } from '../channels/presence-book.js';

/** Cluster-wide figures for one channel. */
export interface ChannelCounts {
  subscriptionCount: number;
  /** distinct presence users (presence channels only) */
  userCount: number;
}

export interface ClusterMember {
  nodeId: string;
  processId: string;
  self: boolean;
  /** ms since the last heartbeat (0 for this node) */
  lastSeenMs: number;
}

/** What a peer asks this node to do; implemented by the node, called by the adapter. */
export interface ClusterNode {
  /** Deliver a frame to this node's local subscribers of a channel. */
  deliver(appId: string, channel: string, frame: string, exceptSocketId: string | undefined): void;
  /** Close every local socket signed in (or present) as the user. */
  terminateUser(appId: string, userId: string): void;
  /** A user went online/offline somewhere in the cluster (watchlists). */
  userPresenceChanged(appId: string, userId: string, online: boolean): void;
  /** Presence members removed because their node died; the node tells its local subscribers. */
  membersLost(refs: Array<{ appId: string; channel: string; userId: string }>): void;
  /** Presence members learnt from a peer's snapshot (a peer that came back); local subscribers are told. */
  membersFound(refs: Array<{ appId: string; channel: string; userId: string; info: unknown }>): void;
}

export interface Adapter {
  readonly nodeId: string;
  /** Shared presence membership; adapters keep it in step with the cluster. */
  readonly presence: PresenceBook;
  start(node: ClusterNode): Promise<void>;
  /** Leaves the cluster, telling peers at once. */
  stop(): Promise<void>;

  /** Sends a frame to the channel's subscribers on other nodes (local delivery is the caller's). */
  broadcast(appId: string, channel: string, frame: string, exceptSocketId?: string): void;
  /** This node gained its first subscriber: resolves once events published anywhere reach it. */
  watchChannel(appId: string, channel: string): Promise<void>;
  /** This node lost its last subscriber for the channel. */
  unwatchChannel(appId: string, channel: string): void;

  /** A local socket joined a presence channel; true when the user is new to the channel cluster-wide. */
  presenceJoin(appId: string, channel: string, userId: string, info: unknown): boolean;
  /** A local socket left; true when the user has no socket left in the channel anywhere. */
  presenceLeave(appId: string, channel: string, userId: string): boolean;

  /** Signed-in users: first socket of a user on this node / last socket gone. Returns the cluster-wide edge. */
  userOnline(appId: string, userId: string): boolean;
  userOffline(appId: string, userId: string): boolean;
  isUserOnline(appId: string, userId: string): boolean;

  /** This node got its first local subscriber; true when the channel was empty cluster-wide (exactly one node sees true). */
  channelOccupied(appId: string, channel: string): Promise<boolean>;
  /** This node lost its last local subscriber; true when the channel is now empty cluster-wide. */
  channelVacated(appId: string, channel: string): Promise<boolean>;

  /** The live members of the cluster, this node first. */
  members(): ClusterMember[];

  channelCounts(appId: string, channel: string): Promise<ChannelCounts>;
  /** Occupied channels of an app with their subscription counts. */
  occupiedChannels(appId: string): Promise<Map<string, number>>;
  connectionCount(appId: string): Promise<number>;
  /** Takes one of `max` connection slots of the app cluster-wide, atomically; false when none is left. */
  reserveConnection(appId: string, max: number): Promise<boolean>;
  /** Gives a slot back (the socket closed). */
  releaseConnection(appId: string): void;
  /** Asks peers to close the user's sockets (the caller closes local ones). */
  terminateUser(appId: string, userId: string): void;

  /** Cache channels: the last event's frame, shared by the cluster. */
  cacheSet(appId: string, channel: string, frame: string, ttlSeconds: number): void;
  cacheGet(appId: string, channel: string): Promise<{ frame: string; ttl: number } | null>;
}
