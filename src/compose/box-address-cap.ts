// The per-address connection cap of a box (max_connections_per_ip): one count for every
// worker, held in the primary's hub and tied to this worker's link, so a worker that dies
// gives its addresses' holds back with it. With the hub unreachable a connection is let in
// uncounted (as the connection quota fails open when its broker is down).
import type { AddressCap } from '../edge/ws/ip-gate.js';
import { BoxLink } from '../transports/box-link.js';

export class BoxAddressCap implements AddressCap {
  private readonly link: BoxLink;
  private readonly connected: Promise<void>;
  /** holds this worker has in the hub, per address (what a release may give back) */
  private readonly held = new Map<string, number>();

  constructor(path: string, label: string) {
    this.link = new BoxLink(path, `${label} address cap`);
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

  async take(ip: string, max: number): Promise<boolean> {
    await this.connected;
    let taken: unknown;
    try {
      taken = await this.link.request('capTake', [`ip:${ip}`, max]);
    } catch {
      return true;
    }
    if (taken !== true) return false;
    this.held.set(ip, (this.held.get(ip) ?? 0) + 1);
    return true;
  }

  release(ip: string): void {
    const n = this.held.get(ip) ?? 0;
    if (n <= 0) return;
    if (n === 1) this.held.delete(ip);
    else this.held.set(ip, n - 1);
    this.link.request('capRelease', [`ip:${ip}`]).catch(() => undefined);
  }

  close(): void {
    this.link.close();
  }
}
