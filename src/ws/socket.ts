// Per-connection state, kept in uWebSockets.js user data.
import type { WebSocket } from 'uWebSockets.js';
import type { App } from '../apps/app.js';
import type { PerApp } from '../metrics/metrics.js';
import type { ProtocolError } from '../protocol/codes.js';

export interface Subscription {
  /** presence user id, null on other channel types */
  userId: string | null;
  /** false while the adapter confirms cross-node delivery */
  ready: boolean;
}

export interface SignedInUser {
  id: string;
  userData: string;
  info: unknown;
  watchlist: string[];
}

export interface SocketData {
  socketId: string;
  /** Null only for connections refused at upgrade (they carry `refusal`). */
  app: App | null;
  refusal: ProtocolError | null;
  /** channel name -> its subscription */
  channels: Map<string, Subscription>;
  user: SignedInUser | null;
  /** ms timestamps for liveness */
  lastSeen: number;
  pingSentAt: number;
  /** ms deadline to sign in (apps with enable_user_authentication), 0 when none */
  authDeadline: number;
  /** client events: fixed one-second window */
  clientWindowStart: number;
  clientWindowCount: number;
  closed: boolean;
  /** holds a slot of the app's cluster-wide connection quota */
  quota: boolean;
  /** set on open, so other parts (terminate, watchlists) can reach the socket */
  ws: WebSocket<SocketData> | null;
  /** the app's metrics, set on open: frames sent to this socket alone count as sent too */
  metrics?: PerApp;
}

export type Socket = WebSocket<SocketData>;

/** Sends unless the socket has closed (uWS throws on a closed socket). */
export function sendFrame(data: SocketData, frame: string): void {
  if (data.closed || !data.ws) return;
  data.ws.send(frame, false, false);
  countSent(data, frame);
}

/** Fan-out is counted by the hub; this counts the frames sent to one socket. */
function countSent(data: SocketData, frame: string): void {
  data.metrics?.messagesOut.inc();
  data.metrics?.bytesOut.inc(frame.length);
}

/** Sends a last frame, then closes with a code. */
export function closeWith(data: SocketData, code: number, frame: string | null, reason = ''): void {
  if (data.closed || !data.ws) return;
  const ws = data.ws;
  ws.cork(() => {
    if (frame) {
      ws.send(frame, false, false);
      countSent(data, frame);
    }
    ws.end(code, reason);
  });
}
