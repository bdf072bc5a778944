// The rate limiter of a worker whose limits are kept in memory: its windows live in the box's
// primary (one count for the whole box, as for one node), asked over the worker's own hub
// link. With the hub unreachable (the primary is restarting the box) it answers as
// rate_limiter.fail_open says, like the Redis limiter with Redis down.
import type { RateLimiter } from '../rate-limit/limiter.js';
import { BoxLink } from '../transports/box-link.js';

export class BoxRateLimiter implements RateLimiter {
  private readonly link: BoxLink;
  private readonly connected: Promise<void>;

  constructor(
    path: string,
    label: string,
    private readonly failOpen: boolean,
  ) {
    this.link = new BoxLink(path, `${label} limits`);
    this.connected = this.link.connect({ message: () => undefined, status: () => undefined }).catch(() => undefined);
  }

  async consume(key: string, points: number, limit: number, windowMs?: number): Promise<boolean> {
    await this.connected;
    try {
      return (await this.link.request('rate', [key, points, limit, windowMs ?? null])) === true;
    } catch {
      return this.failOpen;
    }
  }

  async close(): Promise<void> {
    this.link.close();
  }
}
