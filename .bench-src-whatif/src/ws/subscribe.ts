// pusher:subscribe and pusher:unsubscribe: channel rules, signatures, presence
// limits, then the hub does the joining.
import type { App } from '../apps/app.js';
import { kb } from '../apps/app.js';
import type { NodeContext } from '../context.js';
import { channelInfo, channelNameProblem, needsAuth, SERVER_TO_USER_PREFIX } from '../protocol/channels.js';
import { dataAsObject, encodeChannelEvent, subscriptionError } from '../protocol/frames.js';
import { channelStringToSign, verifyClientAuth } from '../protocol/signatures.js';
import { wantsWebhook } from '../webhooks/events.js';
import { sendFrame, type SocketData } from './socket.js';

/** Pusher's limit on presence user ids. */
export const MAX_USER_ID_LENGTH = 128;

type PresenceMember = { userId: string; info: unknown };
type Refusal = { type: string; error: string; status: number };

const refuse = (type: string, error: string, status: number): Refusal => ({ type, error, status });

/** user_info's size as JSON; nesting too deep to encode (JSON.stringify recurses) counts as too large. */
function infoBytes(info: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(info));
  } catch {
    return Infinity;
  }
}

/** Parses and checks presence channel_data; returns the member or a refusal. */
export function parsePresenceData(app: App, channelData: unknown): PresenceMember | Refusal {
  if (typeof channelData !== 'string') return refuse('AuthError', 'presence channels need channel_data', 401);
  let parsed: unknown;
  try {
    parsed = JSON.parse(channelData);
  } catch {
    return refuse('AuthError', 'channel_data is not valid JSON', 400);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return refuse('AuthError', 'channel_data must be a JSON object', 400);
  }
  const raw = (parsed as Record<string, unknown>).user_id;
  if ((typeof raw !== 'string' && typeof raw !== 'number') || String(raw).length === 0) {
    return refuse('AuthError', 'channel_data.user_id must be a non-empty string', 400);
  }
  const userId = String(raw);
  if (userId.length > MAX_USER_ID_LENGTH) {
    return refuse('LimitReached', `user_id is longer than ${MAX_USER_ID_LENGTH} characters`, 400);
  }
  const info = (parsed as Record<string, unknown>).user_info;
  const maxInfo = kb(app.max_presence_member_size_in_kb);
  if (info !== undefined && maxInfo !== null && infoBytes(info) > maxInfo) {
    return refuse('LimitReached', `user_info is larger than ${app.max_presence_member_size_in_kb} KB`, 400);
  }
  return { userId, info: info ?? null };
}

function presencePayload(ctx: NodeContext, appId: string, channel: string): string {
  const ids: string[] = [];
  const hash: Record<string, unknown> = {};
  for (const [userId, member] of ctx.adapter.presence.members(appId, channel)) {
    ids.push(userId);
    hash[userId] = member.info;
  }
  return JSON.stringify({ presence: { ids, hash, count: ids.length } });
}

export async function handleSubscribe(ctx: NodeContext, sock: SocketData, rawData: unknown): Promise<void> {
  const app = sock.app!;
  const data = dataAsObject(rawData);
  const channel = data?.channel;
  const problem = channelNameProblem(channel, app.max_channel_name_length);
  if (problem || typeof channel !== 'string') {
    const name = typeof channel === 'string' ? channel.slice(0, 256) : '';
    sendFrame(sock, subscriptionError(name, 'InvalidChannel', problem ?? 'invalid channel', 400));
    return;
  }
  const existing = sock.channels.get(channel);
  if (existing) {
    // pusher-js resubscribes after reconnects only; a repeat is answered, not re-joined.
    if (existing.ready) await sendSucceeded(ctx, sock, channel, existing.userId !== null);
    return;
  }
  const info = channelInfo(channel);
  const fail = (r: Refusal) => sendFrame(sock, subscriptionError(channel, r.type, r.error, r.status));
  const maxChannels = ctx.config.max_channels_per_connection;
  if (maxChannels !== null && sock.channels.size >= maxChannels) {
    return fail(refuse('LimitReached', `a connection may hold at most ${maxChannels} channels`, 403));
  }

  if (info.kind === 'user') {
    const userId = channel.slice(SERVER_TO_USER_PREFIX.length);
    if (!sock.user || sock.user.id !== userId) {
      return fail(refuse('AuthError', 'only the connection signed in as this user may subscribe', 403));
    }
  }
  let presence: PresenceMember | null = null;
  if (needsAuth(info.kind)) {
    const channelData = info.kind === 'presence' ? data!.channel_data : undefined;
    if (info.kind === 'presence' && typeof channelData !== 'string') {
      return fail(refuse('AuthError', 'presence channels need channel_data', 401));
    }
    const toSign = channelStringToSign(sock.socketId, channel, channelData as string | undefined);
    if (!verifyClientAuth(data!.auth, app.key, app.secret, toSign)) {
      return fail(refuse('AuthError', `Invalid signature for channel ${channel}`, 401));
    }
    if (info.kind === 'presence') {
      const parsed = parsePresenceData(app, channelData);
      if ('status' in parsed) return fail(parsed);
      presence = parsed;
      if (presence.info === null && sock.user?.id === presence.userId) presence.info = sock.user.info ?? null;
      const max = app.max_presence_members_per_channel;
      if (
        max !== null &&
        !ctx.adapter.presence.has(app.id, channel, presence.userId) &&
        ctx.adapter.presence.memberCount(app.id, channel) >= max
      ) {
        return fail(refuse('LimitReached', `presence channel is full (${max} members)`, 403));
      }
    }
    // Authorized connections: a private or presence subscription counts as authenticated.
    sock.authDeadline = 0;
  }
  const joined = await ctx.hub.join(sock, channel, presence);
  if (!joined) return;
  await sendSucceeded(ctx, sock, channel, presence !== null);
  if (info.cache) await replayCache(ctx, sock, app, channel);
  ctx.hub.subscriptionCountChanged(app, channel);
}

async function sendSucceeded(ctx: NodeContext, sock: SocketData, channel: string, isPresence: boolean): Promise<void> {
  const appId = sock.app!.id;
  const payload = isPresence ? presencePayload(ctx, appId, channel) : '{}';
  sendFrame(sock, encodeChannelEvent('pusher_internal:subscription_succeeded', channel, payload));
}

async function replayCache(ctx: NodeContext, sock: SocketData, app: App, channel: string): Promise<void> {
  const cached = await ctx.adapter.cacheGet(app.id, channel);
  if (cached) {
    sendFrame(sock, cached.frame);
    return;
  }
  sendFrame(sock, JSON.stringify({ event: 'pusher:cache_miss', channel }));
  if (wantsWebhook(app, 'cache_miss')) ctx.webhooks.emit(app, { name: 'cache_miss', channel });
}

export function handleUnsubscribe(ctx: NodeContext, sock: SocketData, rawData: unknown): void {
  const channel = dataAsObject(rawData)?.channel;
  if (typeof channel === 'string') ctx.hub.leave(sock, channel);
}
