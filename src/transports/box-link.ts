// A worker's connection to its box's hub (box-hub.ts): frames out, messages and replies in,
// reconnected while the process lives. What is in flight when the link drops is rejected;
// publishes while it is down are dropped, as on the other transports.
import { createConnection, type Socket } from 'node:net';
import { LineSplitter, decodeFromHub, helloFrame, opFrame, publishFrame, type BoxOp } from './box-wire.js';

/** How long an operation may wait for the hub (it answers in microseconds unless the box is overloaded). */
const OP_TIMEOUT_MS = 10_000;
const RECONNECT_MS = 200;

export class BoxLinkError extends Error {
  readonly code = 'BOX_LINK';
}

export interface BoxLinkEvents {
  message(topic: string, payload: string): void;
  status(up: boolean): void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class BoxLink {
  private socket: Socket | null = null;
  private up = false;
  private closed = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private events: BoxLinkEvents | null = null;
  /** frames written in this turn of the event loop, sent together (one syscall instead of one per frame) */
  private outgoing: string[] = [];
  private flushing = false;
  invalidFrames = 0;

  constructor(
    private readonly path: string,
    private readonly label: string,
  ) {}

  get isUp(): boolean {
    return this.up;
  }

  /** Resolves once connected; the first connect fails at once when nothing listens there. */
  connect(events: BoxLinkEvents): Promise<void> {
    this.events = events;
    return new Promise((resolve, reject) => this.open(resolve, reject));
  }

  private open(onUp?: () => void, onFail?: (err: Error) => void): void {
    if (this.closed) return;
    const socket = createConnection(this.path);
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    const lines = new LineSplitter((line) => this.onLine(line));
    socket.on('connect', () => {
      socket.write(helloFrame(this.label));
      this.up = true;
      onUp?.();
      if (!onUp) this.events?.status(true);
    });
    socket.on('data', (chunk: string) => {
      if (!lines.feed(chunk)) socket.destroy();
    });
    socket.on('error', (err) => {
      if (!this.up && onFail) onFail(new BoxLinkError(`cannot reach the box hub at ${this.path}: ${err.message}`));
    });
    socket.on('close', () => {
      const wasUp = this.up;
      this.up = false;
      this.socket = null;
      this.outgoing = [];
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(new BoxLinkError('the box hub connection closed'));
      }
      if (this.closed) return;
      if (wasUp) this.events?.status(false);
      if (wasUp || !onFail) setTimeout(() => this.open(), RECONNECT_MS).unref();
    });
  }

  private onLine(line: string): void {
    if (line.length === 0) return;
    const frame = decodeFromHub(line);
    if (!frame) {
      this.invalidFrames++;
      return;
    }
    try {
      if (frame.kind === 'message') {
        this.events?.message(frame.topic, frame.payload);
        return;
      }
      const p = this.pending.get(frame.id);
      if (!p) return;
      this.pending.delete(frame.id);
      clearTimeout(p.timer);
      if (frame.ok) p.resolve(frame.value);
      else p.reject(new BoxLinkError(`box hub: ${frame.error}`));
    } catch {
      // A handler above must not break the stream of frames.
      this.invalidFrames++;
    }
  }

  publish(topic: string, payload: string): void {
    if (this.up && this.socket) this.write(publishFrame(topic, payload));
  }

  private write(frame: string): void {
    this.outgoing.push(frame);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushing = false;
    const frames = this.outgoing;
    this.outgoing = [];
    if (frames.length > 0 && this.up && this.socket) this.socket.write(frames.length === 1 ? frames[0] : frames.join(''));
  }

  request(op: BoxOp, args: unknown[]): Promise<unknown> {
    if (!this.up || !this.socket) return Promise.reject(new BoxLinkError('the box hub connection is down'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new BoxLinkError(`box hub: ${op} not answered within ${OP_TIMEOUT_MS} ms`));
      }, OP_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      // Through the same turn's buffer as the publishes before it (a subscribe must not overtake them).
      this.write(opFrame(id, op, args));
    });
  }

  close(): void {
    this.closed = true;
    this.socket?.destroy();
  }
}
