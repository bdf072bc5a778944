// The Pusher HTTP API (PROTOCOL.md section 8) against a real node: the official
// `pusher` SDK where a well-behaved client applies, hand-signed `fetch` for the
// error paths a good client never takes, pusher-js to see what was delivered.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { DEMO_APP, runCli, startNode, writeConfig, type ChorusNode, type TestApp } from './helpers/node.js';
import { cleanup, connected, dataOf, pusherClient, rawSocket, serverSdk, sleep, waitFor, type PusherClient } from './helpers/clients.js';
import { readResponse, signedFetch, signedQuery, type ApiResponse } from './helpers/signing.js';

const DISABLED_APP: TestApp = { id: 'off-id', key: 'off-key', secret: 'off-secret', enabled: false };
const EVENTS_LIMITED: TestApp = { id: 'rl-events', key: 'rl-events-key', secret: 'rl-events-secret', max_backend_events_per_second: 5 };
const BATCH_LIMITED: TestApp = { id: 'rl-batch', key: 'rl-batch-key', secret: 'rl-batch-secret', max_backend_events_per_second: 5 };
const READS_LIMITED: TestApp = { id: 'rl-reads', key: 'rl-reads-key', secret: 'rl-reads-secret', max_read_requests_per_second: 2 };

const EVENTS_PATH = '/apps/app-id/events';

/** Asserts an error answer: exact status and a JSON body with a non-empty `error` string. */
function assertError(res: ApiResponse, status: number): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.equal(typeof res.json?.error, 'string', `no JSON error in ${res.text}`);
  assert.ok(res.json.error.length > 0);
}

/** The SDK must reject a call the server answers with `status` (it throws a RequestError on non-2xx). */
async function sdkRejects(call: () => Promise<unknown>, status: number): Promise<void> {
  await assert.rejects(call, (err: { status?: number; body?: string }) => {
    assert.equal(err.status, status);
    assert.equal(typeof JSON.parse(err.body ?? 'null')?.error, 'string');
    return true;
  });
}

/** The SDK refuses some calls before sending anything: a plain Error without a status. */
async function sdkRefusesLocally(call: () => Promise<unknown>): Promise<void> {
  await assert.rejects(
    async () => call(),
    (err: { status?: number }) => {
      assert.equal(err.status, undefined);
      return true;
    },
  );
}

const post =
  (path: string, body: unknown, extra: Partial<Parameters<typeof signedFetch>[1]> = {}) =>
  (node: { port: number }) =>
    signedFetch(node, { method: 'POST', path, body: typeof body === 'string' ? body : JSON.stringify(body), ...extra });

/** Collects the next `n` app events (not pusher:*) on a pusher-js channel, in arrival order. */
function collect(
  channel: { bind_global(cb: (e: string, d: unknown) => void): unknown; unbind_global(cb?: (e: string, d: unknown) => void): unknown },
  n: number,
  timeoutMs = 5000,
): Promise<Array<[string, unknown]>> {
  return new Promise((res, rej) => {
    const got: Array<[string, unknown]> = [];
    const timer = setTimeout(() => rej(new Error(`got only ${JSON.stringify(got)}`)), timeoutMs);
    const cb = (event: string, data: unknown) => {
      if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return;
      got.push([event, data]);
      if (got.length === n) {
        clearTimeout(timer);
        channel.unbind_global(cb);
        res(got);
      }
    };
    channel.bind_global(cb);
  });
}

async function subscribed(client: PusherClient, name: string) {
  await connected(client);
  const channel = client.subscribe(name);
  await waitFor(channel, 'pusher:subscription_succeeded');
  return channel;
}

/** Waits for the start of the next wall-clock second (the rate limiter's windows are aligned to them). */
async function nextSecond(): Promise<void> {
  await sleep(1000 - (Date.now() % 1000) + 20);
}

/**
 * Runs `fn` right after a second boundary and retries (bounded) when it did not finish
 * inside that same second, so a rate-limit window boundary never splits the requests.
 */
async function withinOneSecond<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; attempt < 4; attempt++) {
    await nextSecond();
    const start = Date.now();
    const result = await fn();
    if (Math.floor(Date.now() / 1000) === Math.floor(start / 1000)) return result;
  }
  throw new Error('could not run the requests inside one second in 4 attempts');
}

/** One request on a given agent, reporting whether it reused a kept-alive socket. */
function agentRequest(
  agent: http.Agent,
  port: number,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {},
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, reused: req.reusedSocket }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Writes raw HTTP on a fresh TCP connection and resolves the first complete answer
 * (or what arrived before the server closed). Write errors after the answer are ignored.
 */
function rawExchange(port: number, write: (sock: net.Socket) => void, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(text);
    };
    const timer = setTimeout(() => done(new Error(`no answer in ${timeoutMs} ms; got ${JSON.stringify(text)}`)), timeoutMs);
    sock.on('error', (err) => (text ? done() : done(err)));
    sock.on('close', () => done());
    sock.on('data', (c) => {
      text += c.toString();
      const head = text.indexOf('\r\n\r\n');
      const length = /content-length: *(\d+)/i.exec(text);
      if (head >= 0 && length && text.length >= head + 4 + Number(length[1])) done();
    });
    sock.on('connect', () => write(sock));
  });
}

describe('HTTP API', () => {
  let node: ChorusNode;
  const clients: PusherClient[] = [];
  const client = (opts: Parameters<typeof pusherClient>[1] = {}) => {
    const c = pusherClient(node, opts);
    clients.push(c);
    return c;
  };

  before(async () => {
    node = await startNode({
      config: { app_manager: { array: { apps: [DEMO_APP, DISABLED_APP, EVENTS_LIMITED, BATCH_LIMITED, READS_LIMITED] } } },
    });
  });
  after(async () => {
    await cleanup(...clients);
    await node?.stop();
  });

  describe('POST /apps/{id}/events', () => {
    it('delivers an event sent with "channel" (hand-signed) and with "channels" (SDK) to pusher-js subscribers', async () => {
      const c1 = client();
      const c2 = client();
      const a = await subscribed(c1, 'ev-a');
      const b = await subscribed(c2, 'ev-b');

      const gotA = waitFor(a, 'single');
      const res = await post(EVENTS_PATH, { name: 'single', channel: 'ev-a', data: JSON.stringify({ n: 1 }) })(node);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, {});
      assert.deepEqual(await gotA, { n: 1 });

      const bothA = waitFor(a, 'multi');
      const bothB = waitFor(b, 'multi');
      const sdkRes = await serverSdk(node).trigger(['ev-a', 'ev-b'], 'multi', { n: 2 });
      assert.equal(sdkRes.status, 200);
      assert.deepEqual(await sdkRes.json(), {});
      assert.deepEqual(await bothA, { n: 2 });
      assert.deepEqual(await bothB, { n: 2 });
    });

    it('does not deliver to the socket named by socket_id', async () => {
      const sender = client();
      const other = client();
      const senderId = await connected(sender);
      const chS = await subscribed(sender, 'excl');
      const chO = await subscribed(other, 'excl');
      const senderGot = collect(chS, 1);
      const otherGot = collect(chO, 2);
      const sdk = serverSdk(node);
      await sdk.trigger('excl', 'first', { n: 1 }, { socket_id: senderId });
      await sdk.trigger('excl', 'second', { n: 2 });
      // The sender's first app event must be the second one: the excluded one never came.
      assert.deepEqual(await senderGot, [['second', { n: 2 }]]);
      assert.deepEqual(await otherGot, [
        ['first', { n: 1 }],
        ['second', { n: 2 }],
      ]);
    });

    it('answers info=user_count,subscription_count with per-channel counts, and {} without info', async () => {
      // presence-info: user u1 on two sockets, u2 on one: 2 users, 3 sockets. info-pub: 2 sockets.
      const u1a = client({ user: { user_id: 'u1', user_info: { name: 'one' } } });
      const u1b = client({ user: { user_id: 'u1', user_info: { name: 'one' } } });
      const u2 = client({ user: { user_id: 'u2' } });
      for (const c of [u1a, u1b, u2]) await subscribed(c, 'presence-info');
      for (const c of [u1a, u2]) await subscribed(c, 'info-pub');

      const sdk = serverSdk(node);
      const res = await sdk.trigger(['presence-info', 'info-pub'], 'counted', {}, { info: 'user_count,subscription_count' });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {
        channels: {
          'presence-info': { user_count: 2, subscription_count: 3 },
          'info-pub': { subscription_count: 2 },
        },
      });

      const plain = await sdk.trigger(['presence-info', 'info-pub'], 'uncounted', {});
      assert.deepEqual(await plain.json(), {});
    });
  });

  describe('POST /apps/{id}/batch_events', () => {
    it('delivers every event of a batch in order', async () => {
      const c = client();
      const ch = await subscribed(c, 'batch-order');
      const got = collect(ch, 5);
      const batch = [1, 2, 3, 4, 5].map((i) => ({ channel: 'batch-order', name: `e${i}`, data: { i } }));
      const res = await serverSdk(node).triggerBatch(batch);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {});
      assert.deepEqual(
        await got,
        [1, 2, 3, 4, 5].map((i) => [`e${i}`, { i }]),
      );
    });

    it('answers info with a "batch" array aligned by index', async () => {
      // Reuses presence-info (2 users / 3 sockets) and info-pub (2 sockets) from the test above.
      const res = await serverSdk(node).triggerBatch([
        { channel: 'presence-info', name: 'b', data: 'x', info: 'user_count' },
        { channel: 'info-pub', name: 'b', data: 'x' },
        { channel: 'info-pub', name: 'b', data: 'x', info: 'subscription_count' },
        { channel: 'presence-info', name: 'b', data: 'x', info: 'user_count,subscription_count' },
      ]);
      assert.deepEqual(await res.json(), {
        batch: [{ user_count: 2 }, {}, { subscription_count: 2 }, { user_count: 2, subscription_count: 3 }],
      });
    });

    it('refuses a batch larger than max_event_batch_size (10) with 400 and delivers nothing', async () => {
      const c = client();
      const ch = await subscribed(c, 'batch-big');
      const got = collect(ch, 1);
      const batch = Array.from({ length: 11 }, (_, i) => ({ channel: 'batch-big', name: 'too-many', data: String(i) }));
      const res = await post('/apps/app-id/batch_events', { batch })(node);
      assertError(res, 400);
      await sdkRejects(() => serverSdk(node).triggerBatch(batch.map((e) => ({ ...e }))), 400);
      // Exactly 10 is fine; the first event to arrive must come from this control batch.
      const ok = await serverSdk(node).triggerBatch(batch.slice(0, 10).map((e) => ({ ...e, name: 'ten' })));
      assert.equal(ok.status, 200);
      assert.deepEqual(await got, [['ten', 0]]);
    });
  });

  describe('GET channels', () => {
    before(async () => {
      const c1 = client();
      const c2 = client();
      await subscribed(c1, 'list-a');
      await subscribed(c2, 'list-a');
      await subscribed(c2, 'list-b');
      await subscribed(c1, 'list-gone');
      c1.unsubscribe('list-gone');
      // Published to but never subscribed: not occupied.
      await serverSdk(node).trigger('list-empty', 'x', {});
    });

    it('lists only occupied channels, filtered by prefix', async () => {
      const sdk = serverSdk(node);
      // The unsubscribe above is not acknowledged: poll (bounded) until it has been processed.
      let body: { channels: Record<string, unknown> } = { channels: {} };
      for (let i = 0; i < 20; i++) {
        body = (await (await sdk.get({ path: '/channels', params: { filter_by_prefix: 'list-' } })).json()) as typeof body;
        if (!('list-gone' in body.channels)) break;
        await sleep(100);
      }
      assert.deepEqual(body, { channels: { 'list-a': {}, 'list-b': {} } });

      const withCount = await (
        await sdk.get({ path: '/channels', params: { filter_by_prefix: 'list-', info: 'subscription_count' } })
      ).json();
      assert.deepEqual(withCount, { channels: { 'list-a': { subscription_count: 2 }, 'list-b': { subscription_count: 1 } } });

      const all = (await (await sdk.get({ path: '/channels' })).json()) as { channels: Record<string, unknown> };
      for (const name of ['list-a', 'list-b', 'presence-info', 'info-pub']) assert.ok(name in all.channels, name);
      assert.ok(!('list-empty' in all.channels));
      assert.ok(!('list-gone' in all.channels));
    });

    it('gives info=user_count only with filter_by_prefix=presence-, else 400', async () => {
      const sdk = serverSdk(node);
      const res = await sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-info', info: 'user_count' } });
      assert.deepEqual(await res.json(), { channels: { 'presence-info': { user_count: 2 } } });

      assertError(await signedFetch(node, { path: '/apps/app-id/channels', params: { info: 'user_count' } }), 400);
      assertError(
        await signedFetch(node, { path: '/apps/app-id/channels', params: { info: 'user_count', filter_by_prefix: 'list-' } }),
        400,
      );
      await sdkRejects(() => sdk.get({ path: '/channels', params: { info: 'user_count' } }), 400);
    });

    it('shows one channel: occupied, user_count for presence, subscription_count', async () => {
      const sdk = serverSdk(node);
      const get = async (name: string, info?: string) =>
        (await sdk.get({ path: `/channels/${name}`, params: info ? { info } : {} })).json();
      assert.deepEqual(await get('list-a'), { occupied: true });
      assert.deepEqual(await get('list-a', 'subscription_count'), { occupied: true, subscription_count: 2 });
      assert.deepEqual(await get('nobody-here'), { occupied: false });
      assert.deepEqual(await get('presence-info', 'user_count,subscription_count'), {
        occupied: true,
        user_count: 2,
        subscription_count: 3,
      });
    });

    it('refuses user_count on a public channel with 400', async () => {
      const res = await signedFetch(node, { path: '/apps/app-id/channels/list-a', params: { info: 'user_count' } });
      assertError(res, 400);
      await sdkRejects(() => serverSdk(node).get({ path: '/channels/list-a', params: { info: 'user_count' } }), 400);
    });

    it('shows the cached event and its ttl with info=cache on a cache channel', async () => {
      const sdk = serverSdk(node);
      await sdk.trigger('cache-weather', 'forecast', { t: 21 });
      const res = await (await sdk.get({ path: '/channels/cache-weather', params: { info: 'cache' } })).json();
      assert.equal(res.occupied, false);
      assert.equal(res.cache.data, JSON.stringify({ t: 21 }));
      assert.equal(typeof res.cache.ttl, 'number');
      assert.ok(res.cache.ttl > 1700 && res.cache.ttl <= 1800, `ttl ${res.cache.ttl}`);

      const empty = await (await sdk.get({ path: '/channels/cache-nothing-yet', params: { info: 'cache' } })).json();
      assert.deepEqual(empty, { occupied: false });

      assertError(await signedFetch(node, { path: '/apps/app-id/channels/list-a', params: { info: 'cache' } }), 400);
    });

    it('lists presence users; a public channel is 400', async () => {
      const sdk = serverSdk(node);
      const res = (await (await sdk.get({ path: '/channels/presence-info/users' })).json()) as { users: Array<{ id: string }> };
      assert.deepEqual(
        res.users.sort((x, y) => x.id.localeCompare(y.id)),
        [{ id: 'u1' }, { id: 'u2' }],
      );
      assertError(await signedFetch(node, { path: '/apps/app-id/channels/list-a/users' }), 400);
      await sdkRejects(() => sdk.get({ path: '/channels/list-a/users' }), 400);
    });
  });

  describe('POST /apps/{id}/users/{user}/terminate_connections', () => {
    it("answers 200 {} and closes the signed-in user's connections only", async () => {
      const target = await rawSocket(node);
      const bystander = await rawSocket(node);
      try {
        const established = await target.next((f) => f.event === 'pusher:connection_established');
        await bystander.next((f) => f.event === 'pusher:connection_established');
        const { socket_id } = dataOf<{ socket_id: string }>(established);
        const sdk = serverSdk(node);
        target.send({ event: 'pusher:signin', data: sdk.authenticateUser(socket_id, { id: 'doomed' }) });
        await target.next((f) => f.event === 'pusher:signin_success');

        const res = await sdk.terminateUserConnections('doomed');
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), {});
        const closed = await Promise.race([target.closed, sleep(5000).then(() => null)]);
        assert.equal(closed?.code, 4009);
        // The bystander still works: it answers a ping.
        bystander.send({ event: 'pusher:ping', data: {} });
        await bystander.next((f) => f.event === 'pusher:pong');
      } finally {
        target.close();
        bystander.close();
      }
    });
  });

  describe('errors', () => {
    const event = { name: 'e', channel: 'err-ch', data: 'x' };

    it('unknown app id → 404', async () => {
      assertError(await post('/apps/no-such-app/events', event)(node), 404);
      await sdkRejects(() => serverSdk(node, { ...DEMO_APP, id: 'no-such-app' }).trigger('err-ch', 'e', 'x'), 404);
    });

    it('disabled app → 403', async () => {
      assertError(await post('/apps/off-id/events', event, { app: DISABLED_APP })(node), 403);
      await sdkRejects(() => serverSdk(node, DISABLED_APP).trigger('err-ch', 'e', 'x'), 403);
    });

    it('bad signature → 401', async () => {
      assertError(await post(EVENTS_PATH, event, { secret: 'not-the-secret' })(node), 401);
      await sdkRejects(() => serverSdk(node, { ...DEMO_APP, secret: 'not-the-secret' }).trigger('err-ch', 'e', 'x'), 401);
    });

    it('wrong auth_key → 401', async () => {
      assertError(await post(EVENTS_PATH, event, { key: 'other-key' })(node), 401);
      await sdkRejects(() => serverSdk(node, { ...DEMO_APP, key: 'other-key' }).trigger('err-ch', 'e', 'x'), 401);
    });

    it('auth_timestamp 601 s old → 401; 590 s old is accepted', async () => {
      const now = Math.floor(Date.now() / 1000);
      assertError(await post(EVENTS_PATH, event, { timestamp: now - 601 })(node), 401);
      const ok = await post(EVENTS_PATH, event, { timestamp: now - 590 })(node);
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(ok.json, {});
    });

    it('a body without body_md5 → 401; a body_md5 that does not match → 401', async () => {
      assertError(await post(EVENTS_PATH, event, { bodyMd5: null })(node), 401);
      assertError(await post(EVENTS_PATH, event, { bodyMd5: 'd41d8cd98f00b204e9800998ecf8427e' })(node), 401);
    });

    it('a body that is not JSON → 400', async () => {
      assertError(await post(EVENTS_PATH, '{"name": "e", "channel": ')(node), 400);
    });

    it('data over max_event_payload_in_kb (10 KB) → 413; exactly 10 KB is accepted', async () => {
      const big = 'x'.repeat(10 * 1024 + 1);
      assertError(await post(EVENTS_PATH, { ...event, data: big })(node), 413);
      await sdkRejects(() => serverSdk(node).trigger('err-ch', 'e', big), 413);
      const ok = await post(EVENTS_PATH, { ...event, data: 'x'.repeat(10 * 1024) })(node);
      assert.equal(ok.status, 200, ok.text);
    });

    it('more than 100 channels → 400', async () => {
      const channels = Array.from({ length: 101 }, (_, i) => `many-${i}`);
      assertError(await post(EVENTS_PATH, { name: 'e', channels, data: 'x' })(node), 400);
      await sdkRefusesLocally(() => serverSdk(node).trigger(channels, 'e', 'x'));
      const ok = await post(EVENTS_PATH, { name: 'e', channels: channels.slice(0, 100), data: 'x' })(node);
      assert.equal(ok.status, 200, ok.text);
    });

    it('invalid channel name → 400', async () => {
      assertError(await post(EVENTS_PATH, { ...event, channel: 'bad channel!' })(node), 400);
      assertError(await post(EVENTS_PATH, { name: 'e', channels: ['ok', 'x'.repeat(201)], data: 'x' })(node), 400);
      await sdkRefusesLocally(() => serverSdk(node).trigger('bad channel!', 'e', 'x'));
    });

    it('event name over 200 characters → 400', async () => {
      assertError(await post(EVENTS_PATH, { ...event, name: 'n'.repeat(201) })(node), 400);
      await sdkRefusesLocally(() => serverSdk(node).trigger('err-ch', 'n'.repeat(201), 'x'));
      const ok = await post(EVENTS_PATH, { ...event, name: 'n'.repeat(200) })(node);
      assert.equal(ok.status, 200, ok.text);
    });

    it('an encrypted channel among 2 channels → 400', async () => {
      assertError(await post(EVENTS_PATH, { name: 'e', channels: ['private-encrypted-a', 'plain'], data: 'x' })(node), 400);
      await sdkRefusesLocally(() => serverSdk(node).trigger(['private-encrypted-a', 'plain'], 'e', 'x'));
    });

    it('invalid socket_id → 400', async () => {
      assertError(await post(EVENTS_PATH, { ...event, socket_id: 'abc' })(node), 400);
      assertError(await post(EVENTS_PATH, { ...event, socket_id: '1.2.3' })(node), 400);
      await sdkRefusesLocally(() => serverSdk(node).trigger('err-ch', 'e', 'x', { socket_id: 'abc' }));
    });

    it('a declared 50 MB body → 413 without reading it; the node still serves', async () => {
      const query = signedQuery({ method: 'POST', path: EVENTS_PATH, bodyMd5: 'd41d8cd98f00b204e9800998ecf8427e' });
      // The server's own body timeout is 10 s: an answer well before it means it did not wait for the body.
      const raw = await rawExchange(
        node.port,
        (sock) =>
          sock.write(
            `POST ${EVENTS_PATH}?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
              `Content-Length: ${50 * 1024 * 1024}\r\n\r\n{"name":"e","channel":"err-ch","data":"`,
          ),
        3000,
      );
      assert.match(raw, /^HTTP\/1\.1 413 /);
      const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
      assert.equal(typeof body.error, 'string');

      const up = await fetch(`${node.url}/up`, { signal: AbortSignal.timeout(5000) });
      assert.equal(up.status, 200);
      const ok = await post(EVENTS_PATH, event)(node);
      assert.equal(ok.status, 200);
    });

    it('a chunked body that grows past the limit → 413; the node still serves', async () => {
      const query = signedQuery({ method: 'POST', path: EVENTS_PATH, bodyMd5: 'd41d8cd98f00b204e9800998ecf8427e' });
      // No Content-Length: only counting the bytes as they arrive can catch this one. Sends just over
      // the 1 MB limit and then waits, so the server has read everything sent when it answers and closes.
      const raw = await rawExchange(
        node.port,
        (sock) => {
          sock.write(
            `POST ${EVENTS_PATH}?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
          );
          const chunk = Buffer.alloc(64 * 1024, 'a');
          for (let i = 0; i < 17; i++) sock.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`);
        },
        8000,
      );
      assert.match(raw, /^HTTP\/1\.1 413 /);
      assert.equal(typeof JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).error, 'string');
      const ok = await post(EVENTS_PATH, event)(node);
      assert.equal(ok.status, 200);
    });

    it('wrong method (GET /events) → 405; unknown path → 404', async () => {
      const wrong = await signedFetch(node, { method: 'GET', path: EVENTS_PATH });
      assertError(wrong, 405);
      await sdkRejects(() => serverSdk(node).get({ path: '/events' }), 405);
      assertError(await readResponse(await fetch(`${node.url}/no/such/path`)), 404);
      assertError(await signedFetch(node, { path: '/apps/app-id/nothing-here' }), 404);
      await sdkRejects(() => serverSdk(node).get({ path: '/nothing-here' }), 404);
    });
  });

  describe('rate limits', () => {
    it('max_backend_events_per_second 5: the 6th event in one second → 429', async () => {
      const sdk = serverSdk(node, EVENTS_LIMITED);
      const statuses = await withinOneSecond(async () => {
        const out: number[] = [];
        for (let i = 0; i < 6; i++) {
          out.push(
            await sdk.trigger('rl', 'e', String(i)).then(
              (r) => r.status,
              (e: { status: number }) => e.status,
            ),
          );
        }
        return out;
      });
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
    });

    it('a batch of 4 after 3 single events in one second → 429 (batch events count individually)', async () => {
      const sdk = serverSdk(node, BATCH_LIMITED);
      const statuses = await withinOneSecond(async () => {
        const out: number[] = [];
        for (let i = 0; i < 3; i++) out.push((await sdk.trigger('rl', 'e', String(i))).status);
        const batch = (n: number) => Array.from({ length: n }, (_, i) => ({ channel: 'rl', name: 'b', data: String(i) }));
        out.push(
          await sdk.triggerBatch(batch(4)).then(
            (r) => r.status,
            (e: { status: number }) => e.status,
          ),
        );
        // The refused batch took nothing from the budget: 2 more still fit.
        out.push(
          await sdk.triggerBatch(batch(2)).then(
            (r) => r.status,
            (e: { status: number }) => e.status,
          ),
        );
        return out;
      });
      assert.deepEqual(statuses, [200, 200, 200, 429, 200]);
    });

    it('max_read_requests_per_second 2: the 3rd GET in one second → 429 with a JSON error', async () => {
      const results = await withinOneSecond(async () => {
        const out: ApiResponse[] = [];
        for (let i = 0; i < 3; i++) out.push(await signedFetch(node, { app: READS_LIMITED, path: '/apps/rl-reads/channels' }));
        return out;
      });
      assert.deepEqual(
        results.map((r) => r.status),
        [200, 200, 429],
      );
      assertError(results[2], 429);
    });
  });

  describe('CORS, health, keep-alive', () => {
    it('OPTIONS → 204 with Access-Control-Allow-Origin; answers carry it too', async () => {
      const pre = await fetch(`${node.url}${EVENTS_PATH}`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://example.com', 'Access-Control-Request-Method': 'POST' },
      });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), '*');
      const ok = await post(EVENTS_PATH, { name: 'e', channel: 'cors', data: 'x' })(node);
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('access-control-allow-origin'), '*');
      const denied = await post(EVENTS_PATH, { name: 'e', channel: 'cors', data: 'x' }, { secret: 'nope' })(node);
      assert.equal(denied.status, 401);
      assert.equal(denied.headers.get('access-control-allow-origin'), '*');
    });

    it('GET /up → 200 OK; /up/app-id 200; /up/unknown 404; /up/<disabled> 503', async () => {
      const up = await fetch(`${node.url}/up`);
      assert.equal(up.status, 200);
      assert.equal(await up.text(), 'OK');
      assert.equal((await fetch(`${node.url}/up/app-id`)).status, 200);
      assert.equal((await fetch(`${node.url}/up/unknown`)).status, 404);
      assert.equal((await fetch(`${node.url}/up/off-id`)).status, 503);
    });

    it('serves several requests over one kept-alive connection', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const body = JSON.stringify({ name: 'ka', channel: 'ka', data: 'x' });
        const calls: Array<[string, string, string | undefined, number]> = [
          ['GET', `/apps/app-id/channels?${signedQuery({ path: '/apps/app-id/channels' })}`, undefined, 200],
          ['POST', `${EVENTS_PATH}?${signedQuery({ method: 'POST', path: EVENTS_PATH, body })}`, body, 200],
          ['POST', `${EVENTS_PATH}?${signedQuery({ method: 'POST', path: EVENTS_PATH, body: '{' })}`, '{', 400],
          ['GET', '/up', undefined, 200],
          ['POST', `${EVENTS_PATH}?${signedQuery({ method: 'POST', path: EVENTS_PATH, body })}`, body, 200],
        ];
        const reused: boolean[] = [];
        for (const [method, path, b, status] of calls) {
          const res = await agentRequest(agent, node.port, method, path, b);
          assert.equal(res.status, status, `${method} ${path}: ${res.body}`);
          reused.push(res.reused);
        }
        assert.deepEqual(reused, [false, true, true, true, true]);
      } finally {
        agent.destroy();
      }
    });
  });
});

describe('HTTP API under path_prefix "/pusher"', () => {
  let node: ChorusNode;
  let client: PusherClient;
  before(async () => {
    node = await startNode({ config: { path_prefix: '/pusher' } });
    client = pusherClient(node, { extra: { wsPath: '/pusher' } });
  });
  after(async () => {
    client?.disconnect();
    await node?.stop();
  });

  it('serves /pusher/apps/app-id/events (signed over the full path) and WebSockets at /pusher/app/app-key', async () => {
    const ch = await subscribed(client, 'prefixed');
    const got = waitFor(ch, 'hello');
    const path = '/pusher/apps/app-id/events';
    const res = await signedFetch(node, {
      method: 'POST',
      path,
      body: JSON.stringify({ name: 'hello', channel: 'prefixed', data: '{"p":1}' }),
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, {});
    assert.deepEqual(await got, { p: 1 });

    const q = await signedFetch(node, { path: '/pusher/apps/app-id/channels/prefixed', params: { info: 'subscription_count' } });
    assert.deepEqual(q.json, { occupied: true, subscription_count: 1 });
    assert.equal((await fetch(`${node.url}/pusher/up`)).status, 200);
  });

  it('does not serve the unprefixed paths', async () => {
    const res = await signedFetch(node, {
      method: 'POST',
      path: EVENTS_PATH,
      body: JSON.stringify({ name: 'e', channel: 'x', data: 'x' }),
    });
    assertError(res, 404);
    const sock = await rawSocket(node, '/app/app-key?protocol=7&client=js&version=8.4.0');
    const closed = await Promise.race([sock.closed, sleep(5000).then(() => null)]);
    assert.equal(closed?.code, 4005);
  });
});

describe("HTTP API: Sockudo's and soketi's server-wide limit sections are every app's defaults", () => {
  let node: ChorusNode;
  before(async () => {
    node = await startNode({
      config: {
        event_limits: { max_payload_in_kb: 5, max_batch_size: 2 },
      },
    });
  });
  after(() => cleanup(node));

  it('event_limits.max_payload_in_kb 5 → 6 KB refused with 413, 4 KB accepted (the app sets neither)', async () => {
    const event = { name: 'e', channel: 'sw-ch' };
    assertError(await post(EVENTS_PATH, { ...event, data: 'x'.repeat(6 * 1024) })(node), 413);
    const ok = await post(EVENTS_PATH, { ...event, data: 'x'.repeat(4 * 1024) })(node);
    assert.equal(ok.status, 200, ok.text);
  });

  it('event_limits.max_batch_size 2 → a batch of 3 refused', async () => {
    const batch = (n: number) => ({ batch: Array.from({ length: n }, (_, i) => ({ name: 'e', channel: `sw-${i}`, data: '1' })) });
    assert.equal((await post('/apps/app-id/batch_events', batch(2))(node)).status, 200);
    const refused = await post('/apps/app-id/batch_events', batch(3))(node);
    assert.ok(refused.status === 400 || refused.status === 413, `${refused.status} ${refused.text}`);
  });
});

describe("HTTP API: Sockudo's cors and http_api sections", () => {
  let node: ChorusNode;
  before(async () => {
    node = await startNode({
      config: {
        cors: {
          credentials: true,
          origin: ['https://app.example.com', '*.trusted.example'],
          methods: ['GET', 'POST'],
          allowed_headers: ['Content-Type', 'X-Custom'],
        },
        // 1 MB: below the 10 KB × 100 events the app's limits would allow
        http_api: { request_limit_in_mb: 1 },
        app_manager: { array: { apps: [{ ...DEMO_APP, max_event_payload_in_kb: 1024, max_event_batch_size: 100 }] } },
      },
    });
  });
  after(() => cleanup(node));

  const preflight = (origin: string) =>
    fetch(`${node.url}${EVENTS_PATH}`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } });

  it('a listed origin is echoed with credentials, methods and headers; others get no Allow-Origin', async () => {
    const listed = await preflight('https://app.example.com');
    assert.equal(listed.status, 204);
    assert.equal(listed.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.equal(listed.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(listed.headers.get('access-control-allow-methods'), 'GET, POST');
    assert.equal(listed.headers.get('access-control-allow-headers'), 'Content-Type, X-Custom');
    assert.match(listed.headers.get('vary') ?? '', /Origin/);
    const sub = await preflight('https://a.trusted.example');
    assert.equal(sub.headers.get('access-control-allow-origin'), 'https://a.trusted.example');
    const other = await preflight('https://evil.example');
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    assert.equal(other.headers.get('access-control-allow-methods'), null);
    // The same on real answers, the API itself still working for servers (no Origin).
    const ok = await signedFetch(node, {
      method: 'POST',
      path: EVENTS_PATH,
      body: JSON.stringify({ name: 'e', channel: 'c', data: 'x' }),
      headers: { Origin: 'https://app.example.com' },
    });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example.com');
    const fromEvil = await signedFetch(node, {
      method: 'POST',
      path: EVENTS_PATH,
      body: JSON.stringify({ name: 'e', channel: 'c', data: 'x' }),
      headers: { Origin: 'https://evil.example' },
    });
    assert.equal(fromEvil.status, 200, 'CORS is for browsers: a signed call is served');
    assert.equal(fromEvil.headers.get('access-control-allow-origin'), null);
  });

  it('http_api.request_limit_in_mb 1: a 1.5 MB body gets 413, a 0.9 MB one is served', async () => {
    const query = signedQuery({ method: 'POST', path: EVENTS_PATH, bodyMd5: 'd41d8cd98f00b204e9800998ecf8427e' });
    const raw = await rawExchange(
      node.port,
      (sock) =>
        sock.write(
          `POST ${EVENTS_PATH}?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${1.5 * 1024 * 1024}\r\n\r\n{"name":"e","channel":"c","data":"`,
        ),
      3000,
    );
    assert.match(raw, /^HTTP\/1\.1 413 /);
    const fits = await post(EVENTS_PATH, { name: 'e', channel: 'c', data: 'x'.repeat(900 * 1024) })(node);
    assert.equal(fits.status, 200, fits.text);
  });

  it('invalid sections are refused at start, naming the key', async () => {
    for (const [config, pattern] of [
      [{ cors: { methods: ['GET POST'] } }, /cors\.methods\[0\]/],
      [{ cors: { origin: ['https://*.*.example'] } }, /cors\.origin\[0\]/],
      [{ http_api: { request_limit_in_mb: 0 } }, /http_api\.request_limit_in_mb/],
    ] as const) {
      const r = await runCli(['start', '--config', writeConfig({ ...config, app_manager: { array: { apps: [DEMO_APP] } } })]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
    }
  });
});
