// One opted-in connection joining a history channel (docs/RECOVERY.md): it replays the
// events after the client's position and splices them with the live stream, so nothing
// is lost or sent twice. From the start it holds the channel's live frames; then it reads
// the history (events up to the channel's last serial L), replays, flushes what it held
// that is newer than L, and tells the client its position. Until a numbered event newer
// than L has passed through it (one the broker delivered late may still be older), it
// filters the live stream itself; after that the connection moves to the channel's
// numbered topic and the engine delivers again.
import type { Logger } from 'pino';
import type { ChannelHistory, HistoryRead, NumberedEvent } from '../cluster/ports.js';
import type { Connection, HistoryPosition, Subscription } from '../conn/connection.js';
import { CloseCode } from '../protocol/codes.js';
import { numberedEventFrame, positionFrame, recoveryFailedFrame, type RecoveryFailure } from '../protocol/recovery-frames.js';
import type { Fanout, Resumer } from './fanout.js';
import type { ChannelHistoryPolicy } from './history-policy.js';

/** Frames held for one resuming connection before it is closed as a slow consumer. */
const HOLD_LIMIT = 10_000;
/** Replayed frames sent per turn of the event loop. */
const REPLAY_BATCH = 100;
/** Above this much unsent output the replay waits for the socket to drain. */
const REPLAY_HIGH_WATER = 256 * 1024;
/** How long a replay waits for a stalled socket before closing it. */
const REPLAY_STALL_MS = 10_000;

interface Held {
  readonly frame: string;
  /** 0 for frames without a serial (member_added, subscription_count ...) */
  readonly serial: number;
  readonly epoch: string | null;
}

export interface ResumeDeps {
  readonly fanout: Fanout;
  readonly history: ChannelHistory;
  readonly log: Logger;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Resume implements Resumer {
  /** while reading and replaying; null once the client knows its position */
  private held: Held[] | null = [];
  /** the channel's position when the history was read: older numbered events were replayed (or are gone) */
  private lastSerial = 0;
  private epoch: string | null = null;

  constructor(
    readonly conn: Connection,
    private readonly sub: Subscription,
    private readonly channel: string,
    private readonly policy: ChannelHistoryPolicy,
    private readonly position: HistoryPosition | undefined,
    private readonly d: ResumeDeps,
  ) {}

  private get appId(): string {
    return this.conn.app.id;
  }

  numbered(event: NumberedEvent, wrapped: string): void {
    if (event.except === this.conn.socketId) return;
    if (this.held) this.hold({ frame: wrapped, serial: event.serial, epoch: event.epoch });
    else this.live(event.serial, event.epoch, wrapped);
  }

  plain(frame: string, exceptSocketId: string | undefined): void {
    if (exceptSocketId === this.conn.socketId) return;
    if (this.held) this.hold({ frame, serial: 0, epoch: null });
    else this.conn.send(frame);
  }

  private hold(h: Held): void {
    this.held!.push(h);
    if (this.held!.length > HOLD_LIMIT) {
      this.stop();
      this.conn.close(CloseCode.OVER_CAPACITY, 'slow consumer');
    }
  }

  /** A numbered event after the position was told: older ones were replayed; the first newer one ends the filter. */
  private live(serial: number, epoch: string, wrapped: string): boolean {
    if (epoch === this.epoch && serial <= this.lastSerial) return false;
    this.conn.send(wrapped);
    this.d.fanout.endResume(this, this.appId, this.channel, true);
    return true;
  }

  private gone(): boolean {
    return this.conn.closed || this.conn.channels.get(this.channel) !== this.sub;
  }

  private stop(): void {
    this.held = null;
    this.d.fanout.endResume(this, this.appId, this.channel, false);
  }

  /** Runs the resume; never rejects (a failure is told to the client). */
  async run(): Promise<void> {
    try {
      await this.resume();
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message, channel: this.channel }, 'resume failed');
      if (!this.gone()) this.conn.close(CloseCode.RECONNECT, 'resume failed');
      this.stop();
    }
  }

  private async resume(): Promise<void> {
    const p = this.position;
    let read: HistoryRead;
    try {
      read = await this.d.history.read(
        this.appId,
        this.channel,
        p
          ? { fromSerial: p.serial + 1, toSerial: Infinity, limit: this.policy.maxReplay + 1, newestFirst: false }
          : { fromSerial: Number.MAX_SAFE_INTEGER, toSerial: Infinity, limit: 1, newestFirst: false },
        this.policy,
      );
    } catch {
      if (this.gone()) return this.stop();
      // Position unknown: everything held goes out, and the client refetches.
      this.conn.send(recoveryFailedFrame(this.channel, 'unavailable', p?.serial ?? 0, p?.epoch ?? null));
      return this.flush(true);
    }
    if (this.gone()) return this.stop();
    this.lastSerial = read.lastSerial;
    this.epoch = read.epoch;
    const failure = p ? this.judge(p, read) : null;
    let replayed = 0;
    if (p && !failure && read.lastSerial > p.serial) {
      replayed = await this.replay(read.events);
      if (replayed < 0) return this.stop();
    }
    const told = failure
      ? recoveryFailedFrame(this.channel, failure, read.lastSerial, read.epoch)
      : positionFrame(this.channel, read.lastSerial, read.epoch, replayed);
    this.conn.batch(() => {
      this.conn.send(told);
      this.flush(false);
    });
  }

  /** Why the position cannot be served, or null when it can. */
  private judge(p: HistoryPosition, read: HistoryRead): RecoveryFailure | null {
    if (read.epoch === null) return p.serial === 0 && p.epoch === null ? null : 'epoch_changed';
    const sameEpoch = p.epoch === read.epoch || (p.epoch === null && p.serial === 0);
    if (!sameEpoch || p.serial > read.lastSerial) return 'epoch_changed';
    if (read.lastSerial === p.serial) return null;
    if (!read.continuous || read.events.length === 0) return 'trimmed';
    if (read.events.length > this.policy.maxReplay) return 'too_far_behind';
    return null;
  }

  /** Sends the events, paced by the socket's backpressure; how many were sent, or -1 when the connection went. */
  private async replay(events: readonly NumberedEvent[]): Promise<number> {
    const skip = this.conn.recovery?.previousSocketIds;
    let sent = 0;
    for (let start = 0; start < events.length; start += REPLAY_BATCH) {
      if (start > 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const since = Date.now();
        while (!this.gone() && this.conn.bufferedAmount() > REPLAY_HIGH_WATER) {
          if (Date.now() - since > REPLAY_STALL_MS) {
            this.conn.close(CloseCode.OVER_CAPACITY, 'slow consumer');
            return -1;
          }
          await pause(5);
        }
        if (this.gone()) return -1;
      }
      // One write per batch, not one per event.
      this.conn.batch(() => {
        for (const e of events.slice(start, start + REPLAY_BATCH)) {
          if (e.except !== undefined && skip?.has(e.except)) continue;
          this.conn.send(numberedEventFrame(this.channel, e));
          sent += 1;
        }
      });
    }
    return sent;
  }

  /** Sends what was held (`all`: the position is unknown, so every numbered one too), then filters or joins. */
  private flush(all: boolean): void {
    const held = this.held ?? [];
    this.held = null;
    let joined = false;
    for (const h of held) {
      if (h.serial === 0) this.conn.send(h.frame);
      else if (joined || all) this.conn.send(h.frame);
      else joined = this.live(h.serial, h.epoch!, h.frame);
    }
    if (all && !joined) this.d.fanout.endResume(this, this.appId, this.channel, true);
  }
}
