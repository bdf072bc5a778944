// The proof of gap-free recovery for stock pusher-js (docs/RECOVERY.md), end to end with real
// brokers: per broker (Redis, a Redis Cluster, NATS with JetStream) three Chorus nodes behind the
// project's HAProxy config, four pusher-js clients (Node build) on a history channel, three with
// the add-on (`enableRecovery`, the module `chorus/recovery` exports) and one without, and 200
// events/s published one request at a time through a node the clients are not on, the payload
// being the sequence number. About a second in, the clients lose their node or their network:
//   (c) a network cut: a TCP proxy in front of HAProxy stops forwarding both ways on the
//       clients' connections (kept open) until pusher-js's ping times out and it reconnects;
//   (a) SIGKILL of the node the clients are on (HAProxy redispatches the reconnects);
//   (b) a drain: SIGTERM of the node the clients are on (4200 to every socket, port closed).
// Each add-on client's handler log must equal the published sequence exactly (no gap, no
// duplicate, in order) after a chorus:recovered and no chorus:recovery_failed; the plain
// client's log shows what it missed. Every run prints its numbers (README has the contrast).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enableRecovery, type RecoveredEvent, type RecoveryFailedEvent } from '../src/recovery/recovery.js';
import { freePort, startNats, startRedis, startRedisCluster, waitForPort, type Broker, type RedisCluster } from './helpers/brokers.js';
import { HAPROXY_MAXCONN, haproxyConfig, haproxyStatus, runBalancer, type Balancer } from './helpers/balancers.js';
import { connected, pusherClient, serverSdk, sleep, until, waitFor, type PusherClient } from './helpers/clients.js';
import { startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { startPausableProxy, type PausableProxy } from './helpers/pausable-proxy.js';

const RATE = 200; // events per second, one request at a time
/** 4 s of publishing per scenario; README's table is from RECOVERY_EVENTS=1000 (5 s). */
const EVENTS = Number(process.env.RECOVERY_EVENTS ?? 800);
const FAIL_AFTER = RATE; // the failure comes once this many are published (about 1 s in)
const CATCH_UP_MS = 15_000; // bound on the add-on clients receiving the last event after the publisher stops
const STALLED_MS = 3000; // ... or on their logs not growing any more
const ADDON_CLIENTS = 3; // with the add-on; one more client without it

const APP: TestApp = {
  id: 'e2e-app',
  key: 'e2e-key',
  secret: 'e2e-secret',
  enable_client_messages: true,
  max_backend_events_per_second: null,
  history: { enabled: true },
};
const CONFIG = { app_manager: { array: { apps: [APP] } } };
/** pusher-js notices a dead or silent socket within activityTimeout + pongTimeout. */
const CLIENT_TIMEOUTS = { activityTimeout: 1000, pongTimeout: 1000 };

interface Cluster {
  env: Record<string, string>;
  /** index i is HAProxy's server node{i+1}; a restarted node takes its old slot and port */
  nodes: ChorusNode[];
  haproxy: Balancer;
  statsPort: number;
  proxy: PausableProxy;
}

const alive = (n: ChorusNode) => n.proc.exitCode === null && n.proc.signalCode === null;

async function startCluster(env: Record<string, string>): Promise<Cluster> {
  // Fixed ports, as in production: a node started on port 0 gets a listen socket without
  // SO_REUSEADDR, and one SIGKILLed with open connections leaves TIME_WAIT sockets that keep
  // its port from being bound again for a minute (uWS sets the option only for a fixed port).
  const ports = [await freePort(), await freePort(), await freePort()];
  const started = await Promise.allSettled(ports.map((port) => startNode({ config: { ...CONFIG, port }, env, timeoutMs: 20_000 })));
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const refused = started.find((r) => r.status === 'rejected');
  if (refused) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw refused.reason;
  }
  let haproxy: Balancer | undefined;
  let proxy: PausableProxy | undefined;
  try {
    await until(() => nodes.every((n) => n.logs.filter((l) => l.includes('cluster peer joined')).length >= 2), 15_000, 'three peers');
    const dir = mkdtempSync(join(tmpdir(), 'chorus-e2e-'));
    const [port, statsPort] = [await freePort(), await freePort()];
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(
      file,
      haproxyConfig(
        nodes.map((n) => n.port),
        port,
        statsPort,
      ),
    );
    haproxy = runBalancer('haproxy', 'haproxy', ['-f', file, '-db', ...HAPROXY_MAXCONN], port);
    await Promise.all([waitForPort(port), waitForPort(statsPort)]);
    await allUp({ haproxy, statsPort, nodes });
    proxy = await startPausableProxy(port);
    return { env, nodes, haproxy, statsPort, proxy };
  } catch (err) {
    await proxy?.stop();
    await haproxy?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
}

async function stopCluster(c: Cluster | undefined): Promise<void> {
  if (!c) return;
  await c.proxy.stop();
  await c.haproxy.stop();
  await Promise.all(c.nodes.map((n) => n.stop()));
}

/** Every live node is UP in HAProxy's health checks (inter 1s, rise 2). */
async function allUp(c: Pick<Cluster, 'haproxy' | 'statsPort' | 'nodes'>): Promise<void> {
  await until(
    async () => {
      const status = await haproxyStatus(c.statsPort);
      return c.nodes.every((n, i) => !alive(n) || status.get(`node${i + 1}`) === 'UP');
    },
    10_000,
    `HAProxy sees every live node UP (${c.haproxy.output.join('')})`,
    100,
  );
}

/** The app's open WebSocket connections on a node, from its metrics port. */
async function connectionsOn(node: ChorusNode): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  const m = text.match(new RegExp(`^chorus_connected\\{app_id="${APP.id}"\\} (\\d+)`, 'm'));
  return m ? Number(m[1]) : 0;
}

/** The node holding all `count` of the app's connections (none elsewhere), once that holds. */
async function holderOf(c: Cluster, count: number): Promise<ChorusNode> {
  let holder: ChorusNode | undefined;
  await until(
    async () => {
      const live = c.nodes.filter(alive);
      const counts = await Promise.all(live.map(connectionsOn));
      const at = counts.indexOf(count);
      holder = at >= 0 && counts.reduce((a, b) => a + b, 0) === count ? live[at] : undefined;
      return holder !== undefined;
    },
    10_000,
    `one node holding the ${count} client connections`,
    50,
  );
  return holder!;
}

interface Subscriber {
  client: PusherClient;
  log: number[];
  recovered: Array<RecoveredEvent & { at: number }>;
  failed: RecoveryFailedEvent[];
  /** socket ids it connected with, in order */
  sockets: string[];
}

async function subscriber(port: number, channel: string, addon: boolean): Promise<Subscriber> {
  const client = pusherClient({ port }, { app: APP, extra: CLIENT_TIMEOUTS });
  // In the same tick as the constructor: the first connection opts in before it subscribes.
  if (addon) enableRecovery(client);
  const s: Subscriber = { client, log: [], recovered: [], failed: [], sockets: [] };
  client.connection.bind('connected', () => s.sockets.push(client.connection.socket_id));
  await connected(client, 10_000);
  const ch = client.subscribe(channel);
  ch.bind('seq', (d: number) => s.log.push(d));
  ch.bind('chorus:recovered', (d: RecoveredEvent) => s.recovered.push({ ...d, at: Date.now() }));
  ch.bind('chorus:recovery_failed', (d: RecoveryFailedEvent) => s.failed.push(d));
  await waitFor(ch, 'pusher:subscription_succeeded', 10_000);
  return s;
}

interface Publisher {
  /** the sequence numbers the node answered 200 for, in order */
  sent: number[];
  errors: string[];
  /** resolves when all EVENTS were sent: how long it took */
  done: Promise<number>;
}

/** EVENTS publishes at RATE through `node`, one request at a time, data = the sequence number. */
function publisher(node: ChorusNode, channel: string): Publisher {
  const sdk = serverSdk(node, APP, { timeout: 5000 });
  const p: Publisher = { sent: [], errors: [], done: Promise.resolve(0) };
  const started = Date.now();
  p.done = (async () => {
    for (let seq = 1; seq <= EVENTS; seq++) {
      const wait = started + ((seq - 1) * 1000) / RATE - Date.now();
      if (wait > 0) await sleep(wait);
      try {
        await sdk.trigger(channel, 'seq', seq);
        p.sent.push(seq);
      } catch (err) {
        p.errors.push(`#${seq}: ${(err as Error).message}`);
      }
    }
    return Date.now() - started;
  })();
  return p;
}

/** "1-199, 601-1000": the runs of `seqs` (sorted, distinct). */
function runs(seqs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < seqs.length;) {
    let j = i;
    while (j + 1 < seqs.length && seqs[j + 1] === seqs[j] + 1) j++;
    out.push(i === j ? `${seqs[i]}` : `${seqs[i]}-${seqs[j]}`);
    i = j + 1;
  }
  return out.join(', ') || 'none';
}

interface Outcome {
  broker: string;
  scenario: string;
  published: number;
  publishMs: number;
  /** per add-on client: events its handler logged */
  addonReceived: number[];
  /** per add-on client: chorus:recovered's `replayed` */
  replayed: number[];
  /** per add-on client: failure to chorus:recovered */
  recoverMs: Array<number | null>;
  plainReceived: number;
  plainMissed: number;
  plainMissedRuns: string;
}

const outcomes: Outcome[] = [];

/** Waits until every log has `n` entries, or none grew for STALLED_MS, or CATCH_UP_MS passed. */
async function caughtUp(subs: Subscriber[], n: number): Promise<void> {
  const deadline = Date.now() + CATCH_UP_MS;
  let total = -1;
  let grewAt = Date.now();
  while (subs.some((x) => x.log.length < n) && Date.now() < deadline && Date.now() - grewAt < STALLED_MS) {
    const now = subs.reduce((sum, x) => sum + x.log.length, 0);
    if (now !== total) [total, grewAt] = [now, Date.now()];
    await sleep(20);
  }
}

/** Checks an add-on client's log against the published sequence: exactly equal, or says how not. */
function assertExact(label: string, log: number[], expected: number[]): void {
  if (log.length === expected.length && log.every((v, i) => v === expected[i])) return;
  const seen = new Set(log);
  const lost = expected.filter((x) => !seen.has(x));
  const disorder = log.findIndex((v, i) => i > 0 && v <= log[i - 1]);
  assert.fail(
    `${label}: the handler log is not the published sequence: ${log.length} logged of ${expected.length}, ` +
      `missing ${runs(lost)}, ${log.length - seen.size} duplicates, first out of order at index ${disorder}`,
  );
}

/**
 * One scenario on a fresh channel: ADDON_CLIENTS clients with the add-on and one without
 * connect on `via`, the publisher starts on a node other than theirs, `fail(holder)` runs once
 * FAIL_AFTER events are out, then every event published must reach each add-on client's
 * handler exactly once and in order.
 */
async function scenario(
  c: Cluster,
  broker: string,
  name: string,
  via: number,
  fail: (holder: ChorusNode) => Promise<void>,
): Promise<{ holder: ChorusNode }> {
  const channel = `e2e-${broker}-${name}`.replace(/[^A-Za-z0-9-]+/g, '-');
  const subs: Subscriber[] = [];
  try {
    for (let i = 0; i < ADDON_CLIENTS; i++) subs.push(await subscriber(via, channel, true));
    const addons = [...subs];
    const plain = await subscriber(via, channel, false);
    subs.push(plain);
    const holder = await holderOf(c, subs.length);
    const pubNode = c.nodes.find((n) => alive(n) && n !== holder);
    assert.ok(pubNode, 'a live node other than the clients');
    // The add-on clients' first chorus_position (pusher-js shows none of it) has come by now.
    await sleep(200);

    const pub = publisher(pubNode, channel);
    await until(() => pub.sent.length >= FAIL_AFTER, 10_000, 'the first second published', 5);
    const failedAt = Date.now();
    await fail(holder);
    const publishMs = await pub.done;
    const expected = pub.sent;
    // Bounded: everything published reaches the add-on clients, or their logs stop growing
    // (then the assertions say what did not come).
    await caughtUp(addons, expected.length);
    await sleep(300); // a late duplicate would show up now
    const label = `${broker} ${name}`;
    const plainSeen = new Set(plain.log);
    const missed = expected.filter((x) => !plainSeen.has(x));
    const out: Outcome = {
      broker,
      scenario: name,
      published: expected.length,
      publishMs,
      addonReceived: addons.map((a) => a.log.length),
      replayed: addons.map((a) => a.recovered[0]?.replayed ?? 0),
      recoverMs: addons.map((a) => (a.recovered.length ? a.recovered[0].at - failedAt : null)),
      plainReceived: plain.log.length,
      plainMissed: missed.length,
      plainMissedRuns: runs(missed),
    };
    outcomes.push(out);
    console.log(
      `# ${label}: ${out.published} published in ${publishMs} ms through ${pubNode.nodeId} (clients on ${holder.nodeId}); ` +
        `add-on clients received ${out.addonReceived.join('/')}, chorus:recovered after ${out.recoverMs.join('/')} ms ` +
        `(replayed ${out.replayed.join('/')}); plain client received ${out.plainReceived}, missed ${out.plainMissed} (${out.plainMissedRuns})`,
    );

    assert.deepEqual(pub.errors, [], `${label}: every publish answered`);
    addons.forEach((a, i) => {
      const who = `${label}, add-on client ${i + 1}`;
      assert.deepEqual(a.failed, [], `${who}: no chorus:recovery_failed`);
      assert.ok(a.sockets.length >= 2, `${who}: reconnected (${a.sockets.join(', ')})`);
      assert.ok(a.recovered.length >= 1, `${who}: chorus:recovered after the reconnect`);
      assert.ok(a.recovered[0].replayed > 0, `${who}: the resume replayed what the outage held back`);
      assertExact(who, a.log, expected);
    });
    assert.ok(plain.sockets.length >= 2, `${label}: the plain client reconnected too`);
    assert.ok(missed.length > 0, `${label}: the plain client missed events (the contrast)`);
    return { holder };
  } finally {
    for (const s of subs) s.client.disconnect();
  }
}

/** A node in the slot (and port) of one that is gone, back UP in HAProxy. */
async function replace(c: Cluster, gone: ChorusNode): Promise<void> {
  const i = c.nodes.indexOf(gone);
  c.nodes[i] = await startNode({ config: { ...CONFIG, port: gone.port }, env: c.env, timeoutMs: 20_000 });
  await allUp(c);
}

interface BrokerSetup {
  name: string;
  start(): Promise<{ env: Record<string, string>; stop(): Promise<void> }>;
}

const BROKERS: BrokerSetup[] = [
  {
    name: 'redis',
    async start() {
      const redis: Broker = await startRedis();
      return {
        env: { ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(redis.port) },
        stop: () => redis.stop(),
      };
    },
  },
  {
    name: 'redis-cluster',
    async start() {
      const cluster: RedisCluster = await startRedisCluster();
      return { env: { ADAPTER_DRIVER: 'redis-cluster', REDIS_CLUSTER_NODES: cluster.seeds }, stop: () => cluster.stop() };
    },
  },
  {
    name: 'nats-jetstream',
    async start() {
      const nats: Broker = await startNats();
      return { env: { ADAPTER_DRIVER: 'nats', NATS_SERVERS: `nats://127.0.0.1:${nats.port}` }, stop: () => nats.stop() };
    },
  },
];

for (const b of BROKERS) {
  describe(`gap-free recovery end to end, 3 nodes behind HAProxy: ${b.name}`, () => {
    let broker: { env: Record<string, string>; stop(): Promise<void> } | undefined;
    let c: Cluster | undefined;

    before(async () => {
      broker = await b.start();
      c = await startCluster(broker.env);
    });

    after(async () => {
      await stopCluster(c);
      await broker?.stop();
    });

    it('(c) a network cut past the ping timeout: each add-on client has every event once, in order', async () => {
      const cl = c!;
      let paused = 0;
      await scenario(cl, b.name, 'network-cut', cl.proxy.port, async () => {
        paused = cl.proxy.pause();
      });
      assert.equal(paused, ADDON_CLIENTS + 1, 'every client was cut');
      // Still open at both ends: pusher-js left them on its ping timeout, not on a TCP close.
      assert.equal(cl.proxy.paused(), ADDON_CLIENTS + 1, 'the cut connections stayed open');
      // They go now (their node sees them close).
      cl.proxy.dropPaused();
    });

    it('(a) SIGKILL of the node the clients are on: each add-on client has every event once, in order', async () => {
      const cl = c!;
      const { holder } = await scenario(cl, b.name, 'sigkill', cl.haproxy.port, (h) => h.kill());
      // Three nodes again for the drain.
      await replace(cl, holder);
    });

    it('(b) a drain (SIGTERM) of the node the clients are on: each add-on client has every event once, in order', async () => {
      const cl = c!;
      let exited: Promise<number | null> = Promise.resolve(null);
      await scenario(cl, b.name, 'drain', cl.haproxy.port, async (h) => {
        exited = h.stop('SIGTERM'); // bounded: SIGKILL after 15 s
      });
      assert.equal(await exited, 0, 'the drained node exits cleanly');
    });
  });
}

after(() => {
  if (outcomes.length === 0) return;
  const row = (cells: string[]) => `# ${cells.map((x, i) => (i < 2 ? x.padEnd(15) : x.padStart(17))).join(' ')}`;
  console.log(row(['broker', 'scenario', 'published', 'add-on got', 'replayed', 'recovered (ms)', 'plain got', 'plain missed']));
  for (const o of outcomes) {
    const recover = o.recoverMs.map((m) => m ?? '-').join('/');
    console.log(
      row([
        o.broker,
        o.scenario,
        String(o.published),
        o.addonReceived.join('/'),
        o.replayed.join('/'),
        recover,
        String(o.plainReceived),
        String(o.plainMissed),
      ]),
    );
  }
});
