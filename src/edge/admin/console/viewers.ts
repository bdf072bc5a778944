// The live stream's viewers on this node, one Server-Sent Events response each.
// What a viewer's socket cannot take at once is not queued: while uWS still holds
// an unsent chunk, the viewer's batches are counted as skipped and the count goes
// out with the next batch it can take. So a slow or stalled browser costs one
// chunk of memory, and the data path never waits for anyone.
import type { HttpResponse } from 'uWebSockets.js';
import type { ConsoleBatch, ConsoleTap, ConsoleViewers } from '../../../core/console-tap.js';

/** Viewers a node serves at once (each is a long-lived response). */
export const MAX_VIEWERS = 64;
const RENEW_MS = 2_000;
const PING_MS = 15_000;

class Viewer {
  private blocked = false;
  private skipped = 0;
  closed = false;

  constructor(
    readonly appId: string,
    private readonly res: HttpResponse,
  ) {}

  /** Writes inside a cork; false once the socket holds more than it could send. */
  private write(chunk: string): void {
    this.res.cork(() => {
      const ok = this.res.write(chunk);
      if (!ok && !this.blocked) {
        this.blocked = true;
        this.res.onWritable(() => {
          this.blocked = false;
          return true;
        });
      }
    });
  }

  send(batch: ConsoleBatch): void {
    if (this.closed) return;
    if (this.blocked) {
      this.skipped += batch.events.length + batch.skipped;
      return;
    }
    const skipped = this.skipped + batch.skipped;
    this.skipped = 0;
    this.write(`event: batch\ndata: ${JSON.stringify({ events: batch.events, skipped })}\n\n`);
  }

  hello(maxEventsPerSecond: number): void {
    this.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ app_id: this.appId, max_events_per_second: maxEventsPerSecond })}\n\n`);
  }

  ping(): void {
    if (this.closed || this.blocked) return;
    // A comment line: keeps proxies from timing the stream out, ignored by EventSource.
    this.write(this.skipped > 0 ? `event: batch\ndata: ${JSON.stringify({ events: [], skipped: this.takeSkipped() })}\n\n` : ': ping\n\n');
  }

  private takeSkipped(): number {
    const n = this.skipped;
    this.skipped = 0;
    return n;
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.res.cork(() => this.res.end());
  }
}

export class ViewerHub implements ConsoleViewers {
  private readonly byApp = new Map<string, Set<Viewer>>();
  private size = 0;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly tap: ConsoleTap,
    private readonly maxEventsPerSecond: number,
  ) {
    tap.attach(this);
    // Peers keep sending while the lease is renewed; a viewer that left ends it within ~10 s.
    this.timers.push(setInterval(() => this.renew(), RENEW_MS));
    this.timers.push(setInterval(() => this.pingAll(), PING_MS));
    for (const t of this.timers) t.unref();
  }

  get full(): boolean {
    return this.size >= MAX_VIEWERS;
  }

  watching(appId: string): boolean {
    return this.byApp.has(appId);
  }

  deliver(appId: string, batch: ConsoleBatch): void {
    const viewers = this.byApp.get(appId);
    if (viewers) for (const v of viewers) v.send(batch);
  }

  /** Starts a stream on the response (its head already written by the caller's cork). */
  open(appId: string, res: HttpResponse): void {
    const viewer = new Viewer(appId, res);
    let set = this.byApp.get(appId);
    if (!set) this.byApp.set(appId, (set = new Set()));
    set.add(viewer);
    this.size++;
    res.onAborted(() => this.remove(viewer));
    viewer.hello(this.maxEventsPerSecond);
    this.tap.watch(appId);
  }

  private remove(viewer: Viewer): void {
    viewer.closed = true;
    const set = this.byApp.get(viewer.appId);
    if (!set?.delete(viewer)) return;
    this.size--;
    if (set.size === 0) this.byApp.delete(viewer.appId);
  }

  private renew(): void {
    for (const appId of this.byApp.keys()) this.tap.watch(appId);
  }

  private pingAll(): void {
    for (const set of this.byApp.values()) for (const v of set) v.ping();
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    for (const set of this.byApp.values()) for (const v of set) v.end();
    this.byApp.clear();
    this.size = 0;
  }
}
