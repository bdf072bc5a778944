// A per-connection budget for control frames (subscribe, unsubscribe, sign-in): a
// token bucket, so pusher-js resubscribing its channels after a reconnect passes
// (the burst) while a flood of subscribe/unsubscribe churn is refused and then closed.
import type { Connection } from '../../conn/connection.js';
import { clockMs } from '../../conn/clock.js';

export interface ControlBudget {
  /** tokens added per second (0: no budget at all) */
  perSecond: number;
  /** bucket size: control frames a connection may send at once */
  burst: number;
}

/** Takes one token; false when the connection is over its budget. */
export function takeControlToken(conn: Connection, budget: ControlBudget, now = clockMs()): boolean {
  if (budget.perSecond <= 0) return true;
  const elapsed = now - conn.controlRefilledAt;
  if (elapsed > 0) {
    // elapsed ms × tokens per second = thousandths of a token
    conn.controlMilliTokens = Math.min(budget.burst * 1000, conn.controlMilliTokens + elapsed * budget.perSecond);
    conn.controlRefilledAt = now;
  }
  if (conn.controlMilliTokens < 1000) return false;
  conn.controlMilliTokens -= 1000;
  return true;
}
