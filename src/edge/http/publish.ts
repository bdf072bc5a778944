// POST /events and /batch_events: validation against the app's limits, then publish.
import type { App } from '../../apps/app.js';
import { kb } from '../../apps/app.js';
import { channelInfo, channelNameProblem } from '../../protocol/channels.js';
import { HistoryUnavailable } from '../../core/history-policy.js';
import { SOCKET_ID_PATTERN } from '../../protocol/limits.js';
import { errorReply, jsonReply, type Reply } from './respond.js';
import type { HttpDeps } from './settings.js';

export interface EventToPublish {
  name: string;
  data: string;
  channels: string[];
  socketId?: string;
  info: string[];
}

type Checked = { ok: true; event: EventToPublish } | { ok: false; reply: Reply };
const bad = (status: number, error: string): Checked => ({ ok: false, reply: errorReply(status, error) });

const INFO_ATTRIBUTES = new Set(['user_count', 'subscription_count']);

/** Non-string data as JSON; null when too deeply nested for JSON.stringify (it recurses). */
function encodeData(data: unknown): string | null {
  try {
    return JSON.stringify(data);
  } catch {
    return null;
  }
}

/** Validates one event object of /events or of a batch. */
export function checkEvent(app: App, raw: unknown, batch: boolean): Checked {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad(400, 'Event must be a JSON object');
  const e = raw as Record<string, unknown>;
  if (typeof e.name !== 'string' || e.name.length === 0) return bad(400, 'Event "name" must be a non-empty string');
  if (app.max_event_name_length !== null && e.name.length > app.max_event_name_length) {
    return bad(400, `Event name is longer than ${app.max_event_name_length} characters`);
  }
  if (e.data === undefined) return bad(400, 'Event "data" is required');
  const data = typeof e.data === 'string' ? e.data : encodeData(e.data);
  if (data === null) return bad(400, 'Event "data" is nested too deeply');
  const maxData = kb(app.max_event_payload_in_kb);
  if (maxData !== null && Buffer.byteLength(data) > maxData) {
    return bad(413, `Event data is larger than ${app.max_event_payload_in_kb} KB`);
  }
  let channels: unknown;
  if (batch || e.channels === undefined) channels = e.channel === undefined ? undefined : [e.channel];
  else channels = e.channels;
  if (!Array.isArray(channels) || channels.length === 0) {
    return bad(400, batch ? 'Batch event needs a "channel"' : 'Event needs "channel" or a non-empty "channels" array');
  }
  if (app.max_event_channels_at_once !== null && channels.length > app.max_event_channels_at_once) {
    return bad(400, `An event may be published to at most ${app.max_event_channels_at_once} channels`);
  }
  for (const ch of channels) {
    const problem = channelNameProblem(ch, app.max_channel_name_length);
    // String() of a deeply nested array recurses (a 500 from a 1 MB body); name only strings.
    if (problem) return bad(400, `${problem}: ${typeof ch === 'string' ? ch.slice(0, 210) : typeof ch}`);
  }
  const names = channels as string[];
  if (names.length > 1 && names.some((c) => channelInfo(c).kind === 'encrypted')) {
    return bad(400, 'An event to an encrypted channel must name exactly one channel');
  }
  let socketId: string | undefined;
  if (e.socket_id !== undefined && e.socket_id !== null) {
    if (typeof e.socket_id !== 'string' || !SOCKET_ID_PATTERN.test(e.socket_id)) return bad(400, 'Invalid socket_id');
    socketId = e.socket_id;
  }
  let info: string[] = [];
  if (e.info !== undefined && e.info !== null && e.info !== '') {
    if (typeof e.info !== 'string') return bad(400, '"info" must be a comma-separated string');
    info = e.info
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = info.find((a) => !INFO_ATTRIBUTES.has(a));
    if (unknown) return bad(400, `Unknown info attribute: ${unknown.slice(0, 50)}`);
  }
  return { ok: true, event: { name: e.name, data, channels: names, socketId, info } };
}

/** Attributes asked for with `info`, per channel, computed independently of delivery. */
async function channelAttributes(d: HttpDeps, app: App, event: EventToPublish): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const channel of event.channels) {
    const counts = await d.core.channelCounts(app.id, channel);
    const attrs: Record<string, number> = {};
    const isPresence = channelInfo(channel).kind === 'presence';
    if (event.info.includes('user_count') && isPresence) attrs.user_count = counts.userCount;
    if (event.info.includes('subscription_count')) attrs.subscription_count = counts.subscriptionCount;
    out[channel] = attrs;
  }
  return out;
}

async function withinBackendLimit(d: HttpDeps, app: App, events: EventToPublish[]): Promise<boolean> {
  const limit = app.max_backend_events_per_second;
  if (limit === null) return true;
  // As Pusher counts messages: one per event per channel, so batches cannot multiply the limit.
  const points = events.reduce((n, e) => n + e.channels.length, 0);
  return d.rateLimiter.consume(`backend:${app.id}`, points, limit);
}

/**
 * Publishes to every channel of the event; the cache writes to a broker it started are pushed
 * on `stored`, so the reply waits for them (a subscriber on any node after the 200 replays it).
 */
export function publishAll(d: Pick<HttpDeps, 'core'>, app: App, event: EventToPublish, stored: Array<Promise<void>>): void {
  for (const channel of event.channels) {
    const write = d.core.publish(app, channel, event.name, event.data, event.socketId);
    if (write) stored.push(write);
  }
}

/** A publish to a history channel that could not be stored: 503, so the caller retries (with an idempotency key). */
function historyRefusal(err: unknown): Reply {
  if (!(err instanceof HistoryUnavailable)) throw err;
  return {
    ...errorReply(503, 'The channel history is unavailable: the event was not stored (nor delivered) on every channel; retry'),
    headers: { 'Retry-After': '1' },
  };
}

/** Waits for the cache writes (no await, and no microtask, when there are none: the usual case). */
export function afterStored(stored: Array<Promise<void>>, reply: Reply): Reply | Promise<Reply> {
  return stored.length === 0 ? reply : Promise.all(stored).then(() => reply, historyRefusal);
}

const PUBLISHED: Reply = { status: 200, body: '{}' };
const BACKEND_LIMITED: Reply = errorReply(429, 'Too many events: max_backend_events_per_second exceeded');

/** POST /events. A promise only where something waits (a limit, the info counts, a history or cache write). */
export function triggerEvent(d: HttpDeps, app: App, body: unknown): Reply | Promise<Reply> {
  const checked = checkEvent(app, body, false);
  if (!checked.ok) return checked.reply;
  if (app.max_backend_events_per_second === null) return publishChecked(d, app, checked.event);
  return withinBackendLimit(d, app, [checked.event]).then((allowed) => {
    if (allowed) return publishChecked(d, app, checked.event);
    d.metrics.rateLimit(app.id, 'backend_events');
    return BACKEND_LIMITED;
  });
}

function publishChecked(d: HttpDeps, app: App, event: EventToPublish): Reply | Promise<Reply> {
  const stored: Array<Promise<void>> = [];
  publishAll(d, app, event, stored);
  if (event.info.length === 0) return afterStored(stored, PUBLISHED);
  return channelAttributes(d, app, event).then((channels) => afterStored(stored, jsonReply(200, { channels })));
}

export async function triggerBatch(d: HttpDeps, app: App, body: unknown): Promise<Reply> {
  const batch = (body as Record<string, unknown> | null)?.batch;
  if (!Array.isArray(batch)) return errorReply(400, 'Body must be {"batch": [...]}');
  if (app.max_event_batch_size !== null && batch.length > app.max_event_batch_size) {
    return errorReply(400, `A batch may hold at most ${app.max_event_batch_size} events`);
  }
  const events: EventToPublish[] = [];
  for (const raw of batch) {
    const checked = checkEvent(app, raw, true);
    if (!checked.ok) return checked.reply;
    events.push(checked.event);
  }
  if (!(await withinBackendLimit(d, app, events))) {
    d.metrics.rateLimit(app.id, 'backend_events');
    return BACKEND_LIMITED;
  }
  const stored: Array<Promise<void>> = [];
  for (const event of events) publishAll(d, app, event, stored);
  if (stored.length > 0) {
    const refused = await Promise.all(stored).then(() => null, historyRefusal);
    if (refused) return refused;
  }
  if (!events.some((e) => e.info.length > 0)) return jsonReply(200, {});
  const results: Array<Record<string, unknown>> = [];
  for (const event of events) {
    if (event.info.length === 0) results.push({});
    else results.push((await channelAttributes(d, app, event))[event.channels[0]] as Record<string, unknown>);
  }
  return jsonReply(200, { batch: results });
}
