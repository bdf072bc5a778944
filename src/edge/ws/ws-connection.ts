// A connection carried by a uWebSockets.js WebSocket. uWS keeps per-socket user
// data; ours holds the upgrade's verdict: this connection (made at the upgrade, its
// socket attached at open) or the refusal.
import type { WebSocket } from 'uWebSockets.js';
import type { App } from '../../apps/app.js';
import { MAX_BACKPRESSURE_BYTES } from '../../config/limits.js';
import { Connection } from '../../conn/connection.js';
import type { SessionTopics } from '../../conn/session-topics.js';
import type { PerApp } from '../../metrics/metrics.js';
import { CloseCode, type ProtocolError } from '../../protocol/codes.js';

export interface RefusedUpgrade {
  readonly refusal: ProtocolError;
  readonly appId: string | null;
}

/**
 * What the upgrade decided, carried to `open` in uWS's user data. uWS copies the user data's
 * properties onto each socket's own object, so it has exactly one (six were 64 bytes a socket).
 */
export interface SocketData {
  peer: WsConnection | RefusedUpgrade;
}

/** uWS.send's answer when the message was dropped (backpressure over the limit). */
const DROPPED = 2;

export class WsConnection extends Connection {
  // On the prototype: one field less in each of many connections.
  get transport(): 'ws' {
    return 'ws';
  }

  /** set by `attach` when the socket opens; nothing uses the connection before */
  private ws!: WebSocket<SocketData>;

  constructor(
    socketId: string,
    app: App,
    quota: boolean,
    metrics: PerApp,
    controlBurst: number,
    /** fallback sessions on the same topics (uWS's publish reaches only WebSockets) */
    private readonly sessions: SessionTopics,
    /** the client's address when per-address limits count it, else '' */
    readonly ip: string,
  ) {
    super(socketId, app, quota, metrics, controlBurst);
  }

  /** The upgraded socket opened: from now on this connection is it. */
  attach(ws: WebSocket<SocketData>): void {
    this.ws = ws;
  }

  get attached(): boolean {
    return this.ws !== undefined;
  }

  protected write(frame: string): void {
    // A reader that does not keep up is closed, not buffered for without bound.
    if (this.ws.send(frame, false, false) === DROPPED) this.close(CloseCode.OVER_CAPACITY, 'slow consumer');
  }

  close(code: number, reason: string, lastFrame: string | null = null): void {
    if (this.closed) return;
    const ws = this.ws;
    // Marked first: a close frame dropped behind a full buffer must not recurse through write().
    this.closed = true;
    ws.cork(() => {
      if (lastFrame && ws.getBufferedAmount() < MAX_BACKPRESSURE_BYTES) {
        ws.send(lastFrame, false, false);
        this.metrics.messagesOut.inc();
        this.metrics.bytesOut.inc(lastFrame.length);
      }
      ws.end(code, reason);
    });
  }

  override batch(sends: () => void): void {
    if (this.closed) return;
    this.ws.cork(sends);
  }

  subscribeTopic(topic: string): void {
    if (!this.closed) this.ws.subscribe(topic);
  }

  unsubscribeTopic(topic: string): void {
    if (!this.closed) this.ws.unsubscribe(topic);
  }

  publishToOthers(topic: string, frame: string): void {
    if (this.closed) return;
    this.ws.publish(topic, frame, false, false);
    if (this.sessions.size !== 0) this.sessions.publish(topic, frame, null);
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }
}
