// The uWebSockets.js behaviour for /app/{key}: connection lifecycle and frame dispatch.
import type { WebSocketBehavior } from 'uWebSockets.js';
import type { NodeContext } from '../context.js';
import { CloseCode } from '../protocol/codes.js';
import { connectionEstablished, decodeClientFrame, errorFrame, PONG } from '../protocol/frames.js';
import { handleClientEvent } from './client-events.js';
import { handleSignin, signOut } from './signin.js';
import { closeWith, sendFrame, type SocketData } from './socket.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe.js';
import { handleUpgrade } from './upgrade.js';

/** Buffered bytes past which a client that does not read is disconnected (4100: reconnect later). */
export const MAX_BACKPRESSURE = 1024 * 1024;

export function websocketBehavior(ctx: NodeContext): WebSocketBehavior<SocketData> {
  const activityTimeout = ctx.config.activity_timeout;
  return {
    compression: 0,
    maxPayloadLength: ctx.config.websocket_max_payload_kb * 1024,
    // Liveness is ours (pusher:ping / 4201), so uWS's own idle timer is off.
    idleTimeout: 0,
    maxBackpressure: MAX_BACKPRESSURE,
    closeOnBackpressureLimit: 0,
    sendPingsAutomatically: false,

    upgrade: (res, req, context) => handleUpgrade(ctx, res, req, context),

    open: (ws) => {
      const data = ws.getUserData();
      data.ws = ws;
      if (data.refusal) {
        const { code, message } = data.refusal;
        if (code !== null) ctx.metrics.connectionError(data.app?.id ?? 'unknown', code);
        closeWith(data, code ?? CloseCode.RECONNECT, errorFrame(code, message), message.slice(0, 100));
        return;
      }
      const app = data.app!;
      // uWS copies the upgrade's user data into a new object, so the registry (filled at
      // upgrade) must point at this one: liveness, exclusion and terminate read `ws` from it.
      ctx.registry.sockets.set(data.socketId, data);
      if (app.enable_user_authentication) {
        data.authDeadline = Date.now() + ctx.config.user_authentication_timeout * 1000;
      }
      const m = ctx.metrics.app(app.id);
      data.metrics = m;
      m.newConnections.inc();
      m.connected.inc();
      sendFrame(data, connectionEstablished(data.socketId, activityTimeout));
    },

    message: (ws, message, isBinary) => {
      const sock = ws.getUserData();
      if (!sock.app) return;
      sock.lastSeen = Date.now();
      sock.pingSentAt = 0;
      const m = ctx.metrics.app(sock.app.id);
      m.messagesIn.inc();
      m.bytesIn.inc(message.byteLength);
      if (isBinary) {
        sendFrame(sock, errorFrame(null, 'Binary frames are not supported'));
        return;
      }
      const decoded = decodeClientFrame(message);
      if (!decoded.ok) {
        sendFrame(sock, errorFrame(null, `Invalid message: ${decoded.reason}`));
        return;
      }
      try {
        dispatch(ctx, sock, decoded.frame, message.byteLength);
      } catch (err) {
        // A throw here would end the process (uWS callbacks have no catch). JSON.parse takes any
        // depth but JSON.stringify recurses: 30k nested arrays in client-event data overflow the stack.
        ctx.log.debug({ err: (err as Error).message, socket_id: sock.socketId }, 'frame handler threw');
        const why = err instanceof RangeError ? 'data is nested too deeply' : 'frame could not be processed';
        sendFrame(sock, errorFrame(null, `Invalid message: ${why}`));
      }
    },

    drain: (ws) => {
      // A slow reader that caught up; nothing to resume (fan-out skips sockets over the limit).
      void ws;
    },

    pong: (ws) => {
      const sock = ws.getUserData();
      sock.lastSeen = Date.now();
      sock.pingSentAt = 0;
    },

    close: (ws) => {
      const sock = ws.getUserData();
      sock.closed = true;
      if (!sock.app) return;
      disconnect(ctx, sock);
    },
  };
}

function dispatch(ctx: NodeContext, sock: SocketData, frame: import('../protocol/frames.js').ClientFrame, size: number): void {
  const event = frame.event;
  if (event.startsWith('client-')) return handleClientEvent(ctx, sock, frame, size);
  switch (event) {
    case 'pusher:ping':
      sendFrame(sock, PONG);
      return;
    case 'pusher:pong':
      return;
    case 'pusher:subscribe':
      handleSubscribe(ctx, sock, frame.data).catch((err) => {
        ctx.log.error({ err, socket_id: sock.socketId }, 'subscribe failed');
        sendFrame(sock, errorFrame(null, 'Subscription failed, try again'));
      });
      return;
    case 'pusher:unsubscribe':
      return handleUnsubscribe(ctx, sock, frame.data);
    case 'pusher:signin':
      return handleSignin(ctx, sock, frame.data);
    default:
      sendFrame(sock, errorFrame(null, `Unknown event: ${event.slice(0, 100)}`));
  }
}

/** Releases everything a closed socket held. */
function disconnect(ctx: NodeContext, sock: SocketData): void {
  const app = sock.app!;
  for (const channel of [...sock.channels.keys()]) ctx.hub.leave(sock, channel);
  signOut(ctx, sock);
  ctx.registry.sockets.delete(sock.socketId);
  const state = ctx.registry.peek(app.id);
  if (state) state.connections--;
  if (sock.quota) ctx.adapter.releaseConnection(app.id);
  const m = ctx.metrics.app(app.id);
  m.disconnections.inc();
  m.connected.dec();
}
