// GET /channels, /channels/{name}, /channels/{name}/users and POST terminate_connections.
import type { App } from '../apps/app.js';
import type { NodeContext } from '../context.js';
import { channelInfo, channelNameProblem } from '../protocol/channels.js';
import { errorReply, jsonReply, type Reply } from './respond.js';

const attributes = (params: Map<string, string>): string[] =>
  (params.get('info') ?? '').split(',').map((s) => s.trim()).filter(Boolean);

export async function listChannels(ctx: NodeContext, app: App, params: Map<string, string>): Promise<Reply> {
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
  const occupied = await ctx.adapter.occupiedChannels(app.id);
  const channels: Record<string, Record<string, number>> = {};
  for (const [name, subscriptionCount] of occupied) {
    if (!name.startsWith(prefix) || subscriptionCount <= 0) continue;
    const attrs: Record<string, number> = {};
    if (info.includes('user_count')) attrs.user_count = ctx.adapter.presence.memberCount(app.id, name);
    if (info.includes('subscription_count')) attrs.subscription_count = subscriptionCount;
    channels[name] = attrs;
  }
  return jsonReply(200, { channels });
}

export async function showChannel(ctx: NodeContext, app: App, channel: string, params: Map<string, string>): Promise<Reply> {
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
  const counts = await ctx.adapter.channelCounts(app.id, channel);
  const out: Record<string, unknown> = { occupied: counts.subscriptionCount > 0 };
  if (info.includes('user_count')) out.user_count = counts.userCount;
  if (info.includes('subscription_count')) out.subscription_count = counts.subscriptionCount;
  if (info.includes('cache')) {
    const cached = await ctx.adapter.cacheGet(app.id, channel);
    if (cached) {
      const frame = JSON.parse(cached.frame) as { event: string; data: string };
      out.cache = { event: frame.event, data: frame.data, ttl: cached.ttl };
    }
  }
  return jsonReply(200, out);
}

export function listUsers(ctx: NodeContext, app: App, channel: string): Reply {
  const problem = channelNameProblem(channel, app.max_channel_name_length);
  if (problem) return errorReply(400, problem);
  if (channelInfo(channel).kind !== 'presence') return errorReply(400, 'Users are only available for presence channels');
  const users = [...ctx.adapter.presence.members(app.id, channel).keys()].map((id) => ({ id }));
  return jsonReply(200, { users });
}

export function terminateConnections(ctx: NodeContext, app: App, userId: string): Reply {
  if (!userId) return errorReply(400, 'A user id is required');
  ctx.hub.terminateUser(app.id, userId);
  ctx.adapter.terminateUser(app.id, userId);
  return jsonReply(200, {});
}
