// Running Chorus in production: the compose files and the Dockerfile hold together,
// the example configs load cleanly, SIGTERM drains (503 on /up, 4200 to clients,
// webhooks flushed, the cluster left, exit 0), SIGHUP reloads apps without dropping
// connections (and keeps them when the file is bad), TLS serves wss:// and https://,
// and /metrics carries soketi's names with bounded labels.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import PusherServer from 'pusher';
import WebSocket from 'ws';
import { score } from '../src/cluster/digest.js';
import { ownerKeyOf } from '../src/cluster/edges.js';
import { loadConfig } from '../src/config/load.js';
import { startRedis, type Broker } from './helpers/brokers.js';
import { DEMO_APP, ROOT, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { connected, pusherClient, rawSocket, serverSdk, sleep, waitFor, type PusherClient, type RawSocket } from './helpers/clients.js';

// ---------------------------------------------------------------- small helpers

function httpGet(url: string, agent?: Agent): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  return new Promise((res, rej) => {
    const req = httpRequest(url, { agent, timeout: 3000 }, (r) => {
      let body = '';
      r.on('data', (c) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body, headers: r.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', rej);
    req.end();
  });
}

async function until(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The node's log entries (JSON lines) with the given message. */
function logEntries(node: ChorusNode, msg: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of node.logs) {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === msg) out.push(entry);
    } catch {
      /* not JSON */
    }
  }
  return out;
}

/** The config file the node was started with (from its "configuration loaded" line). */
function configFileOf(node: ChorusNode): string {
  const file = logEntries(node, 'configuration loaded')[0]?.config_file;
  assert.equal(typeof file, 'string', 'no "configuration loaded" log line');
  return file as string;
}

/** Status of a rejected SDK call (the pusher SDK throws a RequestError with .status). */
async function sdkStatus(p: Promise<{ status: number }>): Promise<number> {
  try {
    return (await p).status;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

async function scrape(node: ChorusNode): Promise<string> {
  const r = await httpGet(`http://127.0.0.1:${node.metricsPort}/metrics`);
  assert.equal(r.status, 200);
  return r.body;
}

/** Prometheus text -> "name{labels}" -> value */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function run(cmd: string, args: string[], cwd = ROOT) {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000 });
}

// ---------------------------------------------------------------- deployment files

describe('deployment files', () => {
  for (const [file, services] of [
    ['docker-compose.yml', ['chorus', 'redis']],
    ['docker-compose.multinode.yml', ['chorus', 'nginx', 'redis']],
    [
      'docker-compose.sentinel.yml',
      ['chorus-1', 'chorus-2', 'chorus-3', 'redis-master', 'redis-replica', 'sentinel-1', 'sentinel-2', 'sentinel-3'],
    ],
    ['docker-compose.nats-cluster.yml', ['chorus-1', 'chorus-2', 'chorus-3', 'nats-1', 'nats-2', 'nats-3']],
  ] as const) {
    it(`docker-compose accepts ${file} and it defines ${services.join(', ')}`, () => {
      const quiet = run('docker-compose', ['-f', file, 'config', '-q']);
      assert.equal(quiet.error, undefined, `docker-compose not runnable: ${quiet.error?.message}`);
      assert.equal(quiet.status, 0, quiet.stderr);
      const listed = run('docker-compose', ['-f', file, 'config', '--services']);
      assert.equal(listed.status, 0, listed.stderr);
      assert.deepEqual(listed.stdout.trim().split('\n').sort(), [...services]);
    });
  }

  it('multinode compose mounts the nginx config that exists and gives nodes the redis adapter', () => {
    const out = run('docker-compose', ['-f', 'docker-compose.multinode.yml', 'config']);
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /nginx\/nginx\.conf:\/etc\/nginx\/nginx\.conf:ro/);
    assert.match(out.stdout, /ADAPTER_DRIVER: redis/);
    assert.match(out.stdout, /replicas: 3/);
    assert.ok(existsSync(join(ROOT, 'nginx/nginx.conf')));
  });

  /** The environment compose gives a service, read back from `docker-compose config`. */
  function composeEnv(file: string, service: string): Record<string, string> {
    const out = run('docker-compose', ['-f', file, 'config']);
    assert.equal(out.status, 0, out.stderr);
    const block = out.stdout.split(/\n {2}(?=\S)/).find((b) => b.startsWith(`${service}:`)) ?? '';
    const env = /\n {4}environment:\n((?: {6}.*\n)+)/.exec(block)?.[1] ?? '';
    return Object.fromEntries(
      env
        .trim()
        .split('\n')
        .map((line) => /^\s*(\w+): '?(.*?)'?$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1], m[2]]),
    );
  }

  it('the Sentinel compose file gives every node the three sentinels and the master name, as Chorus reads them', () => {
    for (const node of ['chorus-1', 'chorus-2', 'chorus-3']) {
      const env = composeEnv('docker-compose.sentinel.yml', node);
      const { config } = loadConfig({
        env: { ...env, SOCKUDO_DEFAULT_APP_ID: 'a', SOCKUDO_DEFAULT_APP_KEY: 'k', SOCKUDO_DEFAULT_APP_SECRET: 's' },
      });
      assert.equal(config.adapter.driver, 'redis');
      assert.equal(config.database.redis.name, 'chorus-master');
      assert.deepEqual(
        (config.database.redis.sentinels ?? []).map((s) => `${s.host}:${s.port}`),
        ['sentinel-1:26379', 'sentinel-2:26379', 'sentinel-3:26379'],
      );
    }
    const out = run('docker-compose', ['-f', 'docker-compose.sentinel.yml', 'config']).stdout;
    assert.match(readFileSync(join(ROOT, 'docker-compose.sentinel.yml'), 'utf8'), /'sentinel monitor chorus-master redis-master 6379 2'/);
    assert.match(out, /--replicaof\n\s+- redis-master/);
  });

  it('the NATS cluster compose file routes three servers with JetStream and asks for three replicas', () => {
    const env = composeEnv('docker-compose.nats-cluster.yml', 'chorus-2');
    const { config } = loadConfig({
      env: { ...env, SOCKUDO_DEFAULT_APP_ID: 'a', SOCKUDO_DEFAULT_APP_KEY: 'k', SOCKUDO_DEFAULT_APP_SECRET: 's' },
    });
    assert.equal(config.adapter.driver, 'nats');
    assert.deepEqual(config.adapter.nats.servers, ['nats://nats-1:4222', 'nats://nats-2:4222', 'nats://nats-3:4222']);
    assert.equal(config.adapter.nats.replicas, 3);
    const out = run('docker-compose', ['-f', 'docker-compose.nats-cluster.yml', 'config']).stdout;
    for (const n of ['nats-1', 'nats-2', 'nats-3']) assert.match(out, new RegExp(`- ${n}\\n\\s+- -js`));
  });

  it('the Dockerfile copies files that exist, runs the CLI and health-checks /up', () => {
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const copied = [...text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1].split(/\s+/));
    assert.ok(copied.length >= 4, `COPY lines: ${copied}`);
    for (const path of copied) assert.ok(existsSync(join(ROOT, path)), `Dockerfile copies missing ${path}`);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    assert.match(text, new RegExp(`CMD \\["node", "${pkg.bin.chorus}", "start"\\]`));
    assert.match(text, /HEALTHCHECK[\s\S]*\/up/);
    assert.match(text, /STOPSIGNAL SIGTERM/);
    assert.match(text, /EXPOSE 6001 9601/);
  });
});

describe('config examples per adapter', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'chorus-ops-cfg-'));
  after(() => rmSync(cwd, { recursive: true, force: true }));
  for (const [name, driver] of [
    ['redis', 'redis'],
    ['redis-cluster', 'redis-cluster'],
    ['nats', 'nats'],
  ] as const) {
    it(`config/${name}.example.json loads with no unknown keys`, () => {
      const loaded = loadConfig({ file: join(ROOT, `config/${name}.example.json`), env: {}, cwd });
      assert.deepEqual(loaded.unknownKeys, []);
      assert.equal(loaded.config.adapter.driver, driver);
      assert.equal(loaded.config.app_manager.array.apps?.length, 1);
      assert.equal(loaded.config.metrics.prometheus.prefix, 'chorus_');
      if (driver === 'redis-cluster') assert.equal(loaded.config.database.redis.cluster_nodes.length, 3);
      if (driver === 'nats') assert.equal(loaded.config.adapter.nats.servers.length, 3);
    });
  }
});

// ---------------------------------------------------------------- SIGTERM drain

/** `count` channel names whose rendezvous owner between the two nodes is `owner`. */
function channelsOwnedBy(owner: ChorusNode, other: ChorusNode, count: number): string[] {
  const idOf = (n: ChorusNode) => String(logEntries(n, 'chorus listening')[0]?.node_id);
  const [mine, theirs] = [idOf(owner), idOf(other)];
  const names: string[] = [];
  for (let i = 0; names.length < count && i < 1000; i++) {
    const key = ownerKeyOf(DEMO_APP.id, `drain-${i}`);
    if (score(mine, key) > score(theirs, key)) names.push(`drain-${i}`);
  }
  assert.equal(names.length, count, 'no channel names owned by the node');
  return names;
}

/** A webhook endpoint that holds every request until released. */
async function holdingReceiver() {
  const held: Array<{ body: string; res: ServerResponse }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => held.push({ body, res }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    held,
    release: () => held.forEach((h) => h.res.writableEnded || h.res.writeHead(200).end('ok')),
    stop: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

describe('SIGTERM drains a node', () => {
  let redis: Broker;
  let peer: ChorusNode;
  let node: ChorusNode;
  let receiver: Awaited<ReturnType<typeof holdingReceiver>>;
  let client: PusherClient;
  let raw: RawSocket;
  const env = () => ({
    ADAPTER_DRIVER: 'redis',
    DATABASE_REDIS_HOST: '127.0.0.1',
    DATABASE_REDIS_PORT: String(redis.port),
    ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: '300',
    // Long: a peer that disappears at once has said goodbye, not timed out.
    ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: '30000',
  });

  before(async () => {
    redis = await startRedis();
    receiver = await holdingReceiver();
    const app: TestApp = { ...DEMO_APP, webhooks: [{ url: receiver.url, event_types: ['channel_occupied', 'channel_vacated'] }] };
    const config = { shutdown_grace_period: 2, webhooks: { vacated_delay_ms: 0 }, app_manager: { array: { apps: [app] } } };
    peer = await startNode({ config, env: env() });
    node = await startNode({ config, env: env() });
  });
  after(async () => {
    client?.disconnect();
    raw?.close();
    receiver?.release();
    await node?.stop();
    await peer?.stop();
    await receiver?.stop();
    await redis?.stop();
  });

  it('answers 503 on /up while draining, sends 4200 to every client, flushes webhooks, leaves the cluster, exits 0', async () => {
    // Both ready as each other sees it: only then does the node own its channels on both sides.
    const allReady = async (n: ChorusNode) => {
      const c = JSON.parse((await httpGet(`http://127.0.0.1:${n.metricsPort}/cluster`)).body) as { members: Array<{ ready: boolean }> };
      return c.members.length === 2 && c.members.every((m) => m.ready);
    };
    await until('the peers see each other, ready', async () => (await allReady(peer)) && (await allReady(node)));
    // Channels the draining node owns: it sends their channel_occupied webhooks itself (held
    // by the receiver), so the drain must wait for those deliveries. Their channel_vacated
    // comes from the peer, which owns every channel once the node has left.
    const [a, b] = channelsOwnedBy(node, peer, 2);
    client = pusherClient(node);
    await connected(client);
    const pusherError = waitFor<{ type: string; data: { code: number } }>(client.connection, 'error');
    await waitFor(client.subscribe(a), 'pusher:subscription_succeeded');
    raw = await rawSocket(node);
    await raw.next((f) => f.event === 'pusher:connection_established');
    raw.send({ event: 'pusher:subscribe', data: { channel: b } });
    await raw.next((f) => f.event === 'pusher_internal:subscription_succeeded');
    const heldEvents = () =>
      receiver.held.flatMap((h) => (JSON.parse(h.body) as { events: Array<{ name: string; channel: string }> }).events);
    await until('both channel_occupied webhooks in flight', () => heldEvents().length === 2);

    // One kept-alive HTTP connection: the listen socket closes at the start of the drain.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const before = await httpGet(`${node.url}/up`, agent);
    assert.equal(before.status, 200);
    assert.equal(before.body, 'OK');

    node.proc.kill('SIGTERM');
    const errorFrame = await raw.next((f) => f.event === 'pusher:error');
    assert.deepEqual(errorFrame.data, { code: 4200, message: 'Server is shutting down, reconnect' });
    assert.equal((await raw.closed).code, 4200);
    assert.equal((await pusherError).data.code, 4200);

    // The occupied webhooks are still in flight (held by the receiver), so the drain is still going.
    await until('both channel_vacated webhooks sent', () => heldEvents().length === 4);
    const during = await httpGet(`${node.url}/up`, agent);
    assert.equal(during.status, 503);
    assert.equal(during.body, 'ERROR');
    assert.equal(node.proc.exitCode, null, 'the node exited before its webhooks were answered');
    // The HTTP API on the same kept-alive connection: refused (a publish could be lost once the
    // node leaves the cluster), and the connection is closed so a balancer stops reusing it.
    const sdk = new PusherServer({
      appId: DEMO_APP.id,
      key: DEMO_APP.key,
      secret: DEMO_APP.secret,
      host: '127.0.0.1',
      port: String(node.port),
      agent,
    });
    assert.equal(await sdkStatus(sdk.trigger(b, 'late', {})), 503);
    assert.deepEqual(
      heldEvents()
        .map((e) => `${e.name}:${e.channel}`)
        .sort(),
      [`channel_occupied:${a}`, `channel_occupied:${b}`, `channel_vacated:${a}`, `channel_vacated:${b}`].sort(),
    );
    receiver.release();

    assert.equal(await node.exited, 0);
    assert.ok(logEntries(node, 'draining').length === 1 && logEntries(node, 'stopped').length === 1, 'drain log lines');
    agent.destroy();
    // Left the cluster at once (the peer's node timeout is 30 s).
    await until(
      'the peer forgets the drained node',
      async () => {
        const c = JSON.parse((await httpGet(`http://127.0.0.1:${peer.metricsPort}/cluster`)).body) as { members: unknown[] };
        return c.members.length === 1;
      },
      3000,
    );
    // A new connection is refused outright: the port is closed.
    await assert.rejects(httpGet(`${node.url}/up`), /ECONNREFUSED/);
  });
});

// ---------------------------------------------------------------- SIGHUP reload

describe('SIGHUP reloads apps from the config file', () => {
  const A1: TestApp = { id: 'hup-a', key: 'hup-a-key', secret: 'hup-a-secret-1', enable_client_messages: true };
  const A2: TestApp = { ...A1, secret: 'hup-a-secret-2' };
  const B: TestApp = { id: 'hup-b', key: 'hup-b-key', secret: 'hup-b-secret' };
  let node: ChorusNode;
  let file: string;
  const base = { port: 0, host: '127.0.0.1', metrics: { port: 0, host: '127.0.0.1' } };
  const clients: PusherClient[] = [];

  before(async () => {
    node = await startNode({ config: { app_manager: { array: { apps: [A1] } } } });
    file = configFileOf(node);
  });
  after(async () => {
    clients.forEach((c) => c.disconnect());
    await node?.stop();
  });

  async function hup(msg: string): Promise<Record<string, unknown>> {
    const seen = logEntries(node, msg).length;
    node.proc.kill('SIGHUP');
    await until(`log "${msg}"`, () => logEntries(node, msg).length > seen);
    return logEntries(node, msg).at(-1)!;
  }

  it('applies a changed secret and a new app; the old secret is refused; connected clients stay', async () => {
    const existing = pusherClient(node, { app: A1 });
    clients.push(existing);
    const socketId = await connected(existing);
    const channel = existing.subscribe('hup-public');
    await waitFor(channel, 'pusher:subscription_succeeded');

    writeFileSync(file, JSON.stringify({ ...base, app_manager: { array: { apps: [A2, B] } } }));
    const entry = await hup('apps reloaded');
    assert.deepEqual([entry.added, entry.removed, entry.changed], [['hup-b'], [], ['hup-a']]);
    assert.ok(!JSON.stringify(entry).includes('secret'), 'the reload log line carries no secret');

    assert.equal(await sdkStatus(serverSdk(node, A1).trigger('hup-public', 'e', { n: 1 })), 401);
    const got = waitFor<{ n: number }>(channel, 'e');
    assert.equal(await sdkStatus(serverSdk(node, A2).trigger('hup-public', 'e', { n: 2 })), 200);
    assert.deepEqual(await got, { n: 2 });
    assert.equal(existing.connection.state, 'connected');
    assert.equal(existing.connection.socket_id, socketId);

    // The existing socket checks channel auth with the new secret: a signature by the old one fails.
    const stale = existing.subscribe('private-hup');
    const refused = await waitFor<{ status: number }>(stale, 'pusher:subscription_error');
    assert.equal(refused.status, 401);

    // The new app accepts connections and publishes.
    const fresh = pusherClient(node, { app: B });
    clients.push(fresh);
    await connected(fresh);
    const bChannel = fresh.subscribe('private-hup-b');
    await waitFor(bChannel, 'pusher:subscription_succeeded');
    const gotB = waitFor<{ ok: boolean }>(bChannel, 'e');
    assert.equal(await sdkStatus(serverSdk(node, B).trigger('private-hup-b', 'e', { ok: true })), 200);
    assert.deepEqual(await gotB, { ok: true });
  });

  it('an invalid file (bad JSON, then a bad app) is refused with an error and the current apps stay', async () => {
    for (const content of ['{ "app_manager": ', JSON.stringify({ ...base, app_manager: { array: { apps: [{ id: 'x' }] } } })]) {
      writeFileSync(file, content);
      const entry = await hup('reload refused: invalid configuration; keeping the current apps');
      assert.equal(entry.level, 50);
    }
    assert.equal(await sdkStatus(serverSdk(node, A2).trigger('hup-public', 'e', { n: 3 })), 200);
    assert.equal(await sdkStatus(serverSdk(node, B).trigger('hup-public', 'e', { n: 3 })), 200);
    assert.equal(await sdkStatus(serverSdk(node, { id: 'x', key: 'x', secret: 'x' }).trigger('hup-public', 'e', {})), 404);
    for (const c of clients) assert.equal(c.connection.state, 'connected');
    assert.equal(node.proc.exitCode, null);
  });
});

// ---------------------------------------------------------------- TLS

describe('TLS (ssl.enabled)', () => {
  let node: ChorusNode;
  const dir = mkdtempSync(join(tmpdir(), 'chorus-tls-'));

  before(async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const made = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    assert.equal(made.status, 0, made.stderr);
    node = await startNode({ config: { ssl: { enabled: true, cert_path: cert, key_path: key } } });
  });
  after(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves wss:// with connection_established', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${node.port}/app/${DEMO_APP.key}?protocol=7&client=js&version=8.4.0`, {
      rejectUnauthorized: false,
    });
    try {
      const first = await new Promise<Record<string, unknown>>((res, rej) => {
        ws.once('message', (m) => res(JSON.parse(String(m)) as Record<string, unknown>));
        ws.once('error', rej);
      });
      assert.equal(first.event, 'pusher:connection_established');
      const data = JSON.parse(first.data as string) as { socket_id: string; activity_timeout: number };
      assert.match(data.socket_id, /^\d+\.\d+$/);
      assert.equal(data.activity_timeout, 120);
    } finally {
      ws.close();
    }
  });

  it('serves https:// /up and refuses plain HTTP on the TLS port', async () => {
    const r = await new Promise<{ status: number; body: string; cert: string }>((res, rej) => {
      const req = httpsRequest(`https://127.0.0.1:${node.port}/up`, { rejectUnauthorized: false, timeout: 3000 }, (resp) => {
        const cert = (resp.socket as TLSSocket).getPeerCertificate().subject?.CN as string;
        let body = '';
        resp.on('data', (c) => (body += c));
        resp.on('end', () => res({ status: resp.statusCode ?? 0, body, cert }));
      });
      req.on('error', rej);
      req.end();
    });
    assert.deepEqual(r, { status: 200, body: 'OK', cert: '127.0.0.1' });
    await assert.rejects(httpGet(`${node.url}/up`));
  });
});

// ---------------------------------------------------------------- metrics

describe('metrics', () => {
  let redis: Broker;
  let node: ChorusNode;
  let limited: ChorusNode;
  let client: PusherClient;

  before(async () => {
    redis = await startRedis();
    // On the redis adapter, so the cluster bus metrics exist too.
    node = await startNode({ env: { ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(redis.port) } });
    limited = await startNode({ config: { rate_limiter: { enabled: true, api_rate_limit: { max_requests: 2, window_seconds: 60 } } } });
  });
  after(async () => {
    client?.disconnect();
    await node?.stop();
    await limited?.stop();
    await redis?.stop();
  });

  const SOKETI_NAMES = [
    'connected',
    'new_connections_total',
    'new_disconnections_total',
    'socket_received_bytes',
    'socket_transmitted_bytes',
    'ws_messages_received_total',
    'ws_messages_sent_total',
    'http_received_bytes',
    'http_transmitted_bytes',
    'http_calls_received_total',
  ];

  it("after traffic, /metrics has soketi's names with app_id, exact counts, event-loop lag and cluster size", async () => {
    client = pusherClient(node);
    const socketId = await connected(client);
    const channel = client.subscribe('metrics-channel-name');
    await waitFor(channel, 'pusher:subscription_succeeded');
    const got = waitFor(channel, 'tick');
    assert.equal(await sdkStatus(serverSdk(node).trigger('metrics-channel-name', 'tick', { n: 1 })), 200);
    await got;
    client.disconnect();
    await until('the disconnect is counted', async () => samples(await scrape(node)).get('chorus_connected{app_id="app-id"}') === 0);

    const text = await scrape(node);
    const s = samples(text);
    const app = (name: string) => s.get(`chorus_${name}{app_id="app-id"}`);
    for (const name of SOKETI_NAMES) {
      assert.match(text, new RegExp(`^# TYPE chorus_${name} (counter|gauge)$`, 'm'), `${name} is declared`);
      assert.match(text, new RegExp(`^chorus_${name}\\{[^}]*app_id="app-id"[^}]*\\} `, 'm'), `${name} has an app_id sample`);
    }
    assert.equal(app('connected'), 0);
    assert.equal(app('new_connections_total'), 1);
    assert.equal(app('new_disconnections_total'), 1);
    assert.equal(s.get('chorus_http_calls_received_total{app_id="app-id",endpoint="events",status="200"}'), 1);
    assert.equal(app('publishes_total'), 1);
    assert.equal(app('channel_subscriptions_total'), 1);
    for (const name of ['socket_received_bytes', 'socket_transmitted_bytes', 'http_received_bytes', 'http_transmitted_bytes']) {
      assert.ok((app(name) ?? 0) > 0, `${name} > 0`);
    }
    // In: pusher:subscribe. Out: connection_established, subscription_succeeded, the event.
    assert.equal(app('ws_messages_received_total'), 1);
    assert.equal(app('ws_messages_sent_total'), 3);
    assert.ok(app('socket_transmitted_bytes')! > app('socket_received_bytes')!);
    assert.ok(s.has('chorus_nodejs_eventloop_lag_seconds'), 'event-loop lag');
    assert.ok(s.has('chorus_nodejs_eventloop_lag_p99_seconds'), 'event-loop lag percentiles');
    assert.equal(s.get('chorus_cluster_nodes'), 1);

    // Bounded labels: no channel name, socket id or secret anywhere (transport is ws, xhr_streaming or xhr_polling).
    assert.ok(!text.includes('metrics-channel-name'), 'a channel name in /metrics');
    assert.ok(!text.includes(socketId), 'a socket id in /metrics');
    assert.ok(!text.includes(DEMO_APP.secret), 'a secret in /metrics');
    const ALLOWED = new Set([
      'app_id',
      'endpoint',
      'status',
      'kind',
      'code',
      'le',
      'type',
      'space',
      'version',
      'major',
      'minor',
      'patch',
      'transport',
    ]);
    for (const key of s.keys()) {
      const labels = /\{(.*)\}$/.exec(key)?.[1];
      if (!labels) continue;
      for (const [, name] of labels.matchAll(/(\w+)="/g)) assert.ok(ALLOWED.has(name), `unexpected label ${name} in ${key}`);
    }
  });

  it('a rate-limited call with a made-up app id does not become a label value', async () => {
    const sdkFor = (id: string) => serverSdk(limited, { id, key: 'k', secret: 's' });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(await sdkStatus(sdkFor(`made-up-${i}`).get({ path: '/channels' })));
    assert.deepEqual(statuses, [404, 404, 429, 429, 429]);
    const text = await scrape(limited);
    assert.equal(
      samples(text).get('chorus_rate_limit_triggered_total{app_id="unknown",kind="api_ip"}'),
      3,
      text
        .split('\n')
        .filter((l) => l.includes('rate_limit'))
        .join('\n'),
    );
    assert.ok(!text.includes('made-up-'), 'a client-chosen app id became a label value');
  });

  it('the Grafana dashboard queries only metrics a node exports, and covers the operational signals', async () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'grafana/chorus-dashboard.json'), 'utf8')) as {
      panels: Array<{ id: number; type: string; title: string; targets?: Array<{ expr: string }> }>;
      templating: { list: Array<{ name: string; query: unknown }> };
    };
    const prefixVar = dashboard.templating.list.find((v) => v.name === 'prefix');
    assert.equal(prefixVar?.query, 'chorus_');
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    const exported = new Set([...(await scrape(node)).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    const used = new Set<string>();
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      assert.ok(panel.targets?.length, `panel "${panel.title}" has no query`);
      for (const { expr } of panel.targets) {
        assert.ok(expr.includes('${prefix}'), `"${panel.title}" hard-codes the prefix: ${expr}`);
        for (const [name] of expr.replaceAll('${prefix}', 'chorus_').matchAll(/chorus_\w+/g)) {
          assert.ok(exported.has(name), `"${panel.title}" queries ${name}, which /metrics does not have`);
          used.add(name);
        }
      }
    }
    for (const name of [
      'connected',
      'new_connections_total',
      'ws_messages_received_total',
      'ws_messages_sent_total',
      'http_calls_received_total',
      'publishes_total',
      'rate_limit_triggered_total',
      'cluster_nodes',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      assert.ok(used.has(`chorus_${name}`), `the dashboard does not show chorus_${name}`);
    }
  });
});
