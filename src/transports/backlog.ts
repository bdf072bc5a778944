// A bound on bytes handed to a broker client but not yet confirmed sent. A broker
// that stalls without closing the connection (SIGSTOP, a hung VM) would otherwise
// make the client queue every publish in memory for as long as the stall lasts.
import type { Logger } from 'pino';

/** 16 MiB of publishes in flight at most: past it new publishes are dropped until it drains. */
export const DEFAULT_BACKLOG_BYTES = 16 * 1024 * 1024;
/** Past 1 MiB in flight with no confirmation for a second, the broker is stalled: drop too. */
const STALL_BYTES = 1024 * 1024;
const STALL_MS = 1000;

export class Backlog {
  private pending = 0;
  private dropping = false;
  private dropped = 0;
  private lastRelease = Date.now();

  constructor(
    private readonly log: Logger,
    private readonly limit = DEFAULT_BACKLOG_BYTES,
  ) {}

  /** Reserves room for a publish; false means drop it. */
  take(bytes: number): boolean {
    // The stall clock runs only while something is in flight.
    if (this.pending === 0) this.lastRelease = Date.now();
    const stalled = this.pending > STALL_BYTES && Date.now() - this.lastRelease > STALL_MS;
    if (stalled || this.pending + bytes > this.limit) {
      this.dropped++;
      if (!this.dropping) {
        this.dropping = true;
        this.log.error({ backlog_bytes: this.pending }, 'broker is not keeping up; dropping cross-node publishes until it does');
      }
      return false;
    }
    this.pending += bytes;
    return true;
  }

  /** The broker confirmed (or the client gave up on) this many bytes. */
  release(bytes: number): void {
    this.pending = Math.max(0, this.pending - bytes);
    this.lastRelease = Date.now();
    if (this.dropping && this.pending < this.limit / 2) {
      this.dropping = false;
      this.log.info({ dropped: this.dropped }, 'broker keeps up again');
      this.dropped = 0;
    }
  }

  get bytes(): number {
    return this.pending;
  }
}
