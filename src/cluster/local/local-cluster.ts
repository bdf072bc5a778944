// One node, everything in memory: the embedded default. The same edge emitter as
// a cluster uses, with this node the owner of everything.
import { randomUUID } from 'node:crypto';
import { EdgeEmitter, type EdgeSettings } from '../edges.js';
import { HistoryRing } from '../history-ring.js';
import { PresenceBook } from '../presence-book.js';
import { MemoryLedger } from '../publish-ledger.js';
import type {
  ChannelBus,
  ChannelCache,
  ChannelCounts,
  ChannelHistory,
  Cluster,
  ClusterMember,
  ClusterNode,
  ClusterQueries,
  ConnectionQuotas,
  LocalView,
  MembershipView,
  OperatorLink,
  PresenceDirectory,
  WebhookRelay,
  UserDirectory,
} from '../ports.js';
import { TtlCache } from '../ttl-cache.js';

export interface LocalClusterSettings extends EdgeSettings {
  nodeId?: string;
}

export class LocalCluster implements Cluster {
  readonly nodeId: string;
  readonly sharedState = true;
  private node: ClusterNode | null = null;
  private local: LocalView | null = null;
  private readonly book = new PresenceBook();
  private readonly online = new Map<string, Map<string, number>>();
  private readonly cacheEntries = new TtlCache<string>();
  readonly ledger = new MemoryLedger();
  private readonly ring = new HistoryRing();
  private readonly slots = new Map<string, number>();
  private readonly edges: EdgeEmitter;

  constructor(settings: LocalClusterSettings) {
    this.nodeId = settings.nodeId ?? randomUUID();
    this.edges = new EdgeEmitter(settings, { selfId: this.nodeId, ownerOf: () => this.nodeId, ownsAll: true }, (edge) =>
      this.node?.edge(edge),
    );
  }

  /** One node: no peer reports, nobody else to send events to, no broker. */
  readonly operator: OperatorLink = {
    reports: async () => new Map<string, unknown>(),
    watch: () => undefined,
    wanted: () => false,
    send: () => undefined,
    broker: () => ({ state: 'none', rttMs: null }),
  };

  async start(node: ClusterNode, local: LocalView): Promise<void> {
    this.node = node;
    this.local = local;
  }

  async stop(): Promise<void> {
    // Nobody takes over after this node: waiting removals are reported now.
    this.edges.flush();
    this.edges.close();
    this.cacheEntries.clear();
    this.ledger.clear();
    this.ring.clear();
  }

  readonly channels: ChannelBus = {
    broadcast: () => undefined,
    watch: (appId, channel) => {
      this.edges.changed({ kind: 'channel', appId, channel, present: true });
      return undefined;
    },
    ready: () => undefined,
    unwatch: (appId, channel) => this.edges.changed({ kind: 'channel', appId, channel, present: false }),
  };

  /** One node forms every batch. */
  readonly webhooks: WebhookRelay = {
    batchesHere: () => true,
    forward: (appId, events) => this.node?.webhooksRelayed(appId, events),
  };

  readonly presence: PresenceDirectory = {
    join: (appId, channel, userId, info) => {
      const isNew = this.book.join(appId, channel, this.nodeId, userId, info);
      if (isNew) this.edges.changed({ kind: 'member', appId, channel, userId, present: true });
      return isNew;
    },
    leave: (appId, channel, userId) => {
      const gone = this.book.leave(appId, channel, this.nodeId, userId);
      if (gone) this.edges.changed({ kind: 'member', appId, channel, userId, present: false });
      return gone;
    },
    members: (appId, channel) => this.book.members(appId, channel),
    memberCount: (appId, channel) => this.book.memberCount(appId, channel),
    has: (appId, channel, userId) => this.book.has(appId, channel, userId),
    holdCount: () => undefined,
    routed: () => undefined,
  };

  readonly users: UserDirectory = {
    online: (appId, userId) => {
      let users = this.online.get(appId);
      if (!users) this.online.set(appId, (users = new Map<string, number>()));
      const n = (users.get(userId) ?? 0) + 1;
      users.set(userId, n);
      return n === 1;
    },
    offline: (appId, userId) => {
      const users = this.online.get(appId);
      const n = users?.get(userId);
      if (!users || n === undefined) return false;
      if (n > 1) {
        users.set(userId, n - 1);
        return false;
      }
      users.delete(userId);
      if (users.size === 0) this.online.delete(appId);
      return true;
    },
    isOnline: (appId, userId) => this.online.get(appId)?.has(userId) ?? false,
    disconnectEverywhere: () => undefined,
  };

  readonly queries: ClusterQueries = {
    channelCounts: async (appId, channel): Promise<ChannelCounts> => ({
      subscriptionCount: this.local?.subscriberCount(appId, channel) ?? 0,
      userCount: this.book.memberCount(appId, channel),
    }),
    occupiedChannels: async (appId) => new Map(this.local?.localChannels(appId) ?? []),
    connectionCount: async (appId) => this.local?.connectionCount(appId) ?? 0,
  };

  /** Slots per app, checked and taken in one synchronous step. */
  readonly quotas: ConnectionQuotas = {
    reserve: async (appId, max) => {
      const used = this.slots.get(appId) ?? 0;
      if (used >= max) return false;
      this.slots.set(appId, used + 1);
      return true;
    },
    release: (appId) => {
      const used = (this.slots.get(appId) ?? 0) - 1;
      if (used > 0) this.slots.set(appId, used);
      else this.slots.delete(appId);
    },
  };

  readonly cache: ChannelCache = {
    set: (appId, channel, frame, ttlSeconds) => {
      this.cacheEntries.set(JSON.stringify([appId, channel]), frame, ttlSeconds * 1000);
      return undefined;
    },
    get: async (appId, channel) => {
      const hit = this.cacheEntries.get(JSON.stringify([appId, channel]));
      return hit ? { frame: hit.value, ttl: Math.ceil(hit.remainingMs / 1000) } : null;
    },
  };

  readonly history: ChannelHistory = {
    append: async (appId, channel, frame, except, bounds) => {
      const event = this.ring.append(appId, channel, frame, except, bounds);
      this.node?.deliverNumbered(appId, channel, event);
      return event;
    },
    read: async (appId, channel, range, bounds) => this.ring.read(appId, channel, range, bounds),
    unavailable: () => null,
  };

  readonly membership: MembershipView = {
    members: (): ClusterMember[] => [{ nodeId: this.nodeId, processId: this.nodeId, self: true, lastSeenMs: 0, ready: true }],
    owns: () => true,
  };
}
