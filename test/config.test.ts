// Config loading (defaults < file < environment, Sockudo key names) and the
// CLI's handling of good and bad configurations.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, DEMO_APP } from '../src/config/load.js';
import { ConfigError } from '../src/config/errors.js';
import { runCli, startNode, writeConfig, type ChorusNode } from './helpers/node.js';

/** An empty working directory, so ./config/config.json of the repo is not picked up. */
const CWD = mkdtempSync(join(tmpdir(), 'chorus-config-test-'));
after(() => rmSync(CWD, { recursive: true, force: true }));

/** An app for files that test something else (a file without apps does not start: see below). */
const APP = { id: 'file-app', key: 'file-key', secret: 'file-secret' };

function file(name: string, content: unknown): string {
  const path = join(CWD, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** A file with one app besides what the test puts in it. */
const fileWithApp = (name: string, content: Record<string, unknown>) => file(name, { ...content, app_manager: { array: { apps: [APP] } } });

const load = (env: Record<string, string> = {}, fileName?: string) => loadConfig({ file: fileName, env, cwd: CWD });

/** Runs loadConfig expecting a ConfigError; returns its message. */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('config: defaults', () => {
  it('without a file or env, uses the documented defaults and the demo app', () => {
    const { config, source, unknownKeys } = load();
    assert.equal(source, null);
    assert.deepEqual(unknownKeys, []);
    assert.equal(config.port, 6001);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.activity_timeout, 120);
    assert.equal(config.metrics.enabled, true);
    assert.equal(config.metrics.port, 9601);
    assert.equal(config.metrics.prometheus.prefix, 'chorus_');
    assert.equal(config.adapter.driver, 'local');
    assert.equal(config.path_prefix, '');
    assert.equal(config.max_connections, null);
    assert.equal(config.instance.process_id, undefined);
    const apps = config.app_manager.array.apps!;
    assert.equal(apps.length, 1);
    assert.equal(apps[0].id, 'app-id');
    assert.equal(apps[0].key, 'app-key');
    assert.equal(apps[0].secret, 'app-secret');
    assert.equal(apps[0].enable_client_messages, true);
    assert.equal(apps[0].enabled, true);
    assert.deepEqual(DEMO_APP, { id: 'app-id', key: 'app-key', secret: 'app-secret', enable_client_messages: true });
  });

  it('app limits default to Pusher limits', () => {
    const app = load().config.app_manager.array.apps![0];
    assert.equal(app.max_connections, null);
    assert.equal(app.max_client_events_per_second, 10);
    assert.equal(app.max_presence_members_per_channel, 100);
    assert.equal(app.max_presence_member_size_in_kb, 1);
    assert.equal(app.max_channel_name_length, 200);
    assert.equal(app.max_event_channels_at_once, 100);
    assert.equal(app.max_event_name_length, 200);
    assert.equal(app.max_event_payload_in_kb, 10);
    assert.equal(app.max_event_batch_size, 10);
    assert.deepEqual(app.allowed_origins, []);
    assert.deepEqual(app.webhooks, []);
  });

  it('picks up ./config/config.json from cwd when no file is named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-config-cwd-'));
    try {
      const sub = join(dir, 'config');
      mkdirSync(sub);
      writeFileSync(join(sub, 'config.json'), JSON.stringify({ port: 7123, app_manager: { array: { apps: [APP] } } }));
      const r = loadConfig({ env: {}, cwd: dir });
      assert.equal(r.source, join(sub, 'config.json'));
      assert.equal(r.config.port, 7123);
      // CONFIG_FILE wins over ./config/config.json
      const other = join(dir, 'other.json');
      writeFileSync(other, JSON.stringify({ port: 7124, app_manager: { array: { apps: [APP] } } }));
      assert.equal(loadConfig({ env: { CONFIG_FILE: 'other.json' }, cwd: dir }).config.port, 7124);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('config: file values', () => {
  it('reads Sockudo-named keys from the file', () => {
    const path = file('values.json', {
      port: 7001,
      host: '127.0.0.1',
      activity_timeout: 60,
      path_prefix: '/ws/',
      metrics: { port: 9700, enabled: false },
      adapter: { driver: 'nats', nats: { servers: ['nats://n1:4222'] } },
      database: { redis: { host: 'redis.internal', port: 6380 } },
      app_manager: {
        array: {
          apps: [
            { id: 'a1', key: 'k1', secret: 's1', allowed_origins: ['*.example.com'] },
            { id: 2, key: 'k2', secret: 's2', enable_client_messages: true },
          ],
        },
      },
    });
    const { config, source, unknownKeys } = load({}, path);
    assert.equal(source, path);
    assert.deepEqual(unknownKeys, []);
    assert.equal(config.port, 7001);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.activity_timeout, 60);
    assert.equal(config.path_prefix, '/ws');
    assert.equal(config.metrics.port, 9700);
    assert.equal(config.metrics.enabled, false);
    assert.equal(config.adapter.driver, 'nats');
    assert.deepEqual(config.adapter.nats.servers, ['nats://n1:4222']);
    assert.equal(config.database.redis.host, 'redis.internal');
    assert.equal(config.database.redis.port, 6380);
    const apps = config.app_manager.array.apps!;
    assert.deepEqual(
      apps.map((a) => [a.id, a.key, a.secret, a.enable_client_messages]),
      [
        ['a1', 'k1', 's1', false],
        ['2', 'k2', 's2', true],
      ],
    );
    assert.deepEqual(apps[0].allowed_origins, ['*.example.com']);
  });

  it('a file relative path resolves against cwd', () => {
    fileWithApp('rel.json', { port: 7002 });
    assert.equal(load({}, 'rel.json').config.port, 7002);
  });

  it('accepts numeric strings for app limits', () => {
    const path = file('limits.json', {
      app_manager: {
        array: {
          apps: [
            {
              id: 'a',
              key: 'k',
              secret: 's',
              max_connections: '500',
              max_client_events_per_second: '20',
              max_presence_members_per_channel: '50',
              max_presence_member_size_in_kb: ' 2 ',
              max_channel_name_length: '164',
              max_event_payload_in_kb: '100',
              max_event_batch_size: '5',
            },
          ],
        },
      },
    });
    const app = load({}, path).config.app_manager.array.apps![0];
    assert.equal(app.max_connections, 500);
    assert.equal(app.max_client_events_per_second, 20);
    assert.equal(app.max_presence_members_per_channel, 50);
    assert.equal(app.max_presence_member_size_in_kb, 2);
    assert.equal(app.max_channel_name_length, 164);
    assert.equal(app.max_event_payload_in_kb, 100);
    assert.equal(app.max_event_batch_size, 5);
  });

  it('max_connections 0 (number or string) or null means unlimited', () => {
    for (const value of [0, '0', null, -1]) {
      const path = file('maxconn.json', { app_manager: { array: { apps: [{ id: 'a', key: 'k', secret: 's', max_connections: value }] } } });
      assert.equal(load({}, path).config.app_manager.array.apps![0].max_connections, null, `max_connections ${JSON.stringify(value)}`);
    }
  });

  it('a non-numeric limit string is an error naming the key', () => {
    const path = file('badlimit.json', { app_manager: { array: { apps: [{ id: 'a', key: 'k', secret: 's', max_connections: 'lots' }] } } });
    assert.match(
      configError(() => load({}, path)),
      /app_manager\.array\.apps\[0\]\.max_connections/,
    );
  });

  it('reports unknown keys without failing', () => {
    const path = file('unknown.json', {
      port: 7003,
      unix_socket: { enabled: false, path: '/tmp/x.sock' },
      database: { redis: { host: 'r' }, dynamodb: { region: 'eu-west-1' } },
      app_manager: { array: { apps: [{ id: 'a', key: 'k', secret: 's', some_future_flag: true }] } },
    });
    const { config, unknownKeys } = load({}, path);
    assert.deepEqual(unknownKeys.sort(), ['app_manager.array.apps[0].some_future_flag', 'database.dynamodb', 'unix_socket']);
    assert.equal(config.port, 7003);
    assert.equal(config.database.redis.host, 'r');
  });

  it("folds Sockudo 5's app `policy` into the app's limits and features; the rest is reported", () => {
    const path = file('policy.json', {
      app_manager: {
        array: {
          apps: [
            {
              id: 'p1',
              key: 'p1-key',
              secret: 'p1-secret',
              enabled: true,
              max_connections: 7,
              policy: {
                limits: { max_connections: '100000', max_client_events_per_second: 1000, max_event_payload_in_kb: 5, decay_seconds: 2 },
                features: { enable_client_messages: true, enable_user_authentication: true },
                channels: { allowed_origins: ['https://a.example'], channel_delta_compression: { 'ticker:*': { enabled: true } } },
                webhooks: [{ url: 'http://127.0.0.1:9/hook', event_types: ['channel_occupied'] }],
                idempotency: { enabled: true, ttl_seconds: 300 },
                history: { enabled: true, retention_window_seconds: 900, max_messages_per_channel: 200, rewind_enabled: true },
                connection_recovery: null,
              },
            },
            { id: 'flat', key: 'flat-key', secret: 'flat-secret', max_connections: 3 },
          ],
        },
      },
    });
    const { config, unknownKeys } = load({}, path);
    const [p1, flat] = config.app_manager.array.apps!;
    assert.equal(p1.max_connections, 100000, 'the policy value wins over the flat one');
    assert.equal(p1.max_client_events_per_second, 1000);
    assert.equal(p1.max_event_payload_in_kb, 5);
    assert.equal(p1.enable_client_messages, true);
    assert.equal(p1.enable_user_authentication, true);
    assert.deepEqual(p1.allowed_origins, ['https://a.example']);
    assert.deepEqual(
      p1.webhooks.map((w) => w.url),
      ['http://127.0.0.1:9/hook'],
    );
    assert.deepEqual(p1.idempotency, { enabled: true, ttl_seconds: 300 });
    assert.deepEqual(
      { enabled: p1.history.enabled, ttl: p1.history.ttl_seconds, max: p1.history.max_messages },
      { enabled: true, ttl: 900, max: 200 },
    );
    assert.equal(flat.history.enabled, false, 'history is off unless an app turns it on');
    assert.equal(flat.max_connections, 3);
    assert.deepEqual(unknownKeys.sort(), [
      'app_manager.array.apps[0].policy.channels.channel_delta_compression',
      'app_manager.array.apps[0].policy.history.rewind_enabled',
      'app_manager.array.apps[0].policy.limits.decay_seconds',
    ]);
    // A policy value the app schema refuses is an error naming the flat key.
    const bad = file('policy-bad.json', {
      app_manager: { array: { apps: [{ ...APP, policy: { limits: { max_connections: 'lots' } } }] } },
    });
    assert.match(
      configError(() => load({}, bad)),
      /apps\[0\]\.max_connections/,
    );
    const notObject = file('policy-not-object.json', { app_manager: { array: { apps: [{ ...APP, policy: { limits: 5 } }] } } });
    assert.match(
      configError(() => load({}, notObject)),
      /apps\[0\]\.policy\.limits must be an object/,
    );
  });

  it('accepts app_manager.apps as an alias for app_manager.array.apps', () => {
    const path = file('alias.json', { app_manager: { driver: 'memory', apps: [{ id: 'x', key: 'xk', secret: 'xs' }] } });
    const { config, unknownKeys } = load({}, path);
    assert.deepEqual(unknownKeys, []);
    assert.deepEqual(
      config.app_manager.array.apps!.map((a) => a.id),
      ['x'],
    );
  });

  it("reads an app's history block with its defaults, and refuses bad values naming the key", () => {
    const ok = file('history.json', { app_manager: { array: { apps: [{ ...APP, history: { enabled: true, channels: ['chat-*'] } }] } } });
    const h = load({}, ok).config.app_manager.array.apps![0].history;
    assert.deepEqual(h, { enabled: true, channels: ['chat-*'], max_messages: 1000, ttl_seconds: 3600, max_replay_messages: 1000 });
    for (const [history, key] of [
      [{ max_messages: 0 }, 'max_messages'],
      [{ ttl_seconds: 7 * 86_400 + 1 }, 'ttl_seconds'],
      [{ channels: 'chat-' }, 'channels'],
      [{ enabled: 'yes' }, 'enabled'],
      [{ max_replay_messages: 1.5 }, 'max_replay_messages'],
    ] as const) {
      const bad = file(`history-bad-${key}.json`, { app_manager: { array: { apps: [{ ...APP, history }] } } });
      assert.match(
        configError(() => load({}, bad)),
        new RegExp(`apps\\[0\\]\\.history\\.${key}`),
      );
    }
  });

  it('rejects duplicate app ids and keys', () => {
    const dupId = file('dupid.json', {
      app_manager: {
        array: {
          apps: [
            { id: 'a', key: 'k1', secret: 's' },
            { id: 'a', key: 'k2', secret: 's' },
          ],
        },
      },
    });
    assert.match(
      configError(() => load({}, dupId)),
      /duplicate app id "a"/,
    );
    const dupKey = file('dupkey.json', {
      app_manager: {
        array: {
          apps: [
            { id: 'a', key: 'k', secret: 's' },
            { id: 'b', key: 'k', secret: 's' },
          ],
        },
      },
    });
    assert.match(
      configError(() => load({}, dupKey)),
      /duplicate app key "k"/,
    );
  });

  it('rejects a bad port in the file, naming the key and the file', () => {
    const path = file('badport.json', { port: 'abc' });
    const msg = configError(() => load({}, path));
    assert.match(msg, /\bport: /);
    assert.ok(msg.includes(path), msg);
    assert.match(
      configError(() => load({}, file('bigport.json', { port: 70000 }))),
      /\bport: /,
    );
  });

  it('rejects a missing file, invalid JSON and a non-object', () => {
    assert.match(
      configError(() => load({}, join(CWD, 'nope.json'))),
      /cannot read config file .*nope\.json: ENOENT/,
    );
    assert.match(
      configError(() => load({}, file('broken.json', '{"port": 6001,'))),
      /is not valid JSON/,
    );
    assert.match(
      configError(() => load({}, file('array.json', '[1,2]'))),
      /must hold a JSON object/,
    );
  });
});

describe('config: environment overrides (Sockudo names)', () => {
  const path = () => fileWithApp('base.json', { port: 7001, host: '127.0.0.1', metrics: { port: 9700 }, adapter: { driver: 'local' } });

  it('PORT, HOST, METRICS_PORT, ADAPTER_DRIVER override the file', () => {
    const { config } = load({ PORT: '7100', HOST: '::1', METRICS_PORT: '9800', ADAPTER_DRIVER: 'redis' }, path());
    assert.equal(config.port, 7100);
    assert.equal(config.host, '::1');
    assert.equal(config.metrics.port, 9800);
    assert.equal(config.adapter.driver, 'redis');
  });

  it('empty env values are ignored', () => {
    const { config } = load({ PORT: '', HOST: '' }, path());
    assert.equal(config.port, 7001);
    assert.equal(config.host, '127.0.0.1');
  });

  it('DATABASE_REDIS_HOST/PORT and REDIS_CLUSTER_NODES (a comma list)', () => {
    const { config } = load({
      DATABASE_REDIS_HOST: 'redis.example',
      DATABASE_REDIS_PORT: '6390',
      REDIS_CLUSTER_NODES: 'r1:7000, r2:7001,,r3:7002 ',
    });
    assert.equal(config.database.redis.host, 'redis.example');
    assert.equal(config.database.redis.port, 6390);
    assert.deepEqual(config.database.redis.cluster_nodes, ['r1:7000', 'r2:7001', 'r3:7002']);
  });

  it('NATS_SERVERS (a comma list) and NATS credentials', () => {
    const { config } = load({
      ADAPTER_DRIVER: 'nats',
      NATS_SERVERS: 'nats://a:4222,nats://b:4222',
      NATS_USERNAME: 'u',
      NATS_PASSWORD: 'p',
    });
    assert.equal(config.adapter.driver, 'nats');
    assert.deepEqual(config.adapter.nats.servers, ['nats://a:4222', 'nats://b:4222']);
    assert.equal(config.adapter.nats.username, 'u');
    assert.equal(config.adapter.nats.password, 'p');
  });

  it('INSTANCE_PROCESS_ID and ADAPTER_CLUSTER_HEALTH_*', () => {
    const { config } = load({
      INSTANCE_PROCESS_ID: 'node-7',
      ADAPTER_CLUSTER_HEALTH_ENABLED: 'false',
      ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: '250',
      ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: '1500',
      ADAPTER_CLUSTER_HEALTH_CLEANUP_INTERVAL_MS: '300',
    });
    assert.equal(config.instance.process_id, 'node-7');
    assert.deepEqual(config.adapter.cluster_health, {
      enabled: false,
      heartbeat_interval_ms: 250,
      node_timeout_ms: 1500,
      cleanup_interval_ms: 300,
    });
  });

  it('boolean env values accept true/false/1/0/yes/no/on/off', () => {
    for (const [raw, expected] of [
      ['true', true],
      ['1', true],
      ['YES', true],
      ['on', true],
      ['false', false],
      ['0', false],
      ['no', false],
      ['Off', false],
    ] as const) {
      assert.equal(load({ METRICS_ENABLED: raw }).config.metrics.enabled, expected, raw);
    }
    assert.match(
      configError(() => load({ METRICS_ENABLED: 'maybe' })),
      /METRICS_ENABLED/,
    );
  });

  it('SOCKUDO_DEFAULT_APP_* shape the demo app', () => {
    const { config } = load({
      SOCKUDO_DEFAULT_APP_ID: 'my-id',
      SOCKUDO_DEFAULT_APP_KEY: 'my-key',
      SOCKUDO_DEFAULT_APP_SECRET: 'my-secret',
      SOCKUDO_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: 'false',
    });
    const apps = config.app_manager.array.apps!;
    assert.deepEqual(
      apps.map((a) => [a.id, a.key, a.secret, a.enable_client_messages]),
      [['my-id', 'my-key', 'my-secret', false]],
    );
  });

  it("the rest of Sockudo's SOCKUDO_DEFAULT_APP_* limits and features reach the default app, typed", () => {
    const ids = { SOCKUDO_DEFAULT_APP_ID: 'my-id', SOCKUDO_DEFAULT_APP_KEY: 'my-key', SOCKUDO_DEFAULT_APP_SECRET: 'my-secret' };
    const [app] = load({
      ...ids,
      SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS: '10',
      SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND: '7',
      SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND: '50',
      SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND: '60',
      SOCKUDO_DEFAULT_APP_MAX_PRESENCE_MEMBERS_PER_CHANNEL: '20',
      SOCKUDO_DEFAULT_APP_MAX_PRESENCE_MEMBER_SIZE_IN_KB: '3',
      SOCKUDO_DEFAULT_APP_MAX_CHANNEL_NAME_LENGTH: '150',
      SOCKUDO_DEFAULT_APP_MAX_EVENT_CHANNELS_AT_ONCE: '5',
      SOCKUDO_DEFAULT_APP_MAX_EVENT_NAME_LENGTH: '90',
      SOCKUDO_DEFAULT_APP_MAX_EVENT_PAYLOAD_IN_KB: '5',
      SOCKUDO_DEFAULT_APP_MAX_EVENT_BATCH_SIZE: '4',
      SOCKUDO_DEFAULT_APP_ENABLE_USER_AUTHENTICATION: 'true',
      SOCKUDO_DEFAULT_APP_ENABLE_WATCHLIST_EVENTS: 'false',
      SOCKUDO_DEFAULT_APP_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
    }).config.app_manager.array.apps!;
    assert.deepEqual(
      [
        app.max_connections,
        app.max_client_events_per_second,
        app.max_read_requests_per_second,
        app.max_backend_events_per_second,
        app.max_presence_members_per_channel,
        app.max_presence_member_size_in_kb,
        app.max_channel_name_length,
        app.max_event_channels_at_once,
        app.max_event_name_length,
        app.max_event_payload_in_kb,
        app.max_event_batch_size,
        app.enable_user_authentication,
        app.enable_watchlist_events,
        app.allowed_origins,
      ],
      [10, 7, 50, 60, 20, 3, 150, 5, 90, 5, 4, true, false, ['https://a.example', 'https://b.example']],
    );
    // Sockudo's older switch for client events, used only when the new one is unset.
    assert.equal(load({ ...ids, SOCKUDO_ENABLE_CLIENT_MESSAGES: 'true' }).config.app_manager.array.apps![0].enable_client_messages, true);
    assert.equal(
      load({ ...ids, SOCKUDO_ENABLE_CLIENT_MESSAGES: 'true', SOCKUDO_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: 'false' }).config.app_manager.array
        .apps![0].enable_client_messages,
      false,
    );
    assert.match(
      configError(() => load({ ...ids, SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS: 'ten' })),
      /SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS: expected a number/,
    );
  });

  it("Sockudo's database_pooling and its env vars size the app database pool; min above max is refused", () => {
    const defaults = load().config;
    assert.deepEqual(defaults.database_pooling, { enabled: true, min: 2, max: 10 });
    const { config } = load({
      DATABASE_POOLING_ENABLED: 'false',
      DATABASE_POOL_MIN: '3',
      DATABASE_POOL_MAX: '30',
      DATABASE_MYSQL_POOL_MIN: '4',
      DATABASE_MYSQL_POOL_MAX: '40',
      DATABASE_CONNECTION_POOL_SIZE: '12',
    });
    assert.deepEqual(config.database_pooling, { enabled: false, min: 3, max: 30 });
    assert.deepEqual(
      [config.database.mysql.pool_min, config.database.mysql.pool_max, config.database.mysql.connection_pool_size],
      [4, 40, 12],
    );
    assert.match(
      configError(() => load({ DATABASE_POOL_MIN: '20', DATABASE_POOL_MAX: '5' })),
      /database_pooling\.min must be at most/,
    );
  });

  it('server-wide channel_limits, event_limits and presence fill the limits an app leaves unset (as soketi)', () => {
    const sections = file('server-wide.json', {
      channel_limits: { max_name_length: 120, cache_ttl: 3600 },
      event_limits: { max_channels_at_once: 7, max_name_length: 80, max_payload_in_kb: 5, max_batch_size: 3 },
      presence: { max_members_per_channel: 20, max_member_size_in_kb: 4 },
      app_manager: {
        array: {
          apps: [
            { id: 'a', key: 'k', secret: 's' },
            { id: 'b', key: 'kb', secret: 'sb', max_event_payload_in_kb: 50 },
          ],
        },
      },
    });
    const { config, unknownKeys } = load(
      { SOCKUDO_DEFAULT_APP_ID: 'e', SOCKUDO_DEFAULT_APP_KEY: 'ek', SOCKUDO_DEFAULT_APP_SECRET: 'es' },
      sections,
    );
    const [a, b, e] = config.app_manager.array.apps!;
    const limits = (app: typeof a) => [
      app.max_channel_name_length,
      app.max_event_channels_at_once,
      app.max_event_name_length,
      app.max_event_payload_in_kb,
      app.max_event_batch_size,
      app.max_presence_members_per_channel,
      app.max_presence_member_size_in_kb,
    ];
    assert.deepEqual(limits(a), [120, 7, 80, 5, 3, 20, 4]);
    assert.deepEqual(limits(b), [120, 7, 80, 50, 3, 20, 4], "the app's own value wins");
    assert.deepEqual(limits(e), [120, 7, 80, 5, 3, 20, 4], 'the env default app too');
    // Keys of these sections that Chorus has no use for are still reported.
    assert.deepEqual(unknownKeys, ['channel_limits.cache_ttl']);
    assert.match(
      configError(() =>
        load(
          {},
          file('bad-limit.json', {
            event_limits: { max_payload_in_kb: -1 },
            app_manager: { array: { apps: [{ id: 'a', key: 'k', secret: 's' }] } },
          }),
        ),
      ),
      /event_limits\.max_payload_in_kb/,
    );
  });

  it('SOCKUDO_DEFAULT_APP_ID adds the default app next to apps from the file, once', () => {
    const withApps = file('withapps.json', { app_manager: { array: { apps: [{ id: 'a', key: 'k', secret: 's' }] } } });
    const added = load({ SOCKUDO_DEFAULT_APP_ID: 'b', SOCKUDO_DEFAULT_APP_KEY: 'bk', SOCKUDO_DEFAULT_APP_SECRET: 'bs' }, withApps);
    assert.deepEqual(
      added.config.app_manager.array.apps!.map((a) => [a.id, a.key]),
      [
        ['a', 'k'],
        ['b', 'bk'],
      ],
    );
    const same = load({ SOCKUDO_DEFAULT_APP_ID: 'a', SOCKUDO_DEFAULT_APP_SECRET: 'other' }, withApps);
    assert.deepEqual(
      same.config.app_manager.array.apps!.map((a) => [a.id, a.key]),
      [['a', 'k']],
    );
  });

  it('never fills in a secret: an id or key from the environment needs its secret, a file needs apps', () => {
    assert.match(
      configError(() => load({ SOCKUDO_DEFAULT_APP_ID: 'my-id', SOCKUDO_DEFAULT_APP_KEY: 'my-key' })),
      /SOCKUDO_DEFAULT_APP_SECRET/,
    );
    assert.match(
      configError(() => load({ SOCKUDO_DEFAULT_APP_KEY: 'my-key' })),
      /without SOCKUDO_DEFAULT_APP_SECRET/,
    );
    const noApps = file('noapps.json', { port: 7005 });
    assert.match(
      configError(() => load({}, noApps)),
      /no apps configured: set app_manager\.array\.apps, or SOCKUDO_DEFAULT_APP_ID/,
    );
    // With the three variables a file without apps starts, and a database needs no static apps.
    const fromEnv = load({ SOCKUDO_DEFAULT_APP_ID: 'e', SOCKUDO_DEFAULT_APP_KEY: 'ek', SOCKUDO_DEFAULT_APP_SECRET: 'es' }, noApps);
    assert.deepEqual(
      fromEnv.config.app_manager.array.apps!.map((a) => [a.id, a.key, a.secret]),
      [['e', 'ek', 'es']],
    );
    assert.equal(load({}, file('mysql.json', { app_manager: { driver: 'mysql' } })).config.app_manager.driver, 'mysql');
    // A key error is still reported as such, not as the missing apps.
    assert.match(
      configError(() => load({}, file('badport2.json', { port: 'abc' }))),
      /\bport: /,
    );
  });

  it('a non-numeric PORT or METRICS_PORT names the variable', () => {
    assert.match(
      configError(() => load({ PORT: 'abc' })),
      /PORT: expected a number, got "abc"/,
    );
    assert.match(
      configError(() => load({ METRICS_PORT: '12x' })),
      /METRICS_PORT/,
    );
  });

  it('an unknown ADAPTER_DRIVER names adapter.driver', () => {
    assert.match(
      configError(() => load({ ADAPTER_DRIVER: 'kafka' })),
      /adapter\.driver: /,
    );
  });
});

// Independent processes: run side by side.
describe('CLI: runCli', { concurrency: true }, () => {
  it('--help exits 0 with usage text', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage:/);
    assert.match(r.stdout, /chorus start \[--config FILE\]/);
    assert.equal(r.stderr, '');
  });

  it('--version exits 0 with the package version', async () => {
    const r = await runCli(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '0.1.0\n');
  });

  it('no command or an unknown command exits 2 with usage', async () => {
    const none = await runCli([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /missing command/);
    const bad = await runCli(['serve']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "serve"/);
    const flag = await runCli(['start', '--bogus']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /unknown argument: --bogus/);
  });

  it('port "abc" in the file exits 2 naming the key', async () => {
    const r = await runCli(['start', '--config', writeConfig({ port: 'abc' })]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\bport: Invalid input/);
  });

  it('PORT=abc in the environment exits 2 naming the variable', async () => {
    const r = await runCli(['start', '--config', writeConfig({ port: 0, metrics: { port: 0 } })], { PORT: 'abc' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /environment variable PORT: expected a number, got "abc"/);
  });

  it('an unknown adapter driver exits 2', async () => {
    const r = await runCli(['start', '--config', writeConfig({ port: 0, metrics: { port: 0 }, adapter: { driver: 'kafka' } })]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /adapter\.driver: /);
  });

  it('a missing config file exits 2', async () => {
    const missing = join(CWD, 'does-not-exist.json');
    const r = await runCli(['start', '--config', missing]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read config file/);
    assert.ok(r.stderr.includes(missing), r.stderr);
  });

  it('--config without a path exits 2', async () => {
    const r = await runCli(['start', '--config']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--config needs a file path/);
  });

  it('invalid JSON exits 2', async () => {
    const r = await runCli(['start', '--config', file('cli-broken.json', '{ "port": 0, ')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /is not valid JSON/);
  });
});

describe('CLI: unknown keys are warnings, not errors', () => {
  let node: ChorusNode;
  before(async () => {
    node = await startNode({
      config: { unix_socket: { enabled: false, path: '/tmp/chorus.sock' }, database: { dynamodb: { region: 'x' } } },
    });
  });
  after(async () => {
    await node?.stop();
  });

  it('logs a warning per unknown key and starts', async () => {
    const warnings = node.logs
      .map((line) => {
        try {
          return JSON.parse(line) as { level: number; key?: string; msg: string };
        } catch {
          return null;
        }
      })
      .filter((e): e is { level: number; key?: string; msg: string } => e !== null && e.level === 40 && e.key !== undefined);
    assert.deepEqual(warnings.map((w) => w.key).sort(), ['database.dynamodb', 'unix_socket']);
    assert.ok(
      warnings.every((w) => w.msg === `unknown config key "${w.key}" ignored`),
      JSON.stringify(warnings),
    );
    const res = await fetch(`${node.url}/up`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'OK');
  });
});
