import { channelInfo, channelNameProblem } from '../protocol/channels.js';
import { errorReply, jsonReply } from './respond.js';
const attributes = (params) => (params.get('info') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
export async function listChannels(ctx, app, params) {
    const prefix = params.get('filter_by_prefix') ?? '';
    const info = attributes(params);
    for (const attr of info) {
        if (attr === 'user_count') {
            if (!prefix.startsWith('presence-')) {
                return errorReply(400, 'info=user_count is only available with filter_by_prefix=presence-');
            }
        }
        else if (attr !== 'subscription_count') {
            return errorReply(400, `Unknown info attribute: ${attr.slice(0, 50)}`);
        }
    }
    const occupied = await ctx.adapter.occupiedChannels(app.id);
    const channels = {};
    for (const [name, subscriptionCount] of occupied) {
        if (!name.startsWith(prefix) || subscriptionCount <= 0)
            continue;
        const attrs = {};
        if (info.includes('user_count'))
            attrs.user_count = ctx.adapter.presence.memberCount(app.id, name);
        if (info.includes('subscription_count'))
            attrs.subscription_count = subscriptionCount;
        channels[name] = attrs;
    }
    return jsonReply(200, { channels });
}
export async function showChannel(ctx, app, channel, params) {
    const problem = channelNameProblem(channel, app.max_channel_name_length);
    if (problem)
        return errorReply(400, problem);
    const kind = channelInfo(channel);
    const info = attributes(params);
    for (const attr of info) {
        if (attr === 'user_count' && kind.kind !== 'presence') {
            return errorReply(400, 'info=user_count is only available for presence channels');
        }
        if (attr === 'cache' && !kind.cache)
            return errorReply(400, 'info=cache is only available for cache channels');
        if (attr !== 'user_count' && attr !== 'subscription_count' && attr !== 'cache') {
            return errorReply(400, `Unknown info attribute: ${attr.slice(0, 50)}`);
        }
    }
    const counts = await ctx.adapter.channelCounts(app.id, channel);
    const out = { occupied: counts.subscriptionCount > 0 };
    if (info.includes('user_count'))
        out.user_count = counts.userCount;
    if (info.includes('subscription_count'))
        out.subscription_count = counts.subscriptionCount;
    if (info.includes('cache')) {
        const cached = await ctx.adapter.cacheGet(app.id, channel);
        if (cached) {
            const frame = JSON.parse(cached.frame);
            out.cache = { event: frame.event, data: frame.data, ttl: cached.ttl };
        }
    }
    return jsonReply(200, out);
}
export function listUsers(ctx, app, channel) {
    const problem = channelNameProblem(channel, app.max_channel_name_length);
    if (problem)
        return errorReply(400, problem);
    if (channelInfo(channel).kind !== 'presence')
        return errorReply(400, 'Users are only available for presence channels');
    const users = [...ctx.adapter.presence.members(app.id, channel).keys()].map((id) => ({ id }));
    return jsonReply(200, { users });
}
export function terminateConnections(ctx, app, userId) {
    if (!userId)
        return errorReply(400, 'A user id is required');
    ctx.hub.terminateUser(app.id, userId);
    ctx.adapter.terminateUser(app.id, userId);
    return jsonReply(200, {});
}
