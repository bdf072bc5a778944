// Config a Sockudo or soketi user brings along: Sockudo's per-part Redis sections and
// soketi's SOKETI_* environment, read with their meaning or refused naming the key.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { ConfigError } from '../src/config/errors.js';
import { adapterRedisSettings, partKeyPrefix, partRedisSettings } from '../src/compose/settings.js';

const CWD = mkdtempSync(join(tmpdir(), 'chorus-migration-test-'));
after(() => rmSync(CWD, { recursive: true, force: true }));

const APP = { id: 'file-app', key: 'file-key', secret: 'file-secret' };
let files = 0;

/** Loads a config file holding `content` and one app. */
function loadFile(content: Record<string, unknown>, env: Record<string, string> = {}) {
  const path = join(CWD, `config-${files++}.json`);
  writeFileSync(path, JSON.stringify({ app_manager: { array: { apps: [APP] } }, ...content }));
  return loadConfig({ file: path, env, cwd: CWD });
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe("config: Sockudo's per-part Redis sections", () => {
  it('unset, every part uses database.redis and its key prefix', () => {
    const { config, unknownKeys } = loadFile({ database: { redis: { host: '10.0.0.5', port: 6390, key_prefix: 'base:' } } });
    assert.deepEqual(unknownKeys, []);
    const limiter = partRedisSettings(config, 'redis', config.rate_limiter.redis, 'rate_limiter.redis');
    assert.equal(limiter.host, '10.0.0.5');
    assert.equal(limiter.url, undefined);
    assert.deepEqual(limiter.clusterNodes, []);
    assert.equal(partKeyPrefix(config, config.queue.redis), 'base:');
    const { publisher, subscriber } = adapterRedisSettings(config);
    assert.equal(publisher.port, 6390);
    assert.equal(subscriber.port, 6390);
  });

  it('url_override, prefix and cluster_mode are honoured per part; pub/sub urls per connection', () => {
    const { config, unknownKeys } = loadFile({
      adapter: { redis: { redis_pub_options: { url: 'redis://pub:6391' }, redis_sub_options: { url: 'redis://sub:6392/2' } } },
      queue: { redis: { url_override: 'redis://queue:6393', prefix: 'q:', response_timeout_ms: 2500, concurrency: 12 } },
      rate_limiter: { redis: { url_override: 'rediss://limits:7000', cluster_mode: true, prefix: 'rl:' } },
    });
    assert.deepEqual(unknownKeys, []);
    const { publisher, subscriber } = adapterRedisSettings(config);
    assert.equal(publisher.url, 'redis://pub:6391');
    assert.equal(subscriber.url, 'redis://sub:6392/2');
    assert.equal(partRedisSettings(config, 'redis', config.queue.redis, 'queue.redis').url, 'redis://queue:6393');
    assert.equal(partKeyPrefix(config, config.queue.redis), 'q:');
    assert.equal(config.queue.redis.response_timeout_ms, 2500);
    assert.equal(config.webhooks.max_concurrency, 12, "queue.redis.concurrency sizes the deliveries when webhooks doesn't");
    // cluster_mode without cluster_nodes: the url_override's server is the seed.
    const limiter = partRedisSettings(config, 'redis', config.rate_limiter.redis, 'rate_limiter.redis');
    assert.deepEqual(limiter.clusterNodes, [{ host: 'limits', port: 7000 }]);
    assert.equal(partKeyPrefix(config, config.rate_limiter.redis), 'rl:');
  });

  it('webhooks.max_concurrency wins over queue.redis.concurrency; cluster_mode without any seed is refused', () => {
    const { config } = loadFile({ queue: { redis: { concurrency: 12 } }, webhooks: { max_concurrency: 30 } });
    assert.equal(config.webhooks.max_concurrency, 30);
    const noSeed = loadFile({ rate_limiter: { redis: { cluster_mode: true } } }).config;
    assert.match(
      configError(() => partRedisSettings(noSeed, 'redis', noSeed.rate_limiter.redis, 'rate_limiter.redis')),
      /rate_limiter\.redis: a Redis Cluster needs/,
    );
  });

  it('a bad url is refused naming the key; other redis_pub_options keys are reported', () => {
    assert.match(
      configError(() => loadFile({ queue: { redis: { url_override: 'http://queue:6379' } } })),
      /queue\.redis\.url_override: must be a redis:\/\/ or rediss:\/\/ URL/,
    );
    assert.match(
      configError(() => loadFile({ adapter: { redis: { redis_sub_options: { url: 'not a url' } } } })),
      /adapter\.redis\.redis_sub_options\.url: must be a redis/,
    );
    const { unknownKeys } = loadFile({ adapter: { redis: { redis_pub_options: { url: 'redis://a:1', retry_strategy: 3 } } } });
    assert.deepEqual(unknownKeys, ['adapter.redis.redis_pub_options.retry_strategy']);
  });

  it("cache.redis settings are refused: cache channels live in the adapter's broker", () => {
    for (const [key, value] of [
      ['url_override', 'redis://cache:6379'],
      ['cluster_mode', true],
      ['prefix', 'sockudo_cache:'],
    ] as const) {
      const message = configError(() => loadFile({ cache: { driver: 'redis', redis: { [key]: value } } }));
      assert.match(message, new RegExp(`cache\\.redis\\.${key}: Chorus keeps cache channels in the adapter's broker`));
    }
    assert.equal(loadFile({ cache: { driver: 'redis', redis: { cluster_mode: false } } }).config.cache.driver, 'redis');
  });
});
