// Per-address limits on WebSocket connections: how many one address may hold at
// once, and (Sockudo's websocket_rate_limit) how many it may open per window.
import type { RateLimiter } from '../../rate-limit/limiter.js';

export interface IpLimits {
  /** X-Forwarded-For hops to trust (0: the TCP peer) */
  trustHops: number;
  /** connections one address may hold at once (null: no cap) */
  maxConnections: number | null;
  /** connection attempts one address may make per window (null: no limit) */
  rate: { maxRequests: number; windowSeconds: number } | null;
}

export class IpGate {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly limits: IpLimits | null,
    private readonly rateLimiter: RateLimiter,
  ) {}

  /** Counts a connection of the address when it fits the limits; false when it does not. */
  async tryOpen(ip: string): Promise<boolean> {
    const l = this.limits;
    if (!l || ip === '') return true;
    if (l.maxConnections !== null && (this.open.get(ip) ?? 0) >= l.maxConnections) return false;
    if (l.rate && !(await this.rateLimiter.consume(`ws-ip:${ip}`, 1, l.rate.maxRequests, l.rate.windowSeconds * 1000))) return false;
    // Counted after the (possibly remote) rate check: the check of the cap above may be a little stale.
    this.open.set(ip, (this.open.get(ip) ?? 0) + 1);
    return true;
  }

  /** A counted connection closed (or was refused after it was counted). */
  closed(ip: string): void {
    if (ip === '') return;
    const n = (this.open.get(ip) ?? 0) - 1;
    if (n > 0) this.open.set(ip, n);
    else this.open.delete(ip);
  }

  connectionsOf(ip: string): number {
    return this.open.get(ip) ?? 0;
  }
}
