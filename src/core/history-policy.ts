// Which channels of an app keep history, and with what bounds. Computed once per app
// object (a reload replaces the object), so a publish to a channel without history
// pays one property read.
import type { App } from '../apps/app.js';
import type { HistoryBounds } from '../cluster/ports.js';

export interface ChannelHistoryPolicy extends HistoryBounds {
  readonly maxReplay: number;
}

type Matcher = (channel: string) => ChannelHistoryPolicy | null;

const matchers = new WeakMap<App, Matcher>();

function matcherOf(app: App): Matcher {
  const h = app.history;
  const policy: ChannelHistoryPolicy = { maxMessages: h.max_messages, ttlSeconds: h.ttl_seconds, maxReplay: h.max_replay_messages };
  const prefixes = h.channels.map((p) => (p.endsWith('*') ? p.slice(0, -1) : p));
  if (prefixes.length === 0 || prefixes.includes('')) return () => policy;
  return (channel) => (prefixes.some((p) => channel.startsWith(p)) ? policy : null);
}

/** The history policy of an app's channel, or null when the channel keeps none. */
export function historyOf(app: App, channel: string): ChannelHistoryPolicy | null {
  if (!app.history.enabled) return null;
  let match = matchers.get(app);
  if (!match) {
    match = matcherOf(app);
    matchers.set(app, match);
  }
  return match(channel);
}

/** For the edges, which see the cluster only through the core. */
export { HistoryUnavailable, type NumberedEvent } from '../cluster/ports.js';
