// Issue 8: the browser test client (client/, served at <prefix>/client when enabled), driven
// in Debian's Chromium with playwright-core; and its endpoints being absent when it is off.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PusherServer from 'pusher';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { DEMO_APP, ROOT, runCli, startNode, writeConfig, type ChorusNode } from './helpers/node.js';
import { connected, pusherClient, serverSdk, waitFor, type PusherClient } from './helpers/clients.js';

const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = 8000;

async function launch(): Promise<{ context: BrowserContext; profile: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'chorus-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  context.setDefaultTimeout(WAIT_MS);
  return { context, profile };
}

/** Opens the page, records every request it makes, and waits for the connection badge. */
async function openClient(context: BrowserContext, url: string): Promise<{ page: Page; requests: string[]; errors: string[] }> {
  const page = await context.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.locator('#state[data-state="connected"]').waitFor();
  return { page, requests, errors };
}

async function subscribe(page: Page, prefix: string, name: string): Promise<void> {
  await page.selectOption('#channel-type', prefix);
  await page.fill('#channel-name', name);
  await page.click('#subscribe');
  await page.locator(`#channel-list li[data-channel="${prefix + name}"][data-state="subscribed"]`).waitFor();
}

/** The user ids in a presence channel's member list, once it holds exactly `count`. */
async function members(page: Page, channel: string, count: number): Promise<string[]> {
  const sel = `#channel-list li[data-channel="${channel}"] li.member`;
  await page.waitForFunction(([s, n]) => document.querySelectorAll(s).length === n, [sel, count] as const, { timeout: WAIT_MS });
  return page.$$eval(sel, (els) => els.map((e) => (e as HTMLElement).dataset.userId ?? ''));
}

/** The log entries (data parsed back from the pretty JSON) for one channel and event. */
async function logged(page: Page, channel: string, event: string, count = 1): Promise<Array<{ data: unknown; sent: boolean }>> {
  const sel = `#log li[data-channel="${channel}"][data-event="${event}"]`;
  await page.waitForFunction(([s, n]) => document.querySelectorAll(s).length >= n, [sel, count] as const, { timeout: WAIT_MS });
  return page.$$eval(sel, (els) =>
    els.map((e) => {
      const text = e.querySelector('pre')?.textContent ?? '';
      let data: unknown = text;
      try {
        data = JSON.parse(text);
      } catch {
        /* plain text */
      }
      return { data, sent: e.classList.contains('sent') };
    }),
  );
}

const clientUrl = (node: ChorusNode, prefix = '', query = '') => `${node.url}${prefix}/client/${query}`;

describe('browser test client in Chromium', () => {
  let node: ChorusNode;
  let prefixed: ChorusNode;
  let context: BrowserContext;
  let profile: string;
  let watcher: PusherClient | undefined;

  before(async () => {
    [node, prefixed] = await Promise.all([
      startNode({ config: { client: { enabled: true } } }),
      startNode({ config: { client: { enabled: true }, path_prefix: '/chorus' } }),
    ]);
    ({ context, profile } = await launch());
  });

  after(async () => {
    watcher?.disconnect();
    await context?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    await Promise.all([node?.stop(), prefixed?.stop()]);
  });

  it('serves the page and pusher-js from the node itself and connects', async () => {
    const { page, requests, errors } = await openClient(context, clientUrl(node));
    const socketId = await page.textContent('#socket-id');
    assert.match(socketId ?? '', /^\d+\.\d+$/);
    assert.deepEqual(errors, []);
    // No CDN: every request (page, css, scripts, auth) went to this node.
    assert.ok(requests.length >= 4, requests.join('\n'));
    for (const url of requests) assert.ok(url.startsWith(node.url + '/'), `request outside the node: ${url}`);
    assert.ok(requests.includes(`${node.url}/client/pusher-with-encryption.min.js`));
    await page.close();
  });

  it('two pages on one presence channel: members, client events and a published event', async () => {
    const sdk = serverSdk(node);
    const a = await openClient(context, clientUrl(node, '', '?user-id=alice&user-name=Alice'));
    const b = await openClient(context, clientUrl(node, '', '?user-id=bob&user-name=Bob'));
    watcher = pusherClient(node, { user: { user_id: 'watcher' } });
    await connected(watcher);
    const fromNode = watcher.subscribe('presence-room');
    await waitFor(fromNode, 'pusher:subscription_succeeded');

    await subscribe(a.page, 'presence-', 'room');
    await subscribe(b.page, 'presence-', 'room');
    assert.deepEqual(await members(a.page, 'presence-room', 3), ['alice', 'bob', 'watcher']);
    assert.deepEqual(await members(b.page, 'presence-room', 3), ['alice', 'bob', 'watcher']);
    assert.equal(await a.page.textContent('li[data-channel="presence-room"] li.member[data-user-id="alice"] .member-name'), 'Alice');
    assert.equal(await a.page.textContent('li[data-channel="presence-room"] li.member[data-user-id="alice"] .me'), 'you');
    assert.equal(await b.page.locator('li[data-channel="presence-room"] li.member[data-user-id="alice"] .me').count(), 0);
    // The server agrees about who is there (signed by the dev auth endpoint with the user's form values).
    const users = (await (await sdk.get({ path: '/channels/presence-room/users' })).json()) as { users: Array<{ id: string }> };
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['alice', 'bob', 'watcher']);

    // A client event from A reaches B (and the Node client), and not A itself.
    const nodeGotClientEvent = waitFor(fromNode, 'client-wave');
    await a.page.selectOption('#ce-channel', 'presence-room');
    await a.page.fill('#ce-event', 'client-wave');
    await a.page.fill('#ce-data', '{"from": "alice", "n": 1}');
    await a.page.click('#ce-send');
    assert.deepEqual(await logged(b.page, 'presence-room', 'client-wave'), [{ data: { from: 'alice', n: 1 }, sent: false }]);
    assert.deepEqual(await nodeGotClientEvent, { from: 'alice', n: 1 });
    assert.deepEqual(await logged(a.page, 'presence-room', 'client-wave'), [{ data: { from: 'alice', n: 1 }, sent: true }]);

    // An event published from B's form (POST /client/publish) reaches both pages and the Node client.
    const nodeGotPublished = waitFor(fromNode, 'announce');
    await b.page.fill('#pub-channels', 'presence-room');
    await b.page.fill('#pub-event', 'announce');
    await b.page.fill('#pub-data', '{"message": "hello both", "n": 42}');
    await b.page.click('#pub-send');
    const expected = [{ data: { message: 'hello both', n: 42 }, sent: false }];
    assert.deepEqual(await logged(a.page, 'presence-room', 'announce'), expected);
    assert.deepEqual(await logged(b.page, 'presence-room', 'announce'), expected);
    assert.deepEqual(await nodeGotPublished, { message: 'hello both', n: 42 });
    assert.match((await b.page.textContent('#pub-result')) ?? '', /^Published announce to presence-room$/);

    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    const shot = join(ROOT, 'test-artifacts/browser-client.png');
    await a.page.screenshot({ path: shot });
    copyFileSync(shot, join(ROOT, 'docs/client.png'));

    // The member list updates live when a member leaves.
    await b.page.click('li[data-channel="presence-room"] button.unsubscribe');
    assert.deepEqual(await members(a.page, 'presence-room', 2), ['alice', 'watcher']);
    // Exactly one of each: the positive controls above prove delivery, nothing arrived twice.
    assert.equal(await a.page.locator('#log li[data-event="announce"]').count(), 1);
    assert.equal(await b.page.locator('#log li[data-event="client-wave"]').count(), 1);
    watcher.disconnect();
    watcher = undefined;
    await Promise.all([a.page.close(), b.page.close()]);
  });

  it('private, encrypted and cache channels, sign-in, and the publish form refusing encryption', async () => {
    const { page, errors } = await openClient(context, clientUrl(node, '', '?user-id=carol&user-name=Carol'));
    await subscribe(page, 'private-', 'notes');
    assert.deepEqual(await page.$$eval('#ce-channel option', (o) => o.map((e) => (e as HTMLOptionElement).value)), ['private-notes']);

    // Encrypted: the page decrypts what a server SDK holding the dev master key (sha256 of the secret) sends.
    await subscribe(page, 'private-encrypted-', 'secret');
    const encrypting = new PusherServer({
      appId: DEMO_APP.id,
      key: DEMO_APP.key,
      secret: DEMO_APP.secret,
      host: '127.0.0.1',
      port: String(node.port),
      useTLS: false,
      encryptionMasterKeyBase64: createHash('sha256').update(DEMO_APP.secret).digest('base64'),
    });
    await encrypting.trigger('private-encrypted-secret', 'classified', { code: 7 });
    assert.deepEqual(await logged(page, 'private-encrypted-secret', 'classified'), [{ data: { code: 7 }, sent: false }]);
    // Encrypted channels take no client events, so the form does not offer them.
    assert.deepEqual(await page.$$eval('#ce-channel option', (o) => o.map((e) => (e as HTMLOptionElement).value)), ['private-notes']);

    // The form cannot encrypt: the node says so and nothing is published.
    await page.fill('#pub-channels', 'private-encrypted-secret');
    await page.fill('#pub-event', 'plain');
    await page.click('#pub-send');
    await page.locator('#pub-result.bad').waitFor();
    assert.equal(
      await page.textContent('#pub-result'),
      '400: The dev client cannot encrypt: publish to encrypted channels from a server SDK',
    );

    // Cache: an event published before subscribing is delivered on subscribe.
    await serverSdk(node).trigger('cache-news', 'headline', { title: 'cached' });
    await subscribe(page, 'cache-', 'news');
    assert.deepEqual(await logged(page, 'cache-news', 'headline'), [{ data: { title: 'cached' }, sent: false }]);

    // Private: the publish form reaches a private channel.
    await page.fill('#pub-channels', 'private-notes');
    await page.fill('#pub-event', 'memo');
    await page.fill('#pub-data', 'just text');
    await page.click('#pub-send');
    assert.deepEqual(await logged(page, 'private-notes', 'memo'), [{ data: 'just text', sent: false }]);

    // Sign-in through /client/signin shows the signed-in user.
    await page.click('#signin');
    await page.waitForFunction(() => document.getElementById('signed-in')?.textContent === 'carol', null, { timeout: WAIT_MS });
    assert.deepEqual(errors, []);
    await page.close();
  });

  for (const [label, prefixOf, transportsQuery] of [
    ['WebSocket missing from the page: pusher-js falls back to xhr_streaming', () => '', ''],
    ['transports limited to xhr_polling, under a path_prefix', () => '/chorus', '&transports=xhr_polling'],
  ] as const) {
    it(label, async () => {
      const target = prefixOf() === '' ? node : prefixed;
      const expected = transportsQuery === '' ? 'xhr_streaming' : 'xhr_polling';
      const page = await context.newPage();
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      // As behind a proxy that strips Upgrade: the page has no WebSocket at all.
      await page.addInitScript(() => {
        Object.defineProperty(window, 'WebSocket', { value: undefined, configurable: true, writable: true });
      });
      await page.goto(clientUrl(target, prefixOf(), `?user-id=carol-${expected}${transportsQuery}`));
      await page.locator(`#state[data-state="connected"][data-transport="${expected}"]`).waitFor({ timeout: 15_000 });
      assert.ok(
        requests.some(
          (u) =>
            u.startsWith(`${target.url}${prefixOf() || '/pusher'}/app/app-key/`) &&
            u.includes(expected === 'xhr_streaming' ? '/xhr_streaming?' : '/xhr?'),
        ),
        requests.join('\n'),
      );
      await subscribe(page, 'presence-', `fallback-${expected}`);
      assert.deepEqual(await members(page, `presence-fallback-${expected}`, 1), [`carol-${expected}`]);
      // Published from the page's form (the node signs it), so the prefixed node's API is used as configured.
      await page.fill('#pub-channels', `presence-fallback-${expected}`);
      await page.fill('#pub-event', 'hello');
      await page.fill('#pub-data', JSON.stringify({ over: expected }));
      await page.click('#pub-send');
      assert.deepEqual(await logged(page, `presence-fallback-${expected}`, 'hello'), [{ data: { over: expected }, sent: false }]);
      await page.close();
    });
  }

  it('works under a path_prefix with client.enabled and debug off', async () => {
    const { page, requests } = await openClient(context, clientUrl(prefixed, '/chorus', '?user-id=dave'));
    await subscribe(page, 'presence-', 'prefixed');
    assert.deepEqual(await members(page, 'presence-prefixed', 1), ['dave']);
    assert.ok(requests.includes(`${prefixed.url}/chorus/client/auth`), requests.join('\n'));
    await page.close();
  });
});

describe('browser test client endpoints when the page is off', () => {
  const nodes: ChorusNode[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  const PATHS: Array<[string, string]> = [
    ['GET', '/client'],
    ['GET', '/client/'],
    ['GET', '/client/client.js'],
    ['GET', '/client/pusher-with-encryption.min.js'],
    ['POST', '/client/auth'],
    ['POST', '/client/signin'],
    ['POST', '/client/publish'],
  ];

  async function statuses(node: ChorusNode): Promise<number[]> {
    const form = 'socket_id=1.1&channel_name=private-x&key=app-key&user_id=u&name=e&data=x&channel=x';
    return Promise.all(
      PATHS.map(async ([method, path]) => {
        const res = await fetch(node.url + path, {
          method,
          headers: method === 'POST' ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {},
          body: method === 'POST' ? form : undefined,
        });
        await res.arrayBuffer();
        return res.status;
      }),
    );
  }

  for (const [label, config] of [
    ['by default', {}],
    ['with debug on but client.enabled false', { debug: true, client: { enabled: false } }],
    ['with debug on (Sockudo: verbose logging only)', { debug: true }],
  ] as const) {
    it(`answers 404 ${label}`, async () => {
      const node = await startNode({ config });
      nodes.push(node);
      assert.deepEqual(
        await statuses(node),
        PATHS.map(() => 404),
      );
      // The node itself is fine.
      assert.equal((await fetch(node.url + '/up')).status, 200);
    });
  }

  it('when on, signs exactly as the pusher SDK does and validates input', async () => {
    const node = await startNode({ config: { client: { enabled: true } } });
    nodes.push(node);
    assert.deepEqual(await statuses(node), [200, 200, 200, 200, 200, 200, 200]);
    const sdk = serverSdk(node);
    const post = async (path: string, body: Record<string, unknown>) => {
      const res = await fetch(`${node.url}/client/${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const presence = await post('auth', {
      socket_id: '12.34',
      channel_name: 'presence-a',
      key: 'app-key',
      user_id: 'u1',
      user_name: 'Una',
    });
    assert.deepEqual(presence, {
      status: 200,
      body: sdk.authorizeChannel('12.34', 'presence-a', { user_id: 'u1', user_info: { name: 'Una' } }) as unknown as Record<
        string,
        unknown
      >,
    });
    assert.deepEqual(
      (await post('auth', { socket_id: '12.34', channel_name: 'private-a', key: 'app-key' })).body,
      sdk.authorizeChannel('12.34', 'private-a'),
    );
    assert.deepEqual(
      (await post('signin', { socket_id: '12.34', key: 'app-key', user_id: 'u1' })).body,
      sdk.authenticateUser('12.34', { id: 'u1', user_info: { name: 'u1' } }),
    );
    assert.deepEqual(await post('auth', { socket_id: '12.34', channel_name: 'public-a', key: 'app-key' }), {
      status: 400,
      body: { error: 'public-a is not a private, presence or encrypted channel' },
    });
    assert.deepEqual(await post('auth', { socket_id: 'x', channel_name: 'private-a', key: 'app-key' }), {
      status: 400,
      body: { error: '"socket_id" is missing or invalid' },
    });
    assert.deepEqual(await post('auth', { socket_id: '1.2', channel_name: 'presence-a', key: 'app-key' }), {
      status: 400,
      body: { error: '"user_id" is required' },
    });
    assert.deepEqual(await post('auth', { socket_id: '1.2', channel_name: 'private-a', key: 'nope' }), {
      status: 404,
      body: { error: 'Unknown app key nope' },
    });
    assert.deepEqual(await post('publish', { key: 'app-key', name: 'e', data: 'x', channels: ['bad name'] }), {
      status: 400,
      body: { error: 'channel name may contain only letters, digits and _ - = @ , . ;: bad name' },
    });
    assert.deepEqual(await post('publish', { key: 'app-key', name: 'e', data: 'x', channels: ['a', 'b'] }), { status: 200, body: {} });
  });
});

describe('browser test client beyond loopback', () => {
  const TOKEN = 'a-long-enough-client-token';
  let node: ChorusNode | undefined;
  after(async () => {
    await node?.stop();
  });

  it('refuses to start on a non-loopback host without client.token, naming the key', async () => {
    const file = writeConfig({
      host: '0.0.0.0',
      port: 0,
      metrics: { enabled: false },
      client: { enabled: true },
      app_manager: { driver: 'array', array: { apps: [{ id: 'app-id', key: 'app-key', secret: 'app-secret' }] } },
    });
    const out = await runCli(['start', '--config', file]);
    assert.equal(out.code, 2, out.stdout + out.stderr);
    assert.match(out.stdout + out.stderr, /client\.enabled on host 0\.0\.0\.0 .*needs client\.token \(env CLIENT_TOKEN\)/);
  });

  it('with a token, its signing endpoints answer only requests that carry it', async () => {
    node = await startNode({ config: { host: '0.0.0.0', client: { enabled: true } }, env: { CLIENT_TOKEN: TOKEN } });
    const auth = (headers: Record<string, string>) =>
      fetch(`${node!.url}/client/auth`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body: JSON.stringify({ socket_id: '12.34', channel_name: 'private-a', key: 'app-key' }),
      });
    const missing = await auth({});
    assert.equal(missing.status, 401);
    assert.match(((await missing.json()) as { error: string }).error, /X-Chorus-Client-Token/);
    assert.equal((await auth({ 'X-Chorus-Client-Token': TOKEN.slice(0, -1) + 'X' })).status, 401);
    assert.equal((await auth({ 'X-Chorus-Client-Token': 'short' })).status, 401);
    const ok = await auth({ 'X-Chorus-Client-Token': TOKEN });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), serverSdk(node).authorizeChannel('12.34', 'private-a'));
    // The page holds no secret; it passes ?token= on to the endpoints.
    assert.equal((await fetch(`${node.url}/client/?token=${TOKEN}`)).status, 200);
  });
});
