// One client connection as the rest of the node sees it, whatever carries it
// (a WebSocket today; an HTTP fallback session is another subclass). It is made once
// the connection is admitted (a WebSocket's at the upgrade, attached to its socket at
// open): refused upgrades never get one.
import type { App } from '../apps/app.js';
import type { PerApp } from '../metrics/metrics.js';
import { clockMs } from './clock.js';
import { HeldChannels } from './held-channels.js';

export type { Subscription } from './held-channels.js';

/** A position in a channel's history: the last numbered event a client received. */
export interface HistoryPosition {
  readonly serial: number;
  readonly epoch: string | null;
}

/** What a connection asked for with `chorus:recovery` (docs/RECOVERY.md). */
export interface RecoveryRequest {
  /** per channel, used (and removed) by the channel's next subscribe */
  readonly positions: Map<string, HistoryPosition>;
  /** events that excluded one of these sockets are not replayed */
  readonly previousSocketIds: ReadonlySet<string>;
}

export interface SignedInUser {
  readonly id: string;
  readonly userData: string;
  readonly info: unknown;
  readonly watchlist: readonly string[];
}

export type TransportKind = 'ws' | 'xhr_streaming' | 'xhr_polling';

export abstract class Connection {
  /** channel name -> its subscription */
  readonly channels = new HeldChannels();
  user: SignedInUser | null = null;
  /** timestamps on the connections' clock (conn/clock.ts, clockMs()) for liveness */
  lastSeen = clockMs();
  pingSentAt = 0;
  /** clockMs() deadline to sign in (apps with enable_user_authentication), 0 when none */
  authDeadline = 0;
  /** client events: a fixed one-second window (clockMs()) */
  clientWindowStart = 0;
  clientWindowCount = 0;
  /** control frames (subscribe, unsubscribe, sign-in): a token bucket, in thousandths of a
   * token (whole numbers: a fractional count would be a heap number in every connection) */
  controlMilliTokens: number;
  controlRefilledAt = clockMs();
  closed = false;
  /** set once the client opted in to numbered delivery and recovery */
  recovery: RecoveryRequest | null = null;

  constructor(
    readonly socketId: string,
    /** replaced on SIGHUP when the app's settings change */
    public app: App,
    /** holds a slot of the app's cluster-wide connection quota */
    readonly quota: boolean,
    readonly metrics: PerApp,
    controlBurst: number,
  ) {
    this.controlMilliTokens = controlBurst * 1000;
  }

  abstract readonly transport: TransportKind;

  /** Sends one frame to this connection alone; a no-op once closed. */
  send(frame: string): void {
    if (this.closed) return;
    this.metrics.messagesOut.inc();
    this.metrics.bytesOut.inc(frame.length);
    this.write(frame);
  }

  /** Runs `sends` as one write where the transport can (a WebSocket corks: one syscall for many frames). */
  batch(sends: () => void): void {
    sends();
  }

  /** Sends a last frame (when given), then closes with a code. A no-op once closed. */
  abstract close(code: number, reason: string, lastFrame?: string | null): void;
  /** Writes a frame; a connection whose output outruns it closes itself (4100). */
  protected abstract write(frame: string): void;
  /** Local fan-out: the connection receives what is published to the topic. */
  abstract subscribeTopic(topic: string): void;
  abstract unsubscribeTopic(topic: string): void;
  /** Publishes to a topic's other subscribers (not to this connection). */
  abstract publishToOthers(topic: string, frame: string): void;
  /** Bytes accepted for this connection but not yet written to the network. */
  abstract bufferedAmount(): number;
}
