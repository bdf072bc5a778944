// The start-up contract with the broker (docs/RELIABILITY.md), with real redis-server and
// nats-server processes on loopback. A broker that refuses ends the start at once with its
// own words; one that is unreachable is waited for: the node listens after the first report,
// /up answers 503 with the reason, clients and the API are told to retry, and the node
// serves as soon as the broker answers, in the same process (no crash loop).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { Redis } from 'ioredis';
import { freePort, startNats, startRedis, type Broker } from './helpers/brokers.js';
import { startSentinel } from './helpers/ha-brokers.js';
import { runCli, startNode, writeConfig, DEMO_APP, type ChorusNode } from './helpers/node.js';
import { connected, pusherClient, rawSocket, serverSdk, until, waitFor } from './helpers/clients.js';

const APPS = { app_manager: { array: { apps: [DEMO_APP] } }, metrics: { enabled: false }, host: '127.0.0.1', port: 0 };
const redisAt = (port: number, extra: Record<string, unknown> = {}) => ({
  ...APPS,
  adapter: { driver: 'redis' },
  database: { redis: { host: '127.0.0.1', port, ...extra } },
});

/** Starts a node that must exit: its exit code and output, within `ms`. */
const failingStart = (config: Record<string, unknown>, ms = 15_000) => runCli(['start', '--config', writeConfig(config)], {}, ms);

const started: Array<ChorusNode | Broker> = [];
after(async () => {
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
});

async function upStatus(node: ChorusNode): Promise<{ status: number; body: string }> {
  const res = await fetch(`${node.url}/up`);
  return { status: res.status, body: await res.text() };
}

describe('start-up: a broker that refuses ends the start with its own words', () => {
  it('a wrong password: exit 1 with WRONGPASS, at once', async () => {
    const redis = await startRedis(['--requirepass', 'right']);
    started.push(redis);
    const begun = Date.now();
    const out = await failingStart(redisAt(redis.port, { password: 'wrong' }));
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /WRONGPASS/);
    assert.ok(Date.now() - begun < 8000, 'not after a connect timeout');
  });

  it('a database that does not exist: exit 1 with the broker answer', async () => {
    const redis = await startRedis();
    started.push(redis);
    const out = await failingStart(redisAt(redis.port, { db: 99 }));
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /DB index is out of range/);
  });

  it('an ACL user without the commands Chorus needs: exit 1 with NOPERM', async () => {
    const redis = await startRedis();
    started.push(redis);
    const admin = new Redis({ port: redis.port, lazyConnect: true });
    await admin.connect();
    await admin.call('ACL', 'SETUSER', 'limited', 'on', '>pw', '-@all', '+auth', '+hello');
    admin.disconnect();
    const out = await failingStart(redisAt(redis.port, { username: 'limited', password: 'pw' }));
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /NOPERM/);
  });

  it('protected mode (-DENIED, then the server hangs up): exit 1 with DENIED, not silence', async () => {
    // Redis answers -DENIED only to clients beyond loopback, and tests stay on loopback: this
    // listener writes exactly what a protected redis-server writes to such a client, then closes.
    const denied =
      '-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.\r\n';
    const server: Server = createServer((socket) => {
      socket.on('error', () => undefined); // the client may reset first
      socket.end(denied);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const out = await failingStart(redisAt(port));
      assert.equal(out.code, 1, out.stderr);
      assert.match(out.stderr, /DENIED Redis is running in protected mode/);
    } finally {
      server.close();
    }
  });

  it('a sentinel with another password: exit 1 with the sentinel WRONGPASS, not a wait', async () => {
    const master = await startRedis();
    started.push(master);
    const sentinel = await startSentinel('auth-master', master.port, 1, ['requirepass sentinel-right']);
    const sentinelPort = sentinel.port;
    try {
      const out = await failingStart({
        ...APPS,
        adapter: { driver: 'redis' },
        database: { redis: { sentinels: [{ host: '127.0.0.1', port: sentinelPort }], name: 'auth-master', sentinel_password: 'wrong' } },
      });
      assert.equal(out.code, 1, out.stderr);
      assert.match(out.stderr, /sentinel: WRONGPASS/);
    } finally {
      await sentinel.stop();
    }
  });

  it('NATS with wrong credentials: exit 1 with the server authorization error', async () => {
    const nats = await startNats(['--user', 'chorus', '--pass', 'right'], { jetstream: false });
    started.push(nats);
    const out = await failingStart({
      ...APPS,
      adapter: { driver: 'nats', nats: { servers: [`nats://127.0.0.1:${nats.port}`], username: 'chorus', password: 'wrong' } },
    });
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /Authorization Violation/i);
  });
});

describe('start-up: an unreachable broker is waited for, in the same process', () => {
  it('Redis down at start: /up 503 with the reason, clients and API told to retry; serves once it is up', async () => {
    const redis = await startRedis();
    started.push(redis);
    await redis.stop('SIGKILL');
    const node = await startNode({ config: redisAt(redis.port), timeoutMs: 15_000 });
    started.push(node);
    assert.ok(
      node.logs.some((l) => l.includes('waiting for the broker') && l.includes('ECONNREFUSED')),
      node.logs.join('\n'),
    );

    const up = await upStatus(node);
    assert.equal(up.status, 503);
    assert.equal(up.body, 'ERROR: waiting for the broker');
    const sock = await rawSocket(node);
    const refused = await sock.next((f) => f.event === 'pusher:error');
    assert.equal((refused.data as { code: number }).code, 4100);
    assert.equal((await sock.closed).code, 4100);
    const trigger = await serverSdk(node)
      .trigger('early', 'e', {})
      .then(
        () => 200,
        (err: { status?: number }) => err.status,
      );
    assert.equal(trigger, 503);

    await redis.restart();
    await until(async () => (await upStatus(node)).status === 200, 15_000, '/up turns 200 once Redis is up');
    assert.equal(node.proc.exitCode, null, 'the same process serves');
    const client = pusherClient(node);
    try {
      await connected(client);
      const channel = client.subscribe('after-wait');
      await waitFor(channel, 'pusher:subscription_succeeded');
      const got = waitFor<{ n: number }>(channel, 'late');
      await serverSdk(node).trigger('after-wait', 'late', { n: 1 });
      assert.deepEqual(await got, { n: 1 });
    } finally {
      client.disconnect();
    }
  });

  it('Sentinel up, its master down at start: the node waits and joins when the master is back', async () => {
    const master = await startRedis();
    started.push(master);
    await master.stop('SIGKILL');
    const sentinel = await startSentinel('late-master', master.port);
    const sentinelPort = sentinel.port;
    try {
      const config = {
        ...APPS,
        adapter: { driver: 'redis' },
        database: { redis: { sentinels: [{ host: '127.0.0.1', port: sentinelPort }], name: 'late-master' } },
      };
      const node = await startNode({ config, timeoutMs: 15_000 });
      started.push(node);
      assert.equal((await upStatus(node)).status, 503);
      await master.restart();
      await until(async () => (await upStatus(node)).status === 200, 15_000, '/up turns 200 once the master is up');
      assert.equal(node.proc.exitCode, null);
    } finally {
      await sentinel.stop();
    }
  });

  it('NATS down at start: the node joins when it comes up; SIGTERM while waiting exits 0 at once', async () => {
    const nats = await startNats([], { jetstream: false });
    started.push(nats);
    await nats.stop('SIGKILL');
    const config = { ...APPS, adapter: { driver: 'nats', nats: { servers: [`nats://127.0.0.1:${nats.port}`] } } };
    const node = await startNode({ config, timeoutMs: 15_000 });
    started.push(node);
    assert.equal((await upStatus(node)).status, 503);
    await nats.restart();
    await until(async () => (await upStatus(node)).status === 200, 15_000, '/up turns 200 once NATS is up');
    await nats.stop('SIGKILL');

    const waiting = await startNode({
      config: { ...config, adapter: { driver: 'nats', nats: { servers: [`nats://127.0.0.1:${await freePort()}`] } } },
      timeoutMs: 15_000,
    });
    const begun = Date.now();
    assert.equal(await waiting.stop('SIGTERM'), 0);
    assert.ok(Date.now() - begun < 5000, 'a waiting node stops at once');
  });
});
