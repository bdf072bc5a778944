// Three real Chorus nodes on the redis adapter behind the project's own nginx
// and HAProxy configs (only hosts and ports substituted), both balancers at once.
// pusher-js clients come from distinct loopback addresses (127.0.X.1) so the
// balancers' source-address stickiness spreads them over the nodes; each client
// uses its own app, so a node's `connected{app_id}` gauge says where it sits.
// A rolling restart (SIGTERM, start again on the same port) runs while the SDK
// publishes numbered events through each balancer: clients of the drained node
// are moved by pusher-js itself, the others stay put, and no event published
// after a client's re-subscription is lost.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PusherServer from 'pusher';
import { HAPROXY_MAXCONN, haproxyStatus, startBalancers, type Balancer } from './helpers/balancers.js';
import { stablePort, startRedis, type Broker } from './helpers/brokers.js';
import { DEMO_APP, ROOT, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { Pusher, pusherClient, sleep, waitFor, type PusherClient } from './helpers/clients.js';

const CLIENTS_PER_LB = 6;
const NODE_ENV = {
  ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: '500',
  ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: '3000',
  ADAPTER_CLUSTER_HEALTH_CLEANUP_INTERVAL_MS: '500',
  CHORUS_TEST_LOG_LEVEL: 'warn',
};
const TICK_MS = 100;
const CHANNEL = 'roll';
/** How long nginx counts a failed node out (passive checks), read from the shipped config. */
const nginxFailTimeoutMs = Number(/fail_timeout=(\d+)s/.exec(readFileSync(join(ROOT, 'nginx/nginx.conf'), 'utf8'))?.[1] ?? 10) * 1000;

// ---------------------------------------------------------------- source addresses

/**
 * pusher-js (node) opens sockets with faye-websocket and no options. For a
 * loopback host other than 127.0.0.1 we connect *from* that same address, so a
 * client at ws://127.0.7.1:PORT has source address 127.0.7.1: the balancer sees
 * distinct client IPs (nginx ip_hash keys on the first three octets).
 */
type RuntimeLike = { createWebSocket(url: string): unknown; getWebSocketAPI(): new (...a: unknown[]) => unknown };
const runtime = (Pusher as unknown as { Runtime: RuntimeLike }).Runtime;
const originalCreateWebSocket = runtime.createWebSocket;
function bindSourceAddresses(): void {
  runtime.createWebSocket = function (this: RuntimeLike, url: string) {
    const host = new URL(url).hostname;
    const Ctor = this.getWebSocketAPI();
    if (!/^127\.\d+\.\d+\.\d+$/.test(host) || host === '127.0.0.1') return new Ctor(url);
    // faye's Client reads `net` (options for net.connect) but its option check rejects the key
    // when it is enumerable; a non-enumerable property reaches the socket and passes the check.
    const options = {};
    Object.defineProperty(options, 'net', { value: { localAddress: host }, enumerable: false });
    return new Ctor(url, [], options);
  };
}

// ---------------------------------------------------------------- metrics

type Samples = Map<string, number>;

function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function scrape(port: number): Promise<Samples> {
  return new Promise((res, rej) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/metrics', timeout: 3000 }, (r) => {
      let body = '';
      r.on('data', (c) => (body += c));
      r.on('end', () => (r.statusCode === 200 ? res(parseMetrics(body)) : rej(new Error(`metrics ${r.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('metrics timeout')));
    req.on('error', rej);
  });
}

const sample = (s: Samples, name: string, appId: string) => s.get(`chorus_${name}{app_id="${appId}"}`) ?? 0;

// ---------------------------------------------------------------- balancers

async function until(what: string | (() => string), pred: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
}

// ---------------------------------------------------------------- clients and publishers

/** One subscription lifetime: from subscription_succeeded to the connection's end. */
interface Session {
  /** the publisher's next sequence number when subscription_succeeded arrived */
  from: number;
  got: number[];
  /** when the connection left 'connected' (null while it lasts) */
  endedAt: number | null;
}

interface Tracked {
  lb: Balancer['name'];
  app: TestApp;
  addr: string;
  client: PusherClient;
  sessions: Session[];
  /** codes of pusher:error frames seen by pusher-js */
  errors: number[];
}

interface Publisher {
  lb: Balancer['name'];
  next: number;
  /** app id -> sequence number -> when it was answered 200 */
  acked: Map<string, Map<number, number>>;
  failures: number;
  stop(): Promise<void>;
}

function appFor(lb: string, i: number): TestApp {
  return { id: `${lb}-app-${i}`, key: `${lb}-key-${i}`, secret: `${lb}-secret-${i}` };
}

function sdkVia(port: number, host: string, app: TestApp, agent: Agent): PusherServer {
  return new PusherServer({
    appId: app.id,
    key: app.key,
    secret: app.secret,
    host,
    port: String(port),
    useTLS: false,
    agent,
    timeout: 3000,
  });
}

/** Publishes {n} to every app of a balancer every TICK_MS through that balancer, from its own source address. */
function startPublisher(lb: Balancer, apps: TestApp[], addr: string): Publisher {
  const agent = new Agent({ keepAlive: true, localAddress: addr });
  const sdks = apps.map((a) => [a, sdkVia(lb.port, addr, a, agent)] as const);
  const pub: Publisher = {
    lb: lb.name,
    next: 0,
    acked: new Map(apps.map((a) => [a.id, new Map<number, number>()])),
    failures: 0,
    stop: async () => undefined,
  };
  let running = true;
  const inFlight = new Set<Promise<unknown>>();
  const timer = setInterval(() => {
    if (!running) return;
    const n = pub.next++;
    for (const [app, sdk] of sdks) {
      const p = sdk.trigger(CHANNEL, 'n', { n }).then(
        (r) => (r.status === 200 ? pub.acked.get(app.id)!.set(n, Date.now()) : pub.failures++),
        () => pub.failures++,
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
  }, TICK_MS);
  pub.stop = async () => {
    running = false;
    clearInterval(timer);
    await Promise.allSettled([...inFlight]);
    agent.destroy();
  };
  return pub;
}

function track(lb: Balancer, app: TestApp, addr: string, publisher: () => Publisher | null): Tracked {
  const client = pusherClient({ port: lb.port }, { app, extra: { wsHost: addr } });
  const t: Tracked = { lb: lb.name, app, addr, client, sessions: [], errors: [] };
  client.connection.bind('error', (e: { type?: string; data?: { code?: number } }) => {
    if (e?.type === 'PusherError' && typeof e.data?.code === 'number') t.errors.push(e.data.code);
  });
  const channel = client.subscribe(CHANNEL);
  channel.bind('pusher:subscription_succeeded', () => t.sessions.push({ from: publisher()?.next ?? 0, got: [], endedAt: null }));
  client.connection.bind('state_change', (s: { previous: string; current: string }) => {
    const last = t.sessions.at(-1);
    if (s.previous === 'connected' && last && last.endedAt === null) last.endedAt = Date.now();
  });
  channel.bind('n', (d: { n: number }) => t.sessions.at(-1)?.got.push(d.n));
  return t;
}

/**
 * Slack between a publish's 200 and the end of a subscriber's connection: an event acked
 * this long before the subscriber's node went away must have reached it (a broker hop).
 * Only bounds which events a *dropped* session owes; the last session owes every event.
 */
const DELIVERY_SLACK_MS = 250;

/**
 * Every event whose publish started after the session's subscription_succeeded and was
 * acked (200) while the session lasted arrived, and none arrived twice.
 */
function gapsOf(t: Tracked, pub: Publisher): string[] {
  const acked = [...pub.acked.get(t.app.id)!];
  const problems: string[] = [];
  t.sessions.forEach((s, i) => {
    const got = new Set(s.got);
    if (got.size !== s.got.length) problems.push(`${t.app.id} session ${i}: duplicates in ${s.got.join(',')}`);
    const owed = acked.filter(([n, at]) => n >= s.from && (s.endedAt === null || at <= s.endedAt - DELIVERY_SLACK_MS));
    const missing = owed.filter(([n]) => !got.has(n)).map(([n, at]) => `${n}@${at}`);
    if (missing.length)
      problems.push(`${t.app.id} session ${i} (from ${s.from}, ended ${s.endedAt !== null}): missing ${missing.join(',')}`);
  });
  return problems;
}

// ---------------------------------------------------------------- the suite

describe('load balancers: 3 nodes on redis behind nginx and HAProxy', () => {
  let redis: Broker;
  const nodes: ChorusNode[] = [];
  const nodePorts: number[] = [];
  let nginx: Balancer;
  let haproxy: Balancer;
  let statsPort: number;
  const dir = mkdtempSync(join(tmpdir(), 'chorus-lb-'));
  let nginxArgs: string[];
  let haproxyFile: string;
  const apps = { nginx: [] as TestApp[], haproxy: [] as TestApp[] };
  const tracked: Tracked[] = [];
  const publishers = new Map<string, Publisher>();
  /** node slot -> highest value seen per metric name (summed over apps), across restarts of that slot */
  const traffic = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];

  for (let i = 0; i < CLIENTS_PER_LB; i++) {
    apps.nginx.push(appFor('nginx', i));
    apps.haproxy.push(appFor('haproxy', i));
  }
  const allApps = [DEMO_APP, ...apps.nginx, ...apps.haproxy];
  const nodeOptions = (port: number) => ({
    config: { port, app_manager: { array: { apps: allApps } }, shutdown_grace_period: 3 },
    env: { ...NODE_ENV, ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(redis.port) },
  });

  before(async () => {
    bindSourceAddresses();
    redis = await startRedis();
    for (let i = 0; i < 3; i++) {
      const node = await startNode(nodeOptions(await stablePort()));
      nodes.push(node);
      nodePorts.push(node.port);
    }
    const lbs = await startBalancers(dir, nodePorts);
    ({ nginx, haproxy, statsPort, nginxArgs, haproxyFile } = lbs);
    await until(
      'HAProxy sees 3 nodes UP',
      async () => [...(await haproxyStatus(statsPort)).values()].filter((s) => s === 'UP').length === 3,
      10_000,
    );
  });

  after(async () => {
    for (const t of tracked) t.client.disconnect();
    await Promise.all([...publishers.values()].map((p) => p.stop()));
    await Promise.all([nginx?.stop(), haproxy?.stop()]);
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    runtime.createWebSocket = originalCreateWebSocket;
    rmSync(dir, { recursive: true, force: true });
  });

  it('the substituted configs pass `nginx -t` and `haproxy -c`', () => {
    const n = spawnSync('nginx', ['-t', ...nginxArgs], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(n.status, 0, n.stderr);
    assert.match(n.stderr, /test is successful/);
    const h = spawnSync('haproxy', ['-c', '-f', haproxyFile, ...HAPROXY_MAXCONN], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(h.status, 0, h.stdout + h.stderr);
    assert.match(h.stdout + h.stderr, /Configuration file is valid/);
  });

  /** node slot -> per-app connected gauge */
  async function locate(): Promise<Map<string, number>> {
    const where = new Map<string, number>();
    for (let slot = 0; slot < 3; slot++) {
      const s = await scrape(nodes[slot].metricsPort!);
      for (const [name, value] of s) {
        const m = /^chorus_(\w+)\{app_id="([^"]+)"\}$/.exec(name);
        if (!m) continue;
        const key = m[1];
        if (key === 'connected') {
          if (value > 0) {
            assert.ok(!where.has(m[2]), `app ${m[2]} connected on two nodes`);
            assert.equal(value, 1, `app ${m[2]} has ${value} connections on node ${slot}`);
            where.set(m[2], slot);
          }
        } else {
          traffic[slot].set(`${key}|${m[2]}`, Math.max(traffic[slot].get(`${key}|${m[2]}`) ?? 0, value));
        }
      }
    }
    return where;
  }

  it('spreads clients from distinct addresses over the nodes, keeps each on its node, delivers through the balancer', async () => {
    for (const lb of [nginx, haproxy]) {
      apps[lb.name].forEach((app, i) => {
        // nginx's ip_hash reads the first three octets: vary the third.
        const addr = `127.0.${(lb.name === 'nginx' ? 10 : 60) + i}.1`;
        tracked.push(track(lb, app, addr, () => publishers.get(lb.name) ?? null));
      });
    }
    const state = () => tracked.map((t) => `${t.app.id}@${t.addr}: ${t.client.connection.state}/${t.sessions.length}`).join(', ');
    await until(
      () => `every client subscribed: ${state()}`,
      () => tracked.every((t) => t.sessions.length === 1),
      10_000,
    );
    const where = await locate();
    assert.equal(where.size, tracked.length, `every client is on exactly one node: ${JSON.stringify([...where])}`);
    for (const lb of ['nginx', 'haproxy'] as const) {
      const used = new Set(tracked.filter((t) => t.lb === lb).map((t) => where.get(t.app.id)));
      assert.ok(used.size >= 2, `${lb} put all its clients on one node: ${JSON.stringify([...where])}`);
    }

    // Stickiness: a second connection and an HTTP call from the same address land on the same node.
    for (const t of tracked) {
      const lb = t.lb === 'nginx' ? nginx : haproxy;
      const second = pusherClient({ port: lb.port }, { app: t.app, extra: { wsHost: t.addr } });
      try {
        await waitFor(second.connection, 'connected', 5000);
        const slot = where.get(t.app.id)!;
        const s = await scrape(nodes[slot].metricsPort!);
        assert.equal(sample(s, 'connected', t.app.id), 2, `${lb.name}: second connection from ${t.addr} left node ${slot}`);
      } finally {
        second.disconnect();
      }
    }
    for (const t of tracked) {
      const lb = t.lb === 'nginx' ? nginx : haproxy;
      const agent = new Agent({ keepAlive: false, localAddress: t.addr });
      const slot = where.get(t.app.id)!;
      const got = waitFor<{ n: number }>(t.client.channel(CHANNEL), 'n');
      const res = await sdkVia(lb.port, t.addr, t.app, agent).trigger(CHANNEL, 'n', { n: -1 });
      assert.equal(res.status, 200);
      assert.deepEqual(await got, { n: -1 });
      const s = await scrape(nodes[slot].metricsPort!);
      assert.equal(
        s.get(`chorus_http_calls_received_total{app_id="${t.app.id}",endpoint="events",status="200"}`),
        1,
        `${lb.name}: the HTTP call from ${t.addr} did not reach node ${slot}`,
      );
      t.sessions[0].got.length = 0;
    }
  });

  it('rolling restart while publishing: drained clients are moved by pusher-js, the others stay, nothing after re-subscription is lost', async () => {
    const timeline: string[] = [];
    publishers.set('nginx', startPublisher(nginx, apps.nginx, '127.0.250.1'));
    publishers.set('haproxy', startPublisher(haproxy, apps.haproxy, '127.0.251.1'));
    await sleep(500);
    for (let slot = 0; slot < 3; slot++) {
      const where = await locate();
      const onIt = tracked.filter((t) => where.get(t.app.id) === slot);
      const others = tracked.filter((t) => where.get(t.app.id) !== slot);
      const sessionsBefore = new Map(tracked.map((t) => [t, t.sessions.length]));

      timeline.push(
        `${Date.now()}: SIGTERM node ${slot} (seq ${publishers.get('nginx')!.next}/${publishers.get('haproxy')!.next}) holding ${onIt.map((t) => t.app.id)}`,
      );
      const code = await nodes[slot].stop('SIGTERM');
      assert.equal(code, 0, `node ${slot} exit code`);
      await until(`clients of node ${slot} re-subscribed elsewhere`, () =>
        onIt.every((t) => t.client.connection.state === 'connected' && t.sessions.length > sessionsBefore.get(t)!),
      );
      for (const t of onIt) assert.ok(t.errors.includes(4200), `${t.app.id} got no pusher:error 4200 (${t.errors})`);
      timeline.push(`${Date.now()}: its clients moved`);
      nodes[slot] = await startNode(nodeOptions(nodePorts[slot]));
      timeline.push(`${Date.now()}: node ${slot} restarted`);
      assert.equal(nodes[slot].port, nodePorts[slot]);
      await until(
        'HAProxy sees 3 nodes UP again',
        async () => [...(await haproxyStatus(statsPort)).values()].filter((s) => s === 'UP').length === 3,
        10_000,
      );
      // nginx has no active checks: like an operator, wait out its fail_timeout before the next node.
      await sleep(nginxFailTimeoutMs + 500);
      // Published events keep flowing to the moved clients.
      for (const t of onIt) {
        const want = t.sessions.at(-1)!.got.length + 3;
        await until(`${t.app.id} receives after its move`, () => t.sessions.at(-1)!.got.length >= want, 10_000);
      }
      for (const t of others) {
        assert.equal(t.sessions.length, sessionsBefore.get(t), `${t.app.id} (not on node ${slot}) was moved`);
        assert.equal(t.client.connection.state, 'connected');
      }
      const after = await locate();
      assert.equal(after.size, tracked.length, 'every client is connected to some node');
      for (const t of others) assert.equal(after.get(t.app.id), where.get(t.app.id), `${t.app.id} changed node`);
    }
    await Promise.all([...publishers.values()].map((p) => p.stop()));
    // The tail: the last acked events reach everyone.
    for (const t of tracked) {
      const pub = publishers.get(t.lb)!;
      const lastAcked = Math.max(...pub.acked.get(t.app.id)!.keys());
      await until(`${t.app.id} receives the last event`, () => t.sessions.at(-1)!.got.includes(lastAcked), 5000).catch(() => undefined);
    }
    const problems = tracked.flatMap((t) => gapsOf(t, publishers.get(t.lb)!));
    const story = () =>
      [
        ...timeline,
        ...tracked.map((t) => `${t.app.id}: ${t.sessions.map((x) => `from ${x.from} got ${x.got.length} ended ${x.endedAt}`).join(' | ')}`),
      ].join('\n');
    assert.deepEqual(problems, [], story());
    for (const [lb, pub] of publishers) {
      const acked = Math.min(...[...pub.acked.values()].map((s) => s.size));
      assert.ok(acked > pub.next / 2, `${lb}: only ${acked} of ${pub.next} publishes acked (${pub.failures} failures)`);
    }
    // Every node was restarted once, so every client was moved at least once; all are connected and receiving.
    for (const t of tracked) {
      assert.ok(t.sessions.length >= 2, `${t.app.id} was never moved`);
      assert.equal(t.client.connection.state, 'connected');
      assert.ok(t.sessions.at(-1)!.got.length > 0, `${t.app.id} received nothing on its last session`);
    }
  });

  it('each node shows its share of the traffic in /metrics', async () => {
    await locate();
    const total = (slot: number, metric: string) =>
      [...traffic[slot]].filter(([k]) => k.startsWith(`${metric}|`)).reduce((sum, [, v]) => sum + v, 0);
    for (const metric of ['new_connections_total', 'ws_messages_sent_total', 'channel_subscriptions_total']) {
      const busy = [0, 1, 2].filter((slot) => total(slot, metric) > 0);
      assert.ok(busy.length >= 2, `${metric} > 0 on only nodes ${busy}: ${[0, 1, 2].map((s) => total(s, metric))}`);
    }
    const http = [0, 1, 2].filter((slot) => total(slot, 'http_received_bytes') > 0);
    assert.ok(http.length >= 2, `HTTP traffic on only nodes ${http}`);
  });
});
