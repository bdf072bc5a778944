// Numbered logs on JetStream. One stream per bound (entries kept per topic, time kept,
// topic length in tokens) holds every topic's log under "<prefix>-log.<bound>.<topic>";
// the serial is the stream's sequence (strictly increasing per topic, with gaps where
// other topics' entries sit). The stream republishes each stored message on the topic
// itself, in stored order, with its sequence in a header: the topic's subscribers see the
// numbered payloads in serial order whichever node appended them, as on Redis, and the
// append is one round trip (the publish and its ack).
//
// The epoch is derived from the stream's creation time: a stream that was deleted or
// lost and made again is a new epoch. An entry dropped by the bound is known only by its
// absence, so continuity is proven by the entry at fromSerial - 1 still being there.
import { createHash } from 'node:crypto';
import { DeliverPolicy, headers, nanos, type JetStreamClient, type JetStreamManager, type MsgHdrs, type NatsConnection } from 'nats';
import type { LogAppend, LogEntry, LogPosition, LogRange, NumberedLog } from './transport.js';

export interface NatsLogSettings {
  /** stream name and subject prefix */
  prefix: string;
  replicas: number;
}

interface LogStream {
  name: string;
  /** subject of a topic's log: subjectPrefix + "." + topic */
  subjectPrefix: string;
  epoch: string;
}

/** Headers: where the payload splits for the serial, the entry's tag, its time. */
const HEAD = 'Chorus-Head';
const BODY = 'Chorus-Body';
const TAG = 'Chorus-Tag';
const TIME = 'Chorus-Time';
const EPOCH = 'Chorus-Epoch';

const streamToken = (s: string): string => s.replace(/[^-_a-zA-Z0-9]/g, '_');
const isNotFound = (err: unknown): boolean => /no message found|not found|10037|10059/i.test((err as Error).message ?? '');
const isCreateRace = (err: unknown): boolean => /already in use|subjects overlap/i.test((err as Error).message ?? '');

/** The payload a republished message stands for: what the broker would have published on Redis. */
export function republishedPayload(hdrs: MsgHdrs | undefined, data: string): string | null {
  if (!hdrs) return null;
  const seq = hdrs.get('Nats-Sequence');
  const head = Number(hdrs.get(HEAD));
  const epoch = hdrs.get(EPOCH);
  if (!seq || !epoch || !Number.isSafeInteger(head) || head < 0 || head > data.length) return null;
  return data.slice(0, head) + seq + '\n' + epoch + '\n' + hdrs.get(TIME) + data.slice(head);
}

export class NatsLog implements NumberedLog {
  private readonly streams = new Map<string, Promise<LogStream>>();
  private readonly js: JetStreamClient;

  constructor(
    nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly settings: NatsLogSettings,
  ) {
    this.js = nc.jetstream();
  }

  private streamFor(topic: string, maxEntries: number, ttlMs: number): Promise<LogStream> {
    const tokens = topic.split('.').length;
    const bound = `${maxEntries}_${Math.ceil(ttlMs / 1000)}_${tokens}`;
    let stream = this.streams.get(bound);
    if (!stream) {
      stream = this.open(bound, tokens, maxEntries, ttlMs);
      stream.catch(() => this.streams.delete(bound));
      this.streams.set(bound, stream);
    }
    return stream;
  }

  private async open(bound: string, tokens: number, maxEntries: number, ttlMs: number): Promise<LogStream> {
    const name = `${streamToken(this.settings.prefix)}_log_${bound}`;
    const subjectPrefix = `${streamToken(this.settings.prefix)}-log.${bound}`;
    const pattern = subjectPrefix + '.*'.repeat(tokens);
    const dest = Array.from({ length: tokens }, (_, i) => `{{wildcard(${i + 1})}}`).join('.');
    let created: string;
    try {
      created = (await this.jsm.streams.info(name)).created;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        created = (
          await this.jsm.streams.add({
            name,
            subjects: [pattern],
            max_msgs_per_subject: maxEntries,
            max_age: nanos(ttlMs),
            num_replicas: this.settings.replicas,
            republish: { src: pattern, dest },
          })
        ).created;
      } catch (again) {
        if (!isCreateRace(again)) throw again;
        created = (await this.jsm.streams.info(name)).created;
      }
    }
    const epoch = createHash('sha256').update(`${name}\n${created}`).digest('base64url').slice(0, 16);
    return { name, subjectPrefix, epoch };
  }

  async append(topic: string, a: LogAppend): Promise<LogPosition> {
    const s = await this.streamFor(topic, a.maxEntries, a.ttlMs);
    const now = Date.now();
    const h = headers();
    h.set(HEAD, String(a.head.length));
    h.set(BODY, String(a.head.length + a.tail.length - a.body.length));
    h.set(TAG, a.tag);
    h.set(TIME, String(now));
    h.set(EPOCH, s.epoch);
    const ack = await this.js.publish(`${s.subjectPrefix}.${topic}`, a.head + a.tail, { headers: h, timeout: 2000 });
    return { serial: ack.seq, epoch: s.epoch, timeMs: now };
  }

  async range(topic: string, r: LogRange): Promise<{ epoch: string | null; lastSerial: number; entries: LogEntry[]; continuous: boolean }> {
    const s = await this.streamFor(topic, r.maxEntries, r.ttlMs);
    const subject = `${s.subjectPrefix}.${topic}`;
    const lastSerial = await this.jsm.streams.getMessage(s.name, { last_by_subj: subject }).then(
      (m) => m.seq,
      (err: Error) => {
        if (isNotFound(err)) return 0;
        throw err;
      },
    );
    const from = Math.max(1, r.fromSerial);
    const to = Math.min(r.toSerial, lastSerial);
    const entries: LogEntry[] = [];
    if (from <= to && r.limit > 0) {
      // Newest first reads the whole range forward (it is bounded by the entries kept per topic).
      const wanted = r.newestFirst ? Infinity : r.limit;
      const consumer = await this.js.consumers.get(s.name, {
        filterSubjects: subject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: from,
      });
      const batch = await consumer.fetch({ max_messages: Math.min(r.maxEntries, wanted), expires: 2000 });
      for await (const m of batch) {
        if (m.seq > to) break;
        const data = m.string();
        const at = Number(m.headers?.get(BODY));
        entries.push({
          serial: m.seq,
          timeMs: Number(m.headers?.get(TIME)) || 0,
          body: Number.isSafeInteger(at) && at >= 0 ? data.slice(at) : data,
          tag: m.headers?.get(TAG) ?? '',
        });
        if (m.seq >= to || entries.length >= wanted) break;
      }
      await consumer.delete().catch(() => undefined);
      if (r.newestFirst) entries.reverse().splice(r.limit);
    }
    return { epoch: s.epoch, lastSerial, entries, continuous: await this.continuous(s.name, subject, from, lastSerial) };
  }

  /** Whether nothing of the topic in [from, last] was dropped: its entry before `from` is still kept. */
  private async continuous(stream: string, subject: string, from: number, last: number): Promise<boolean> {
    if (from > last) return true;
    if (from <= 1) return (await this.jsm.streams.info(stream)).state.first_seq <= 1;
    return this.jsm.streams.getMessage(stream, { seq: from - 1 }).then(
      (m) => m.subject === subject,
      () => false,
    );
  }
}
