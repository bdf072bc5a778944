// This node's HTTP fallback sessions by key, and the one timer that keeps them honest:
// heartbeats for quiet streams and long polls, expiry of sessions whose client went
// away (no receive request for `disconnectMs`, as SockJS's disconnect_delay).
import type { FallbackConnection } from './session.js';

export interface SessionTiming {
  /** a stream or poll quiet this long gets an `h` (pusher-js waits 30 s for activity after its ping) */
  heartbeatMs: number;
  /** a session without a receive request this long is closed */
  disconnectMs: number;
}

export class FallbackSessions {
  private readonly byKey = new Map<string, FallbackConnection>();
  private readonly perIp = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly timing: SessionTiming) {}

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): FallbackConnection | undefined {
    return this.byKey.get(key);
  }

  /** Sessions of one client address on this node (the per-address cap counts them). */
  ofIp(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }

  add(conn: FallbackConnection, ip: string): void {
    this.byKey.set(conn.sessionKey, conn);
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    this.timer ??= this.startSweep();
  }

  /** Forgets the session (idempotent). */
  remove(conn: FallbackConnection, ip: string): void {
    if (this.byKey.get(conn.sessionKey) !== conn) return;
    this.byKey.delete(conn.sessionKey);
    const n = (this.perIp.get(ip) ?? 0) - 1;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
    if (this.byKey.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private startSweep(): NodeJS.Timeout {
    const everyMs = Math.max(100, Math.min(1000, Math.floor(this.timing.disconnectMs / 4)));
    const timer = setInterval(() => this.sweep(Date.now()), everyMs);
    timer.unref();
    return timer;
  }

  private sweep(now: number): void {
    for (const conn of [...this.byKey.values()]) {
      if (conn.attached) conn.heartbeat(now, this.timing.heartbeatMs);
      else if (now - Math.max(conn.detachedAt, conn.closedAt) >= this.timing.disconnectMs) conn.expire();
    }
  }
}
