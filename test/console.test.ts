// Issue 18: the operator console on the metrics port, driven in Debian's Chromium with
// playwright-core against three nodes on Redis: log in, the nodes, a node killed, a
// pusher-js client's connection and subscription in the live stream, a presence
// member, a test event sent from the page; and every refusal (no token, a wrong one,
// the public port, disabled, enabled without a token). CONSOLE_SCREENSHOTS=<dir>
// saves a picture of each view (docs/console/ holds them).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startRedis, type Broker } from './helpers/brokers.js';
import { connected, pusherClient, serverSdk, waitFor, type PusherClient } from './helpers/clients.js';
import { DEMO_APP, runCli, startNode, writeConfig, type ChorusNode } from './helpers/node.js';
import { until } from './helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = 10_000;
const TOKEN = 'console-test-token';
const SHOTS = process.env.CONSOLE_SCREENSHOTS ?? null;

const NODE_ENV = {
  ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: '300',
  ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: '2000',
  ADAPTER_CLUSTER_HEALTH_CLEANUP_INTERVAL_MS: '300',
};

const consoleConfig = (extra: Record<string, unknown> = {}) => ({
  app_manager: { array: { apps: [DEMO_APP] } },
  console: { enabled: true, token: TOKEN },
  ...extra,
});

const metricsUrl = (n: ChorusNode, path: string) => `http://127.0.0.1:${n.metricsPort}${path}`;

async function status(url: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { redirect: 'manual', ...init });
  return { status: res.status, body: await res.text() };
}

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

describe('operator console: refusals', () => {
  it('is off unless enabled, never on the public port, and needs its token', async () => {
    const off = await startNode();
    const on = await startNode({ config: consoleConfig() });
    try {
      assert.equal((await status(metricsUrl(off, '/console'))).status, 404, 'disabled: absent');
      assert.equal((await status(metricsUrl(off, '/console/api/cluster'))).status, 404);
      assert.equal((await status(`${on.url}/console`)).status, 404, 'never on the public port');
      assert.equal((await status(`${on.url}/console/api/cluster`)).status, 404);
      const login = await status(metricsUrl(on, '/console'));
      assert.equal(login.status, 401, 'the page without a session is the login form, with 401');
      assert.match(login.body, /<form method="post" action="\/console\/login">/);
      for (const path of ['/console/api/cluster', '/console/api/apps', '/console/assets/console.js', '/console/api/apps/app-id/events']) {
        assert.equal((await status(metricsUrl(on, path))).status, 401, path);
        const wrong = await status(metricsUrl(on, path), { headers: { authorization: 'Bearer not-the-token' } });
        assert.equal(wrong.status, 401, `${path} with a wrong token`);
        const forged = await status(metricsUrl(on, path), { headers: { cookie: 'chorus_console=v1.99999999999.AAAA' } });
        assert.equal(forged.status, 401, `${path} with a forged session`);
      }
      const post = await status(metricsUrl(on, '/console/api/apps/app-id/events'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'x', event: 'y', data: '{}' }),
      });
      assert.equal(post.status, 401, 'publishing needs the token too');
      const bad = await status(metricsUrl(on, '/console/login'), { method: 'POST', body: new URLSearchParams({ token: 'wrong' }) });
      assert.equal(bad.status, 401);
      assert.ok(!bad.body.includes('wrong'), 'the input is not echoed');
      const good = await fetch(metricsUrl(on, '/console/login'), {
        method: 'POST',
        body: new URLSearchParams({ token: TOKEN }),
        redirect: 'manual',
      });
      assert.equal(good.status, 303);
      const cookie = good.headers.get('set-cookie') ?? '';
      assert.match(cookie, /^chorus_console=v1\.[^;]+; Path=\/console; HttpOnly; SameSite=Strict/);
      assert.ok(!cookie.includes(TOKEN), 'the cookie is not the token');
      const session = cookie.split(';')[0];
      const apps = await status(metricsUrl(on, '/console/api/apps'), { headers: { cookie: session } });
      assert.equal(apps.status, 200);
      assert.ok(!apps.body.includes(DEMO_APP.secret) && !apps.body.includes(TOKEN), 'no secret, no token');
      const bearer = await status(metricsUrl(on, '/console/api/cluster'), { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(bearer.status, 200);
      const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
      const send = (body: string) => status(metricsUrl(on, '/console/api/apps/app-id/events'), { method: 'POST', headers, body });
      assert.equal((await send('{not json')).status, 400);
      assert.equal((await send(JSON.stringify({ channel: 'bad name!', event: 'e', data: 'x' }))).status, 400);
      assert.equal((await send(JSON.stringify({ channel: 'ok', event: '', data: 'x' }))).status, 400);
      assert.equal((await send(JSON.stringify({ channel: 'private-encrypted-x', event: 'e', data: 'x' }))).status, 400);
      assert.equal((await status(metricsUrl(on, '/console/api/apps/no-such-app/channels'), { headers })).status, 404);
      assert.equal((await status(metricsUrl(on, '/console/api/apps/app-id/channels/%E0%A4%A'), { headers })).status, 400);
      assert.equal((await status(metricsUrl(on, '/console/api/apps/app-id/channels/nobody-here'), { headers })).status, 404);
      assert.equal(on.logs.filter((l) => /"level":(50|60)/.test(l)).length, 0, 'no error logged');
    } finally {
      await Promise.all([off.stop(), on.stop()]);
    }
  });

  it('the stream and the send refuse what they cannot serve, and a closed viewer frees its place', async () => {
    const on = await startNode({ config: consoleConfig() });
    const streams: ClientRequest[] = [];
    try {
      const headers = { authorization: `Bearer ${TOKEN}` };
      const sendUrl = metricsUrl(on, '/console/api/apps/app-id/events');
      const form = await status(sendUrl, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'channel=x',
      });
      assert.equal(form.status, 415, 'a form (what another site could post) is refused');
      const huge = JSON.stringify({ channel: 'ok', event: 'e', data: 'x'.repeat(1_200_000) });
      assert.equal(
        (await status(sendUrl, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: huge })).status,
        413,
      );
      const noApp = await status(metricsUrl(on, '/console/api/apps/no-such-app/events'), {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(noApp.status, 404);
      assert.equal(
        (await status(metricsUrl(on, '/console/api/apps/no-such-app/events'), { headers })).status,
        404,
        'no stream of an unknown app',
      );
      assert.equal((await status(metricsUrl(on, '/console/assets/../../package.json'), { headers })).status, 404);
      assert.equal((await status(metricsUrl(on, '/console/assets/nothing.js'), { headers })).status, 404);
      const logout = await fetch(metricsUrl(on, '/console/logout'), { method: 'POST', redirect: 'manual' });
      assert.equal(logout.status, 303);
      assert.match(logout.headers.get('set-cookie') ?? '', /^chorus_console=; Path=\/console;.*Max-Age=0/);

      // Up to MAX_VIEWERS (64) streams a node; the next is told to come back; one closed frees a place.
      const open = () =>
        new Promise<{ status: number; first: string; req: ClientRequest }>((resolve, reject) => {
          const req = request(metricsUrl(on, '/console/api/apps/app-id/events'), { headers }, (res) => {
            res.setEncoding('utf8');
            res.once('data', (chunk: string) => resolve({ status: res.statusCode ?? 0, first: chunk, req }));
          });
          req.on('error', reject);
          req.end();
        });
      for (let i = 0; i < 64; i++) {
        const s = await open();
        streams.push(s.req);
        assert.equal(s.status, 200);
        assert.match(s.first, /event: hello\ndata: \{"app_id":"app-id","max_events_per_second":200\}/);
      }
      const full = await open();
      streams.push(full.req);
      assert.equal(full.status, 503);
      streams.shift()?.destroy();
      await until(async () => (await open().then((s) => (streams.push(s.req), s.status))) === 200, WAIT_MS, 'a place freed');
      assert.equal(on.logs.filter((l) => /"level":(50|60)/.test(l)).length, 0, 'no error logged');
    } finally {
      for (const s of streams) s.destroy();
      await on.stop();
    }
  });

  it('enabled without a token (or without the metrics port) stops start-up with exit code 2 naming the key', async () => {
    const [noToken, noMetrics] = await Promise.all([
      runCli(['start', '--config', writeConfig({ ...consoleConfig(), port: 0, host: '127.0.0.1', console: { enabled: true } })]),
      runCli(['start', '--config', writeConfig({ ...consoleConfig(), port: 0, host: '127.0.0.1', metrics: { enabled: false } })]),
    ]);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stdout + noToken.stderr, /console\.token/);
    assert.equal(noMetrics.code, 2);
    assert.match(noMetrics.stdout + noMetrics.stderr, /metrics\.enabled/);
    const viaEnv = await runCli(['start', '--config', writeConfig({ ...consoleConfig(), console: {}, port: 0, host: '127.0.0.1' })], {
      CONSOLE_ENABLED: 'true',
    });
    assert.equal(viaEnv.code, 2);
    assert.match(viaEnv.stdout + viaEnv.stderr, /CONSOLE_TOKEN/);
  });
});

describe('operator console in Chromium: three nodes on redis', () => {
  let redis: Broker;
  const nodes: ChorusNode[] = [];
  let context: BrowserContext;
  let profile: string;
  let page: Page;
  const clients: PusherClient[] = [];
  const errors: string[] = [];

  before(async () => {
    redis = await startRedis();
    const env = { ...NODE_ENV, ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(redis.port) };
    nodes.push(...(await Promise.all([0, 1, 2].map(() => startNode({ config: consoleConfig(), env })))));
    profile = mkdtempSync(join(tmpdir(), 'chorus-console-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1440, height: 900 },
      timeout: 30_000,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
    });
    context.setDefaultTimeout(WAIT_MS);
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await context?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  });

  it('logs in, sees the cluster, the client, its member and a test event arrive; a killed node goes', async () => {
    const [serving, other, doomed] = nodes;
    await page.goto(metricsUrl(serving, '/console'));
    await page.fill('[data-testid="login-token"]', 'a-wrong-token');
    await page.click('[data-testid="login-submit"]');
    await page.locator('[data-testid="login-error"]').waitFor();
    await page.fill('[data-testid="login-token"]', TOKEN);
    await page.click('[data-testid="login-submit"]');

    // Cluster: every node, whichever serves the page.
    await page.click('[data-testid="tab-cluster"]');
    const rows = page.locator('[data-testid="node-row"]');
    await until(async () => (await rows.count()) === 3, WAIT_MS, 'three nodes listed');
    for (const n of nodes) await page.locator(`[data-testid="node-row"][data-node-id="${n.nodeId}"]`).waitFor();
    assert.equal(
      await page
        .locator('[data-testid="serving-node"]')
        .textContent()
        .then((t) => t?.includes(serving.nodeId)),
      true,
    );
    await shot(page, 'cluster');

    // Live stream of the app: a pusher-js client on another node appears.
    await page.selectOption('[data-testid="app-select"]', DEMO_APP.id);
    await page.click('[data-testid="tab-events"]');
    await page.locator('[data-testid="stream-state"]', { hasText: 'live' }).waitFor();
    // The peers learn of the watch within a renewal; then the client connects.
    await new Promise((r) => setTimeout(r, 500));
    const client = pusherClient(other, { user: { user_id: 'ada', user_info: { name: 'Ada Lovelace' } } });
    clients.push(client);
    const socketId = await connected(client);
    const channel = client.subscribe('presence-room');
    await waitFor(channel, 'pusher:subscription_succeeded');
    await page.locator(`[data-testid="event-row"][data-type="connection_opened"]`).first().waitFor();
    await page.locator(`[data-testid="event-row"][data-type="subscribed"]`).first().waitFor();
    const streamed = await page.locator('[data-testid="event-row"]').allTextContents();
    assert.ok(
      streamed.some((t) => t.includes('presence-room')),
      `the subscription is in the stream: ${streamed.join(' | ')}`,
    );
    assert.ok(
      streamed.some((t) => t.includes(socketId)),
      'with the socket id',
    );

    // Channels: the presence channel and its member.
    await page.click('[data-testid="tab-channels"]');
    await page.locator('[data-testid="channel-row"][data-channel="presence-room"]').click();
    await page.locator('[data-testid="channel-detail"] [data-testid="member-row"][data-user-id="ada"]').waitFor();
    assert.match((await page.locator('[data-testid="channel-detail"]').textContent()) ?? '', /Ada Lovelace/);
    await shot(page, 'channels');

    // A test event from the page reaches the client on another node.
    await page.click('[data-testid="tab-events"]');
    const got = waitFor<{ message: string }>(channel, 'console-test', WAIT_MS);
    await page.fill('[data-testid="send-channel"]', 'presence-room');
    await page.fill('[data-testid="send-event"]', 'console-test');
    await page.fill('[data-testid="send-data"]', '{"message":"hello from the console"}');
    await page.click('[data-testid="send-submit"]');
    assert.deepEqual(await got, { message: 'hello from the console' });
    await page.locator('[data-testid="send-result"]', { hasText: 'sent' }).waitFor();
    await page.locator('[data-testid="event-row"][data-type="api_message"]').first().waitFor();
    await shot(page, 'events');

    // A burst past the stream's budget (200 events a second per node and app) is sampled, and the page says so.
    const sdk = serverSdk(other);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        sdk.triggerBatch(Array.from({ length: 10 }, (_, j) => ({ channel: 'burst', name: 'burst', data: { n: i * 10 + j } }))),
      ),
    );
    await page.locator('[data-testid="events-skipped"]', { hasText: /\d+ events skipped/ }).waitFor();
    assert.ok((await page.locator('[data-testid="event-row"]').count()) < 200, 'rows are virtualized: only those in sight are built');

    await page.click('[data-testid="tab-apps"]');
    await page.locator(`[data-testid="app-row"][data-app-id="${DEMO_APP.id}"]`).waitFor();
    assert.ok(!((await page.content()).includes(DEMO_APP.secret) || (await page.content()).includes(TOKEN)), 'no secret in the page');
    await shot(page, 'apps');

    // A node dies: red, then gone, as the cluster sees it.
    await page.click('[data-testid="tab-cluster"]');
    await doomed.kill();
    const doomedRow = page.locator(`[data-testid="node-row"][data-node-id="${doomed.nodeId}"]`);
    await until(
      async () => {
        const text =
          (await doomedRow.count()) === 0 ? 'gone' : ((await doomedRow.locator('[data-testid="node-status"]').textContent()) ?? '');
        return text !== 'ok';
      },
      WAIT_MS,
      'the killed node turns red',
    );
    await until(async () => (await doomedRow.count()) === 0, 20_000, 'the killed node goes away');
    assert.equal(await rows.count(), 2);
    assert.deepEqual(errors, [], 'no page errors');
  });
});
