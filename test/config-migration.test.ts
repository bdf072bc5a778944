// Config a Sockudo or soketi user brings along: Sockudo's per-part Redis sections and
// soketi's SOKETI_* environment, read with their meaning or refused naming the key.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { ConfigError } from '../src/config/errors.js';
import { ROOT } from './helpers/node.js';
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

describe("config: Sockudo's environment variables", () => {
  it('the variables Chorus has a setting for are read with their Sockudo meaning', () => {
    const { config, unreadEnv } = loadFile(
      {},
      {
        SOCKUDO_MAX_CONNECTIONS: '250',
        ENVIRONMENT: 'staging',
        DEBUG_MODE: 'true',
        NATS_PREFIX: 'nats-prefix',
        NATS_CONNECTION_TIMEOUT_MS: '1500',
        NATS_REQUEST_TIMEOUT_MS: '2500',
        DATABASE_REDIS_CLUSTER_NODES: 'r1:7000,redis://r2:7001',
        CORS_ORIGINS: 'https://a.example, https://b.example',
        CORS_METHODS: 'GET,POST',
        CORS_HEADERS: 'Authorization,X-Custom',
        CORS_CREDENTIALS: 'false',
        RATE_LIMITER_API_MAX_REQUESTS: '7',
        RATE_LIMITER_API_WINDOW_SECONDS: '11',
        RATE_LIMITER_API_TRUST_HOPS: '1',
        RATE_LIMITER_WS_MAX_REQUESTS: '3',
        RATE_LIMITER_WS_WINDOW_SECONDS: '13',
        RATE_LIMITER_WS_TRUST_HOPS: '2',
        RATE_LIMITER_REDIS_PREFIX: 'rl:',
        QUEUE_REDIS_CONCURRENCY: '9',
        QUEUE_REDIS_RESPONSE_TIMEOUT_MS: '1200',
        QUEUE_REDIS_PREFIX: 'q:',
        WEBHOOK_BATCHING_ENABLED: 'true',
        WEBHOOK_BATCHING_DURATION: '75',
        CACHE_TTL_SECONDS: '42',
        METRICS_DRIVER: 'prometheus',
      },
    );
    assert.deepEqual(unreadEnv, []);
    assert.equal(config.max_connections, 250);
    assert.equal(config.mode, 'staging');
    assert.equal(config.debug, true);
    assert.equal(config.adapter.nats.prefix, 'nats-prefix');
    assert.equal(config.adapter.nats.connection_timeout_ms, 1500);
    assert.equal(config.adapter.nats.request_timeout_ms, 2500);
    assert.deepEqual(config.database.redis.cluster_nodes, ['r1:7000', 'redis://r2:7001']);
    assert.deepEqual(config.cors.origin, ['https://a.example', 'https://b.example']);
    assert.deepEqual(config.cors.methods, ['GET', 'POST']);
    assert.deepEqual(config.cors.allowed_headers, ['Authorization', 'X-Custom']);
    assert.equal(config.cors.credentials, false);
    assert.deepEqual(
      [
        config.rate_limiter.api_rate_limit.max_requests,
        config.rate_limiter.api_rate_limit.window_seconds,
        config.rate_limiter.api_rate_limit.trust_hops,
      ],
      [7, 11, 1],
    );
    const ws = config.rate_limiter.websocket_rate_limit;
    assert.deepEqual([ws.max_requests, ws.window_seconds, ws.trust_hops], [3, 13, 2]);
    assert.equal(config.rate_limiter.redis.prefix, 'rl:');
    assert.equal(config.queue.redis.prefix, 'q:');
    assert.equal(config.queue.redis.response_timeout_ms, 1200);
    assert.equal(config.webhooks.max_concurrency, 9);
    assert.equal(config.webhooks.batching.enabled, true);
    assert.equal(config.webhooks.batching.duration, 75);
    assert.equal(config.app_manager.cache.ttl, 42);
  });

  it("where Sockudo and Chorus have two names for one key, Chorus's own wins", () => {
    const { config } = loadFile(
      {},
      {
        NATS_PREFIX: 'sockudo',
        ADAPTER_NATS_PREFIX: 'chorus',
        WEBHOOK_BATCHING_DURATION: '10',
        WEBHOOKS_BATCHING_DURATION: '20',
        CACHE_TTL_SECONDS: '1',
        APP_MANAGER_CACHE_TTL: '2',
      },
    );
    assert.equal(config.adapter.nats.prefix, 'chorus');
    assert.equal(config.webhooks.batching.duration, 20);
    assert.equal(config.app_manager.cache.ttl, 2);
  });

  it('a set Sockudo variable Chorus does not read is named with what to use instead; unrelated ones are not', () => {
    const { unreadEnv } = loadFile(
      {},
      {
        HISTORY_ENABLED: 'true',
        NATS_NO_ECHO: 'true',
        SOCKUDO_SERVER_ROLE: 'edge',
        DATABASE_REDIS_SENTINEL_PASSWORDS: 'x',
        WEBSOCKET_MAX_MESSAGES: '10',
        // read by Chorus, or nothing to do with Sockudo: never reported
        NATS_SERVERS: 'nats://127.0.0.1:4222',
        WEBSOCKET_MAX_PAYLOAD_KB: '32',
        QUEUE_DRIVER: 'memory',
        SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS: '5',
        HOSTNAME: 'box',
        PATH: '/usr/bin',
        EMPTY_IS_UNSET: '',
        CACHE_CLEANUP_INTERVAL: '',
      },
    );
    assert.deepEqual(
      unreadEnv.map((line) => /variable (\S+)/.exec(line)?.[1]),
      ['DATABASE_REDIS_SENTINEL_PASSWORDS', 'HISTORY_ENABLED', 'NATS_NO_ECHO', 'SOCKUDO_SERVER_ROLE', 'WEBSOCKET_MAX_MESSAGES'],
    );
    assert.match(
      unreadEnv.find((l) => l.includes('HISTORY_ENABLED')) ?? '',
      /not read by Chorus: Chorus's channel history is set per app: apps\[\]\.history/,
    );
    assert.match(unreadEnv.find((l) => l.includes('NATS_NO_ECHO')) ?? '', /Chorus reads NATS_SERVERS/);
  });

  it('cluster_health.enabled false is refused with a broker adapter, naming the key; alone it changes nothing', () => {
    assert.match(
      configError(() => loadFile({ adapter: { driver: 'redis', cluster_health: { enabled: false } } })),
      /adapter\.cluster_health\.enabled: false is not supported with a broker adapter/,
    );
    assert.match(
      configError(() => loadFile({}, { ADAPTER_DRIVER: 'nats', CLUSTER_HEALTH_ENABLED: 'false' })),
      /cluster_health\.enabled: false/,
    );
    assert.equal(loadFile({ adapter: { driver: 'local', cluster_health: { enabled: false } } }).config.adapter.driver, 'local');
  });
});

describe("config: soketi's SOKETI_* environment variables", () => {
  const load = (env: Record<string, string>) => loadConfig({ env, cwd: CWD });

  it('are read with their soketi meaning: JSON values, milliseconds made seconds, server-wide limits', () => {
    const { config, unreadEnv } = load({
      SOKETI_PORT: '6101',
      SOKETI_HOST: '127.0.0.1',
      SOKETI_DEBUG: 'true',
      SOKETI_SHUTDOWN_GRACE_PERIOD: '3000',
      SOKETI_USER_AUTHENTICATION_TIMEOUT: '30000',
      SOKETI_ADAPTER_DRIVER: 'nats',
      SOKETI_ADAPTER_NATS_SERVERS: '["nats://n1:4222","nats://n2:4222"]',
      SOKETI_ADAPTER_NATS_USER: 'u',
      SOKETI_ADAPTER_NATS_PASSWORD: '1234',
      SOKETI_ADAPTER_NATS_TIMEOUT: '2000',
      SOKETI_DB_REDIS_HOST: 'redis',
      SOKETI_DB_REDIS_PORT: '6380',
      SOKETI_DB_REDIS_CLUSTER_NODES: '[{"host":"c1","port":7000}]',
      SOKETI_EVENT_MAX_SIZE_IN_KB: '5',
      SOKETI_PRESENCE_MAX_MEMBERS: '3',
      SOKETI_CHANNEL_LIMITS_MAX_NAME_LENGTH: '50',
      SOKETI_METRICS_SERVER_PORT: '9700',
      SOKETI_WEBHOOKS_BATCHING: 'true',
      SOKETI_RATE_LIMITER_DRIVER: 'redis',
    });
    assert.deepEqual(unreadEnv, []);
    assert.equal(config.port, 6101);
    assert.equal(config.debug, true);
    assert.equal(config.shutdown_grace_period, 3);
    assert.equal(config.user_authentication_timeout, 30);
    assert.deepEqual(config.adapter.nats.servers, ['nats://n1:4222', 'nats://n2:4222']);
    assert.equal(config.adapter.nats.password, '1234', 'a numeric-looking password stays a string');
    assert.equal(config.adapter.nats.connection_timeout_ms, 2000);
    assert.equal(config.database.redis.port, 6380);
    assert.deepEqual(config.database.redis.cluster_nodes, [{ host: 'c1', port: 7000 }]);
    assert.equal(config.metrics.port, 9700);
    assert.equal(config.webhooks.batching.enabled, true);
    assert.equal(config.rate_limiter.driver, 'redis');
    // soketi's server-wide limits are the (embedded) demo app's defaults
    const app = config.app_manager.array.apps?.[0];
    assert.equal(app?.max_event_payload_in_kb, 5);
    assert.equal(app?.max_presence_members_per_channel, 3);
    assert.equal(app?.max_channel_name_length, 50);
  });

  it("SOKETI_DEFAULT_APP_* make the default app, webhooks included; Sockudo's names win", () => {
    const { config } = load({
      SOKETI_DEFAULT_APP_ID: 'soketi-app',
      SOKETI_DEFAULT_APP_KEY: 'soketi-key',
      SOKETI_DEFAULT_APP_SECRET: 'soketi-secret',
      SOKETI_DEFAULT_APP_MAX_CONNS: '10',
      SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: 'true',
      SOKETI_DEFAULT_APP_USER_AUTHENTICATION: 'true',
      SOKETI_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SEC: '4',
      SOKETI_DEFAULT_APP_WEBHOOKS: JSON.stringify([
        { url: 'http://hooks.example/in', event_types: ['channel_occupied'], filter: { channel_name_starts_with: 'private-' } },
      ]),
      SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND: '8',
    });
    const app = config.app_manager.array.apps?.find((a) => a.id === 'soketi-app');
    assert.ok(app, 'the default app is there');
    assert.equal(app.key, 'soketi-key');
    assert.equal(app.max_connections, 10);
    assert.equal(app.enable_client_messages, true);
    assert.equal(app.enable_user_authentication, true);
    assert.equal(app.max_client_events_per_second, 8, 'SOCKUDO_DEFAULT_APP_* win');
    assert.equal(app.webhooks[0].filter?.channel_prefix, 'private-');
    assert.match(
      configError(() => load({ SOKETI_DEFAULT_APP_ID: 'a', SOKETI_DEFAULT_APP_KEY: 'k' })),
      /SOKETI_DEFAULT_APP_SECRET\): set the app's secret/,
    );
  });

  it('bad values are refused naming the variable; the soketi Sentinel keys are read; the rest is named with what to do', () => {
    assert.match(
      configError(() => load({ SOKETI_PORT: 'eighty' })),
      /SOKETI_PORT: expected a number/,
    );
    assert.match(
      configError(() => load({ SOKETI_SHUTDOWN_GRACE_PERIOD: '-5' })),
      /SOKETI_SHUTDOWN_GRACE_PERIOD: expected a number of milliseconds/,
    );
    assert.match(
      configError(() => load({ SOKETI_DEFAULT_APP_WEBHOOKS: '{"url":1}' })),
      /expected a JSON array of webhooks/,
    );
    const sentinel = load({ SOKETI_DB_REDIS_SENTINELS: '[{"host":"s","port":26379}]', SOKETI_DB_REDIS_INSTANCE_NAME: 'm1' }).config;
    assert.deepEqual([sentinel.database.redis.sentinels, sentinel.database.redis.name], [[{ host: 's', port: 26379 }], 'm1']);
    assert.match(
      configError(() => load({ SOKETI_ADAPTER_DRIVER: 'cluster' })),
      /adapter\.driver/,
    );
    const { unreadEnv } = load({ SOKETI_CLUSTER_PORT: '11002', SOKETI_QUEUE_SQS_URL: 'x', SOKETI_NOT_A_THING: '1' });
    assert.equal(unreadEnv.length, 3);
    assert.match(unreadEnv[0], /SOKETI_CLUSTER_PORT is not read by Chorus: soketi's UDP discovery/);
    assert.match(unreadEnv[1], /SOKETI_NOT_A_THING is not read by Chorus: not a soketi variable/);
  });

  it('TLS is on once both SOKETI_SSL_CERT and SOKETI_SSL_KEY are given, as in soketi', () => {
    const { config } = load({ SOKETI_SSL_CERT: '/c.pem', SOKETI_SSL_KEY: '/k.pem', SOKETI_SSL_PASS: 'pw' });
    assert.deepEqual(
      [config.ssl.enabled, config.ssl.cert_path, config.ssl.key_path, config.ssl.passphrase],
      [true, '/c.pem', '/k.pem', 'pw'],
    );
    assert.equal(load({ SOKETI_SSL_CERT: '/c.pem' }).config.ssl.enabled, false);
  });
});

describe("config: Sockudo's file forms (config.toml, ${VAR} placeholders)", () => {
  const fixture = (name: string) => join(ROOT, 'test/fixtures', name);

  it("Sockudo's own config.toml loads with the same app and limits as its config.json", () => {
    const toml = loadConfig({ file: fixture('sockudo-config.toml'), env: {}, cwd: CWD }).config;
    const json = loadConfig({ file: fixture('sockudo-config.json'), env: {}, cwd: CWD }).config;
    assert.deepEqual(toml.app_manager.array.apps, json.app_manager.array.apps);
    assert.equal(toml.port, 6001);
    assert.equal(toml.websocket_max_payload_kb, 64);
    assert.equal(toml.user_authentication_timeout, 3600);
    assert.equal(toml.path_prefix, '', 'Sockudo\'s "/" is the root');
  });

  it('${VAR} and ${VAR:-default} are replaced from the environment; an unset one without default is refused naming it', () => {
    const dir = mkdtempSync(join(CWD, 'placeholders-'));
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      '{"port": ${CHORUS_T_PORT}, "host": "${CHORUS_T_HOST:-127.0.0.2}", "app_manager": {"array": {"apps": [{"id": "a", "key": "k", "secret": "${CHORUS_T_SECRET}"}]}}}',
    );
    const { config } = loadConfig({ file, env: { CHORUS_T_PORT: '7001', CHORUS_T_SECRET: 's3cret' }, cwd: CWD });
    assert.equal(config.port, 7001);
    assert.equal(config.host, '127.0.0.2');
    assert.equal(config.app_manager.array.apps?.[0].secret, 's3cret');
    assert.match(
      configError(() => loadConfig({ file, env: { CHORUS_T_PORT: '7001' }, cwd: CWD })),
      /uses unset environment variables: CHORUS_T_SECRET/,
    );
  });

  it('without --config, config/config.toml is read before config/config.json, as in Sockudo; bad TOML names the file', () => {
    const dir = mkdtempSync(join(CWD, 'lookup-'));
    mkdirSync(join(dir, 'config'));
    writeFileSync(join(dir, 'config/config.json'), JSON.stringify({ port: 7002, app_manager: { array: { apps: [APP] } } }));
    assert.equal(loadConfig({ env: {}, cwd: dir }).config.port, 7002);
    writeFileSync(join(dir, 'config/config.toml'), 'port = 7003\n[[app_manager.array.apps]]\nid = "t"\nkey = "tk"\nsecret = "ts"\n');
    const loaded = loadConfig({ env: {}, cwd: dir });
    assert.equal(loaded.config.port, 7003);
    assert.match(loaded.source ?? '', /config\/config\.toml$/);
    writeFileSync(join(dir, 'config/config.toml'), 'port = = 1');
    assert.match(
      configError(() => loadConfig({ env: {}, cwd: dir })),
      /config\/config\.toml is not valid TOML/,
    );
  });
});

describe("config: Redis Sentinel (Sockudo's database.redis keys)", () => {
  it('sentinels, master name, credentials and TLS reach every Redis part; a url_override part leaves Sentinel', () => {
    const { config, unreadEnv } = loadFile(
      {
        database: { redis: { sentinels: [{ host: 's1', port: 26379 }], name: 'primary', sentinel_password: 'sp' } },
        queue: { redis: { url_override: 'redis://q:6390' } },
      },
      {
        DATABASE_REDIS_SENTINEL_USERNAME: 'su',
        DATABASE_REDIS_MASTER_TLS_ENABLED: 'true',
        DATABASE_REDIS_MASTER_TLS_ACCEPT_INVALID_CERTS: 'true',
      },
    );
    assert.deepEqual(unreadEnv, []);
    const limiter = partRedisSettings(config, 'redis', config.rate_limiter.redis, 'rate_limiter.redis');
    assert.deepEqual(limiter.sentinels, [{ host: 's1', port: 26379 }]);
    assert.deepEqual([limiter.name, limiter.sentinelUsername, limiter.sentinelPassword], ['primary', 'su', 'sp']);
    assert.equal((limiter.tls as { rejectUnauthorized?: boolean }).rejectUnauthorized, false);
    assert.equal(adapterRedisSettings(config).subscriber.sentinels?.length, 1);
    assert.deepEqual(partRedisSettings(config, 'redis', config.queue.redis, 'queue.redis').sentinels, []);
  });

  it('the env list takes "host:port"; a bad entry or a missing CA file is refused naming the key', () => {
    assert.deepEqual(loadFile({}, { DATABASE_REDIS_SENTINELS: '10.0.0.1:26379, [::1]:26380' }).config.database.redis.sentinels, [
      { host: '10.0.0.1', port: 26379 },
      { host: '::1', port: 26380 },
    ]);
    assert.match(
      configError(() => loadFile({}, { DATABASE_REDIS_SENTINELS: 'nohost' })),
      /database\.redis\.sentinels\[0\]/,
    );
    const tls = loadFile({
      database: { redis: { sentinels: ['s:1'], sentinel_tls: { enabled: true, ca_path: '/nonexistent/ca.pem' } } },
    }).config;
    assert.match(
      configError(() => partRedisSettings(tls, 'redis', tls.rate_limiter.redis, 'rate_limiter.redis')),
      /database\.redis\.sentinel_tls\.ca_path: cannot read/,
    );
  });
});
