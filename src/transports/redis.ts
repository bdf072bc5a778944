// Redis pub/sub: one publisher and one subscriber connection per node.
// Publishes are dropped, not queued, while Redis is down (no unbounded buffers);
// ioredis reconnects with backoff and restores subscriptions itself.
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { RedisTransportBase, type PubSubCommands } from './redis-base.js';

const PLAIN_PUBSUB: PubSubCommands = {
  publish: (c, topic, payload) => c.publish(topic, payload),
  subscribe: (c, topic) => c.subscribe(topic),
  unsubscribe: (c, topic) => c.unsubscribe(topic),
  messageEvent: 'message',
};

export class RedisTransport extends RedisTransportBase<Redis> {
  constructor(options: RedisOptions, log: Logger) {
    super(
      new Redis({ ...options, enableOfflineQueue: false, maxRetriesPerRequest: 1 }),
      // The subscriber keeps its offline queue: only (un)subscribe commands go there, bounded by channels held.
      new Redis({ ...options, autoResubscribe: true, maxRetriesPerRequest: null }),
      PLAIN_PUBSUB,
      log,
    );
  }
}
