// Rate limits shared by every node through Redis: one round trip per check,
// running one Lua script that reads, compares and increments atomically.
// When Redis cannot answer, the check fails open or closed as configured; until a background
// probe (one a second) reaches Redis again, checks are decided at once (each would otherwise
// wait out the command timeout).
import { type Cluster, type Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RateLimiter } from './limiter.js';

const SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local points = tonumber(ARGV[1])
if used + points > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[1], points)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** While Redis fails, it is asked again (a PING) at most this often. */
const PROBE_EVERY_MS = 1000;

type Scripted = (Redis | Cluster) & {
  chorusConsume(key: string, points: number, limit: number, ttlMs: number): Promise<number>;
};

export class RedisRateLimiter implements RateLimiter {
  private readonly client: Scripted;
  private failing = false;
  private probing = false;
  private probedAt = 0;

  constructor(
    client: Redis | Cluster,
    private readonly prefix: string,
    private readonly failOpen: boolean,
    private readonly log: Logger,
  ) {
    client.defineCommand('chorusConsume', { numberOfKeys: 1, lua: SCRIPT });
    client.on('error', () => undefined);
    this.client = client as Scripted;
  }

  /** Resolves once the connection is up (or after `timeoutMs`): a fail-closed limiter must not refuse the first requests only because it is still connecting. */
  ready(timeoutMs: number): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    // A lazy client connects on its first command.
    this.client.ping().catch(() => undefined);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.client.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.client.once('ready', done);
    });
  }

  async consume(key: string, points: number, limit: number, windowMs = 1000): Promise<boolean> {
    const now = Date.now();
    const window = now - (now % windowMs);
    // The window start is part of the key, so a window's count never leaks into the next.
    const redisKey = `${this.prefix}rl:${key}:${window}`;
    if (this.failing) {
      this.probe(now);
      return this.failOpen;
    }
    try {
      return (await this.client.chorusConsume(redisKey, points, limit, windowMs * 2)) === 1;
    } catch (err) {
      if (!this.failing) {
        this.failing = true;
        this.log.error({ err: (err as Error).message, fail_open: this.failOpen }, 'rate limiter cannot reach Redis');
      }
      this.probedAt = Date.now();
      return this.failOpen;
    }
  }

  /** At most one PING in flight and one a second; its answer ends the failing state. */
  private probe(now: number): void {
    if (this.probing || now - this.probedAt < PROBE_EVERY_MS) return;
    this.probing = true;
    this.probedAt = now;
    this.client.ping().then(
      () => {
        this.probing = false;
        if (!this.failing) return;
        this.failing = false;
        this.log.info('rate limiter reaches Redis again');
      },
      () => {
        this.probing = false;
        this.probedAt = Date.now();
      },
    );
  }

  async close(): Promise<void> {
    // QUIT waits in ioredis's offline queue while the broker is away: only on a live connection.
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }
}
