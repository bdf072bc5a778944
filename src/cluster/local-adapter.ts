// One node, everything in memory: the embedded default.
import { randomUUID } from 'node:crypto';
import { PresenceBook } from '../channels/presence-book.js';
import type { LocalRegistry } from '../channels/registry.js';
import type { Adapter, ChannelCounts, ClusterMember, ClusterNode } from './adapter.js';
import { TtlCache } from './ttl-cache.js';

export class LocalAdapter implements Adapter {
  readonly nodeId: string;
  readonly presence = new PresenceBook();
  private readonly onlineUsers = new Map<string, number>();
  private readonly cache = new TtlCache<string>();

  constructor(private readonly registry: LocalRegistry, nodeId?: string) {
    this.nodeId = nodeId ?? randomUUID();
  }

  async start(_node: ClusterNode): Promise<void> {}

  async stop(): Promise<void> {
    this.cache.clear();
  }

  broadcast(): void {}

  async watchChannel(): Promise<void> {}

  unwatchChannel(): void {}

  presenceJoin(appId: string, channel: string, userId: string, info: unknown): boolean {
    return this.presence.join(appId, channel, this.nodeId, userId, info);
  }

  presenceLeave(appId: string, channel: string, userId: string): boolean {
    return this.presence.leave(appId, channel, this.nodeId, userId);
  }

  userOnline(appId: string, userId: string): boolean {
    const k = `${appId}\n${userId}`;
    const n = (this.onlineUsers.get(k) ?? 0) + 1;
    this.onlineUsers.set(k, n);
    return n === 1;
  }

  userOffline(appId: string, userId: string): boolean {
    const k = `${appId}\n${userId}`;
    const n = (this.onlineUsers.get(k) ?? 0) - 1;
    if (n > 0) {
      this.onlineUsers.set(k, n);
      return false;
    }
    return this.onlineUsers.delete(k);
  }

  isUserOnline(appId: string, userId: string): boolean {
    return this.onlineUsers.has(`${appId}\n${userId}`);
  }

  async channelOccupied(): Promise<boolean> {
    return true;
  }

  async channelVacated(): Promise<boolean> {
    return true;
  }

  members(): ClusterMember[] {
    return [{ nodeId: this.nodeId, processId: this.nodeId, self: true, lastSeenMs: 0 }];
  }

  async channelCounts(appId: string, channel: string): Promise<ChannelCounts> {
    return {
      subscriptionCount: this.registry.subscriberCount(appId, channel),
      userCount: this.presence.memberCount(appId, channel),
    };
  }

  async occupiedChannels(appId: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [name, ch] of this.registry.localChannels(appId)) out.set(name, ch.count);
    return out;
  }

  async connectionCount(appId: string): Promise<number> {
    return this.registry.connectionCount(appId);
  }

  /** Slots taken per app; checked and taken in one synchronous step. */
  private readonly slots = new Map<string, number>();

  async reserveConnection(appId: string, max: number): Promise<boolean> {
    const used = this.slots.get(appId) ?? 0;
    if (used >= max) return false;
    this.slots.set(appId, used + 1);
    return true;
  }

  releaseConnection(appId: string): void {
    const used = (this.slots.get(appId) ?? 0) - 1;
    if (used > 0) this.slots.set(appId, used);
    else this.slots.delete(appId);
  }

  terminateUser(): void {}

  cacheSet(appId: string, channel: string, frame: string, ttlSeconds: number): void {
    this.cache.set(`${appId}\n${channel}`, frame, ttlSeconds * 1000);
  }

  async cacheGet(appId: string, channel: string): Promise<{ frame: string; ttl: number } | null> {
    const hit = this.cache.get(`${appId}\n${channel}`);
    return hit ? { frame: hit.value, ttl: Math.ceil(hit.remainingMs / 1000) } : null;
  }
}
