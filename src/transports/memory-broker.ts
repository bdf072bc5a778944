// The machinery of the in-memory broker (memory.ts is its public face): links (one
// per transport, what a TCP connection is to a real broker), topic routing, seeded
// fault injection, and key-value operations that run at one instant each.
//
// Everything reaches a transport asynchronously, through timers, never inside the call
// that caused it. A paused link (SIGSTOP) neither sends nor receives: what it sends waits
// in its outbox, what reaches it waits in its inbox, both in order, until it resumes.
import { MemoryKv } from './memory-kv.js';
import { mulberry32 } from './rng.js';
import type { TransportEvents } from './transport.js';

export interface Faults {
  /** Probability that one delivery (one message to one subscriber) is dropped. */
  loss: number;
  /** Probability that a delivery arrives twice. */
  duplicate: number;
  /** Each delivery waits a random time in [min, max] ms. */
  delayMs: readonly [number, number];
  /**
   * With delays, false keeps what reaches one link in publish order (one stream, as a real
   * connection); true gives each delivery its own timer, so messages overtake each other.
   */
  reorder: boolean;
  /** Each key-value operation, confirmation and ping waits a random time in [min, max] ms. */
  opDelayMs: readonly [number, number];
  /**
   * What a link publishes reaches the broker after a random time in [min, max] ms, in order
   * (a broker that reads that connection late): its messages fall behind other links' later ones.
   */
  sendDelayMs: readonly [number, number];
}

export const NO_FAULTS: Faults = { loss: 0, duplicate: 0, delayMs: [0, 0], reorder: false, opDelayMs: [0, 0], sendDelayMs: [0, 0] };

export interface MemoryBrokerOptions {
  /** Seed of the broker's random numbers (default 1): the same seed, the same faults. */
  seed?: number;
  /** false: key-value operations reject with SharedStateUnavailable, like NATS without JetStream. */
  sharedState?: boolean;
  faults?: Partial<Faults>;
  /** The clock of TTLs (default Date.now); message delays always use real timers. */
  now?: () => number;
}

export interface MemoryStats {
  published: number;
  delivered: number;
  /** deliveries lost to `loss`, to a link that was down, or to a topic no longer held */
  dropped: number;
  duplicated: number;
  /** message or status handlers that threw (caught: the broker goes on) */
  handlerErrors: number;
}

type LinkState = 'new' | 'up' | 'down' | 'closed';

class ConnectionLost extends Error {
  constructor(label: string, what: string) {
    super(`memory broker: ${label} is ${what}`);
  }
}

/** Runs what is pushed in order, each no earlier than its time: one stream, as a connection. */
class OrderedQueue {
  private readonly items: Array<{ due: number; run: () => void }> = [];
  private timer: NodeJS.Timeout | null = null;

  /** `timers`: the broker's, so closing it clears this queue's too */
  constructor(private readonly timers: Set<NodeJS.Timeout>) {}

  get length(): number {
    return this.items.length;
  }

  push(delayMs: number, run: () => void): void {
    const last = this.items.length > 0 ? this.items[this.items.length - 1].due : 0;
    this.items.push({ due: Math.max(Date.now() + delayMs, last), run });
    if (!this.timer) this.drainLater();
  }

  clear(): void {
    this.items.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private drainLater(): void {
    const head = this.items[0];
    if (!head) return;
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        this.timer = null;
        while (this.items.length > 0 && this.items[0].due <= Date.now()) this.items.shift()!.run();
        this.drainLater();
      },
      Math.max(0, head.due - Date.now()),
    );
    this.timers.add(t);
    this.timer = t;
  }
}

/** One transport's connection. */
export class Link {
  state: LinkState = 'new';
  paused = false;
  events: TransportEvents | null = null;
  /** the topics the transport holds: subscribed at the broker while up, restored on reconnect */
  readonly topics = new Set<string>();
  readonly inbox: Array<() => void> = [];
  readonly outbox: Array<() => void> = [];
  /** subscribes made while down, settled on reconnect */
  readonly waitingUp: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  /** operations in flight, rejected if the link goes down first */
  readonly pending = new Set<(err: Error) => void>();
  /** in-order deliveries to it */
  readonly queue: OrderedQueue;
  /** its publishes held by sendDelayMs, in order */
  readonly sending: OrderedQueue;
  readonly delivered = new Map<string, number>();
  faults: Partial<Faults> = {};
  constructor(
    readonly label: string,
    timers: Set<NodeJS.Timeout>,
  ) {
    this.queue = new OrderedQueue(timers);
    this.sending = new OrderedQueue(timers);
  }
}

export class BrokerCore {
  /** The broker's seeded random numbers; tests may draw from it too, to stay replayable. */
  readonly random: () => number;
  sharedState: boolean;
  readonly kv: MemoryKv;
  readonly stats: MemoryStats = { published: 0, delivered: 0, dropped: 0, duplicated: 0, handlerErrors: 0 };
  protected faults: Faults;
  protected readonly links = new Set<Link>();
  private readonly subscribers = new Map<string, Set<Link>>();
  private readonly published = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(options: MemoryBrokerOptions = {}) {
    this.random = mulberry32(options.seed ?? 1);
    this.sharedState = options.sharedState ?? true;
    this.faults = { ...NO_FAULTS, ...options.faults };
    this.kv = new MemoryKv(options.now ?? Date.now);
  }

  private timer(ms: number, run: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      run();
    }, ms);
    this.timers.add(t);
  }

  private draw([min, max]: readonly [number, number]): number {
    return min + this.random() * Math.max(0, max - min);
  }

  private faultsFor(link: Link): Faults {
    return { ...this.faults, ...link.faults };
  }

  /** Runs at the link's end now, or when it resumes; never for a closed link. */
  private toLink(link: Link, run: () => void): void {
    if (link.state === 'closed') return;
    if (link.paused) link.inbox.push(run);
    else run();
  }

  private guarded(run: () => void): void {
    try {
      run();
    } catch {
      this.stats.handlerErrors++;
    }
  }

  private emitStatus(link: Link, up: boolean): void {
    this.timer(0, () => this.toLink(link, () => this.guarded(() => link.events?.status(up))));
  }

  protected register(label: string): Link {
    const link = new Link(label, this.timers);
    this.links.add(link);
    return link;
  }

  attach(link: Link, events: TransportEvents): Promise<void> {
    return new Promise((resolve, reject) =>
      this.timer(0, () => {
        if (link.state === 'down') return reject(new ConnectionLost(link.label, 'refused (disconnected)'));
        if (link.state === 'closed') return reject(new ConnectionLost(link.label, 'closed'));
        link.events = events;
        link.state = 'up';
        resolve();
      }),
    );
  }

  publish(link: Link, topic: string, payload: string): void {
    const send = () => this.route(link, topic, payload);
    const sendDelay = this.faultsFor(link).sendDelayMs;
    // Drawn only when set: the seeded patterns of the other faults stay as they were.
    const late = sendDelay[1] > 0 ? this.draw(sendDelay) : 0;
    const held = late > 0 || link.sending.length > 0 ? () => link.sending.push(late, send) : send;
    if (link.paused) link.outbox.push(held);
    else held();
  }

  private route(from: Link, topic: string, payload: string): void {
    // Dropped while the sender's connection is down, as the real transports do.
    if (from.state !== 'up') return;
    this.stats.published++;
    this.published.set(topic, (this.published.get(topic) ?? 0) + 1);
    for (const to of [...(this.subscribers.get(topic) ?? [])]) {
      const f = this.faultsFor(to);
      // A fixed number of draws per delivery: changing one fault does not shift the others' pattern.
      const lost = this.random() < f.loss;
      const twice = this.random() < f.duplicate;
      const delays = [this.draw(f.delayMs), this.draw(f.delayMs)];
      if (lost) {
        this.stats.dropped++;
        continue;
      }
      if (twice) this.stats.duplicated++;
      for (let copy = 0; copy < (twice ? 2 : 1); copy++) {
        this.schedule(to, delays[copy], !f.reorder, () => this.arrive(to, topic, payload));
      }
    }
  }

  private schedule(link: Link, delay: number, ordered: boolean, run: () => void): void {
    if (!ordered) return this.timer(delay, run);
    link.queue.push(delay, run);
  }

  private arrive(link: Link, topic: string, payload: string): void {
    if (link.state !== 'up' || !this.subscribers.get(topic)?.has(link)) {
      this.stats.dropped++;
      return;
    }
    this.toLink(link, () => {
      if (link.state !== 'up') return void this.stats.dropped++;
      this.stats.delivered++;
      link.delivered.set(topic, (link.delivered.get(topic) ?? 0) + 1);
      this.guarded(() => link.events?.message(topic, payload));
    });
  }

  /**
   * One request/response: sent now (or on resume), executed after the op delay at one
   * instant, answered to the link (held while it is paused). Rejects if the link is or goes down.
   */
  op<T>(link: Link, exec: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => {
        link.pending.delete(fail);
        reject(err);
      };
      link.pending.add(fail);
      const send = () => {
        if (link.state !== 'up')
          return this.timer(0, () => fail(new ConnectionLost(link.label, link.state === 'closed' ? 'closed' : 'down')));
        this.timer(this.draw(this.faultsFor(link).opDelayMs), () => {
          if (link.state !== 'up') return fail(new ConnectionLost(link.label, 'down'));
          let result: T;
          try {
            result = exec();
          } catch (err) {
            return this.toLink(link, () => fail(err as Error));
          }
          this.toLink(link, () => {
            link.pending.delete(fail);
            resolve(result);
          });
        });
      };
      if (link.paused) link.outbox.push(send);
      else send();
    });
  }

  private addSubscriber(topic: string, link: Link): void {
    let set = this.subscribers.get(topic);
    if (!set) this.subscribers.set(topic, (set = new Set()));
    set.add(link);
  }

  private removeSubscriber(topic: string, link: Link): void {
    const set = this.subscribers.get(topic);
    if (!set) return;
    set.delete(link);
    if (set.size === 0) this.subscribers.delete(topic);
  }

  /** The broker registers at once (in order with publishes and unsubscribes); the confirmation comes later. */
  subscribe(link: Link, topics: readonly string[]): Promise<void> {
    if (link.state === 'new' || link.state === 'closed')
      return Promise.reject(new ConnectionLost(link.label, link.state === 'new' ? 'not connected' : 'closed'));
    for (const t of topics) link.topics.add(t);
    // Like a real client's offline queue: held now, confirmed once the connection is back.
    if (link.state === 'down') return new Promise((resolve, reject) => link.waitingUp.push({ resolve, reject }));
    const register = () => {
      if (link.state === 'up') for (const t of topics) if (link.topics.has(t)) this.addSubscriber(t, link);
    };
    if (link.paused) link.outbox.push(register);
    else register();
    return this.op(link, () => undefined);
  }

  unsubscribe(link: Link, topics: readonly string[]): Promise<void> {
    for (const t of topics) link.topics.delete(t);
    const remove = () => {
      for (const t of topics) if (!link.topics.has(t)) this.removeSubscriber(t, link);
    };
    if (link.paused) link.outbox.push(remove);
    else remove();
    return link.state === 'up' ? this.op(link, () => undefined) : Promise.resolve();
  }

  /** Drops the link's broker-side state; `why` rejects what was in flight. */
  private cut(link: Link, why: string): void {
    for (const t of link.topics) this.removeSubscriber(t, link);
    link.inbox.length = 0;
    link.outbox.length = 0;
    link.queue.clear();
    link.sending.clear();
    for (const fail of [...link.pending]) this.timer(0, () => fail(new ConnectionLost(link.label, why)));
  }

  pauseLink(link: Link): void {
    link.paused = true;
  }

  resumeLink(link: Link): void {
    if (!link.paused) return;
    link.paused = false;
    const inbox = link.inbox.splice(0);
    const outbox = link.outbox.splice(0);
    this.timer(0, () => {
      for (const run of inbox) run();
      for (const run of outbox) run();
    });
  }

  disconnectLink(link: Link): void {
    if (link.state === 'new') link.state = 'down';
    if (link.state !== 'up') return;
    link.state = 'down';
    this.cut(link, 'down');
    this.emitStatus(link, false);
  }

  reconnectLink(link: Link): void {
    if (link.state !== 'down') return;
    if (!link.events) {
      // Cut before it ever connected: connect() may now succeed.
      link.state = 'new';
      return;
    }
    link.state = 'up';
    for (const t of link.topics) this.addSubscriber(t, link);
    const waiting = link.waitingUp.splice(0);
    this.timer(0, () => this.toLink(link, () => waiting.forEach((w) => w.resolve())));
    this.emitStatus(link, true);
  }

  detach(link: Link): void {
    if (link.state === 'closed') return;
    this.cut(link, 'closed');
    link.state = 'closed';
    link.events = null;
    for (const w of link.waitingUp.splice(0)) w.reject(new ConnectionLost(link.label, 'closed'));
    link.topics.clear();
    this.links.delete(link);
  }

  publishedOn(topic: string): number {
    return this.published.get(topic) ?? 0;
  }

  /** Resolves once nothing is in flight (what waits for a paused link does not count); rejects after timeoutMs. */
  async settle(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.timers.size > 0) {
      if (Date.now() > deadline) throw new Error(`memory broker: still ${this.timers.size} timers in flight after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Stops every timer and closes every link. */
  closeAll(): void {
    for (const link of [...this.links]) this.detach(link);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
