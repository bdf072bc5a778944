// The caps a box of workers counts once, as one node would: connections node-wide
// (max_connections), per address (max_connections_per_ip) and fallback sessions per address
// (http_fallback.max_sessions_per_ip). Every hold sits in the primary's hub, tied to this
// worker's link, so a worker that dies gives its holds back with it. With the hub unreachable
// a connection is let in uncounted (as the connection quota fails open when its broker is down).
import type { ConnectionSeats } from '../core/core.js';
import type { AddressCap } from '../edge/ws/ip-gate.js';
import { BoxLink } from '../transports/box-link.js';

export class BoxCounts {
  private readonly link: BoxLink;
  private readonly connected: Promise<void>;
  /** holds this worker has in the hub, per key (what a release may give back) */
  private readonly held = new Map<string, number>();

  constructor(path: string, label: string) {
    this.link = new BoxLink(path, `${label} box counts`);
    this.connected = this.link
      .connect({
        message: () => undefined,
        // The hub dropped this link's holds with it: nothing of ours is left to give back.
        status: (up) => {
          if (!up) this.held.clear();
        },
      })
      .catch(() => undefined);
  }

  /** The box-wide count of connections one address holds. */
  addressCap(): AddressCap {
    return this.keyed('ip:');
  }

  /** The box-wide count of fallback sessions one address holds. */
  sessionCap(): AddressCap {
    return this.keyed('sessions:');
  }

  /** The box-wide count of every connection (the node-wide cap). */
  seats(): ConnectionSeats {
    return { take: (max) => this.take('connections', max), release: () => this.release('connections') };
  }

  private keyed(prefix: string): AddressCap {
    return {
      take: (ip, max) => this.take(prefix + ip, max),
      release: (ip) => this.release(prefix + ip),
    };
  }

  async take(key: string, max: number): Promise<boolean> {
    await this.connected;
    let taken: unknown;
    try {
      taken = await this.link.request('capTake', [key, max]);
    } catch {
      return true;
    }
    if (taken !== true) return false;
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
    return true;
  }

  release(key: string): void {
    const n = this.held.get(key) ?? 0;
    if (n <= 0) return;
    if (n === 1) this.held.delete(key);
    else this.held.set(key, n - 1);
    this.link.request('capRelease', [key]).catch(() => undefined);
  }

  close(): void {
    this.link.close();
  }
}
