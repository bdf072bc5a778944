// Per-address limits on WebSocket connections: how many one address may hold at
// once, and (Sockudo's websocket_rate_limit) how many it may open per window.
import type { RateLimiter } from '../../rate-limit/limiter.js';

export interface IpLimits {
  /** X-Forwarded-For hops to trust (0: the TCP peer) */
  trustHops: number;
  /** connections one address may hold at once (null: no cap) */
  maxConnections: number | null;
  /**
   * connection attempts one address may make per window (null: no limit). Past it, Sockudo
   * answers the upgrade request with HTTP 429 ('http_429'); Pusher-style is to accept and
   * close with 4100, which pusher-js backs off from ('close_4100').
   */
  rate: { maxRequests: number; windowSeconds: number; refusal: 'http_429' | 'close_4100' } | null;
}

/** Why an address may not open one more connection now. */
export type IpRefusal = 'connections' | 'rate';

export class IpGate {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly limits: IpLimits | null,
    private readonly rateLimiter: RateLimiter,
  ) {}

  /** Counts a connection of the address when it fits the limits (null); else the limit it hits. */
  async tryOpen(ip: string): Promise<IpRefusal | null> {
    const l = this.limits;
    if (!l || ip === '') return null;
    if (l.maxConnections !== null && (this.open.get(ip) ?? 0) >= l.maxConnections) return 'connections';
    if (l.rate && !(await this.rateLimiter.consume(`ws-ip:${ip}`, 1, l.rate.maxRequests, l.rate.windowSeconds * 1000))) return 'rate';
    // Counted after the (possibly remote) rate check: the check of the cap above may be a little stale.
    this.open.set(ip, (this.open.get(ip) ?? 0) + 1);
    return null;
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
