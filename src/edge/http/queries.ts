// GET /channels, /channels/{name}, /channels/{name}/users, and POST terminate_connections
// and force_reconnect: answers for the whole cluster, from the core.
import type { App } from '../../apps/app.js';
import { channelInfo, channelNameProblem } from '../../protocol/channels.js';
import { CloseCode } from '../../protocol/codes.js';
import { errorReply, jsonReply, type Reply } from './respond.js';
import type { HttpDeps } from './settings.js';

const attributes = (params: Map<string, string>): string[] =>
  (params.get('info') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export async function listChannels(d: HttpDeps, app: App, params: Map<string, string>): Promise<Reply> {
  const prefix = params.get('filter_by_prefix') ?? '';
  const info = attributes(params);
  for (const attr of info) {
    if (attr === 'user_count') {
      if (!prefix.startsWith('presence-')) {
        return errorReply(400, 'info=user_count is only available with filter_by_prefix=presence-');
      }
    } else if (attr !== 'subscription_count') {
      return errorReply(400, `Unknown info attribute: ${attr.slice(0, 50)}`);
    }
  }
  const occupied = await d.core.occupiedChannels(app.id);
  // No prototype: a channel named "__proto__" is a key like any other.
  const channels: Record<string, Record<string, number>> = Object.create(null) as Record<string, Record<string, number>>;
  for (const [name, subscriptionCount] of occupied) {
    if (!name.startsWith(prefix) || subscriptionCount <= 0) continue;
    const attrs: Record<string, number> = {};
    if (info.includes('user_count')) attrs.user_count = d.core.presenceMemberCount(app.id, name);
    if (info.includes('subscription_count')) attrs.subscription_count = subscriptionCount;
    channels[name] = attrs;
  }
  return jsonReply(200, { channels });
}

/** A cached frame (it comes from the broker: checked, not trusted). */
function parseFrame(text: string): { event: unknown; data: unknown } | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as { event: unknown; data: unknown }) : null;
  } catch {
    return null;
  }
}

export async function showChannel(d: HttpDeps, app: App, channel: string, params: Map<string, string>): Promise<Reply> {
  const problem = channelNameProblem(channel, app.max_channel_name_length);
  if (problem) return errorReply(400, problem);
  const kind = channelInfo(channel);
  const info = attributes(params);
  for (const attr of info) {
    if (attr === 'user_count' && kind.kind !== 'presence') {
      return errorReply(400, 'info=user_count is only available for presence channels');
    }
    if (attr === 'cache' && !kind.cache) return errorReply(400, 'info=cache is only available for cache channels');
    if (attr !== 'user_count' && attr !== 'subscription_count' && attr !== 'cache') {
      return errorReply(400, `Unknown info attribute: ${attr.slice(0, 50)}`);
    }
  }
  const counts = await d.core.channelCounts(app.id, channel);
  const out: Record<string, unknown> = { occupied: counts.subscriptionCount > 0 };
  if (info.includes('user_count')) out.user_count = counts.userCount;
  if (info.includes('subscription_count')) out.subscription_count = counts.subscriptionCount;
  if (info.includes('cache')) {
    const cached = await d.core.cached(app.id, channel);
    if (cached) {
      const frame = parseFrame(cached.frame);
      if (frame) out.cache = { event: frame.event, data: frame.data, ttl: cached.ttl };
    }
  }
  return jsonReply(200, out);
}

export function listUsers(d: HttpDeps, app: App, channel: string): Reply {
  const problem = channelNameProblem(channel, app.max_channel_name_length);
  if (problem) return errorReply(400, problem);
  if (channelInfo(channel).kind !== 'presence') return errorReply(400, 'Users are only available for presence channels');
  const users = [...d.core.presenceMembers(app.id, channel).keys()].map((id) => ({ id }));
  return jsonReply(200, { users });
}

export function terminateConnections(d: HttpDeps, app: App, userId: string): Reply {
  if (!userId) return errorReply(400, 'A user id is required');
  d.core.disconnectUser(app.id, userId, CloseCode.UNAUTHORIZED, 'Connection terminated by the app');
  return jsonReply(200, {});
}

/** Sockudo's force_reconnect: every connection of the user gets 4200 and reconnects at once. */
export function forceReconnect(d: HttpDeps, app: App, userId: string): Reply {
  if (!userId) return errorReply(400, 'A user id is required');
  d.core.disconnectUser(app.id, userId, CloseCode.RECONNECT, 'Reconnect requested by the app');
  return jsonReply(200, { ok: true });
}
