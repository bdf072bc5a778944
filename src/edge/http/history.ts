// GET /apps/{app_id}/channels/{channel_name}/history: a page of the channel's stored
// events, in the shape of Sockudo 5's history endpoint (so its SDK helpers read it):
// limit, direction, cursor, start_serial/end_serial, start_time_ms/end_time_ms.
import type { App } from '../../apps/app.js';
import { HistoryUnavailable, type NumberedEvent } from '../../core/history-policy.js';
import { channelNameProblem } from '../../protocol/channels.js';
import { jsonReply, type Reply } from './respond.js';
import type { HttpDeps } from './settings.js';

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;
/** Entries read per broker round trip while a time bound filters them. */
const SCAN_CHUNK = 1000;

type Direction = 'newest_first' | 'oldest_first';

interface Bounds {
  start_serial: number | null;
  end_serial: number | null;
  start_time_ms: number | null;
  end_time_ms: number | null;
}

/** Each bound and the other names it is read under (Sockudo's `start` / `end`). */
const BOUND_PARAMS: ReadonlyArray<readonly [keyof Bounds, ...string[]]> = [
  ['start_serial'],
  ['end_serial'],
  ['start_time_ms', 'start'],
  ['end_time_ms', 'end'],
];

interface Cursor {
  version: 1;
  app_id: string;
  channel: string;
  stream_id: string;
  serial: number;
  direction: Direction;
  bounds: Bounds;
}

const problem = (status: number, code: string, error: string): Reply => jsonReply(status, { error, code, status });
const invalid = (error: string): Reply => problem(400, 'invalid_input', error);

const DIRECTIONS: Record<string, Direction> = {
  newest_first: 'newest_first',
  backwards: 'newest_first',
  reverse: 'newest_first',
  oldest_first: 'oldest_first',
  forwards: 'oldest_first',
  forward: 'oldest_first',
};

/** A non-negative integer parameter, undefined when absent, null when malformed. */
function integer(params: Map<string, string>, ...names: string[]): number | undefined | null {
  for (const name of names) {
    const raw = params.get(name);
    if (raw === undefined || raw === '') continue;
    if (!/^\d{1,16}$/.test(raw)) return null;
    const n = Number(raw);
    return Number.isSafeInteger(n) ? n : null;
  }
  return undefined;
}

const sameBounds = (a: Bounds, b: Bounds): boolean =>
  a.start_serial === b.start_serial &&
  a.end_serial === b.end_serial &&
  a.start_time_ms === b.start_time_ms &&
  a.end_time_ms === b.end_time_ms;

function decodeCursor(raw: string): Cursor | null {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Cursor;
    if (c.version !== 1 || typeof c.serial !== 'number' || !Number.isSafeInteger(c.serial) || typeof c.stream_id !== 'string') return null;
    return c;
  } catch {
    return null;
  }
}

const encodeCursor = (c: Cursor): string => Buffer.from(JSON.stringify(c)).toString('base64url');

/** The stored frame's parts (it was encoded by this server, but comes back from the broker). */
function itemOf(e: NumberedEvent): Record<string, unknown> | null {
  let frame: { event?: unknown; channel?: unknown; data?: unknown; user_id?: unknown };
  try {
    frame = JSON.parse(e.frame) as typeof frame;
  } catch {
    return null;
  }
  if (typeof frame.event !== 'string' || frame.data === undefined) return null;
  // HTTP publishes store the data string as published; a client event's data is the JSON it sent.
  const data = typeof frame.data === 'string' ? frame.data : JSON.stringify(frame.data);
  const message: Record<string, unknown> = {
    event: frame.event,
    channel: frame.channel,
    data,
    stream_id: e.epoch,
    serial: e.serial,
  };
  if (typeof frame.user_id === 'string') message.user_id = frame.user_id;
  return {
    stream_id: e.epoch,
    serial: e.serial,
    published_at_ms: e.publishedAtMs,
    message_id: `${e.epoch}:${e.serial}`,
    event_name: frame.event,
    operation_kind: 'append',
    payload_size_bytes: Buffer.byteLength(data),
    message,
  };
}

export async function channelHistory(d: HttpDeps, app: App, channel: string, params: Map<string, string>): Promise<Reply> {
  const nameProblem = channelNameProblem(channel, app.max_channel_name_length);
  if (nameProblem) return invalid(`${nameProblem}: ${channel.slice(0, 210)}`);
  const limit = integer(params, 'limit');
  if (limit === null || limit === 0 || (limit !== undefined && limit > MAX_LIMIT))
    return invalid(`limit must be an integer from 1 to ${MAX_LIMIT}`);
  const rawDirection = (params.get('direction') ?? 'newest_first').toLowerCase();
  const direction = DIRECTIONS[rawDirection];
  if (!direction) return invalid('direction must be newest_first or oldest_first');
  const bounds: Bounds = { start_serial: null, end_serial: null, start_time_ms: null, end_time_ms: null };
  for (const [name, ...aliases] of BOUND_PARAMS) {
    const value = integer(params, name, ...aliases);
    if (value === null) return invalid(`${name} must be a non-negative integer`);
    bounds[name] = value ?? null;
  }
  if (bounds.start_serial !== null && bounds.end_serial !== null && bounds.start_serial > bounds.end_serial) {
    return invalid('start_serial is after end_serial');
  }
  if (bounds.start_time_ms !== null && bounds.end_time_ms !== null && bounds.start_time_ms > bounds.end_time_ms) {
    return invalid('start_time_ms is after end_time_ms');
  }
  const pageSize = limit ?? DEFAULT_LIMIT;
  const newestFirst = direction === 'newest_first';
  let from = bounds.start_serial ?? 1;
  let to = bounds.end_serial ?? Infinity;
  let cursor: Cursor | null = null;
  const rawCursor = params.get('cursor');
  if (rawCursor !== undefined && rawCursor !== '') {
    cursor = decodeCursor(rawCursor);
    if (!cursor) return invalid('cursor is malformed');
    if (cursor.app_id !== app.id || cursor.channel !== channel || cursor.direction !== direction || !sameBounds(cursor.bounds, bounds)) {
      return invalid('cursor does not belong to this request (same channel, direction and bounds required)');
    }
    if (newestFirst) to = Math.min(to, cursor.serial - 1);
    else from = Math.max(from, cursor.serial + 1);
  }
  const page: NumberedEvent[] = [];
  let epoch: string | null;
  let lastSerial: number;
  let more = false;
  try {
    // One read of limit + 1 tells whether there is more; a time bound filters, so it may take a few.
    for (let scanned = 0; ;) {
      const chunk = bounds.start_time_ms === null && bounds.end_time_ms === null ? pageSize + 1 - page.length : SCAN_CHUNK;
      const read = await d.core.history(app, channel, { fromSerial: from, toSerial: to, limit: chunk, newestFirst });
      if (!read)
        return problem(
          404,
          'history_disabled',
          `Channel ${channel.slice(0, 210)} has no history (the app's history settings do not cover it)`,
        );
      epoch = read.epoch;
      lastSerial = read.lastSerial;
      if (cursor && epoch !== cursor.stream_id) return invalid('cursor has expired: the channel history was reset');
      for (const e of read.events) {
        if (bounds.start_time_ms !== null && e.publishedAtMs < bounds.start_time_ms) continue;
        if (bounds.end_time_ms !== null && e.publishedAtMs > bounds.end_time_ms) continue;
        if (page.length === pageSize) {
          more = true;
          break;
        }
        page.push(e);
      }
      scanned += read.events.length;
      if (more || read.events.length < chunk || scanned >= app.history.max_messages) break;
      const edge = read.events[read.events.length - 1].serial;
      if (newestFirst) to = edge - 1;
      else from = edge + 1;
      if (from > to) break;
    }
  } catch (err) {
    if (err instanceof HistoryUnavailable)
      return { ...problem(503, 'history_unavailable', 'Channel history is unavailable, try again'), headers: { 'Retry-After': '1' } };
    throw err;
  }
  const items = page.map(itemOf).filter((i) => i !== null);
  const last = page[page.length - 1];
  const nextCursor =
    more && last && epoch !== null
      ? encodeCursor({ version: 1, app_id: app.id, channel, stream_id: epoch, serial: last.serial, direction, bounds })
      : null;
  return jsonReply(200, {
    channel,
    items,
    direction,
    limit: pageSize,
    has_more: more,
    next_cursor: nextCursor,
    bounds,
    continuity: { stream_id: epoch, newest_available_serial: epoch === null ? null : lastSerial },
  });
}
