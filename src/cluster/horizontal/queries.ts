// Cluster-wide questions (counts for the HTTP API, channel lists, connection
// counts) asked of exactly the live peers, with a deadline: a dead or frozen
// peer never hangs a call. Answers are checked by kind where they enter.
import type { ChannelCounts, ClusterQueries, LocalView, PresenceDirectory } from '../ports.js';
import type { RequestTracker } from './requests.js';
import type { Outgoing, RequestKind } from './wire.js';

export interface QueryDeps {
  requests: RequestTracker;
  liveIds(): string[];
  send(message: Outgoing): void;
  local(): LocalView | null;
  presence: PresenceDirectory;
}

const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0);

function channelList(v: unknown): Array<[string, number]> {
  if (!Array.isArray(v)) return [];
  const out: Array<[string, number]> = [];
  for (const item of v) {
    if (Array.isArray(item) && typeof item[0] === 'string' && typeof item[1] === 'number') out.push([item[0], count(item[1])]);
  }
  return out;
}

export class HorizontalQueries implements ClusterQueries {
  constructor(private readonly d: QueryDeps) {}

  private ask(k: RequestKind, a: string, c?: string): Promise<Map<string, unknown>> {
    return this.d.requests.ask(this.d.liveIds(), (id) => this.d.send(c === undefined ? { t: 'req', id, k, a } : { t: 'req', id, k, a, c }));
  }

  /** What this node answers a peer. */
  answer(k: RequestKind, appId: string, channel: string | undefined): unknown {
    const local = this.d.local();
    switch (k) {
      case 'count':
        return local?.subscriberCount(appId, channel ?? '') ?? 0;
      case 'channels':
        return [...(local?.localChannels(appId) ?? [])];
      case 'conns':
        return local?.connectionCount(appId) ?? 0;
    }
  }

  async channelCounts(appId: string, channel: string): Promise<ChannelCounts> {
    let subscriptionCount = this.d.local()?.subscriberCount(appId, channel) ?? 0;
    for (const v of (await this.ask('count', appId, channel)).values()) subscriptionCount += count(v);
    return { subscriptionCount, userCount: this.d.presence.memberCount(appId, channel) };
  }

  async occupiedChannels(appId: string): Promise<Map<string, number>> {
    const out = new Map<string, number>(this.d.local()?.localChannels(appId) ?? []);
    for (const v of (await this.ask('channels', appId)).values()) {
      for (const [name, n] of channelList(v)) out.set(name, (out.get(name) ?? 0) + n);
    }
    return out;
  }

  /** Connections of the app on the other live nodes. */
  async elsewhere(appId: string): Promise<number> {
    let total = 0;
    for (const v of (await this.ask('conns', appId)).values()) total += count(v);
    return total;
  }

  async connectionCount(appId: string): Promise<number> {
    return (this.d.local()?.connectionCount(appId) ?? 0) + (await this.elsewhere(appId));
  }
}
