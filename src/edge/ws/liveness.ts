// One timer for every connection: pings after `activity_timeout` of silence, closes
// with 4201 when no pong follows, enforces the sign-in deadline of apps that require
// user authentication, and drops readers too slow to keep up.
import { MAX_BACKPRESSURE_BYTES } from '../../config/limits.js';
import type { LocalRegistry } from '../../conn/registry.js';
import { CloseCode } from '../../protocol/codes.js';
import { errorFrame, PING } from '../../protocol/frames.js';
import { clockMs } from '../../conn/clock.js';
import type { TickObserver } from '../../metrics/loop-lag.js';

export interface LivenessSettings {
  activityTimeoutSeconds: number;
  userAuthenticationTimeoutSeconds: number;
}

/** `ticks` learns of every sweep (the event-loop lag is how late they come: metrics/loop-lag.ts). */
export function startLiveness(registry: LocalRegistry, settings: LivenessSettings, ticks?: TickObserver): () => void {
  const activityMs = settings.activityTimeoutSeconds * 1000;
  // Pusher waits 30 s for a pong; shorter activity timeouts (tests) wait as long as the timeout.
  const pongWaitMs = Math.min(30_000, activityMs);
  // Often enough for the shorter of the two deadlines (a 1 s sign-in timeout must not wait 5 s).
  const authMs = settings.userAuthenticationTimeoutSeconds * 1000;
  // At least once a second: a reader past the backpressure limit misses messages until it is closed.
  const everyMs = Math.max(250, Math.min(1000, Math.floor(activityMs / 4), Math.floor(authMs / 4)));
  const timer = setInterval(() => {
    ticks?.ticked(everyMs);
    const now = clockMs();
    registry.forEach((conn) => {
      if (conn.closed) return;
      if (conn.bufferedAmount() > MAX_BACKPRESSURE_BYTES) {
        conn.close(CloseCode.OVER_CAPACITY, 'slow consumer');
      } else if (conn.authDeadline !== 0 && now >= conn.authDeadline) {
        conn.close(CloseCode.UNAUTHORIZED, 'unauthorized', errorFrame(CloseCode.UNAUTHORIZED, 'Connection not authorized within timeout'));
      } else if (conn.pingSentAt !== 0) {
        if (now - conn.pingSentAt >= pongWaitMs) conn.close(CloseCode.PONG_NOT_RECEIVED, 'pong not received');
      } else if (now - conn.lastSeen >= activityMs) {
        conn.pingSentAt = now;
        conn.send(PING);
      }
    });
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
