// The cluster a node runs in, from the config: alone (local), or over a broker
// through its transport.
import type { Logger } from 'pino';
import { ConfigError } from '../config/errors.js';
import type { Config } from '../config/schema.js';
import { HorizontalCluster } from '../cluster/horizontal/horizontal-cluster.js';
import { LocalCluster } from '../cluster/local/local-cluster.js';
import type { Cluster } from '../cluster/ports.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Transport } from '../transports/transport.js';
import { BoxTransport } from '../transports/box.js';
import { adapterRedisSettings, redisSettings } from './settings.js';

/** A worker's place in its box (`chorus start --workers N`): the hub of its primary and its number. */
export interface BoxSeat {
  hubPath: string;
  index: number;
}

/** The broker's client library is loaded only for its adapter (ioredis and nats cost ~100 ms each at start-up). */
async function createTransport(config: Config, log: Logger, box: BoxSeat | null): Promise<Transport> {
  // Workers without an external broker meet at their primary's hub; with one, each is a node on it.
  if (config.adapter.driver === 'local' && box) return new BoxTransport(box.hubPath, `worker ${box.index}`);
  switch (config.adapter.driver) {
    case 'redis':
    case 'redis-cluster': {
      // Sockudo's adapter.redis.cluster_mode puts the redis driver on a Redis Cluster.
      if (config.adapter.driver === 'redis' && !config.adapter.redis.cluster_mode) {
        const { publisher, subscriber } = adapterRedisSettings(config);
        const { RedisTransport } = await import('../transports/redis.js');
        return new RedisTransport(publisher, log, subscriber);
      }
      const settings = redisSettings(config, true);
      if (!settings.clusterNodes?.length) {
        throw new ConfigError(
          'adapter.driver "redis-cluster" (or adapter.redis.cluster_mode) needs REDIS_CLUSTER_NODES, database.redis.cluster_nodes or adapter.cluster.nodes',
        );
      }
      const { RedisClusterTransport } = await import('../transports/redis-cluster.js');
      return new RedisClusterTransport(settings, log);
    }
    case 'nats': {
      const n = config.adapter.nats;
      const { NatsTransport } = await import('../transports/nats.js');
      return new NatsTransport(
        {
          servers: n.servers,
          username: n.username,
          password: n.password,
          token: n.token,
          connectTimeoutMs: n.connection_timeout_ms,
          prefix: n.prefix,
          replicas: n.replicas,
        },
        log,
      );
    }
    default:
      throw new ConfigError(`adapter.driver "${config.adapter.driver}" has no transport`);
  }
}

export async function createCluster(config: Config, log: Logger, metrics: Metrics, box: BoxSeat | null = null): Promise<Cluster> {
  const removalDelayMs = config.webhooks.vacated_delay_ms;
  if (config.adapter.driver === 'local' && !box) return new LocalCluster({ nodeId: config.instance.process_id, removalDelayMs });
  const health = config.adapter.cluster_health;
  const isNats = config.adapter.driver === 'nats';
  // Sockudo's redis-cluster adapter reads its own block; the redis block is the fallback.
  const onCluster = config.adapter.driver === 'redis-cluster';
  const redisPrefix = (onCluster ? config.adapter.cluster.prefix : undefined) ?? config.adapter.redis.prefix;
  const redisTimeout = (onCluster ? config.adapter.cluster.request_timeout_ms : undefined) ?? config.adapter.redis.requests_timeout;
  return new HorizontalCluster(
    await createTransport(config, log, box),
    {
      prefix: isNats ? config.adapter.nats.prefix : redisPrefix,
      keyPrefix: config.database.redis.key_prefix,
      processId: config.instance.process_id,
      heartbeatIntervalMs: health.heartbeat_interval_ms,
      nodeTimeoutMs: health.node_timeout_ms,
      cleanupIntervalMs: health.cleanup_interval_ms,
      requestTimeoutMs: isNats ? (config.adapter.nats.request_timeout_ms ?? config.adapter.nats.requests_timeout) : redisTimeout,
      removalDelayMs,
    },
    log,
    metrics.bus(),
  );
}
