// App stores and rate limiters from the config. The MySQL and Redis clients are loaded only
// when the config names them (mysql2 and ioredis cost ~200 ms and ~20 MB at start-up).
import type { Logger } from 'pino';
import { CachedAppStore } from '../apps/cached-store.js';
import { StaticAppStore } from '../apps/static-store.js';
import type { AppStore } from '../apps/store.js';
import type { Config } from '../config/schema.js';
import { LocalRateLimiter, type RateLimiter } from '../rate-limit/limiter.js';
import { partKeyPrefix, partRedisSettings } from './settings.js';
import { BoxRateLimiter } from './box-limiter.js';
import type { BoxSeat } from './cluster.js';

export async function createAppStore(config: Config, log: Logger): Promise<AppStore> {
  if (config.app_manager.driver === 'memory' || config.app_manager.driver === 'array') {
    return new StaticAppStore(config.app_manager.array.apps ?? []);
  }
  const m = config.database.mysql;
  const pooling = config.database_pooling;
  const poolSize = pooling.enabled ? (m.pool_max ?? pooling.max) : m.connection_pool_size;
  const { MysqlAppStore } = await import('../apps/mysql-store.js');
  const store = new MysqlAppStore({
    host: m.host,
    port: m.port,
    username: m.username,
    password: m.password,
    database: m.database,
    table: m.table_name,
    poolSize,
    idleKept: Math.min(poolSize, pooling.enabled ? (m.pool_min ?? pooling.min) : poolSize),
  });
  if (!config.app_manager.cache.enabled) return store;
  let warned = 0;
  return new CachedAppStore(store, config.app_manager.cache.ttl * 1000, (err) => {
    // Once a minute at most: the database is down and known apps are served from cache.
    if (Date.now() - warned > 60_000) {
      warned = Date.now();
      log.warn({ err: err.message }, 'app database unavailable, serving cached apps');
    }
  });
}

export async function createRateLimiter(config: Config, log: Logger, box: BoxSeat | null = null): Promise<RateLimiter> {
  const driver = config.rate_limiter.driver;
  if (driver === 'memory' || driver === 'local') {
    // One window for the whole box, in its primary: N workers count as one node does.
    return box ? new BoxRateLimiter(box.hubPath, `worker ${box.index}`, config.rate_limiter.fail_open) : new LocalRateLimiter();
  }
  const part = config.rate_limiter.redis;
  const [{ createRedisClient }, { RedisRateLimiter }] = await Promise.all([
    import('../transports/redis-client.js'),
    import('../rate-limit/redis-limiter.js'),
  ]);
  const client = createRedisClient(partRedisSettings(config, driver, part, 'rate_limiter.redis'), 'command');
  return new RedisRateLimiter(client, partKeyPrefix(config, part), config.rate_limiter.fail_open, log);
}
