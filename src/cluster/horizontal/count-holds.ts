// One decision at a time on a channel's member count, cluster-wide (the presence member
// limit near its end): a holder takes a short lock in the broker, settles (fences.ts: the
// previous holder's join, published before it let go, is counted here by then), decides,
// joins, and lets go. Joins racing for the last seats on different nodes are taken one
// after the other, as one server takes them. The lock expires by itself if its holder
// dies; where the broker keeps no shared state (NATS without JetStream) a holder only
// settles. Waiting is bounded: past it the decision is made on what this node holds.
import type { Logger } from 'pino';
import type { Transport } from '../../transports/transport.js';
import type { CountHold } from '../ports.js';
import type { Fences } from './fences.js';

/** A holder lets go within milliseconds; this bounds a lock whose holder died. */
export const COUNT_LOCK_TTL_MS = 3000;
/** How long a decision waits for the lock before it goes ahead without it. */
export const COUNT_LOCK_WAIT_MS = 1000;

export interface CountHoldDeps {
  fences: Fences;
  transport: Pick<Transport, 'sharedState' | 'claim' | 'take'>;
  lockKey(appId: string, channel: string): string;
  log: Logger;
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class CountHolds {
  /** per lock key: the end of this node's queue of holders (one asks the broker at a time) */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly d: CountHoldDeps) {}

  /** Undefined when no peer can change the count (nothing to hold). */
  hold(appId: string, channel: string): Promise<CountHold> | undefined {
    if (!this.d.fences.active) return undefined;
    return this.acquire(this.d.lockKey(appId, channel));
  }

  private async acquire(key: string): Promise<CountHold> {
    const before = this.tails.get(key);
    let letGo!: () => void;
    const mine = new Promise<void>((r) => (letGo = r));
    const tail = (before ?? Promise.resolve()).then(() => mine);
    this.tails.set(key, tail);
    const deadline = Date.now() + COUNT_LOCK_WAIT_MS;
    if (before) await Promise.race([before, pause(COUNT_LOCK_WAIT_MS)]);
    const locked = this.d.transport.sharedState ? await this.claimBefore(key, deadline) : false;
    await this.d.fences.settle();
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        // Sent after the holder's join went out on the same connection: the next holder's fence comes after it.
        if (locked) this.d.transport.take(key).catch(() => undefined);
        letGo();
        if (this.tails.get(key) === tail) this.tails.delete(key);
      },
    };
  }

  private async claimBefore(key: string, deadline: number): Promise<boolean> {
    for (;;) {
      try {
        if (await this.d.transport.claim(key, COUNT_LOCK_TTL_MS)) return true;
      } catch (err) {
        this.d.log.warn({ err: (err as Error).message }, 'member count lock unavailable; deciding on the count held here');
        return false;
      }
      if (Date.now() >= deadline) return false;
      await pause(2 + Math.floor(Math.random() * 6));
    }
  }
}
