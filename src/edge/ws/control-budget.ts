// A per-connection budget for control frames (subscribe, unsubscribe, sign-in): a
// token bucket, so pusher-js resubscribing its channels after a reconnect passes
// (the burst) while a flood of subscribe/unsubscribe churn is refused and then closed.
import type { Connection } from '../../conn/connection.js';

export interface ControlBudget {
  /** tokens added per second (0: no budget at all) */
  perSecond: number;
  /** bucket size: control frames a connection may send at once */
  burst: number;
}

/** Takes one token; false when the connection is over its budget. */
export function takeControlToken(conn: Connection, budget: ControlBudget, now = Date.now()): boolean {
  if (budget.perSecond <= 0) return true;
  const elapsed = now - conn.controlRefilledAt;
  if (elapsed > 0) {
    conn.controlTokens = Math.min(budget.burst, conn.controlTokens + (elapsed * budget.perSecond) / 1000);
    conn.controlRefilledAt = now;
  }
  if (conn.controlTokens < 1) return false;
  conn.controlTokens -= 1;
  return true;
}
