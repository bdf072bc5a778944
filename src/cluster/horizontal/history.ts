// Channel history over the broker's numbered logs (Redis Streams). The broker numbers,
// stores and publishes each event in one step; every node, the appending one included,
// delivers it when it arrives on the channel's topic, so delivery follows the serials.
// A node remembers the highest serial it saw per channel: a broker whose counter went
// back under the same epoch (a failover that lost writes) gets a new epoch at the next
// append instead of handing out serials twice.
import type { Logger } from 'pino';
import type { NumberedLog } from '../../transports/transport.js';
import { newEpoch } from '../history-ring.js';
import {
  HistoryUnavailable,
  type ChannelHistory,
  type HistoryBounds,
  type HistoryRange,
  type HistoryRead,
  type NumberedEvent,
} from '../ports.js';
import { numberedHead, numberedTail, type NumberedPayload } from './wire.js';

/** Channels whose highest serial is remembered (the oldest noted go first). */
const SEEN_LIMIT = 50_000;

export class HorizontalHistory implements ChannelHistory {
  private readonly seen = new Map<string, { epoch: string; serial: number }>();
  private unavailableLogged = false;

  constructor(
    /** the transport's logs (known once it connected; absent where the broker keeps none) */
    private readonly log: () => NumberedLog | undefined,
    private readonly topicOf: (appId: string, channel: string) => string,
    private readonly nodeId: string,
    private readonly logger: Logger,
  ) {}

  /** A numbered payload went past on a topic (the channel bus tells). */
  noted(topic: string, p: Pick<NumberedPayload, 'epoch' | 'serial'>): void {
    const known = this.seen.get(topic);
    if (known && known.epoch === p.epoch && known.serial >= p.serial) return;
    this.seen.delete(topic);
    if (this.seen.size >= SEEN_LIMIT) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(topic, { epoch: p.epoch, serial: p.serial });
  }

  unavailable(): string | null {
    return this.log()
      ? null
      : 'the broker keeps no logs: channel history needs redis, redis-cluster or NATS with JetStream (start nats-server with -js)';
  }

  private store(): NumberedLog {
    const log = this.log();
    if (log) return log;
    if (!this.unavailableLogged) {
      this.unavailableLogged = true;
      this.logger.error('channel history needs redis, redis-cluster or NATS with JetStream; publishes to history channels are refused');
    }
    throw new HistoryUnavailable('channel history is not available here (the broker keeps no logs: NATS without JetStream)');
  }

  async append(appId: string, channel: string, frame: string, except: string | undefined, bounds: HistoryBounds): Promise<NumberedEvent> {
    const store = this.store();
    const topic = this.topicOf(appId, channel);
    const seen = this.seen.get(topic);
    let position;
    try {
      position = await store.append(topic, {
        body: frame,
        tag: except ?? '',
        maxEntries: bounds.maxMessages,
        ttlMs: bounds.ttlSeconds * 1000,
        newEpoch: newEpoch(),
        seen: seen?.serial ?? 0,
        seenEpoch: seen?.epoch ?? '',
        head: numberedHead(this.nodeId, except),
        tail: numberedTail(frame),
      });
    } catch (err) {
      throw new HistoryUnavailable(`history write failed: ${(err as Error).message}`);
    }
    this.noted(topic, position);
    return { serial: position.serial, epoch: position.epoch, publishedAtMs: position.timeMs, frame, except };
  }

  async read(appId: string, channel: string, range: HistoryRange, bounds: HistoryBounds): Promise<HistoryRead> {
    const store = this.store();
    let got;
    try {
      got = await store.range(this.topicOf(appId, channel), { ...range, maxEntries: bounds.maxMessages, ttlMs: bounds.ttlSeconds * 1000 });
    } catch (err) {
      throw new HistoryUnavailable(`history read failed: ${(err as Error).message}`);
    }
    const oldest = Date.now() - bounds.ttlSeconds * 1000;
    const epoch = got.epoch;
    if (epoch === null) return { epoch: null, lastSerial: 0, events: [], continuous: true };
    const events: NumberedEvent[] = [];
    let expired = false;
    for (const e of got.entries) {
      if (e.timeMs < oldest) {
        expired = true;
        continue;
      }
      events.push({ serial: e.serial, epoch, publishedAtMs: e.timeMs, frame: e.body, except: e.tag === '' ? undefined : e.tag });
    }
    return { epoch, lastSerial: got.lastSerial, events, continuous: got.continuous && !expired };
  }
}
