// The uWebSockets.js behaviour for <prefix>/app/{key}: connection lifecycle and frame
// dispatch. No exception may leave a uWS callback (it would end the process): each one
// runs behind a last-resort guard that logs, counts and closes that one connection.
import type { WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import { MAX_BACKPRESSURE_BYTES } from '../../config/limits.js';
import { CloseCode } from '../../protocol/codes.js';
import { errorFrame } from '../../protocol/frames.js';
import { handleClientMessage } from './dispatch.js';
import { connectionClosed, connectionOpened } from './lifecycle.js';
import type { WsDeps } from './settings.js';
import { handleUpgrade } from './upgrade.js';
import { WsConnection, type SocketData } from './ws-connection.js';
import { clockMs } from '../../conn/clock.js';

export function websocketBehavior(d: WsDeps): WebSocketBehavior<SocketData> {
  const { settings, metrics, log } = d;
  /** Logs and counts a handler that threw; the connection it was handling is closed. */
  const guard = (where: 'open' | 'message', ws: WebSocket<SocketData> | null, err: unknown) => {
    metrics.handlerError(where);
    log.error({ err: (err as Error)?.message ?? String(err), where }, 'a connection handler threw; that connection is closed');
    try {
      const peer = ws?.getUserData().peer;
      if (peer instanceof WsConnection && peer.attached) peer.close(CloseCode.RECONNECT, 'server error');
      else ws?.end(CloseCode.RECONNECT, 'server error');
    } catch {
      /* already gone */
    }
  };

  // uWS drops the TCP connection (1006) on a frame over its own limit, with no close frame.
  // Its limit sits above ours, so a frame somewhat over websocket_max_payload_kb reaches the
  // handler and gets a 1009 close with a reason; only a gross one (over 4x, or 1 MiB beyond)
  // is cut by uWS before it is read. The margin is bounded: it is what uWS may buffer per socket.
  const uwsLimit = settings.maxPayloadBytes + Math.min(3 * settings.maxPayloadBytes, 1024 * 1024);

  return {
    compression: 0,
    maxPayloadLength: uwsLimit,
    // Liveness is ours (pusher:ping / 4201), so uWS's own idle timer is off.
    idleTimeout: 0,
    maxBackpressure: MAX_BACKPRESSURE_BYTES,
    closeOnBackpressureLimit: 0,
    sendPingsAutomatically: false,

    upgrade: (res, req, context) => {
      try {
        handleUpgrade(d, res, req, context);
      } catch (err) {
        metrics.handlerError('upgrade');
        log.error({ err: (err as Error).message }, 'upgrade handler threw; the request is closed');
        try {
          res.close();
        } catch {
          /* already gone */
        }
      }
    },

    open: (ws) => {
      try {
        const peer = ws.getUserData().peer;
        if (!(peer instanceof WsConnection)) {
          const { code, message } = peer.refusal;
          if (code !== null) metrics.connectionError(peer.appId ?? 'unknown', code);
          ws.cork(() => {
            ws.send(errorFrame(code, message), false, false);
            ws.end(code ?? CloseCode.RECONNECT, message.slice(0, 100));
          });
          return;
        }
        peer.attach(ws);
        connectionOpened(d, peer);
      } catch (err) {
        guard('open', ws, err);
      }
    },

    message: (ws, message, isBinary) => {
      try {
        const conn = ws.getUserData().peer;
        if (!(conn instanceof WsConnection) || conn.closed) return;
        handleClientMessage(d, conn, message, isBinary);
      } catch (err) {
        // JSON.parse takes any depth but JSON.stringify recurses: deep data may overflow the stack.
        if (err instanceof RangeError) {
          const conn = ws.getUserData().peer;
          if (conn instanceof WsConnection) conn.send(errorFrame(null, 'Invalid message: data is nested too deeply'));
          return;
        }
        guard('message', ws, err);
      }
    },

    pong: (ws) => {
      const conn = ws.getUserData().peer;
      if (conn instanceof WsConnection) {
        conn.lastSeen = clockMs();
        conn.pingSentAt = 0;
      }
    },

    close: (ws, code, message) => {
      try {
        const conn = ws.getUserData().peer;
        if (!(conn instanceof WsConnection) || !conn.attached) return;
        conn.closed = true;
        connectionClosed(d, conn, conn.ip, code, () => Buffer.from(message).toString('utf8'));
      } catch (err) {
        metrics.handlerError('close');
        log.error({ err: (err as Error).message }, 'close handler threw');
      }
    },
  };
}
