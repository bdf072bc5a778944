// The console's views as JSON, cluster-wide whichever node serves them: this node's
// own report plus every live peer's (checked by schema where they enter: a peer of
// another version, or a broken one, shows as "did not report", never as garbage).
import { z } from 'zod';
import type { App } from '../../../apps/app.js';
import type { AppStore } from '../../../apps/store.js';
import { clipData } from '../../../core/console-tap.js';
import type { Core } from '../../../core/core.js';
import type { AppTotals } from '../../../metrics/metrics.js';
import { channelInfo } from '../../../protocol/channels.js';

const count = z.number().nonnegative().finite();

const nodeReport = z.object({
  address: z.string().max(300),
  pid: z.number().int().nonnegative(),
  version: z.string().max(64),
  uptime_s: count,
  connections: count,
  event_loop_lag_ms: count,
  rss_bytes: count,
  heap_used_bytes: count,
  broker: z.object({ state: z.enum(['up', 'down', 'none']), rtt_ms: count.nullable() }),
});
type NodeFigures = z.infer<typeof nodeReport>;

const appTotals = z.object({
  connections: count,
  messagesIn: count,
  messagesOut: count,
  apiMessages: count,
  clientEvents: count,
  rateLimited: count,
  webhooksSent: count,
  webhooksFailed: count,
  webhooksDead: count,
  webhooksDropped: count,
  webhooksEnqueued: count,
});
const appsReport = z.object({ apps: z.array(z.tuple([z.string().max(512), appTotals])).max(100_000) });

export interface ViewDeps {
  core: Core;
  apps: AppStore;
  driver: string;
}

/** Channels one page of the list may hold. */
export const CHANNEL_PAGE_MAX = 500;
/** Presence members the channel view lists (the count is always whole). */
const MEMBERS_SHOWN = 1000;

export const SECRET_MASK = '••••••';

export class ConsoleViews {
  /** The highest cluster-wide connection count this node saw per app (since it started serving the console). */
  private readonly peaks = new Map<string, number>();

  constructor(private readonly d: ViewDeps) {}

  async cluster(): Promise<unknown> {
    const [own, peers] = await Promise.all([this.d.core.ownReport('node'), this.d.core.peerReports('node')]);
    const nodes = this.d.core.clusterMembers().map((m) => {
      const parsed = nodeReport.safeParse(m.self ? own : peers.get(m.nodeId));
      const figures: NodeFigures | null = parsed.success ? parsed.data : null;
      return {
        node_id: m.nodeId,
        self: m.self,
        heartbeat_age_ms: m.lastSeenMs,
        ready: m.ready,
        reported: figures !== null,
        address: figures?.address ?? null,
        pid: figures?.pid ?? null,
        version: figures?.version ?? null,
        uptime_s: figures?.uptime_s ?? null,
        connections: figures?.connections ?? null,
        event_loop_lag_ms: figures?.event_loop_lag_ms ?? null,
        rss_bytes: figures?.rss_bytes ?? null,
        heap_used_bytes: figures?.heap_used_bytes ?? null,
        broker: figures ? figures.broker : null,
      };
    });
    return { node_id: this.d.core.nodeId, driver: this.d.driver, nodes };
  }

  async appsView(): Promise<unknown> {
    const [list, own, peers] = await Promise.all([this.d.apps.list(), this.d.core.ownReport('apps'), this.d.core.peerReports('apps')]);
    const sums = new Map<string, AppTotals>();
    for (const report of [own, ...peers.values()]) {
      const parsed = appsReport.safeParse(report);
      if (!parsed.success) continue;
      for (const [appId, t] of parsed.data.apps) {
        const sum = sums.get(appId);
        if (!sum) sums.set(appId, { ...t });
        else for (const k of Object.keys(t) as Array<keyof AppTotals>) sum[k] += t[k];
      }
    }
    const apps = list.map((app) => {
      const t = sums.get(app.id);
      const connections = t?.connections ?? 0;
      const peak = Math.max(connections, this.peaks.get(app.id) ?? 0);
      this.peaks.set(app.id, peak);
      return {
        id: app.id,
        key: app.key,
        name: null,
        enabled: app.enabled,
        secret: SECRET_MASK,
        connections,
        peak_connections: peak,
        messages_in: t?.messagesIn ?? 0,
        messages_out: t?.messagesOut ?? 0,
        api_messages: t?.apiMessages ?? 0,
        client_events: t?.clientEvents ?? 0,
        webhooks: {
          sent: t?.webhooksSent ?? 0,
          failed: t?.webhooksFailed ?? 0,
          // Queued anywhere, delivered anywhere: the cluster's sums balance even when another node delivers.
          queued: t ? Math.max(0, t.webhooksEnqueued - t.webhooksSent - t.webhooksDead - t.webhooksDropped) : 0,
        },
        rate_limited: t?.rateLimited ?? 0,
      };
    });
    return { sampled_at_ms: Date.now(), apps };
  }

  async channels(app: App, query: string, offset: number, limit: number): Promise<unknown> {
    const occupied = await this.d.core.occupiedChannels(app.id);
    const q = query.toLowerCase();
    const names = [...occupied.keys()].filter((n) => q === '' || n.toLowerCase().includes(q)).sort();
    const page = names.slice(offset, offset + limit).map((name) => ({
      name,
      subscription_count: occupied.get(name) ?? 0,
      user_count: channelInfo(name).kind === 'presence' ? this.d.core.presenceMemberCount(app.id, name) : null,
    }));
    return { total: names.length, offset, channels: page };
  }

  /** One channel's figures, members and cache; null when nobody is subscribed anywhere. */
  async channel(app: App, name: string): Promise<unknown> {
    const info = channelInfo(name);
    const counts = await this.d.core.channelCounts(app.id, name);
    if (counts.subscriptionCount === 0) return null;
    const presence = info.kind === 'presence';
    const members = presence
      ? [...this.d.core.presenceMembers(app.id, name)].slice(0, MEMBERS_SHOWN).map(([id, m]) => ({ id, info: m.info }))
      : null;
    return {
      name,
      type: info.cache ? 'cache' : info.kind,
      occupied: true,
      subscription_count: counts.subscriptionCount,
      user_count: presence ? counts.userCount : null,
      members,
      members_total: presence ? counts.userCount : null,
      cache: info.cache ? await this.cacheState(app, name) : null,
    };
  }

  private async cacheState(app: App, name: string): Promise<unknown> {
    const cached = await this.d.core.cached(app.id, name).catch(() => null);
    if (!cached) return { present: false, ttl_s: null, event: null, data: null, truncated: false };
    let event: string | null = null;
    let data: string;
    try {
      const frame = JSON.parse(cached.frame) as { event?: unknown; data?: unknown };
      event = typeof frame.event === 'string' ? frame.event : null;
      data = typeof frame.data === 'string' ? frame.data : JSON.stringify(frame.data ?? null);
    } catch {
      data = cached.frame;
    }
    const clipped = clipData(data);
    return { present: true, ttl_s: cached.ttl, event, data: clipped.data, truncated: clipped.truncated === true };
  }
}
