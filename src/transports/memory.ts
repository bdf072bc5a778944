// An in-process broker and transport for fast, deterministic tests of the cluster
// algorithms (membership, loss, revival, anti-entropy, occupancy races, quotas,
// presence replication) and later for workers. One MemoryBroker per test; each
// MemoryTransport from it is one node's broker connection. Faults are seeded: the
// same seed and the same calls give the same losses, duplicates and delays.
//
// It honours the whole Transport contract (test/transport-contract.test.ts runs it
// beside the real brokers), and never replaces a real broker in the tests of a real one.
import { BrokerCore, NO_FAULTS, type Faults, type MemoryBrokerOptions, type MemoryStats, type Link } from './memory-broker.js';
import type { MemoryKv } from './memory-kv.js';
import { SharedStateUnavailable, type Transport, type TransportEvents } from './transport.js';
import { validTtl } from './ttl.js';

export { NO_FAULTS, type Faults, type MemoryBrokerOptions, type MemoryStats };

export class MemoryBroker extends BrokerCore {
  private made = 0;

  constructor(options: MemoryBrokerOptions = {}) {
    super(options);
  }

  /** A new connection to this broker (call connect() on it, as on any transport). */
  transport(label = `m${++this.made}`): MemoryTransport {
    return new MemoryTransport(this, this.register(label));
  }

  /** Changes faults for every delivery, or only for those to (and operations from) one connection. */
  setFaults(faults: Partial<Faults>, only?: MemoryTransport): void {
    if (only) only.link.faults = { ...only.link.faults, ...faults };
    else this.faults = { ...this.faults, ...faults };
  }

  /** Like SIGSTOP: nothing from or to it moves; both directions wait, in order. */
  pause(t: MemoryTransport): void {
    this.pauseLink(t.link);
  }

  resume(t: MemoryTransport): void {
    this.resumeLink(t.link);
  }

  /** Cuts the connection: status(false), its subscriptions gone at the broker, what was in flight lost. */
  disconnect(t: MemoryTransport): void {
    this.disconnectLink(t.link);
  }

  /** Restores it: its subscriptions are back at the broker before status(true) arrives. */
  reconnect(t: MemoryTransport): void {
    this.reconnectLink(t.link);
  }

  /** The broker loses its key-value state (claims, values, quotas), as a restart without persistence. */
  flushState(): void {
    this.kv.flush();
  }

  /** Messages delivered to one connection, on one topic or all. */
  delivered(t: MemoryTransport, topic?: string): number {
    if (topic !== undefined) return t.link.delivered.get(topic) ?? 0;
    let sum = 0;
    for (const n of t.link.delivered.values()) sum += n;
    return sum;
  }

  /** Stops every timer and closes every connection (end of a test). */
  close(): void {
    this.closeAll();
  }
}

export class MemoryTransport implements Transport {
  readonly name = 'memory';

  /** Made by MemoryBroker.transport(). */
  constructor(
    private readonly broker: MemoryBroker,
    /** @internal the broker's side of this connection */
    readonly link: Link,
  ) {}

  get label(): string {
    return this.link.label;
  }

  get sharedState(): boolean {
    return this.broker.sharedState;
  }

  /** JSON of the parts: injective, and every string is a valid topic here. */
  topic(...parts: string[]): string {
    if (parts.length === 0) throw new RangeError('a topic needs at least one part');
    return JSON.stringify(parts);
  }

  connect(events: TransportEvents): Promise<void> {
    return this.broker.attach(this.link, events);
  }

  publish(topic: string, payload: string): void {
    this.broker.publish(this.link, topic, payload);
  }

  subscribe(topics: readonly string[]): Promise<void> {
    return this.broker.subscribe(this.link, [...new Set(topics)]);
  }

  unsubscribe(topics: readonly string[]): Promise<void> {
    const held = [...new Set(topics)].filter((t) => this.link.topics.has(t));
    return held.length > 0 ? this.broker.unsubscribe(this.link, held) : Promise.resolve();
  }

  private kv<T>(what: string, run: (kv: MemoryKv) => T): Promise<T> {
    if (!this.broker.sharedState) return Promise.reject(new SharedStateUnavailable(what));
    return this.broker.op(this.link, () => run(this.broker.kv));
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    const ttl = validTtl(ttlMs);
    return this.kv('claim', (kv) => kv.claim(key, ttl));
  }

  take(key: string): Promise<boolean> {
    return this.kv('take', (kv) => kv.take(key));
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    const ttl = validTtl(ttlMs);
    return this.kv('put', (kv) => kv.put(key, value, ttl));
  }

  get(key: string): Promise<{ value: string; ttlMs: number } | null> {
    return this.kv('get', (kv) => kv.get(key));
  }

  quotaTake(key: string, member: string, max: number, live: readonly string[] | null): Promise<boolean> {
    const snapshot = live ? [...live] : null;
    return this.kv('quotaTake', (kv) => kv.quotaTake(key, member, max, snapshot));
  }

  quotaRelease(key: string, member: string): Promise<void> {
    return this.kv('quotaRelease', (kv) => kv.quotaRelease(key, member));
  }

  ping(): Promise<void> {
    return this.broker.op(this.link, () => undefined);
  }

  async close(): Promise<void> {
    this.broker.detach(this.link);
  }
}
