// What a client sends, whatever carries it (a WebSocket message, or one string of an
// HTTP fallback session's xhr_send): counted, bounded, decoded and handed to its handler.
import type { Connection } from '../../conn/connection.js';
import { CloseCode } from '../../protocol/codes.js';
import { decodeClientFrame, errorFrame, PONG, type ClientFrame } from '../../protocol/frames.js';
import { handleClientEvent } from './client-events.js';
import { takeControlToken } from './control-budget.js';
import { handleRecovery } from './recovery.js';
import type { WsDeps } from './settings.js';
import { handleSignin } from './signin.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe.js';
import { clockMs } from '../../conn/clock.js';

/**
 * One client frame. Throws only a RangeError for data nested too deeply to re-encode
 * (JSON.parse takes any depth, JSON.stringify recurses); the caller answers it.
 */
export function handleClientMessage(d: WsDeps, conn: Connection, message: ArrayBuffer | string, isBinary: boolean): void {
  conn.lastSeen = clockMs();
  conn.pingSentAt = 0;
  const size = typeof message === 'string' ? Buffer.byteLength(message) : message.byteLength;
  conn.metrics.messagesIn.inc();
  conn.metrics.bytesIn.inc(size);
  const max = d.settings.maxPayloadBytes;
  if (size > max) return conn.close(CloseCode.MESSAGE_TOO_BIG, `frame over ${Math.round(max / 1024)} KB (websocket_max_payload_kb)`);
  if (isBinary) return conn.send(errorFrame(null, 'Binary frames are not supported'));
  const decoded = decodeClientFrame(message);
  if (!decoded.ok) return conn.send(errorFrame(null, `Invalid message: ${decoded.reason}`));
  dispatch(d, conn, decoded.frame, size);
}

function dispatch(d: WsDeps, conn: Connection, frame: ClientFrame, size: number): void {
  const event = frame.event;
  if (event.startsWith('client-')) return handleClientEvent(d, conn, frame, size);
  switch (event) {
    case 'pusher:ping':
      return conn.send(PONG);
    case 'pusher:pong':
      return;
    case 'pusher:subscribe':
    case 'pusher:unsubscribe':
    case 'pusher:signin':
    case 'chorus:recovery':
      if (!takeControlToken(conn, d.settings.controlBudget)) {
        d.metrics.rateLimit(conn.app.id, 'control_frames');
        conn.close(
          CloseCode.OVER_CAPACITY,
          'too many control frames',
          errorFrame(CloseCode.OVER_CAPACITY, 'Too many subscribe, unsubscribe or sign-in frames; reconnect later'),
        );
        return;
      }
      if (event === 'pusher:subscribe') subscribe(d, conn, frame.data);
      else if (event === 'pusher:unsubscribe') handleUnsubscribe(d, conn, frame.data);
      else if (event === 'chorus:recovery') handleRecovery(conn, frame.data);
      else handleSignin(d, conn, frame.data);
      return;
    default:
      conn.send(errorFrame(null, `Unknown event: ${event.slice(0, 100)}`));
  }
}

/** A subscribe that fails (now or after a wait) is logged and answered, never thrown at uWS. */
function subscribe(d: WsDeps, conn: Connection, data: unknown): void {
  let joining: void | Promise<void>;
  try {
    joining = handleSubscribe(d, conn, data);
  } catch (err) {
    return subscribeFailed(d, conn, err as Error);
  }
  // A closure only for a join that waits: the usual one allocates nothing here.
  joining?.catch((err: Error) => subscribeFailed(d, conn, err));
}

function subscribeFailed(d: WsDeps, conn: Connection, err: Error): void {
  d.log.error({ err: err.message, socket_id: conn.socketId }, 'subscribe failed');
  conn.send(errorFrame(null, 'Subscription failed, try again'));
}
