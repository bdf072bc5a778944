// One timer for every socket: pings after `activity_timeout` of silence,
// closes with 4201 when no pong follows, enforces the sign-in deadline of apps
// that require user authentication, and drops readers too slow to keep up.
import type { NodeContext } from '../context.js';
import { CloseCode } from '../protocol/codes.js';
import { errorFrame, PING } from '../protocol/frames.js';
import { MAX_BACKPRESSURE } from './behavior.js';
import { closeWith, sendFrame } from './socket.js';

export function startLiveness(ctx: NodeContext): () => void {
  const activityMs = ctx.config.activity_timeout * 1000;
  // Pusher waits 30 s for a pong; shorter activity timeouts (tests) wait as long as the timeout.
  const pongWaitMs = Math.min(30_000, activityMs);
  // Checks often enough for the shorter of the two deadlines (a 1 s sign-in timeout must not wait 5 s).
  const authMs = ctx.config.user_authentication_timeout * 1000;
  // At least once a second: a reader past the backpressure limit misses messages until it is closed.
  const everyMs = Math.max(250, Math.min(1000, Math.floor(activityMs / 4), Math.floor(authMs / 4)));
  const timer = setInterval(() => {
    const now = Date.now();
    for (const sock of ctx.registry.sockets.values()) {
      if (sock.closed || !sock.ws) continue;
      if (sock.ws.getBufferedAmount() > MAX_BACKPRESSURE) {
        closeWith(sock, CloseCode.OVER_CAPACITY, null, 'slow consumer');
        continue;
      }
      if (sock.authDeadline !== 0 && now >= sock.authDeadline) {
        closeWith(sock, CloseCode.UNAUTHORIZED, errorFrame(CloseCode.UNAUTHORIZED, 'Connection not authorized within timeout'), 'unauthorized');
        continue;
      }
      if (sock.pingSentAt !== 0) {
        if (now - sock.pingSentAt >= pongWaitMs) {
          closeWith(sock, CloseCode.PONG_NOT_RECEIVED, null, 'pong not received');
        }
      } else if (now - sock.lastSeen >= activityMs) {
        sock.pingSentAt = now;
        sendFrame(sock, PING);
      }
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
