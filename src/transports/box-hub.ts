// The broker of one box: the primary of `chorus start --workers N` runs it on a Unix socket,
// and every worker's BoxTransport connects to it as a node connects to Redis. Topics and
// the key-value state (claims, quotas, cached values) and numbered logs live in the
// primary's memory, each operation at one instant in its event loop (which makes it atomic).
// It outlives any worker: a worker that crashes loses only its own connection.
import { createServer, type Server, type Socket } from 'node:net';
import { unlinkSync } from 'node:fs';
import { BOX_WIRE_VERSION, LineSplitter, decodeToHub, messageFrame, replyFrame, type BoxOp, type ToHub } from './box-wire.js';
import { MemoryKv } from './memory-kv.js';
import { MemoryLogs } from './memory-log.js';
import type { LogAppend, LogRange } from './transport.js';
import { validTtl } from './ttl.js';

/** Past this much unsent to one worker, messages to it are dropped (it is stalled; never buffered without bound). */
const MAX_UNSENT_BYTES = 256 * 1024 * 1024;

export interface BoxHubOptions {
  path: string;
  /** a shared rate-limit window (the primary's limiter); without it `rate` is refused */
  rate?: (key: string, points: number, limit: number, windowMs: number | undefined) => Promise<boolean>;
  warn?: (fields: Record<string, unknown>, message: string) => void;
}

export interface BoxHubStats {
  invalidFrames: number;
  dropped: number;
}

class HubLink {
  readonly topics = new Set<string>();
  /** counted holds of this worker per key (capTake): given back when its link goes */
  readonly held = new Map<string, number>();
  label = '?';
  greeted = false;
  /** frames for this worker in this turn of the event loop, written together */
  private outgoing: string[] = [];
  private queuedBytes = 0;
  private flushing = false;

  constructor(readonly socket: Socket) {}

  send(frame: string): boolean {
    if (this.socket.destroyed || this.socket.writableLength + this.queuedBytes > MAX_UNSENT_BYTES) return false;
    this.outgoing.push(frame);
    this.queuedBytes += frame.length;
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  private flush(): void {
    this.flushing = false;
    const frames = this.outgoing;
    this.outgoing = [];
    this.queuedBytes = 0;
    if (frames.length > 0 && !this.socket.destroyed) this.socket.write(frames.length === 1 ? frames[0] : frames.join(''));
  }
}

class BadArgs extends Error {}

const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string') throw new BadArgs(`${what} must be a string`);
  return v;
};
const num = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadArgs(`${what} must be a finite number`);
  return v;
};
const strings = (v: unknown, what: string): string[] => {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new BadArgs(`${what} must be an array of strings`);
  return v;
};
const record = (v: unknown, what: string): Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadArgs(`${what} must be an object`);
  return v as Record<string, unknown>;
};

function logAppendOf(v: unknown): LogAppend {
  const a = record(v, 'entry');
  return {
    body: str(a.body, 'body'),
    tag: str(a.tag, 'tag'),
    maxEntries: num(a.maxEntries, 'maxEntries'),
    ttlMs: validTtl(num(a.ttlMs, 'ttlMs')),
    newEpoch: str(a.newEpoch, 'newEpoch'),
    seen: num(a.seen, 'seen'),
    seenEpoch: str(a.seenEpoch, 'seenEpoch'),
    head: str(a.head, 'head'),
    tail: str(a.tail, 'tail'),
  };
}

function logRangeOf(v: unknown): LogRange {
  const r = record(v, 'range');
  return {
    fromSerial: num(r.fromSerial, 'fromSerial'),
    // JSON has no Infinity: an open end travels as null.
    toSerial: r.toSerial === null ? Infinity : num(r.toSerial, 'toSerial'),
    limit: num(r.limit, 'limit'),
    newestFirst: r.newestFirst === true,
    maxEntries: num(r.maxEntries, 'maxEntries'),
    ttlMs: num(r.ttlMs, 'ttlMs'),
  };
}

export class BoxHub {
  private readonly links = new Set<HubLink>();
  private readonly subscribers = new Map<string, Set<HubLink>>();
  private readonly kv = new MemoryKv(Date.now);
  private readonly logs = new MemoryLogs((topic, payload) => this.route(topic, payload));
  /** holds per key over every link (the box-wide count a cap is checked against) */
  private readonly capTotals = new Map<string, number>();
  readonly stats: BoxHubStats = { invalidFrames: 0, dropped: 0 };

  private constructor(
    private readonly server: Server,
    private readonly options: BoxHubOptions,
  ) {}

  static listen(options: BoxHubOptions): Promise<BoxHub> {
    try {
      unlinkSync(options.path); // a socket file left by a primary that was killed
    } catch {
      /* none there */
    }
    return new Promise((resolve, reject) => {
      const server = createServer();
      const hub = new BoxHub(server, options);
      server.on('connection', (socket) => hub.accept(socket));
      server.once('error', reject);
      server.listen(options.path, () => {
        server.off('error', reject);
        resolve(hub);
      });
    });
  }

  /** The primary's own messages (a worker that died, declared to the others). */
  publish(topic: string, payload: string): void {
    this.route(topic, payload);
  }

  close(): Promise<void> {
    for (const link of this.links) link.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    const link = new HubLink(socket);
    this.links.add(link);
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    const lines = new LineSplitter((line) => this.onLine(link, line));
    socket.on('data', (chunk: string) => {
      if (!lines.feed(chunk)) {
        this.options.warn?.({ worker: link.label }, 'box hub: a frame longer than the limit; closing the link');
        socket.destroy();
      }
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => this.drop(link));
  }

  private drop(link: HubLink): void {
    if (!this.links.delete(link)) return;
    for (const t of link.topics) this.unsubscribeOne(link, t);
    // A worker that died holds nothing any more (its connections died with it).
    for (const [key, n] of link.held) this.addToCap(key, -n);
    link.held.clear();
  }

  private onLine(link: HubLink, line: string): void {
    if (line.length === 0) return;
    let frame: ToHub | null;
    try {
      frame = decodeToHub(line);
      if (frame) this.handle(link, frame);
    } catch (err) {
      frame = null;
      this.options.warn?.({ err: (err as Error).message, worker: link.label }, 'box hub: handling a frame failed');
    }
    if (!frame && this.stats.invalidFrames++ % 1000 === 0) {
      this.options.warn?.({ worker: link.label, invalid: this.stats.invalidFrames }, 'box hub: invalid frames dropped');
    }
  }

  private handle(link: HubLink, frame: ToHub): void {
    switch (frame.kind) {
      case 'hello':
        if (frame.version !== BOX_WIRE_VERSION) {
          this.options.warn?.({ worker: frame.label, version: frame.version }, 'box hub: a worker of another version; closing');
          link.socket.destroy();
          return;
        }
        link.label = frame.label;
        link.greeted = true;
        return;
      case 'publish':
        if (link.greeted) this.route(frame.topic, frame.payload);
        return;
      case 'op':
        if (!link.greeted) return;
        this.run(link, frame.op, frame.args).then(
          (value) => link.send(replyFrame(frame.id, true, value)),
          (err: Error) => link.send(replyFrame(frame.id, false, err.message.slice(0, 500))),
        );
        if (frame.op === 'sub') for (const t of strings(frame.args[0], 'topics')) this.subscribeOne(link, t);
        else if (frame.op === 'unsub') for (const t of strings(frame.args[0], 'topics')) this.unsubscribeOne(link, t);
    }
  }

  /** Everything but (un)subscribing, which registers at once, in order with the link's publishes. */
  private async run(link: HubLink, op: BoxOp, a: unknown[]): Promise<unknown> {
    switch (op) {
      case 'sub':
      case 'unsub':
        strings(a[0], 'topics');
        return null;
      case 'claim':
        return this.kv.claim(str(a[0], 'key'), validTtl(num(a[1], 'ttlMs')));
      case 'take':
        return this.kv.take(str(a[0], 'key'));
      case 'put':
        return this.kv.put(str(a[0], 'key'), str(a[1], 'value'), validTtl(num(a[2], 'ttlMs')));
      case 'get':
        return this.kv.get(str(a[0], 'key'));
      case 'quotaTake':
        return this.kv.quotaTake(str(a[0], 'key'), str(a[1], 'member'), num(a[2], 'max'), a[3] === null ? null : strings(a[3], 'live'));
      case 'quotaRelease':
        return this.kv.quotaRelease(str(a[0], 'key'), str(a[1], 'member'));
      case 'rate': {
        if (!this.options.rate) throw new BadArgs('this box has no shared rate limiter');
        const windowMs = a[3] === null ? undefined : num(a[3], 'windowMs');
        return this.options.rate(str(a[0], 'key'), num(a[1], 'points'), num(a[2], 'limit'), windowMs);
      }
      case 'capTake':
        return this.capTake(link, str(a[0], 'key'), num(a[1], 'max'));
      case 'capRelease':
        return this.capRelease(link, str(a[0], 'key'));
      case 'logAppend':
        return this.logs.append(str(a[0], 'topic'), logAppendOf(a[1]));
      case 'logRange':
        return this.logs.range(str(a[0], 'topic'), logRangeOf(a[1]));
      case 'ping':
        return null;
    }
  }

  /** One more hold of `key` for the link, when the box holds fewer than `max`. */
  private capTake(link: HubLink, key: string, max: number): boolean {
    if ((this.capTotals.get(key) ?? 0) >= max) return false;
    link.held.set(key, (link.held.get(key) ?? 0) + 1);
    this.addToCap(key, 1);
    return true;
  }

  /** Gives one of the link's own holds of `key` back (never another worker's). */
  private capRelease(link: HubLink, key: string): boolean {
    const mine = link.held.get(key) ?? 0;
    if (mine <= 0) return false;
    if (mine === 1) link.held.delete(key);
    else link.held.set(key, mine - 1);
    this.addToCap(key, -1);
    return true;
  }

  private addToCap(key: string, delta: number): void {
    const n = (this.capTotals.get(key) ?? 0) + delta;
    if (n > 0) this.capTotals.set(key, n);
    else this.capTotals.delete(key);
  }

  private subscribeOne(link: HubLink, topic: string): void {
    link.topics.add(topic);
    let set = this.subscribers.get(topic);
    if (!set) this.subscribers.set(topic, (set = new Set()));
    set.add(link);
  }

  private unsubscribeOne(link: HubLink, topic: string): void {
    link.topics.delete(topic);
    const set = this.subscribers.get(topic);
    if (!set) return;
    set.delete(link);
    if (set.size === 0) this.subscribers.delete(topic);
  }

  /** Serialized once, written to every subscriber (the sender too, as Redis and NATS do). */
  private route(topic: string, payload: string): void {
    const set = this.subscribers.get(topic);
    if (!set) return;
    const frame = messageFrame(topic, payload);
    for (const link of set) if (!link.send(frame)) this.stats.dropped++;
  }
}
