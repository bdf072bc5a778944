// One node, everything in memory: the embedded default.
import { randomUUID } from 'node:crypto';
import { PresenceBook } from '../channels/presence-book.js';
import { TtlCache } from './ttl-cache.js';
export class LocalAdapter {
    registry;
    nodeId;
    presence = new PresenceBook();
    onlineUsers = new Map();
    cache = new TtlCache();
    constructor(registry, nodeId) {
        this.registry = registry;
        this.nodeId = nodeId ?? randomUUID();
    }
    async start(_node) { }
    async stop() {
        this.cache.clear();
    }
    broadcast() { }
    async watchChannel() { }
    unwatchChannel() { }
    presenceJoin(appId, channel, userId, info) {
        return this.presence.join(appId, channel, this.nodeId, userId, info);
    }
    presenceLeave(appId, channel, userId) {
        return this.presence.leave(appId, channel, this.nodeId, userId);
    }
    userOnline(appId, userId) {
        const k = `${appId}\n${userId}`;
        const n = (this.onlineUsers.get(k) ?? 0) + 1;
        this.onlineUsers.set(k, n);
        return n === 1;
    }
    userOffline(appId, userId) {
        const k = `${appId}\n${userId}`;
        const n = (this.onlineUsers.get(k) ?? 0) - 1;
        if (n > 0) {
            this.onlineUsers.set(k, n);
            return false;
        }
        return this.onlineUsers.delete(k);
    }
    isUserOnline(appId, userId) {
        return this.onlineUsers.has(`${appId}\n${userId}`);
    }
    async channelOccupied() {
        return true;
    }
    async channelVacated() {
        return true;
    }
    members() {
        return [{ nodeId: this.nodeId, processId: this.nodeId, self: true, lastSeenMs: 0 }];
    }
    async channelCounts(appId, channel) {
        return {
            subscriptionCount: this.registry.subscriberCount(appId, channel),
            userCount: this.presence.memberCount(appId, channel),
        };
    }
    async occupiedChannels(appId) {
        const out = new Map();
        for (const [name, ch] of this.registry.localChannels(appId))
            out.set(name, ch.sockets.size);
        return out;
    }
    async connectionCount(appId) {
        return this.registry.connectionCount(appId);
    }
    /** Slots taken per app; checked and taken in one synchronous step. */
    slots = new Map();
    async reserveConnection(appId, max) {
        const used = this.slots.get(appId) ?? 0;
        if (used >= max)
            return false;
        this.slots.set(appId, used + 1);
        return true;
    }
    releaseConnection(appId) {
        const used = (this.slots.get(appId) ?? 0) - 1;
        if (used > 0)
            this.slots.set(appId, used);
        else
            this.slots.delete(appId);
    }
    terminateUser() { }
    cacheSet(appId, channel, frame, ttlSeconds) {
        this.cache.set(`${appId}\n${channel}`, frame, ttlSeconds * 1000);
    }
    async cacheGet(appId, channel) {
        const hit = this.cache.get(`${appId}\n${channel}`);
        return hit ? { frame: hit.value, ttl: Math.ceil(hit.remainingMs / 1000) } : null;
    }
}
