// A client connection's first and last moments, whatever carries it (a WebSocket or an
// HTTP fallback session): the core learns of it, its sign-in deadline starts, the
// metrics count it, and it is told its socket id; when it ends, all of that is undone.
import type { Connection } from '../../conn/connection.js';
import { connectionEstablished } from '../../protocol/frames.js';
import type { WsDeps } from './settings.js';
import { clockMs } from '../../conn/clock.js';

export function connectionOpened(d: WsDeps, conn: Connection): void {
  d.core.opened(conn);
  if (conn.app.enable_user_authentication) conn.authDeadline = clockMs() + d.settings.userAuthenticationTimeoutSeconds * 1000;
  conn.metrics.newConnections.inc();
  conn.metrics.connected.inc();
  d.metrics.connectedVia(conn.app.id, conn.transport).inc();
  conn.send(connectionEstablished(conn.socketId, d.settings.activityTimeoutSeconds));
  if (d.core.tap.wants(conn.app.id)) {
    d.core.tap.record(conn.app.id, { type: 'connection_opened', socket_id: conn.socketId, transport: conn.transport });
  }
}

/**
 * `ip`: the address the gate counted it under ('' when no per-address limit counts it);
 * `code` and `reason`: how it closed, as far as this side knows (the console shows them).
 */
export function connectionClosed(d: WsDeps, conn: Connection, ip: string, code: number, reason: () => string): void {
  if (d.core.tap.wants(conn.app.id)) {
    d.core.tap.record(conn.app.id, {
      type: 'connection_closed',
      socket_id: conn.socketId,
      transport: conn.transport,
      code,
      reason: reason().slice(0, 200),
      ...(conn.user ? { user_id: conn.user.id } : {}),
    });
  }
  d.ipGate.closed(ip);
  d.core.closed(conn);
  conn.metrics.disconnections.inc();
  conn.metrics.connected.dec();
  d.metrics.connectedVia(conn.app.id, conn.transport).dec();
}
