// A connection carried by pusher-js's HTTP fallbacks: a session that outlives its
// requests. Frames wait in a bounded queue until a receive request is attached (a
// stream that stays open, or a long poll answered once), so a session is a full Pusher
// connection to the rest of the node; only the carrying differs.
import type { HttpResponse } from 'uWebSockets.js';
import type { App } from '../../apps/app.js';
import { MAX_BACKPRESSURE_BYTES } from '../../config/limits.js';
import { Connection } from '../../conn/connection.js';
import type { SessionTopics, TopicMember } from '../../conn/session-topics.js';
import type { PerApp } from '../../metrics/metrics.js';
import { CloseCode } from '../../protocol/codes.js';
import { closeLine, HEARTBEAT_LINE, messagesLine, OPEN_LINE } from './framing.js';
import { clockMs } from '../../conn/clock.js';

export type FallbackKind = 'xhr_streaming' | 'xhr_polling';

/** A receive request as the route holds it: uWS allows one abort handler, the route's. */
export interface PendingResponse {
  readonly res: HttpResponse;
  gone: boolean;
  onGone: (() => void) | null;
}

export interface SessionHooks {
  /** the engine's topics: a session's publishToOthers reaches every WebSocket subscriber through it */
  publishToEngine(topic: string, frame: string): void;
  readonly topics: SessionTopics;
  /** status and headers of a receive answer (CORS for the request's origin, no caching) */
  startResponse(res: HttpResponse, origin: string): void;
  /** the connection closed (called once): the core, the address gate and the metrics forget it */
  closed(conn: FallbackConnection, code: number, reason: string): void;
  /** the session holds nothing more for a poll: it leaves the table */
  drop(conn: FallbackConnection): void;
}

interface Receiver {
  readonly pending: PendingResponse;
  readonly streaming: boolean;
  readonly origin: string;
  readonly since: number;
}

export class FallbackConnection extends Connection implements TopicMember {
  private queue: string[] = [];
  private queuedBytes = 0;
  /** bytes uWS still holds for the stream after a write the socket did not take */
  private unwritten = 0;
  private pendingClose: string | null = null;
  private receiver: Receiver | null = null;
  private flushScheduled = false;
  private readonly topicNames = new Set<string>();
  /** ms: the last write to the stream (heartbeats), the loss of the last receiver (expiry), the close */
  lastWriteAt = Date.now();
  detachedAt = Date.now();
  closedAt = 0;

  constructor(
    /** `<app key>\n<server>/<session>` */
    readonly sessionKey: string,
    readonly transport: FallbackKind,
    /** the client's address */
    readonly ip: string,
    /** counted in the per-address gate (a per-address limit is on) */
    readonly gated: boolean,
    socketId: string,
    app: App,
    quota: boolean,
    metrics: PerApp,
    controlBurst: number,
    private readonly hooks: SessionHooks,
  ) {
    super(socketId, app, quota, metrics, controlBurst);
  }

  get attached(): boolean {
    return this.receiver !== null;
  }

  /** A receive request for this session; the first one (`opening`) starts with the `o` line. */
  attach(pending: PendingResponse, streaming: boolean, origin: string, opening: boolean): void {
    if (pending.gone) return;
    const old = this.receiver;
    // pusher-js drops a stream or poll before it opens the next: the old one has no reader left.
    if (old) this.answer(old, HEARTBEAT_LINE);
    const now = Date.now();
    const r: Receiver = { pending, streaming, origin, since: now };
    this.receiver = r;
    this.lastSeen = clockMs();
    this.pingSentAt = 0;
    pending.onGone = () => {
      if (this.receiver !== r) return;
      this.receiver = null;
      this.unwritten = 0;
      this.detachedAt = Date.now();
    };
    if (streaming) {
      pending.res.cork(() => {
        this.hooks.startResponse(pending.res, origin);
        if (opening) pending.res.write(OPEN_LINE);
      });
      this.lastWriteAt = now;
      this.flush();
    } else if (opening || this.queue.length > 0 || this.pendingClose !== null) {
      this.answer(r, (opening ? OPEN_LINE : '') + this.takeLines());
    }
    // else: a poll waits for a frame or the heartbeat
  }

  /** Called about once a second: a heartbeat for a quiet stream or a poll held too long. */
  heartbeat(now: number, everyMs: number): void {
    const r = this.receiver;
    if (!r) return;
    if (!r.streaming) {
      if (now - r.since >= everyMs) this.answer(r, HEARTBEAT_LINE);
    } else if (now - this.lastWriteAt >= everyMs && this.unwritten === 0) {
      this.writeStream(r, HEARTBEAT_LINE);
    }
  }

  /** The client went away (no receive request for too long): closed like a dropped socket. */
  expire(): void {
    if (!this.closed) this.close(CloseCode.RECONNECT, 'session expired');
    this.queue = [];
    this.queuedBytes = 0;
    this.pendingClose = null;
    this.hooks.drop(this);
  }

  receiveTopicFrame(frame: string): void {
    if (!this.closed) this.write(frame);
  }

  protected write(frame: string): void {
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    if (this.queuedBytes + this.unwritten > MAX_BACKPRESSURE_BYTES) {
      // Like a WebSocket reader that does not keep up: closed, not buffered for without bound.
      this.queue = [];
      this.queuedBytes = 0;
      this.close(CloseCode.OVER_CAPACITY, 'slow consumer');
      return;
    }
    if (this.receiver && !this.flushScheduled) {
      // Frames of one tick go out as one line.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  close(code: number, reason: string, lastFrame: string | null = null): void {
    if (this.closed) return;
    this.closed = true;
    this.closedAt = Date.now();
    if (lastFrame) {
      this.queue.push(lastFrame);
      this.metrics.messagesOut.inc();
      this.metrics.bytesOut.inc(lastFrame.length);
    }
    this.pendingClose = closeLine(code, reason);
    for (const t of this.topicNames) this.hooks.topics.unsubscribe(t, this);
    this.topicNames.clear();
    this.hooks.closed(this, code, reason);
    // Without a receiver the close waits for the next poll (or the session's expiry).
    if (this.receiver) this.flush();
  }

  subscribeTopic(topic: string): void {
    if (this.closed) return;
    this.topicNames.add(topic);
    this.hooks.topics.subscribe(topic, this);
  }

  unsubscribeTopic(topic: string): void {
    if (this.topicNames.delete(topic)) this.hooks.topics.unsubscribe(topic, this);
  }

  publishToOthers(topic: string, frame: string): void {
    if (this.closed) return;
    this.hooks.publishToEngine(topic, frame);
    this.hooks.topics.publish(topic, frame, this);
  }

  bufferedAmount(): number {
    return this.queuedBytes + this.unwritten;
  }

  private takeLines(): string {
    let out = this.queue.length > 0 ? messagesLine(this.queue) : '';
    this.queue = [];
    this.queuedBytes = 0;
    if (this.pendingClose !== null) out += this.pendingClose;
    this.pendingClose = null;
    return out;
  }

  private flush(): void {
    const r = this.receiver;
    if (!r || r.pending.gone) return;
    const closing = this.pendingClose !== null;
    if (this.queue.length === 0 && !closing) return;
    // A poll is answered; a close ends the stream at once.
    if (!r.streaming || closing) return this.answer(r, this.takeLines());
    // A stream the socket has not drained waits (frames keep queueing, bounded).
    if (this.unwritten > 0) return;
    this.writeStream(r, this.takeLines());
  }

  private writeStream(r: Receiver, lines: string): void {
    const res = r.pending.res;
    this.lastWriteAt = Date.now();
    res.cork(() => {
      if (res.write(lines)) return;
      this.unwritten += lines.length;
      res.onWritable(() => {
        this.unwritten = 0;
        this.flush();
        return true;
      });
    });
  }

  /** Answers a poll (or ends a replaced stream) with `lines`; a closed session leaves the table once its close is out. */
  private answer(r: Receiver, lines: string): void {
    if (this.receiver === r) {
      this.receiver = null;
      this.detachedAt = Date.now();
    }
    if (r.pending.gone) return;
    r.pending.gone = true;
    const res = r.pending.res;
    res.cork(() => {
      if (!r.streaming) this.hooks.startResponse(res, r.origin);
      res.end(lines);
    });
    if (this.closed && this.pendingClose === null && this.queue.length === 0) this.hooks.drop(this);
  }
}
