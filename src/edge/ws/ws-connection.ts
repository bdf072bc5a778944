// A connection carried by a uWebSockets.js WebSocket. uWS keeps per-socket user
// data; ours holds the upgrade's verdict and, once open, this connection.
import type { WebSocket } from 'uWebSockets.js';
import type { App } from '../../apps/app.js';
import { MAX_BACKPRESSURE_BYTES } from '../../config/limits.js';
import { Connection } from '../../conn/connection.js';
import type { SessionTopics } from '../../conn/session-topics.js';
import type { PerApp } from '../../metrics/metrics.js';
import { CloseCode, type ProtocolError } from '../../protocol/codes.js';

/** What the upgrade decided, carried to `open` in uWS's user data. */
export interface Admitted {
  kind: 'admitted';
  socketId: string;
  app: App;
  quota: boolean;
  /** the client's address when per-address limits count it, else '' */
  ip: string;
  /** set in `open` */
  conn: WsConnection | null;
}

export interface Refused {
  kind: 'refused';
  refusal: ProtocolError;
  appId: string | null;
}

export type SocketData = Admitted | Refused;

/** uWS.send's answer when the message was dropped (backpressure over the limit). */
const DROPPED = 2;

export class WsConnection extends Connection {
  readonly transport = 'ws' as const;

  constructor(
    private readonly ws: WebSocket<SocketData>,
    socketId: string,
    app: App,
    quota: boolean,
    metrics: PerApp,
    controlBurst: number,
    /** fallback sessions on the same topics (uWS's publish reaches only WebSockets) */
    private readonly sessions: SessionTopics,
  ) {
    super(socketId, app, quota, metrics, controlBurst);
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
