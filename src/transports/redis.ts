// Redis pub/sub: one publisher and one subscriber connection per node.
// Publishes are dropped, not queued, while Redis is down (no unbounded buffers);
// ioredis reconnects with backoff and resubscribes, and the base class confirms
// the resubscription before it reports the broker back.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { chunks, RedisTransportBase, type PubSubCommands } from './redis-base.js';
import { createStandaloneClient, type RedisSettings } from './redis-client.js';

/** One SUBSCRIBE per 500 topics; ioredis resolves a command once Redis confirmed each of its channels. */
const PLAIN_PUBSUB: PubSubCommands = {
  publish: (c, topic, payload) => c.publish(topic, payload),
  subscribe: async (c, topics) => void (await Promise.all(chunks(topics).map((batch) => c.subscribe(...batch)))),
  unsubscribe: async (c, topics) => void (await Promise.all(chunks(topics).map((batch) => c.unsubscribe(...batch)))),
  // SUBSCRIBE is idempotent and ioredis keeps its channels in a set: sending it again only confirms.
  resubscribe: async (c, topics) => void (await Promise.all(chunks(topics).map((batch) => c.subscribe(...batch)))),
  messageEvent: 'message',
  scriptPublish: 'PUBLISH',
};

export class RedisTransport extends RedisTransportBase<Redis> {
  readonly name = 'redis';

  /**
   * Plain Redis, or a Sentinel-managed master when `settings.sentinels` is set. `subscriber`
   * (Sockudo's redis_sub_options) may name another server for the subscribing connection.
   */
  constructor(settings: RedisSettings, log: Logger, subscriber: RedisSettings = settings) {
    super(
      createStandaloneClient(settings, 'publisher'),
      createStandaloneClient(subscriber, 'subscriber'),
      PLAIN_PUBSUB,
      settings,
      log,
      subscriber,
    );
  }
}
