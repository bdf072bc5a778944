// Encoding of server-to-client frames and decoding of client frames.
// Outbound app and internal events carry `data` as a JSON string ("double encoding").

export interface ClientFrame {
  event: string;
  channel?: unknown;
  data?: unknown;
}

export type DecodeResult = { ok: true; frame: ClientFrame } | { ok: false; reason: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Parses a text frame (bytes from a WebSocket, or a string an HTTP fallback session sent); never throws. */
export function decodeClientFrame(message: ArrayBuffer | string): DecodeResult {
  let text: string;
  if (typeof message === 'string') text = message;
  else {
    try {
      text = decoder.decode(message);
    } catch {
      return { ok: false, reason: 'frame is not valid UTF-8' };
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'frame is not valid JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, reason: 'frame must be a JSON object' };
  }
  const event = (parsed as ClientFrame).event;
  if (typeof event !== 'string' || event.length === 0) {
    return { ok: false, reason: 'frame must have a string "event"' };
  }
  return { ok: true, frame: parsed as ClientFrame };
}

/** pusher-js sends `data` of pusher:* events as an object; some clients send a JSON string. */
export function dataAsObject(data: unknown): Record<string, unknown> | null {
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch {
      return null;
    }
  }
  return typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : null;
}

/** A channel event whose data is already a string (app events, internal events). */
export function encodeChannelEvent(event: string, channel: string, data: string, userId?: string): string {
  let out = '{"event":' + JSON.stringify(event) + ',"channel":' + JSON.stringify(channel) + ',"data":' + JSON.stringify(data);
  if (userId !== undefined) out += ',"user_id":' + JSON.stringify(userId);
  return out + '}';
}

/** A client event relayed as sent: data may be any JSON value. */
export function encodeClientEvent(event: string, channel: string, data: unknown, userId?: string): string {
  return JSON.stringify(userId === undefined ? { event, channel, data } : { event, channel, data, user_id: userId });
}

export const encodeEvent = (event: string, data: unknown): string =>
  data === undefined ? JSON.stringify({ event }) : JSON.stringify({ event, data });

/**
 * Built by concatenation (a quarter of the JSON work of a connect): a socket id is digits and
 * a dot (newSocketId) and the timeout a whole number (the config says so): nothing to escape.
 */
export const connectionEstablished = (socketId: string, activityTimeout: number): string =>
  '{"event":"pusher:connection_established","data":"{\\"socket_id\\":\\"' +
  socketId +
  '\\",\\"activity_timeout\\":' +
  activityTimeout +
  '}"}';

export const errorFrame = (code: number | null, message: string, channel?: string): string =>
  JSON.stringify(
    channel === undefined
      ? { event: 'pusher:error', data: { code, message } }
      : { event: 'pusher:error', channel, data: { code, message } },
  );

export const PONG = '{"event":"pusher:pong","data":{}}';
export const PING = '{"event":"pusher:ping","data":{}}';

export const subscriptionError = (channel: string, type: string, error: string, status: number): string =>
  JSON.stringify({ event: 'pusher:subscription_error', channel, data: { type, error, status } });

export const cacheMissFrame = (channel: string): string => JSON.stringify({ event: 'pusher:cache_miss', channel });

export const signinSuccessFrame = (userData: string): string =>
  JSON.stringify({ event: 'pusher:signin_success', data: JSON.stringify({ user_data: userData }) });

/** `pusher_internal:watchlist_events` as pusher-js's watchlist facade reads it. */
export function watchlistFrame(online: readonly string[], offline: readonly string[]): string {
  const events: Array<{ name: string; user_ids: readonly string[] }> = [];
  if (online.length) events.push({ name: 'online', user_ids: online });
  if (offline.length) events.push({ name: 'offline', user_ids: offline });
  return JSON.stringify({ event: 'pusher_internal:watchlist_events', data: JSON.stringify({ events }) });
}

export const memberAddedFrame = (channel: string, userId: string, info: unknown): string =>
  encodeChannelEvent('pusher_internal:member_added', channel, JSON.stringify({ user_id: userId, user_info: info }));

export const memberRemovedFrame = (channel: string, userId: string): string =>
  encodeChannelEvent('pusher_internal:member_removed', channel, JSON.stringify({ user_id: userId }));

export const subscriptionCountFrame = (channel: string, count: number): string =>
  encodeChannelEvent('pusher_internal:subscription_count', channel, JSON.stringify({ subscription_count: count }));

/**
 * The presence part of subscription_succeeded. The hash is built without a prototype:
 * a user id "__proto__" is an own key like any other.
 */
export function presenceSucceededData(members: Iterable<[string, { info: unknown }]>): string {
  const ids: string[] = [];
  const hash: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [userId, member] of members) {
    ids.push(userId);
    hash[userId] = member.info;
  }
  return JSON.stringify({ presence: { ids, hash, count: ids.length } });
}

const SUCCEEDED_HEAD = '{"event":"pusher_internal:subscription_succeeded","channel":';

/** Without presence data (most subscriptions): the constant parts are not encoded again each time. */
export const subscriptionSucceededFrame = (channel: string, data?: string): string =>
  data === undefined
    ? SUCCEEDED_HEAD + JSON.stringify(channel) + ',"data":"{}"}'
    : encodeChannelEvent('pusher_internal:subscription_succeeded', channel, data);
