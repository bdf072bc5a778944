// N nodes as one server over a broker (redis, redis-cluster, nats).
// - Channel events travel on one topic per (app, channel); a node subscribes
//   only while it has local subscribers, so traffic follows interest.
// - Presence is a replicated book fed by deltas; heartbeats carry a digest of
//   each node's own entries and a mismatch fetches a snapshot (anti-entropy).
// - Membership comes from heartbeats; cluster-wide questions ask exactly the
//   live peers with a deadline.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { PresenceBook, type MemberRef } from '../channels/presence-book.js';
import type { LocalRegistry } from '../channels/registry.js';
import type { Adapter, ChannelCounts, ClusterMember, ClusterNode } from './adapter.js';
import { Membership, type LossReason, type Peer } from './membership.js';
import {
  channelPayload,
  entriesFromWire,
  entriesToWire,
  parseChannelPayload,
  type ControlMessage,
  type RequestKind,
} from './messages.js';
import { RequestTracker } from './requests.js';
import { TtlCache } from './ttl-cache.js';
import { LocalMarkers } from '../webhooks/markers.js';
import type { Transport } from './transport.js';

export interface BusObserver {
  /** a payload arrived (a node without interest in a channel sees none of its traffic) */
  message(kind: 'channel' | 'control', bytes: number): void;
  /** the broker connection came back after an outage */
  reconnected(): void;
  /** a round trip to the broker, measured once per heartbeat */
  rtt(seconds: number): void;
}

export interface HorizontalOptions {
  /** topic prefix (adapter.redis.prefix / adapter.nats.prefix) */
  prefix: string;
  /** key prefix for claims and cache entries */
  keyPrefix: string;
  processId?: string;
  heartbeatIntervalMs: number;
  nodeTimeoutMs: number;
  cleanupIntervalMs: number;
  requestTimeoutMs: number;
  /** Called for every payload this node receives from the bus (metrics: proves interest routing). */
  /** What the node reports about its bus (metrics). */
  observer?: BusObserver;
}

/** What the cluster-health side (webhooks for lost peers) hears about peers. */
export interface PeerEvents {
  /** A peer is gone: its presence users who left entirely, and the channels it held (app\nchannel). */
  lost(peer: Peer, reason: LossReason, removed: MemberRef[], channels: string[]): void;
  /** A peer we had declared dead is back (a false alarm): users and channels that returned with it. */
  revived(peer: Peer, added: Array<MemberRef & { info: unknown }>, channels: string[]): void;
}

/** How long a subscription may wait for the broker before the node goes on without it. */
const SUBSCRIBE_WAIT_MS = 3000;

export class HorizontalAdapter implements Adapter {
  readonly nodeId: string;
  readonly processId: string;
  readonly presence = new PresenceBook();
  private node: ClusterNode | null = null;
  private readonly membership: Membership;
  private readonly requests: RequestTracker;
  private readonly controlTopic: string;
  private readonly ownTopic: string;
  /** topic -> [appId, channel] for the channel topics this node holds */
  private readonly channelTopics = new Map<string, [string, string]>();
  /** app\nuser -> nodes where the user is signed in */
  private readonly online = new Map<string, Set<string>>();
  /** app\nuser -> local sockets signed in as the user */
  private readonly localOnline = new Map<string, number>();
  /** peer -> app\nchannel it has local subscribers for (to clean up after it dies) */
  private readonly interest = new Map<string, Set<string>>();
  private readonly startedAt = Date.now();
  /** fallbacks when the broker has no shared state */
  private readonly localCache = new TtlCache<string>();
  private readonly localMarkers = new LocalMarkers();
  /**
   * Deltas and snapshots travel on different topics (on Redis Cluster, different
   * shards), so they can overtake each other. Each delta carries the sender's
   * sequence number and each snapshot the number it includes up to: a delta the
   * snapshot already holds is skipped, a snapshot older than an applied delta is
   * refetched.
   */
  private seq = 0;
  /** peer -> highest sequence number applied from it */
  private readonly applied = new Map<string, number>();
  /** occupancy key -> the last set change this node queued for it */
  private readonly occupancyQueue = new Map<string, Promise<void>>();
  /** when the last membership sweep ran (a late one reveals a stall of this process) */
  private lastSweep = Date.now();
  private timers: NodeJS.Timeout[] = [];
  private brokerUp = true;
  /** Set by the composition root; cluster-health webhooks hang off it. */
  peerEvents: PeerEvents | null = null;
  /** peers declared dead whose return would be a revival */
  private readonly declaredDead = new Set<string>();

  constructor(
    private readonly transport: Transport,
    private readonly registry: LocalRegistry,
    private readonly options: HorizontalOptions,
    private readonly log: Logger,
  ) {
    this.processId = options.processId ?? `${hostname()}-${process.pid}`;
    this.nodeId = `${this.processId}~${randomUUID().slice(0, 8)}`;
    this.controlTopic = transport.topic(options.prefix, 'cluster');
    this.ownTopic = transport.topic(options.prefix, 'node', this.nodeId);
    this.requests = new RequestTracker(Math.min(options.requestTimeoutMs, options.nodeTimeoutMs));
    this.membership = new Membership(options.nodeTimeoutMs, {
      joined: (peer) => this.log.info({ peer: peer.nodeId }, 'cluster peer joined'),
      lost: (peer, reason) => this.peerLost(peer, reason),
    });
  }

  // lifecycle

  async start(node: ClusterNode): Promise<void> {
    this.node = node;
    await this.transport.connect({
      message: (topic, payload) => this.onMessage(topic, payload),
      status: (up) => this.onBrokerStatus(up),
    });
    await Promise.all([this.transport.subscribe(this.controlTopic), this.transport.subscribe(this.ownTopic)]);
    this.send({ t: 'hello', n: this.nodeId, p: this.processId });
    this.heartbeat();
    this.timers.push(setInterval(() => this.heartbeat(), this.options.heartbeatIntervalMs));
    this.timers.push(setInterval(() => this.sweep(), this.options.cleanupIntervalMs));
    for (const t of this.timers) t.unref();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.send({ t: 'bye', n: this.nodeId });
    this.requests.close();
    await this.transport.close();
  }

  members(): ClusterMember[] {
    const now = Date.now();
    return [
      { nodeId: this.nodeId, processId: this.processId, self: true, lastSeenMs: 0 },
      ...this.membership.list().map((p) => ({ nodeId: p.nodeId, processId: p.processId, self: false, lastSeenMs: now - p.lastSeen })),
    ];
  }

  /** Channels a peer held when last heard of, as app\nchannel. */
  interestOf(nodeId: string): ReadonlySet<string> {
    return this.interest.get(nodeId) ?? new Set();
  }

  // channel events

  broadcast(appId: string, channel: string, frame: string, exceptSocketId?: string): void {
    this.transport.publish(this.channelTopic(appId, channel), channelPayload(this.nodeId, exceptSocketId, frame));
  }

  async watchChannel(appId: string, channel: string): Promise<void> {
    const topic = this.channelTopic(appId, channel);
    this.channelTopics.set(topic, [appId, channel]);
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), SUBSCRIBE_WAIT_MS).unref());
    const result = await Promise.race([this.transport.subscribe(topic).then(() => 'ok' as const), timeout]).catch(
      (err: Error) => err,
    );
    if (result !== 'ok') {
      // Local delivery still works; the broker subscription is restored when it comes back.
      this.log.warn({ app_id: appId, channel, reason: result instanceof Error ? result.message : result }, 'channel subscription not confirmed by the broker');
    }
  }

  unwatchChannel(appId: string, channel: string): void {
    const topic = this.channelTopic(appId, channel);
    this.channelTopics.delete(topic);
    this.transport.unsubscribe(topic).catch(() => undefined);
  }

  private channelTopic(appId: string, channel: string): string {
    return this.transport.topic(this.options.prefix, 'ch', appId, channel);
  }

  // cluster-wide occupancy: a set per channel in the broker holds the nodes with
  // subscribers; only the node whose change empties or fills it sees an edge.

  private occupancyKey(appId: string, channel: string): string {
    return `${this.options.keyPrefix}occ:${appId}:${channel}`;
  }

  /**
   * Changes a channel's occupancy set after this node's earlier changes to it
   * have finished. A set change may take several broker round trips (NATS KV
   * compare-and-set), so a quick subscribe + unsubscribe could otherwise read
   * the set before its own add landed, skip the remove and leave this node in
   * the set for good (no channel_vacated, then no channel_occupied, ever again).
   */
  private occupancyChange(op: 'add' | 'remove', key: string, nodeId: string): Promise<{ changed: boolean; members: string[] }> {
    const run = () => this.transport.setChange(op, key, nodeId);
    const result = (this.occupancyQueue.get(key) ?? Promise.resolve()).then(run, run);
    const tail = result.then(() => undefined, () => undefined);
    this.occupancyQueue.set(key, tail);
    void tail.then(() => {
      if (this.occupancyQueue.get(key) === tail) this.occupancyQueue.delete(key);
    });
    return result;
  }

  /** Without shared broker state: does any live peer hold the channel (from interest messages)? */
  private heldByPeers(appId: string, channel: string): boolean {
    const k = `${appId}\n${channel}`;
    return this.membership.liveIds().some((id) => this.interest.get(id)?.has(k));
  }

  async channelOccupied(appId: string, channel: string): Promise<boolean> {
    this.send({ t: 'ci', n: this.nodeId, s: ++this.seq, a: appId, c: channel });
    if (!this.transport.sharedState) return !this.heldByPeers(appId, channel);
    const { changed, members } = await this.occupancyChange('add', this.occupancyKey(appId, channel), this.nodeId);
    // Members no live node accounts for are left over from nodes that died unseen (a whole-cluster restart).
    const settled = Date.now() - this.startedAt > this.options.nodeTimeoutMs;
    const others = members.filter((m) => m !== this.nodeId && (!settled || this.membership.isLive(m)));
    if (settled) {
      for (const stale of members.filter((m) => m !== this.nodeId && !this.membership.isLive(m))) {
        this.transport.setChange('remove', this.occupancyKey(appId, channel), stale).catch(() => undefined);
      }
    }
    return changed && others.length === 0;
  }

  async channelVacated(appId: string, channel: string): Promise<boolean> {
    this.send({ t: 'cx', n: this.nodeId, s: ++this.seq, a: appId, c: channel });
    if (!this.transport.sharedState) return !this.heldByPeers(appId, channel);
    return this.removeOccupant(appId, channel, this.nodeId);
  }

  /** Puts a returned peer back in a channel's set; true when that refilled an empty channel. */
  async restoreOccupant(appId: string, channel: string, nodeId: string): Promise<boolean> {
    if (!this.transport.sharedState) return false;
    const { changed, members } = await this.occupancyChange('add', this.occupancyKey(appId, channel), nodeId);
    return changed && members.length === 1;
  }

  /** Takes a node out of a channel's set; true when that emptied it. */
  async removeOccupant(appId: string, channel: string, nodeId: string): Promise<boolean> {
    if (!this.transport.sharedState) {
      return this.registry.subscriberCount(appId, channel) === 0 && !this.heldByPeers(appId, channel);
    }
    const { changed, members } = await this.occupancyChange('remove', this.occupancyKey(appId, channel), nodeId);
    return changed && members.length === 0;
  }

  // presence and users

  presenceJoin(appId: string, channel: string, userId: string, info: unknown): boolean {
    const isNew = this.presence.join(appId, channel, this.nodeId, userId, info);
    this.send({ t: 'pj', n: this.nodeId, s: ++this.seq, a: appId, c: channel, u: userId, i: info });
    return isNew;
  }

  presenceLeave(appId: string, channel: string, userId: string): boolean {
    const gone = this.presence.leave(appId, channel, this.nodeId, userId);
    this.send({ t: 'pl', n: this.nodeId, s: ++this.seq, a: appId, c: channel, u: userId });
    return gone;
  }

  userOnline(appId: string, userId: string): boolean {
    const k = `${appId}\n${userId}`;
    const n = (this.localOnline.get(k) ?? 0) + 1;
    this.localOnline.set(k, n);
    if (n > 1) return false;
    this.send({ t: 'uon', n: this.nodeId, s: ++this.seq, a: appId, u: userId });
    return this.markOnline(k, this.nodeId);
  }

  userOffline(appId: string, userId: string): boolean {
    const k = `${appId}\n${userId}`;
    const n = (this.localOnline.get(k) ?? 0) - 1;
    if (n > 0) {
      this.localOnline.set(k, n);
      return false;
    }
    this.localOnline.delete(k);
    this.send({ t: 'uoff', n: this.nodeId, s: ++this.seq, a: appId, u: userId });
    return this.markOffline(k, this.nodeId);
  }

  isUserOnline(appId: string, userId: string): boolean {
    return this.online.has(`${appId}\n${userId}`);
  }

  /** true when the user was offline everywhere before */
  private markOnline(k: string, nodeId: string): boolean {
    let nodes = this.online.get(k);
    if (!nodes) this.online.set(k, (nodes = new Set()));
    const before = nodes.size;
    nodes.add(nodeId);
    return before === 0;
  }

  /** true when the user is now offline everywhere */
  private markOffline(k: string, nodeId: string): boolean {
    const nodes = this.online.get(k);
    if (!nodes || !nodes.delete(nodeId)) return false;
    if (nodes.size > 0) return false;
    this.online.delete(k);
    return true;
  }

  terminateUser(appId: string, userId: string): void {
    this.send({ t: 'term', n: this.nodeId, a: appId, u: userId });
  }

  // cluster-wide questions

  private ask(k: RequestKind, a: string, c?: string): Promise<Map<string, unknown>> {
    return this.requests.ask(this.membership.liveIds(), (id) =>
      this.send(c === undefined ? { t: 'req', n: this.nodeId, id, k, a } : { t: 'req', n: this.nodeId, id, k, a, c }),
    );
  }

  async channelCounts(appId: string, channel: string): Promise<ChannelCounts> {
    let subscriptionCount = this.registry.subscriberCount(appId, channel);
    for (const v of (await this.ask('count', appId, channel)).values()) subscriptionCount += Number(v) || 0;
    return { subscriptionCount, userCount: this.presence.memberCount(appId, channel) };
  }

  async occupiedChannels(appId: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [name, ch] of this.registry.localChannels(appId)) out.set(name, ch.count);
    for (const v of (await this.ask('channels', appId)).values()) {
      if (!Array.isArray(v)) continue;
      for (const [name, count] of v as Array<[string, number]>) out.set(name, (out.get(name) ?? 0) + count);
    }
    return out;
  }

  async connectionCount(appId: string): Promise<number> {
    let total = this.registry.connectionCount(appId);
    for (const v of (await this.ask('conns', appId)).values()) total += Number(v) || 0;
    return total;
  }

  async reserveConnection(appId: string, max: number): Promise<boolean> {
    // Without shared state: the cluster's count now (concurrent upgrades may overshoot a little).
    if (!this.transport.sharedState) return (await this.connectionCount(appId)) < max;
    // Until this node has heard every peer's heartbeat it cannot tell dead counts from live ones.
    const settled = Date.now() - this.startedAt > this.options.heartbeatIntervalMs * 3;
    const live = settled ? this.membership.liveIds() : null;
    try {
      return await this.transport.quotaTake(this.quotaKey(appId), this.nodeId, max, live);
    } catch (err) {
      // Fail open: a broker outage must not lock every client out.
      this.log.warn({ app_id: appId, err: (err as Error).message }, 'connection quota unavailable, admitting');
      return true;
    }
  }

  releaseConnection(appId: string): void {
    if (!this.transport.sharedState) return;
    this.transport.quotaRelease(this.quotaKey(appId), this.nodeId).catch(() => undefined);
  }

  private quotaKey(appId: string): string {
    return `${this.options.keyPrefix}conns:${appId}`;
  }

  private answer(k: RequestKind, a: string, c: string | undefined): unknown {
    switch (k) {
      case 'count':
        return this.registry.subscriberCount(a, c ?? '');
      case 'channels':
        return [...this.registry.localChannels(a)].map(([name, ch]) => [name, ch.count]);
      case 'conns':
        return this.registry.connectionCount(a);
    }
  }

  // cache channels

  cacheSet(appId: string, channel: string, frame: string, ttlSeconds: number): void {
    if (!this.transport.sharedState) {
      // Per node only: the last event published through this node.
      this.localCache.set(this.cacheKey(appId, channel), frame, ttlSeconds * 1000);
      return;
    }
    this.transport.put(this.cacheKey(appId, channel), frame, ttlSeconds * 1000).catch((err: Error) => {
      this.log.warn({ app_id: appId, channel, err: err.message }, 'cache write failed');
    });
  }

  async cacheGet(appId: string, channel: string): Promise<{ frame: string; ttl: number } | null> {
    if (!this.transport.sharedState) {
      const hit = this.localCache.get(this.cacheKey(appId, channel));
      return hit ? { frame: hit.value, ttl: Math.ceil(hit.remainingMs / 1000) } : null;
    }
    try {
      const hit = await this.transport.get(this.cacheKey(appId, channel));
      return hit ? { frame: hit.value, ttl: Math.ceil(hit.ttlMs / 1000) } : null;
    } catch (err) {
      this.log.warn({ app_id: appId, channel, err: (err as Error).message }, 'cache read failed');
      return null;
    }
  }

  private cacheKey(appId: string, channel: string): string {
    return `${this.options.keyPrefix}cache:${appId}:${channel}`;
  }

  /**
   * Claims a one-off duty (e.g. webhooks for a dead peer) for exactly one node. Without shared
   * state the live node with the smallest id takes it (right whenever the survivors agree on
   * who is live).
   */
  async claim(duty: string, ttlMs: number): Promise<boolean> {
    if (!this.transport.sharedState) return this.membership.liveIds().every((id) => id > this.nodeId);
    return this.transport.claim(`${this.options.keyPrefix}claim:${duty}`, ttlMs);
  }

  /** Gives a claim up; true only for the one caller that found it. */
  async takeClaim(duty: string): Promise<boolean> {
    if (!this.transport.sharedState) return false;
    return this.transport.take(`${this.options.keyPrefix}claim:${duty}`);
  }

  /** Marks a held webhook removal (see webhooks/markers.ts); per node without shared state. */
  async setMarker(key: string, ttlMs: number): Promise<void> {
    if (!this.transport.sharedState) return this.localMarkers.set(key, ttlMs);
    if (await this.claim(`mark:${key}`, ttlMs)) return;
    // A leftover from a node that died while holding: replace it.
    await this.takeClaim(`mark:${key}`);
    await this.claim(`mark:${key}`, ttlMs);
  }

  async takeMarker(key: string): Promise<boolean> {
    if (!this.transport.sharedState) return this.localMarkers.take(key);
    return this.takeClaim(`mark:${key}`);
  }

  // the bus

  private send(message: ControlMessage, topic = this.controlTopic): void {
    this.transport.publish(topic, JSON.stringify(message));
  }

  /**
   * Declares silent peers dead, but not for silence that is our own: a sweep
   * that runs late means this process was frozen (SIGSTOP, a long stall), and
   * the peers' heartbeats from that time are still unread in the socket. The
   * stall is added to every peer's deadline, so a frozen node that resumes does
   * not declare the healthy cluster dead (and send webhooks for it).
   */
  private sweep(): void {
    const now = Date.now();
    const stalledMs = now - this.lastSweep - this.options.cleanupIntervalMs;
    this.lastSweep = now;
    if (stalledMs > this.options.heartbeatIntervalMs) {
      for (const peer of this.membership.list()) peer.lastSeen = Math.min(now, peer.lastSeen + stalledMs);
    }
    this.membership.sweep(now);
  }

  private measureRtt(): void {
    const observer = this.options.observer;
    if (!observer || !this.brokerUp) return;
    const started = process.hrtime.bigint();
    this.transport.ping().then(
      () => observer.rtt(Number(process.hrtime.bigint() - started) / 1e9),
      () => undefined,
    );
  }

  private heartbeat(): void {
    this.measureRtt();
    this.send({ t: 'hb', n: this.nodeId, p: this.processId, d: this.presence.digestOf(this.nodeId), s: this.seq });
  }

  private sendSnapshot(to: string): void {
    const online: Array<[string, string]> = [];
    for (const k of this.localOnline.keys()) {
      const [a, u] = k.split('\n', 2);
      online.push([a, u]);
    }
    const ch = [...this.channelTopics.values()];
    this.send(
      { t: 'snap', n: this.nodeId, s: this.seq, e: entriesToWire(this.presence.entriesOf(this.nodeId)), o: online, ch },
      this.transport.topic(this.options.prefix, 'node', to),
    );
  }

  private onMessage(topic: string, payload: string): void {
    const control = topic === this.controlTopic || topic === this.ownTopic;
    this.options.observer?.message(control ? 'control' : 'channel', Buffer.byteLength(payload));
    if (control) {
      let message: ControlMessage;
      try {
        message = JSON.parse(payload) as ControlMessage;
      } catch {
        return;
      }
      if (message.n === this.nodeId || typeof message.n !== 'string') return;
      this.onControl(message);
      return;
    }
    const target = this.channelTopics.get(topic);
    if (!target) return;
    const parsed = parseChannelPayload(payload);
    if (!parsed || parsed.origin === this.nodeId) return;
    this.node?.deliver(target[0], target[1], parsed.frame, parsed.except);
  }

  private onControl(m: ControlMessage): void {
    if (m.t === 'bye') {
      this.membership.left(m.n);
      return;
    }
    const known = this.membership.isLive(m.n);
    if (m.t === 'hb' || m.t === 'hello') {
      const peer = this.membership.seen(m.n, m.p);
      if (m.t === 'hello') {
        this.sendSnapshot(m.n);
      } else if (!known) {
        // A peer we had not seen (or had declared dead): learn its state.
        this.send({ t: 'snapreq', n: this.nodeId }, this.transport.topic(this.options.prefix, 'node', m.n));
      } else if ((this.applied.get(m.n) ?? 0) >= (m.s ?? 0)) {
        this.checkDigest(peer, m.d);
      } else {
        // Deltas travel on this topic ahead of the heartbeat, so a gap means some were lost.
        this.checkDigest(peer, NaN);
      }
      return;
    }
    // Any other message is also a sign of life, but only from a peer we know.
    if (!known && m.t !== 'snap' && m.t !== 'res') return;
    const peer = known ? this.membership.get(m.n) : undefined;
    if (peer) peer.lastSeen = Date.now();
    if ('s' in m && m.t !== 'snap' && typeof m.s === 'number') {
      if (m.s <= (this.applied.get(m.n) ?? 0)) return;
      this.applied.set(m.n, m.s);
    }
    switch (m.t) {
      case 'pj':
        this.presence.join(m.a, m.c, m.n, m.u, m.i);
        return;
      case 'pl':
        this.presence.leave(m.a, m.c, m.n, m.u);
        return;
      case 'uon':
        if (this.markOnline(`${m.a}\n${m.u}`, m.n)) this.node?.userPresenceChanged(m.a, m.u, true);
        return;
      case 'uoff':
        if (this.markOffline(`${m.a}\n${m.u}`, m.n)) this.node?.userPresenceChanged(m.a, m.u, false);
        return;
      case 'term':
        this.node?.terminateUser(m.a, m.u);
        return;
      case 'ci':
      case 'cx': {
        let set = this.interest.get(m.n);
        if (!set) this.interest.set(m.n, (set = new Set()));
        if (m.t === 'ci') set.add(`${m.a}\n${m.c}`);
        else set.delete(`${m.a}\n${m.c}`);
        return;
      }
      case 'req':
        this.send({ t: 'res', n: this.nodeId, id: m.id, v: this.answer(m.k, m.a, m.c) }, this.transport.topic(this.options.prefix, 'node', m.n));
        return;
      case 'res':
        this.requests.answer(m.id, m.n, m.v);
        return;
      case 'snapreq':
        this.sendSnapshot(m.n);
        return;
      case 'snap':
        this.applySnapshot(m);
        return;
    }
  }

  /** Two heartbeats in a row that disagree with our view of the peer fetch its snapshot. */
  private checkDigest(peer: Peer, digest: number): void {
    peer.digest = digest;
    if (this.presence.digestOf(peer.nodeId) === digest) {
      peer.mismatches = 0;
      return;
    }
    if (++peer.mismatches >= 2) {
      peer.mismatches = 0;
      this.send({ t: 'snapreq', n: this.nodeId }, this.transport.topic(this.options.prefix, 'node', peer.nodeId));
    }
  }

  private applySnapshot(m: Extract<ControlMessage, { t: 'snap' }>): void {
    const peer = this.membership.get(m.n);
    if (!peer) return;
    if (typeof m.s === 'number') {
      if (m.s < (this.applied.get(m.n) ?? 0)) {
        // Older than a delta already applied: it would undo it. Ask again.
        this.send({ t: 'snapreq', n: this.nodeId }, this.transport.topic(this.options.prefix, 'node', m.n));
        return;
      }
      this.applied.set(m.n, m.s);
    }
    const channels = Array.isArray(m.ch) ? m.ch.map(([a, c]) => `${a}\n${c}`) : [];
    this.interest.set(m.n, new Set(channels));
    const { added, removed } = this.presence.replaceNode(m.n, entriesFromWire(m.e));
    if (this.declaredDead.delete(m.n)) this.peerEvents?.revived(peer, added, channels);
    if (removed.length) this.node?.membersLost(removed);
    if (added.length) this.node?.membersFound(added);
    const nowOnline = new Set(m.o.map(([a, u]) => `${a}\n${u}`));
    for (const [k, nodes] of [...this.online]) {
      if (nodes.has(m.n) && !nowOnline.has(k) && this.markOffline(k, m.n)) {
        const [a, u] = k.split('\n', 2);
        this.node?.userPresenceChanged(a, u, false);
      }
    }
    for (const k of nowOnline) {
      if (this.markOnline(k, m.n)) {
        const [a, u] = k.split('\n', 2);
        this.node?.userPresenceChanged(a, u, true);
      }
    }
  }

  private peerLost(peer: Peer, reason: LossReason): void {
    this.log.warn({ peer: peer.nodeId, reason }, 'cluster peer lost');
    this.requests.forget(peer.nodeId);
    this.applied.delete(peer.nodeId);
    const removed = this.presence.dropNode(peer.nodeId);
    if (removed.length) this.node?.membersLost(removed);
    for (const [k, nodes] of [...this.online]) {
      if (nodes.has(peer.nodeId) && this.markOffline(k, peer.nodeId)) {
        const [a, u] = k.split('\n', 2);
        this.node?.userPresenceChanged(a, u, false);
      }
    }
    const channels = [...(this.interest.get(peer.nodeId) ?? [])];
    this.interest.delete(peer.nodeId);
    if (reason !== 'left') {
      this.declaredDead.add(peer.nodeId);
      // Remember a bounded number of the dead (oldest forgotten first).
      if (this.declaredDead.size > 1000) this.declaredDead.delete(this.declaredDead.values().next().value!);
    }
    this.peerEvents?.lost(peer, reason, removed, channels);
  }

  private onBrokerStatus(up: boolean): void {
    if (up === this.brokerUp) return;
    this.brokerUp = up;
    if (!up) {
      this.log.error('broker connection lost; serving local clients only until it returns');
      return;
    }
    this.log.info('broker connection restored; resynchronising');
    this.options.observer?.reconnected();
    // Peers answer hello with snapshots; they notice our own drift from our heartbeat digest.
    this.send({ t: 'hello', n: this.nodeId, p: this.processId });
    this.heartbeat();
  }
}
