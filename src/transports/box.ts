// The transport of a worker in a box without an external broker: the hub in the box's
// primary (box-hub.ts) over a Unix socket. The cluster above it runs exactly as over Redis
// (membership, presence replication, claims for webhooks exactly once), so N workers of a
// box behave as N nodes of one cluster, which behaves as one server.
import { BoxLink } from './box-link.js';
import type { LogAppend, LogPosition, LogRange, LogRead, NumberedLog, Transport, TransportEvents } from './transport.js';
import { validTtl } from './ttl.js';

export class BoxTransport implements Transport {
  readonly name = 'box';
  readonly sharedState = true;
  private readonly link: BoxLink;
  /** held topics, subscribed again after the link comes back */
  private readonly topics = new Set<string>();

  constructor(path: string, label: string) {
    this.link = new BoxLink(path, label);
  }

  /** JSON of the parts: injective, and the hub takes any string as a topic. */
  topic(...parts: string[]): string {
    if (parts.length === 0) throw new RangeError('a topic needs at least one part');
    return JSON.stringify(parts);
  }

  connect(events: TransportEvents): Promise<void> {
    return this.link.connect({
      message: (topic, payload) => events.message(topic, payload),
      status: (up) => {
        if (!up) return events.status(false);
        this.link.request('sub', [[...this.topics]]).then(
          () => events.status(true),
          () => undefined, // down again: the next status says so
        );
      },
    });
  }

  publish(topic: string, payload: string): void {
    this.link.publish(topic, payload);
  }

  async subscribe(topics: readonly string[]): Promise<void> {
    const fresh = topics.filter((t) => !this.topics.has(t));
    for (const t of fresh) this.topics.add(t);
    if (fresh.length > 0) await this.link.request('sub', [fresh]);
  }

  async unsubscribe(topics: readonly string[]): Promise<void> {
    const held = topics.filter((t) => this.topics.delete(t));
    if (held.length > 0 && this.link.isUp) await this.link.request('unsub', [held]);
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    return (await this.link.request('claim', [key, validTtl(ttlMs)])) === true;
  }

  async take(key: string): Promise<boolean> {
    return (await this.link.request('take', [key])) === true;
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    await this.link.request('put', [key, value, validTtl(ttlMs)]);
  }

  async get(key: string): Promise<{ value: string; ttlMs: number } | null> {
    const v = (await this.link.request('get', [key])) as { value?: unknown; ttlMs?: unknown } | null;
    if (!v || typeof v.value !== 'string' || typeof v.ttlMs !== 'number') return null;
    return { value: v.value, ttlMs: v.ttlMs };
  }

  async quotaTake(key: string, member: string, max: number, live: readonly string[] | null): Promise<boolean> {
    return (await this.link.request('quotaTake', [key, member, max, live])) === true;
  }

  async quotaRelease(key: string, member: string): Promise<void> {
    await this.link.request('quotaRelease', [key, member]);
  }

  readonly numbered: NumberedLog = {
    append: async (topic: string, entry: LogAppend): Promise<LogPosition> =>
      (await this.link.request('logAppend', [topic, entry])) as LogPosition,
    range: async (topic: string, range: LogRange): Promise<LogRead> => {
      const wire = { ...range, toSerial: Number.isFinite(range.toSerial) ? range.toSerial : null };
      return (await this.link.request('logRange', [topic, wire])) as LogRead;
    },
  };

  async ping(): Promise<void> {
    await this.link.request('ping', []);
  }

  async close(): Promise<void> {
    this.link.close();
  }
}
