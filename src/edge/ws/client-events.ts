// client-* events: relayed to the channel's other subscribers in the cluster,
// only on private and presence channels the sender has joined.
import { kb } from '../../apps/app.js';
import type { Connection } from '../../conn/connection.js';
import { clipData } from '../../core/console-tap.js';
import { wantsWebhook, type WebhookEvent } from '../../core/events.js';
import { allowsClientEvents, channelInfo } from '../../protocol/channels.js';
import { CloseCode } from '../../protocol/codes.js';
import { encodeClientEvent, errorFrame, type ClientFrame } from '../../protocol/frames.js';
import type { WsDeps } from './settings.js';
import { clockMs } from '../../conn/clock.js';

const reject = (conn: Connection, message: string, channel?: string) =>
  conn.send(errorFrame(CloseCode.CLIENT_EVENT_REJECTED, message, channel));

/** Per-socket fixed one-second window; true when the event fits. */
function withinRate(conn: Connection, perSecond: number | null, now: number): boolean {
  if (perSecond === null) return true;
  if (now - conn.clientWindowStart >= 1000) {
    conn.clientWindowStart = now;
    conn.clientWindowCount = 0;
  }
  if (conn.clientWindowCount >= perSecond) return false;
  conn.clientWindowCount++;
  return true;
}

/** `{"event":"","channel":"","data":}`: the envelope around a compact client frame. */
const ENVELOPE_BYTES = 33;

/**
 * Whether the data as JSON is over `maxBytes`. Exact for string data; for JSON data the frame
 * minus its envelope is an upper bound, so data is re-encoded only when that bound is over.
 */
function dataOverLimit(data: unknown, rawLength: number, event: string, channel: string, maxBytes: number): boolean {
  if (typeof data === 'string') return Buffer.byteLength(data) > maxBytes;
  if (rawLength - event.length - channel.length - ENVELOPE_BYTES <= maxBytes) return false;
  return Buffer.byteLength(JSON.stringify(data ?? null)) > maxBytes;
}

export function handleClientEvent(d: WsDeps, conn: Connection, frame: ClientFrame, rawLength: number): void {
  const app = conn.app;
  const { event, channel, data } = frame;
  if (!app.enable_client_messages) return reject(conn, 'Client events are not enabled for this app');
  if (typeof channel !== 'string') return reject(conn, 'Client events need a channel');
  const sub = conn.channels.get(channel);
  if (!sub || !sub.ready) return reject(conn, `Not subscribed to ${channel.slice(0, 200)}`, channel.slice(0, 200));
  if (!allowsClientEvents(channelInfo(channel).kind)) {
    return reject(conn, 'Client events are allowed only on private and presence channels', channel);
  }
  if (app.max_event_name_length !== null && event.length > app.max_event_name_length) {
    return reject(conn, `Event name is longer than ${app.max_event_name_length} characters`, channel);
  }
  const maxBytes = kb(app.max_event_payload_in_kb);
  if (maxBytes !== null && dataOverLimit(data, rawLength, event, channel, maxBytes)) {
    return reject(conn, `Event data is larger than ${app.max_event_payload_in_kb} KB`, channel);
  }
  if (!withinRate(conn, app.max_client_events_per_second, clockMs())) {
    d.metrics.rateLimit(app.id, 'client_events');
    return reject(conn, 'Client event rejected: rate limit exceeded', channel);
  }
  const userId = sub.userId ?? undefined;
  const out = encodeClientEvent(event, channel, data, userId);
  const webhook: WebhookEvent | null = wantsWebhook(app, 'client_event')
    ? {
        name: 'client_event',
        channel,
        event,
        data: typeof data === 'string' ? data : JSON.stringify(data ?? null),
        socket_id: conn.socketId,
        ...(userId !== undefined ? { user_id: userId } : {}),
      }
    : null;
  d.core.clientEvent(conn, channel, out, webhook);
  if (d.core.tap.wants(app.id)) {
    const text = typeof data === 'string' ? data : JSON.stringify(data ?? null);
    d.core.tap.record(app.id, {
      type: 'client_event',
      socket_id: conn.socketId,
      channel,
      event,
      ...clipData(text),
      ...(userId !== undefined ? { user_id: userId } : {}),
    });
  }
}
