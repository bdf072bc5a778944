// client-* events: relayed to the channel's other subscribers in the cluster,
// only on private and presence channels the sender has joined.
import { kb } from '../apps/app.js';
import type { NodeContext } from '../context.js';
import { allowsClientEvents, channelInfo } from '../protocol/channels.js';
import { CloseCode } from '../protocol/codes.js';
import { encodeClientEvent, errorFrame, type ClientFrame } from '../protocol/frames.js';
import { wantsWebhook } from '../webhooks/events.js';
import { sendFrame, type SocketData } from './socket.js';

const reject = (sock: SocketData, message: string, channel?: string) =>
  sendFrame(sock, errorFrame(CloseCode.CLIENT_EVENT_REJECTED, message, channel));

/** Per-socket fixed one-second window; true when the event fits. */
function withinRate(sock: SocketData, perSecond: number | null, now: number): boolean {
  if (perSecond === null) return true;
  if (now - sock.clientWindowStart >= 1000) {
    sock.clientWindowStart = now;
    sock.clientWindowCount = 0;
  }
  if (sock.clientWindowCount >= perSecond) return false;
  sock.clientWindowCount++;
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

export function handleClientEvent(ctx: NodeContext, sock: SocketData, frame: ClientFrame, rawLength: number): void {
  const app = sock.app!;
  const { event, channel, data } = frame;
  if (!app.enable_client_messages) return reject(sock, 'Client events are not enabled for this app');
  if (typeof channel !== 'string') return reject(sock, 'Client events need a channel');
  const sub = sock.channels.get(channel);
  if (!sub || !sub.ready) return reject(sock, `Not subscribed to ${channel}`, channel);
  if (!allowsClientEvents(channelInfo(channel).kind)) {
    return reject(sock, 'Client events are allowed only on private and presence channels', channel);
  }
  if (app.max_event_name_length !== null && event.length > app.max_event_name_length) {
    return reject(sock, `Event name is longer than ${app.max_event_name_length} characters`, channel);
  }
  const maxBytes = kb(app.max_event_payload_in_kb);
  if (maxBytes !== null && dataOverLimit(data, rawLength, event, channel, maxBytes)) {
    return reject(sock, `Event data is larger than ${app.max_event_payload_in_kb} KB`, channel);
  }
  if (!withinRate(sock, app.max_client_events_per_second, Date.now())) {
    ctx.metrics.rateLimit(app.id, 'client_events');
    return reject(sock, 'Client event rejected: rate limit exceeded', channel);
  }
  const userId = sub.userId ?? undefined;
  const out = encodeClientEvent(event, channel, data, userId);
  ctx.hub.relayFromSocket(sock, channel, out);
  ctx.metrics.app(app.id).clientEvents.inc();
  if (wantsWebhook(app, 'client_event')) {
    ctx.webhooks.emit(app, {
      name: 'client_event',
      channel,
      event,
      data: typeof data === 'string' ? data : JSON.stringify(data ?? null),
      socket_id: sock.socketId,
      ...(userId !== undefined ? { user_id: userId } : {}),
    });
  }
}
