// No secret in any log line, metric or error message, at any level. Nodes run at
// LOG_LEVEL=trace with distinctive secrets (app secrets, a Redis password with
// redis-server --requirepass, NATS credentials, a MySQL password, passwords inside
// REDIS_URL and NATS_SERVERS) and are driven through error paths: bad signatures of
// every kind, refused subscriptions and sign-ins, webhooks that fail, a Redis restart,
// wrong broker passwords, an unreachable app database. Then every log line, /metrics,
// /cluster, the HTTP error bodies and WebSocket error frames are searched for the secrets.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { startNats, startRedis, freePort, type Broker } from './helpers/brokers.js';
import { runCli, startNode, writeConfig, type ChorusNode, type TestApp } from './helpers/node.js';
import { connected, dataOf, pusherClient, rawSocket, serverSdk, sleep, waitFor } from './helpers/clients.js';
import { signedFetch } from './helpers/signing.js';

const SECRETS = {
  app: 'S3CR3T-app-9f2c7e1d4b',
  app2: 'S3CR3T-other-5a8e3c0f71',
  redis: 'S3CR3T-redis-pw-6d1f9a',
  redisWrong: 'S3CR3T-redis-wrong-2b7c',
  redisUrl: 'S3CR3T-redis-url-8e4a0d',
  nats: 'S3CR3T-nats-pw-3c9e51',
  natsWrong: 'S3CR3T-nats-wrong-7f0b2a',
  natsUrl: 'S3CR3T-nats-url-1a6d8c',
  mysql: 'S3CR3T-mysql-pw-4e2b9f',
};

const APP: TestApp = {
  id: 'scan-app',
  key: 'scan-key',
  secret: SECRETS.app,
  enable_client_messages: true,
  max_connections: 50,
  webhooks: [] as unknown[],
};
const APP2: TestApp = { id: 'scan-app-2', key: 'scan-key-2', secret: SECRETS.app2, enabled: false };

/** Every text the scan reads, with where it came from. */
const collected: Array<{ where: string; text: string }> = [];
const keep = (where: string, text: string) => collected.push({ where, text });

/** The forms a secret could take on the way out: raw, URL-encoded, base64, JSON-escaped. */
function forms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), JSON.stringify(secret).slice(1, -1)];
}

function findLeaks(texts: Array<{ where: string; text: string }>): string[] {
  const leaks: string[] = [];
  for (const [name, secret] of Object.entries(SECRETS)) {
    for (const form of new Set(forms(secret))) {
      for (const { where, text } of texts) {
        const at = text.indexOf(form);
        if (at >= 0) leaks.push(`${name} in ${where}: ...${text.slice(Math.max(0, at - 120), at + form.length + 40)}...`);
      }
    }
  }
  return leaks;
}

async function scrape(node: ChorusNode, label: string): Promise<void> {
  for (const path of ['/metrics', '/cluster']) {
    const res = await fetch(`http://127.0.0.1:${node.metricsPort}${path}`);
    keep(`${label} ${path}`, await res.text());
  }
}

describe('secrets scan: no secret in logs, metrics or errors', () => {
  let redis: Broker;
  let nats: Broker;
  let webhookPort: number;
  const nodes: ChorusNode[] = [];

  before(async () => {
    [redis, nats, webhookPort] = await Promise.all([
      startRedis(['--requirepass', SECRETS.redis]),
      startNats(['--user', 'chorus', '--pass', SECRETS.nats]),
      freePort(),
    ]);
    // Webhooks to a port nobody listens on: every delivery fails and is retried (and logged).
    APP.webhooks = [
      { url: `http://127.0.0.1:${webhookPort}/hook`, event_types: ['channel_occupied', 'channel_vacated', 'client_event', 'member_added'] },
    ];
  });

  after(async () => {
    for (const n of nodes) n.proc.kill('SIGCONT');
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all([redis?.stop(), nats?.stop()]);
  });

  it('drives two redis nodes (right password, trace logs, debug client) through error paths', async () => {
    const redisEnv = {
      LOG_LEVEL: 'trace',
      ADAPTER_DRIVER: 'redis',
      DATABASE_REDIS_HOST: '127.0.0.1',
      DATABASE_REDIS_PORT: String(redis.port),
      DATABASE_REDIS_PASSWORD: SECRETS.redis,
      RATE_LIMITER_ENABLED: 'true',
      RATE_LIMITER_DRIVER: 'redis',
      ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: '500',
      ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: '2500',
    };
    const config = { debug: true, client: { enabled: true }, app_manager: { array: { apps: [APP, APP2] } } };
    const [a, b] = await Promise.all([
      startNode({ config, env: { ...redisEnv, INSTANCE_PROCESS_ID: 'scan-a' }, timeoutMs: 15_000 }),
      startNode({ config, env: { ...redisEnv, INSTANCE_PROCESS_ID: 'scan-b' }, timeoutMs: 15_000 }),
    ]);
    nodes.push(a, b);

    // HTTP API error paths; every answer body is kept.
    const path = `/apps/${APP.id}/events`;
    const body = JSON.stringify({ name: 'e', channel: 'c', data: 'x' });
    const requests = [
      signedFetch(a, { app: APP, method: 'POST', path, body, secret: 'wrong-secret' }),
      signedFetch(a, { app: APP, method: 'POST', path, body, key: 'wrong-key' }),
      signedFetch(a, { app: APP, method: 'POST', path, body, timestamp: 1 }),
      signedFetch(a, { app: APP, method: 'POST', path, body, bodyMd5: 'ffff' }),
      signedFetch(a, { app: APP, method: 'POST', path, body: '{not json' }),
      signedFetch(a, { app: APP, method: 'POST', path, body: JSON.stringify({ name: 'e', channel: 'c', data: 'x'.repeat(20_000) }) }),
      signedFetch(a, { app: APP2, method: 'POST', path: `/apps/${APP2.id}/events`, body }),
      signedFetch(a, { app: APP, path: `/apps/${APP.id}/channels`, params: { info: 'user_count' } }),
      signedFetch(a, { app: APP, path: `/apps/${APP.id}/channels/c/users` }),
      signedFetch(a, { app: APP, method: 'POST', path: `/apps/${APP.id}/users/u/terminate_connections` }),
      signedFetch(a, { app: APP, method: 'POST', path: '/apps/nope/events', body }),
      fetch(`${a.url}${path}`, { method: 'PUT' }).then(async (r) => ({ status: r.status, text: await r.text() })),
      fetch(`${a.url}/client`).then(async (r) => ({ status: r.status, text: await r.text() })),
      fetch(`${a.url}/client/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: APP.key, socket_id: '1.1', channel_name: 'private-x' }),
      }).then(async (r) => ({ status: r.status, text: await r.text() })),
      fetch(`${a.url}/client/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: APP.key, socket_id: '1.1', channel_name: 'private-encrypted-x' }),
      }).then(async (r) => ({ status: r.status, text: await r.text() })),
    ];
    for (const [i, r] of (await Promise.all(requests)).entries()) keep(`http answer ${i} (${r.status})`, r.text);

    // WebSocket error paths; every frame is kept.
    const sock = await rawSocket(a, `/app/${APP.key}?protocol=7&client=js&version=8.6.0`);
    const socketId = dataOf<{ socket_id: string }>(await sock.next((f) => f.event === 'pusher:connection_established')).socket_id;
    const frames = [
      { event: 'pusher:subscribe', data: { channel: 'private-x', auth: `${APP.key}:deadbeef` } },
      { event: 'pusher:subscribe', data: { channel: 'presence-x', auth: `${APP.key}:00`, channel_data: '{"user_id":"u"}' } },
      { event: 'pusher:signin', data: { auth: `${APP.key}:00`, user_data: '{"id":"u"}' } },
      { event: 'client-x', channel: 'private-x', data: {} },
      { event: 'nope' },
    ];
    for (const f of frames) sock.send(f);
    sock.sendRaw('{not json');
    sock.send({ event: 'pusher:ping', data: {} });
    await sock.next((f) => f.event === 'pusher:pong');
    // A good client: subscribe (webhooks fire and fail), client events, then leave.
    const good = pusherClient(a, { app: APP, user: { user_id: 'scan-user' } });
    await connected(good);
    const ch = good.subscribe('presence-scan');
    await waitFor(ch, 'pusher:subscription_succeeded');
    ch.trigger('client-hello', { x: 1 });
    await serverSdk(a, APP).trigger('presence-scan', 'server-event', {});
    await sleep(300);
    good.disconnect();
    // Connections refused at the upgrade: disabled app, unknown app.
    for (const key of [APP2.key, 'unknown-key']) {
      const r = await rawSocket(a, `/app/${key}?protocol=7`);
      await r.closed;
      keep(`ws refusal ${key}`, JSON.stringify(r.frames));
    }
    keep('ws frames', JSON.stringify(sock.frames));
    sock.close();
    void socketId;

    // Redis goes away and comes back: reconnects re-authenticate with the password.
    await redis.stop('SIGKILL');
    await serverSdk(a, APP)
      .trigger('c', 'during-outage', {})
      .catch(() => undefined);
    await sleep(1500);
    await redis.restart();
    await sleep(2500);
    for (const n of [a, b]) await scrape(n, n === a ? 'node a' : 'node b');
  });

  it('starts nodes with wrong broker passwords and an unreachable app database, and keeps their output', async () => {
    const base = { port: 0, host: '127.0.0.1', metrics: { port: 0, host: '127.0.0.1' }, app_manager: { array: { apps: [APP] } } };
    const file = writeConfig(base);
    const closedPort = await freePort();
    const runs: Array<[string, Record<string, string>]> = [
      [
        'redis wrong password',
        {
          ADAPTER_DRIVER: 'redis',
          DATABASE_REDIS_HOST: '127.0.0.1',
          DATABASE_REDIS_PORT: String(redis.port),
          DATABASE_REDIS_PASSWORD: SECRETS.redisWrong,
        },
      ],
      ['REDIS_URL wrong password', { ADAPTER_DRIVER: 'redis', REDIS_URL: `redis://default:${SECRETS.redisUrl}@127.0.0.1:${redis.port}/0` }],
      ['REDIS_URL unreachable', { ADAPTER_DRIVER: 'redis', REDIS_URL: `redis://default:${SECRETS.redisUrl}@127.0.0.1:${closedPort}/0` }],
      [
        'NATS wrong password',
        {
          ADAPTER_DRIVER: 'nats',
          NATS_SERVERS: `nats://127.0.0.1:${nats.port}`,
          NATS_USERNAME: 'chorus',
          NATS_PASSWORD: SECRETS.natsWrong,
        },
      ],
      ['NATS credentials in the URL', { ADAPTER_DRIVER: 'nats', NATS_SERVERS: `nats://chorus:${SECRETS.natsUrl}@127.0.0.1:${nats.port}` }],
      [
        'NATS unreachable',
        {
          ADAPTER_DRIVER: 'nats',
          NATS_SERVERS: `nats://chorus:${SECRETS.natsUrl}@127.0.0.1:${closedPort}`,
          NATS_PASSWORD: SECRETS.nats,
          NATS_USERNAME: 'chorus',
        },
      ],
    ];
    // A refusing broker ends the start at once; an unreachable one is waited for (the node
    // says why every 5 s): those are stopped after 12 s, past two of the reports.
    const results = await Promise.all(runs.map(([, env]) => runCli(['start', '--config', file], { LOG_LEVEL: 'trace', ...env }, 12_000)));
    for (const [i, r] of results.entries()) {
      const [what] = runs[i];
      keep(`${what}: stdout`, r.stdout);
      keep(`${what}: stderr`, r.stderr);
      if (what.includes('unreachable')) {
        assert.equal(r.code, null, `${what} waits for its broker: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /waiting for the broker/, `${what} says why it waits`);
      } else {
        // Each of these fails to start, and says why.
        assert.notEqual(r.code, 0, `${what} should not start: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout + r.stderr, /"level":60/, `${what} logs a fatal line`);
      }
    }

    // The right NATS password works (positive control for the credentials above).
    const ok = await startNode({
      config: { app_manager: { array: { apps: [APP] } } },
      env: {
        LOG_LEVEL: 'trace',
        ADAPTER_DRIVER: 'nats',
        NATS_SERVERS: `nats://127.0.0.1:${nats.port}`,
        NATS_USERNAME: 'chorus',
        NATS_PASSWORD: SECRETS.nats,
      },
      timeoutMs: 15_000,
    });
    nodes.push(ok);
    await scrape(ok, 'nats node');

    // Apps from a MySQL nobody serves: the node starts, lookups fail, clients are told to retry.
    const mysqlNode = await startNode({
      config: { app_manager: { driver: 'mysql' } },
      env: {
        LOG_LEVEL: 'trace',
        DATABASE_MYSQL_HOST: '127.0.0.1',
        DATABASE_MYSQL_PORT: String(closedPort),
        DATABASE_MYSQL_PASSWORD: SECRETS.mysql,
      },
      timeoutMs: 15_000,
    }).catch((err: Error) => {
      keep('mysql node start failure', err.message);
      return null;
    });
    if (mysqlNode) {
      nodes.push(mysqlNode);
      const r = await rawSocket(mysqlNode, `/app/${APP.key}?protocol=7`);
      await r.closed;
      keep('mysql ws refusal', JSON.stringify(r.frames));
      const res = await signedFetch(mysqlNode, { app: APP, path: `/apps/${APP.id}/channels` });
      keep(`mysql http (${res.status})`, res.text);
      await scrape(mysqlNode, 'mysql node');
    }
  });

  it('finds none of the secrets anywhere it looked', async () => {
    for (const n of nodes) keep(`logs of ${n.nodeId}`, n.logs.join('\n'));
    // Positive controls: the scan read real output, errors included, from every source.
    const all = collected.map((c) => c.text).join('\n');
    assert.ok(collected.length > 30, `collected ${collected.length} texts`);
    assert.match(all, /"level":20/, 'debug lines were logged');
    assert.match(all, /"level":(40|50)/, 'warnings or errors were logged');
    assert.match(all, /Invalid signature/, 'signature errors were answered');
    assert.match(all, /chorus_connected/, 'metrics were read');
    // The finder itself finds a secret where one is (the app config holds one).
    assert.equal(findLeaks([{ where: 'the app config', text: JSON.stringify(APP) }]).length, 1);
    const leaks = findLeaks(collected);
    // SCAN_DUMP=<file> keeps everything that was read, to look at by hand.
    if (process.env.SCAN_DUMP) writeFileSync(process.env.SCAN_DUMP, JSON.stringify(collected, null, 1));
    assert.deepEqual(leaks, [], 'secrets found');
    console.log(
      `# secrets scan: ${Object.keys(SECRETS).length} secrets x 4 encodings over ${collected.length} texts (${(all.length / 1024).toFixed(0)} KiB) - none found`,
    );
  });
});
