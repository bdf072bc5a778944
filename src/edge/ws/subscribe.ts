// pusher:subscribe and pusher:unsubscribe: channel rules, signatures, presence
// limits; the core does the joining.
import type { App } from '../../apps/app.js';
import { kb } from '../../apps/app.js';
import type { Connection } from '../../conn/connection.js';
import type { CountHold } from '../../core/core.js';
import type { PresenceJoin } from '../../core/subscriptions.js';
import { channelInfo, channelNameProblem, needsAuth, SERVER_TO_USER_PREFIX } from '../../protocol/channels.js';
import { dataAsObject, subscriptionError } from '../../protocol/frames.js';
import { MAX_USER_ID_LENGTH } from '../../protocol/limits.js';
import { channelStringToSign, verifyClientAuth } from '../../protocol/signatures.js';
import type { WsDeps } from './settings.js';

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
export function parsePresenceData(app: App, channelData: unknown): PresenceJoin | Refusal {
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

/** Why the connection may not join the channel, or the presence member it joins as. */
function authorize(d: WsDeps, conn: Connection, channel: string, data: Record<string, unknown>): Refusal | PresenceJoin | null {
  const app = conn.app;
  const info = channelInfo(channel);
  const max = d.settings.maxChannelsPerConnection;
  if (max !== null && conn.channels.size >= max) return refuse('LimitReached', `a connection may hold at most ${max} channels`, 403);
  if (info.kind === 'user') {
    const userId = channel.slice(SERVER_TO_USER_PREFIX.length);
    if (!conn.user || conn.user.id !== userId) return refuse('AuthError', 'only the connection signed in as this user may subscribe', 403);
    return null;
  }
  if (!needsAuth(info.kind)) return null;
  const channelData = info.kind === 'presence' ? data.channel_data : undefined;
  if (info.kind === 'presence' && typeof channelData !== 'string') return refuse('AuthError', 'presence channels need channel_data', 401);
  const toSign = channelStringToSign(conn.socketId, channel, channelData as string | undefined);
  if (!verifyClientAuth(data.auth, app.key, app.secret, toSign))
    return refuse('AuthError', `Invalid signature for channel ${channel}`, 401);
  if (info.kind !== 'presence') return null;
  const member = parsePresenceData(app, channelData);
  if ('status' in member) return member;
  if (member.info === null && conn.user?.id === member.userId) member.info = conn.user.info ?? null;
  const limit = app.max_presence_members_per_channel;
  if (limit !== null && !d.core.isPresent(app.id, channel, member.userId) && d.core.presenceMemberCount(app.id, channel) >= limit) {
    return refuse('LimitReached', `presence channel is full (${limit} members)`, 403);
  }
  return member;
}

/** Synchronous unless the join waits (a member-count hold, the cluster, a cache read). */
export function handleSubscribe(d: WsDeps, conn: Connection, rawData: unknown): void | Promise<void> {
  const data = dataAsObject(rawData);
  const channel = data?.channel;
  const problem = channelNameProblem(channel, conn.app.max_channel_name_length);
  if (problem || typeof channel !== 'string' || !data) {
    // The name as sent, so pusher-js routes the error to the channel the app subscribed (the frame is bounded anyway).
    sendRefusal(d, conn, typeof channel === 'string' ? channel : '', refuse('InvalidChannel', problem ?? 'invalid channel', 400));
    return;
  }
  // pusher-js subscribes again only on a new connection: a repeat is ignored, never answered
  // with a second member list (that would turn a few bytes in into megabytes out).
  if (conn.channels.has(channel)) return;
  const holding = holdForLimit(d, conn, channel);
  if (!holding) return join(d, conn, channel, data, null);
  return holding.then((hold) => (hold ? join(d, conn, channel, data, hold) : undefined));
}

/** Authorizes and joins; a hold on the member count is let go once the join is out (or refused). */
function join(d: WsDeps, conn: Connection, channel: string, data: Record<string, unknown>, hold: CountHold | null): void | Promise<void> {
  let joining: boolean | Promise<boolean>;
  let verdict: Refusal | PresenceJoin | null;
  try {
    verdict = authorize(d, conn, channel, data);
    if (verdict && 'status' in verdict) return sendRefusal(d, conn, channel, verdict);
    // Authorized connections: a private or presence subscription counts as authenticated.
    if (needsAuth(channelInfo(channel).kind)) conn.authDeadline = 0;
    // The member joins (and its change goes out) before subscribe's first wait.
    joining = d.core.subscribe(conn, channel, verdict);
  } finally {
    hold?.release();
  }
  const member = verdict;
  if (typeof joining === 'boolean') return tapJoined(d, conn, channel, member, joining);
  return joining.then((joined) => tapJoined(d, conn, channel, member, joined));
}

function tapJoined(d: WsDeps, conn: Connection, channel: string, member: PresenceJoin | null, joined: boolean): void {
  if (!joined || !d.core.tap.wants(conn.app.id)) return;
  d.core.tap.record(conn.app.id, {
    type: 'subscribed',
    socket_id: conn.socketId,
    channel,
    ...(member ? { user_id: member.userId } : {}),
  });
}

/** Subscriptions waiting for a hold on the member count, per connection (an unsubscribe meanwhile cancels one). */
const settlingOf = new WeakMap<Connection, Set<string>>();

/**
 * Near a presence channel's member limit on a cluster, the hold to decide under: a user told
 * by another node it joined takes a seat, one whose member_removed went out frees one, and joins
 * racing for the last seats on different nodes are decided one after the other, as on a single
 * node. Undefined when there is nothing to hold (no promise on the usual path); else null when
 * the subscription no longer stands after the wait (closed, unsubscribed, or a repeat).
 */
function holdForLimit(d: WsDeps, conn: Connection, channel: string): Promise<CountHold | null> | undefined {
  const limit = conn.app.max_presence_members_per_channel;
  // A prefix test, not channelInfo: this runs for every subscribe, and channelInfo allocates.
  if (limit === null || !channel.startsWith('presence-')) return undefined;
  let pending = settlingOf.get(conn);
  if (pending?.has(channel)) return Promise.resolve(null); // a repeat while the first waits: ignored, as once subscribed
  const holding = d.core.presenceHoldNear(conn.app.id, channel, limit);
  if (!holding) return undefined;
  if (!pending) settlingOf.set(conn, (pending = new Set()));
  const waiting = pending;
  waiting.add(channel);
  return holding.then((hold) => {
    const stands = waiting.delete(channel);
    if (waiting.size === 0 && settlingOf.get(conn) === waiting) settlingOf.delete(conn);
    if (stands && !conn.closed && !conn.channels.has(channel)) return hold;
    hold.release();
    return null;
  });
}

function sendRefusal(d: WsDeps, conn: Connection, channel: string, r: Refusal): void {
  conn.send(subscriptionError(channel, r.type, r.error, r.status));
  if (d.core.tap.wants(conn.app.id)) {
    d.core.tap.record(conn.app.id, {
      type: 'subscription_failed',
      socket_id: conn.socketId,
      channel: channel.slice(0, 200),
      code: r.status,
      reason: `${r.type}: ${r.error}`.slice(0, 300),
    });
  }
}

export function handleUnsubscribe(d: WsDeps, conn: Connection, rawData: unknown): void {
  const channel = dataAsObject(rawData)?.channel;
  if (typeof channel !== 'string') return;
  settlingOf.get(conn)?.delete(channel);
  const held = conn.channels.has(channel);
  d.core.unsubscribe(conn, channel);
  if (held && d.core.tap.wants(conn.app.id)) d.core.tap.record(conn.app.id, { type: 'unsubscribed', socket_id: conn.socketId, channel });
}
