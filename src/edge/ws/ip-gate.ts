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

/**
 * Where the connection cap is counted when it is not this process alone (the workers of a box
 * count as one node): a hold per open connection, taken when it fits under `max`.
 */
export interface AddressCap {
  take(ip: string, max: number): Promise<boolean>;
  /** Gives back one hold taken by this process. */
  release(ip: string): void;
}

/** Why an address may not open one more connection now. */
export type IpRefusal = 'connections' | 'rate';

export class IpGate {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly limits: IpLimits | null,
    private readonly rateLimiter: RateLimiter,
    /** the box-wide count of the cap (a worker of a box), else this process's own */
    private readonly shared: AddressCap | null = null,
  ) {}

  /** Counts a connection of the address when it fits the limits (null); else the limit it hits. */
  async tryOpen(ip: string): Promise<IpRefusal | null> {
    const l = this.limits;
    if (!l || ip === '') return null;
    const capped = l.maxConnections !== null;
    if (capped && !this.shared && (this.open.get(ip) ?? 0) >= l.maxConnections!) return 'connections';
    if (capped && this.shared && !(await this.shared.take(ip, l.maxConnections!))) return 'connections';
    if (l.rate && !(await this.rateLimiter.consume(`ws-ip:${ip}`, 1, l.rate.maxRequests, l.rate.windowSeconds * 1000))) {
      if (capped) this.shared?.release(ip);
      return 'rate';
    }
    // Counted after the (possibly remote) rate check: the check of the cap above may be a little stale.
    this.open.set(ip, (this.open.get(ip) ?? 0) + 1);
    return null;
  }

  /** A counted connection closed (or was refused after it was counted). */
  closed(ip: string): void {
    if (ip === '' || !this.limits) return;
    if (this.limits.maxConnections !== null) this.shared?.release(ip);
    const n = (this.open.get(ip) ?? 0) - 1;
    if (n > 0) this.open.set(ip, n);
    else this.open.delete(ip);
  }

  connectionsOf(ip: string): number {
    return this.open.get(ip) ?? 0;
  }
}
