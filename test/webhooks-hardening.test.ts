// Webhook delivery under attack, against real node processes: a black-holed
// endpoint plus channel churn must not exhaust the node or starve another app,
// a failing endpoint trips a circuit breaker that closes again, the Redis queue
// stays fair, webhook URLs are checked at load and never logged with secrets.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rowToApp } from '../src/apps/mysql-store.js';
import { startBlackHole, type BlackHole } from './helpers/black-hole.js';
import { startRedis, startRedisCluster, type Broker, type RedisCluster } from './helpers/brokers.js';
import { framesOf, rawSocket, sleep, until, type RawSocket } from './helpers/clients.js';
import { runCli, startNode, writeConfig, type ChorusNode, type TestApp } from './helpers/node.js';
import { openFds, rssMiB } from './helpers/proc.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

const OCCUPANCY = ['channel_occupied', 'channel_vacated'];

/** Sum of a metric's samples whose label set contains `labels` (e.g. 'app_id="a"'). */
async function metric(node: ChorusNode, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#') && (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function connect(node: ChorusNode, app: TestApp): Promise<RawSocket> {
  const sock = await rawSocket(node, `/app/${app.key}?protocol=7&client=js&version=8.4.0`);
  await sock.next((f) => f.event === 'pusher:connection_established');
  return sock;
}

/** Round trip of one pusher:ping, in ms. */
async function pingMs(sock: RawSocket): Promise<number> {
  const before = framesOf(sock, 'pusher:pong').length;
  const start = performance.now();
  sock.send({ event: 'pusher:ping', data: {} });
  await until(() => framesOf(sock, 'pusher:pong').length > before, 5000, 'pong');
  return performance.now() - start;
}

/**
 * Subscribes and unsubscribes distinct public channels: `pairsPerTick` pairs every
 * 20 ms for `durationMs`. Every pair is a channel_occupied and a channel_vacated.
 */
async function churn(sock: RawSocket, tag: string, durationMs: number, pairsPerTick: number): Promise<number> {
  const ticks = Math.ceil(durationMs / 20);
  let pairs = 0;
  for (let t = 0; t < ticks; t++) {
    for (let i = 0; i < pairsPerTick; i++) {
      const channel = `churn-${tag}-${pairs++}`;
      sock.send({ event: 'pusher:subscribe', data: { channel } });
      sock.send({ event: 'pusher:unsubscribe', data: { channel } });
    }
    await sleep(20);
  }
  return pairs;
}

const debugHeap = async (node: ChorusNode) => (await fetch(`http://127.0.0.1:${node.metricsPort}/debug/heap`)).json();

describe('webhooks hardening: a black-holed endpoint and channel churn (memory queue)', () => {
  const A: TestApp = { id: 'bh-a', key: 'bh-a-key', secret: 'bh-a-secret' };
  const B: TestApp = { id: 'bh-b', key: 'bh-b-key', secret: 'bh-b-secret' };
  let hole: BlackHole;
  let rx: WebhookReceiver;
  let node: ChorusNode;
  const socks: RawSocket[] = [];

  before(async () => {
    hole = await startBlackHole();
    rx = await startWebhookReceiver([B]);
    A.webhooks = [{ url: `${hole.url}/hook?token=SECRET123`, event_types: OCCUPANCY }];
    B.webhooks = [{ url: `${rx.url}/b`, event_types: ['channel_occupied'] }];
    node = await startNode({
      config: {
        app_manager: { array: { apps: [A, B] } },
        webhooks: { vacated_delay_ms: 0 },
        shutdown_grace_period: 2,
      },
      env: { CHORUS_DEBUG_GC: '1' },
      nodeArgs: ['--expose-gc'],
    });
  });
  after(async () => {
    for (const s of socks) s.close();
    await node?.stop();
    await rx?.stop();
    await hole?.stop();
  });

  it('bounded sockets and memory, a responsive node, and every webhook of the healthy app', async () => {
    const pid = node.proc.pid!;
    const bystander = await connect(node, B);
    const attacker = await connect(node, A);
    const bSocket = await connect(node, B);
    socks.push(bystander, attacker, bSocket);
    await pingMs(bystander);
    await debugHeap(node);
    const base = { fds: openFds(pid), rss: rssMiB(pid) };

    const peak = { fds: base.fds, rss: base.rss, pingMs: 0 };
    const sample = () => {
      peak.fds = Math.max(peak.fds, openFds(pid));
      peak.rss = Math.max(peak.rss, rssMiB(pid));
    };
    // The bystander pings every 100 ms while the attack runs (bounded by `running`).
    let running = true;
    const pinger = (async () => {
      for (let i = 0; running && i < 200; i++) {
        peak.pingMs = Math.max(peak.pingMs, await pingMs(bystander));
        sample();
        await sleep(100);
      }
    })();
    // App B's 20 channels are occupied while app A's churn runs.
    const bChannels = Array.from({ length: 20 }, (_, i) => `healthy-${i}`);
    const occupyB = (async () => {
      for (const channel of bChannels) {
        bSocket.send({ event: 'pusher:subscribe', data: { channel } });
        await sleep(100);
      }
    })();
    // 6 pairs per 20 ms: 300 pairs a second. CHURN_PAIRS_PER_TICK=20 gives the report's 1,000.
    const pairs = await churn(attacker, 'a', 3000, Number(process.env.CHURN_PAIRS_PER_TICK ?? 6));
    await occupyB;
    await rx.waitFor(() => bChannels.every((ch) => rx.events('channel_occupied').some((e) => e.channel === ch)), 10_000);
    running = false;
    await pinger;
    sample();

    // After the attack: the node answers at once and gives its memory back.
    const afterPing = Math.max(await pingMs(bystander), await pingMs(bystander), await pingMs(bystander));
    await sleep(1000);
    await debugHeap(node);
    const after = { fds: openFds(pid), rss: rssMiB(pid) };
    const dropped = await metric(node, 'chorus_webhooks_dropped_total', `app_id="${A.id}"`);
    const droppedB = await metric(node, 'chorus_webhooks_dropped_total', `app_id="${B.id}"`);
    const depth = await metric(node, 'chorus_webhook_queue_depth');
    console.log(
      JSON.stringify({
        pairs,
        base,
        peak,
        after,
        afterPingMs: Math.round(afterPing),
        blackHoleConnections: hole.accepted(),
        droppedA: dropped,
        droppedB,
        depth,
        deliveredB: new Set(rx.events('channel_occupied').map((e) => e.channel)).size,
      }),
    );

    assert.ok(peak.fds < base.fds + 100, `open fds stay bounded (base ${base.fds}, peak ${peak.fds})`);
    assert.ok(hole.accepted() <= 16, `sockets to the black hole are bounded (${hole.accepted()})`);
    assert.ok(peak.pingMs < 500, `ping during the attack answered in ${Math.round(peak.pingMs)} ms`);
    assert.ok(afterPing < 500, `ping after the attack answered in ${Math.round(afterPing)} ms`);
    assert.ok(after.rss < base.rss + 100, `RSS back near baseline (base ${base.rss.toFixed(0)} MiB, after ${after.rss.toFixed(0)} MiB)`);
    assert.equal(droppedB, 0, "app B's webhooks are never dropped for app A's backlog");
    assert.ok(dropped > 0 && depth <= 1000, `app A holds at most its 1,000 batches (depth ${depth}, dropped ${dropped})`);
    const deliveredB = new Set(rx.events('channel_occupied').map((e) => e.channel));
    assert.deepEqual([...deliveredB].sort(), [...bChannels].sort());
    assert.ok(rx.deliveries.every((d) => d.valid));
    // The full app's drops are logged once (a minute), with origin and path only.
    const drops = node.logs.filter((l) => l.includes('its newest batch dropped'));
    assert.equal(drops.length, 1, drops.join('\n'));
    assert.equal(JSON.parse(drops[0]).url, `${hole.url}/hook`);
    assert.deepEqual(
      node.logs.filter((l) => l.includes('SECRET123')),
      [],
    );
  });
});

describe('webhooks hardening: a failing endpoint trips its circuit breaker, a healthy one closes it', () => {
  const APP: TestApp = { id: 'cb-app', key: 'cb-key', secret: 'cb-secret' };
  const COOLDOWN_MS = 3000;
  let rx: WebhookReceiver;
  let node: ChorusNode;
  let sock: RawSocket | undefined;

  before(async () => {
    rx = await startWebhookReceiver([APP]);
    APP.webhooks = [{ url: `${rx.url}/cb?token=SECRET123`, event_types: ['channel_occupied'] }];
    node = await startNode({
      config: {
        app_manager: { array: { apps: [APP] } },
        webhooks: { vacated_delay_ms: 0, circuit_breaker: { failure_threshold: 5, cooldown_ms: COOLDOWN_MS } },
      },
    });
  });
  after(async () => {
    sock?.close();
    await node?.stop();
    await rx?.stop();
  });

  it('opens after 5 failures, sends nothing during the cool-down, closes on the probe’s 200', async () => {
    const open = () => metric(node, 'chorus_webhook_breakers_open', `app_id="${APP.id}"`);
    const channels = Array.from({ length: 6 }, (_, i) => `cb-${i}`);
    rx.failNext(1_000_000);
    sock = await connect(node, APP);
    for (const channel of channels) sock.send({ event: 'pusher:subscribe', data: { channel } });
    await until(async () => (await open()) === 1, 5000, 'the breaker open');
    const openedAt = Date.now();
    const failedBeforeOpen = rx.deliveries.length;
    assert.ok(failedBeforeOpen >= 5 && failedBeforeOpen <= 6, `${failedBeforeOpen} requests before it opened`);

    // The retries fall due (0.5-1 s) inside the cool-down: short-circuited, not sent.
    await sleep(1500);
    assert.equal(rx.deliveries.length, failedBeforeOpen, 'nothing is sent while the circuit is open');
    assert.ok((await metric(node, 'chorus_webhooks_short_circuited_total', `app_id="${APP.id}"`)) > 0);

    rx.failNext(0);
    await rx.waitFor(() => channels.every((ch) => rx.events('channel_occupied').some((e) => e.channel === ch)), 15_000);
    await until(async () => (await open()) === 0, 5000, 'the breaker closed');
    const probe = rx.deliveries[failedBeforeOpen];
    assert.ok(probe.receivedAt - openedAt >= COOLDOWN_MS - 500, `the probe waited out the cool-down (${probe.receivedAt - openedAt} ms)`);
    assert.equal(rx.events('channel_occupied').length, channels.length, 'each batch delivered once');
    const logged = (msg: string) => node.logs.filter((l) => l.includes(msg));
    assert.equal(logged('circuit opened').length, 1);
    assert.equal(logged('circuit closed').length, 1);
    assert.equal(JSON.parse(logged('circuit opened')[0]).url, `${rx.url}/cb`);
    assert.deepEqual(
      node.logs.filter((l) => l.includes('SECRET123')),
      [],
    );
  });
});

describe('webhooks hardening: the Redis queue is fair and bounded per app', () => {
  const A: TestApp = { id: 'rq-a', key: 'rq-a-key', secret: 'rq-a-secret' };
  const B: TestApp = { id: 'rq-b', key: 'rq-b-key', secret: 'rq-b-secret' };
  const PER_APP = 200;
  const keyPrefix = `rqh${process.pid}:`;
  let redis: Broker;
  let hole: BlackHole;
  let rx: WebhookReceiver;
  let node: ChorusNode;
  const socks: RawSocket[] = [];
  const redisCli = (...args: string[]) => spawnSync('redis-cli', ['-p', String(redis.port), ...args], { encoding: 'utf8' }).stdout.trim();

  before(async () => {
    redis = await startRedis();
    hole = await startBlackHole();
    rx = await startWebhookReceiver([B]);
    A.webhooks = [{ url: `${hole.url}/dead`, event_types: OCCUPANCY }];
    B.webhooks = [{ url: `${rx.url}/b`, event_types: ['channel_occupied'] }];
    node = await startNode({
      config: {
        app_manager: { array: { apps: [A, B] } },
        queue: { driver: 'redis' },
        database: { redis: { port: redis.port, key_prefix: keyPrefix } },
        webhooks: { vacated_delay_ms: 0, max_queued_per_app: PER_APP },
        shutdown_grace_period: 2,
      },
    });
  });
  after(async () => {
    for (const s of socks) s.close();
    await node?.stop();
    await rx?.stop();
    await hole?.stop();
    await redis?.stop();
  });

  it("app A's dead endpoint neither delays app B's webhooks nor grows Redis past A's bound", async () => {
    const attacker = await connect(node, A);
    const bSocket = await connect(node, B);
    socks.push(attacker, bSocket);
    const sentAt = new Map<string, number>();
    const attack = churn(attacker, 'rq', 2000, 6);
    // B's channels start once A's backlog is there (several times what A's endpoint can take at once).
    await until(() => hole.accepted() >= 8, 5000, "A's endpoint saturated");
    for (let i = 0; i < 20; i++) {
      const channel = `rq-healthy-${i}`;
      sentAt.set(channel, Date.now());
      bSocket.send({ event: 'pusher:subscribe', data: { channel } });
      await sleep(50);
    }
    const pairs = await attack;
    await rx.waitFor(() => [...sentAt.keys()].every((ch) => rx.events('channel_occupied').some((e) => e.channel === ch)), 15_000);
    const latencies = [...sentAt].map(
      ([ch, at]) => rx.deliveries.find((d) => d.body?.events.some((e) => e.channel === ch))!.receivedAt - at,
    );
    const countA = Number(redisCli('GET', `${keyPrefix}{webhooks}:queued:${A.id}`) || 0);
    const held =
      Number(redisCli('LLEN', `${keyPrefix}{webhooks}:queue`)) +
      Number(redisCli('ZCARD', `${keyPrefix}{webhooks}:delayed`)) +
      Number(redisCli('LLEN', `${keyPrefix}{webhooks}:processing:${node.nodeId}`));
    const droppedA = await metric(node, 'chorus_webhooks_dropped_total', `app_id="${A.id}"`);
    const droppedB = await metric(node, 'chorus_webhooks_dropped_total', `app_id="${B.id}"`);
    console.log(
      JSON.stringify({
        pairs,
        maxLatencyB: Math.max(...latencies),
        countA,
        held,
        droppedA,
        droppedB,
        blackHoleConnections: hole.accepted(),
      }),
    );

    // A worker stuck on A's endpoint would hold B's batches for a request timeout (5 s) or more.
    assert.ok(Math.max(...latencies) < 3000, `B's webhooks within 3 s (worst ${Math.max(...latencies)} ms)`);
    assert.ok(countA <= PER_APP, `A's queued count ${countA} within its bound`);
    assert.ok(held <= PER_APP + 20, `Redis holds ${held} batches`);
    assert.ok(droppedA > 0, "A's newest batches were dropped past its bound");
    assert.equal(droppedB, 0);
    assert.ok(hole.accepted() <= 8, `sockets to the dead endpoint: ${hole.accepted()}`);
  });
});

describe('webhooks hardening: the bounded Redis queue on a Redis Cluster (one hash slot)', () => {
  const APP: TestApp = { id: 'rc-app', key: 'rc-key', secret: 'rc-secret' };
  let cluster: RedisCluster;
  let rx: WebhookReceiver;
  let node: ChorusNode;
  let sock: RawSocket | undefined;

  before(async () => {
    cluster = await startRedisCluster();
    rx = await startWebhookReceiver([APP]);
    APP.webhooks = [{ url: `${rx.url}/rc`, event_types: ['channel_occupied'] }];
    node = await startNode({
      config: { app_manager: { array: { apps: [APP] } }, queue: { driver: 'redis-cluster' }, webhooks: { vacated_delay_ms: 0 } },
      env: { REDIS_CLUSTER_NODES: cluster.seeds },
      timeoutMs: 20_000,
    });
  });
  after(async () => {
    sock?.close();
    await node?.stop();
    await rx?.stop();
    await cluster?.stop();
  });

  it('pushes, retries after a 500 and finishes with the scripts, without cross-slot errors', async () => {
    rx.failNext(1);
    sock = await connect(node, APP);
    sock.send({ event: 'pusher:subscribe', data: { channel: 'rc-1' } });
    await rx.waitFor(() => rx.events('channel_occupied').length === 1, 10_000);
    assert.deepEqual(
      rx.deliveries.map((d) => d.status),
      [500, 200],
    );
    assert.deepEqual(
      node.logs.filter((l) => /CROSSSLOT|queue update failed|could not be queued/.test(l)),
      [],
    );
  });
});

describe('webhooks hardening: webhook URLs are checked when the config is loaded', () => {
  const configWith = (url: string) =>
    writeConfig({
      port: 0,
      metrics: { port: 0 },
      app_manager: {
        array: { apps: [{ id: 'u', key: 'u-key', secret: 'u-secret', webhooks: [{ url, event_types: ['channel_occupied'] }] }] },
      },
    });
  const KEY = /app_manager\.array\.apps\[0\]\.webhooks\[0\]\.url: /;

  it('a URL with user:pass@ exits 2 naming the key and the header to use, without echoing the password', async () => {
    const r = await runCli(['start', '--config', configWith('http://user:hunter2@127.0.0.1:9/hook')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, KEY);
    assert.match(r.stderr, /must not contain credentials; send them with a header \(headers: \{"Authorization": \.\.\.\}\)/);
    assert.ok(!r.stderr.includes('hunter2') && !r.stdout.includes('hunter2'), r.stderr);
  });

  it('an ftp:// URL exits 2 naming the key and the schemes allowed', async () => {
    const r = await runCli(['start', '--config', configWith('ftp://127.0.0.1/hook')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, KEY);
    assert.match(r.stderr, /must use http: or https: \(got ftp:\)/);
  });

  it('http and https URLs with a query string are accepted', async () => {
    const node = await startNode({
      config: {
        app_manager: {
          array: {
            apps: [
              {
                id: 'ok',
                key: 'ok-key',
                secret: 'ok-secret',
                webhooks: [
                  { url: 'http://127.0.0.1:9/a?token=x', event_types: ['channel_occupied'] },
                  { url: 'https://127.0.0.1:9/b', event_types: ['channel_occupied'] },
                ],
              },
            ],
          },
        },
      },
    });
    assert.equal(await node.stop(), 0);
  });

  it('a MySQL row with a credentialed webhook URL is refused with the reason', () => {
    const row = {
      id: 'db-app',
      key: 'db-key',
      secret: 'db-secret',
      webhooks: JSON.stringify([{ url: 'https://admin:pw@hooks.example.com/x', event_types: ['channel_occupied'] }]),
    };
    assert.throws(
      () => rowToApp(row),
      (err: Error) => {
        assert.match(err.message, /app row db-app is invalid: webhooks\.0\.url: webhook url must not contain credentials/);
        assert.ok(!err.message.includes('pw@'));
        return true;
      },
    );
    assert.throws(
      () => rowToApp({ ...row, webhooks: JSON.stringify([{ url: 'file:///etc/passwd', event_types: ['channel_occupied'] }]) }),
      /must use http: or https:/,
    );
  });
});

describe('webhooks hardening: logs never show a webhook URL’s query string', () => {
  const APP: TestApp = { id: 'log-app', key: 'log-key', secret: 'log-secret' };
  let rx: WebhookReceiver;
  let node: ChorusNode;
  let sock: RawSocket | undefined;

  before(async () => {
    rx = await startWebhookReceiver([APP]);
    APP.webhooks = [{ url: `${rx.url}/hook?token=SECRET123&x=1`, event_types: ['channel_occupied'] }];
    node = await startNode({ config: { app_manager: { array: { apps: [APP] } }, webhooks: { vacated_delay_ms: 0 } } });
  });
  after(async () => {
    sock?.close();
    await node?.stop();
    await rx?.stop();
  });

  it('a retried webhook is logged with origin and path only', async () => {
    rx.failNext(2);
    sock = await connect(node, APP);
    sock.send({ event: 'pusher:subscribe', data: { channel: 'logged' } });
    await rx.waitFor(() => rx.events('channel_occupied').length === 1, 10_000);
    const retries = node.logs.filter((l) => l.includes('webhook failed, will retry'));
    assert.equal(retries.length, 2, node.logs.join('\n'));
    for (const line of retries) assert.equal(JSON.parse(line).url, `${rx.url}/hook`);
    assert.equal(rx.deliveries[0].path, '/hook?token=SECRET123&x=1', 'the receiver still gets the query string');
    assert.deepEqual(
      node.logs.filter((l) => l.includes('SECRET123') || l.includes('token=')),
      [],
    );
  });
});
