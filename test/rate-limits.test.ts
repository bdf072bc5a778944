// Per-app quotas and per-IP rate limits on real nodes: one backend-events budget
// shared by two nodes through Redis (and, as a contrast, one per node with the
// memory driver), read requests, client events per socket, connections counted
// across the cluster, per-IP limits for the HTTP API (X-Forwarded-For with
// trust_hops) and WebSocket upgrades, and a limiter whose Redis is gone
// (fail_open true and false).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startRedis, type Broker } from './helpers/brokers.js';
import { DEMO_APP, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { connected, dataOf, pusherClient, rawSocket, sleep, waitFor, type PusherClient, type RawSocket, until } from './helpers/clients.js';
import { readResponse, signedFetch, signedQuery, type ApiResponse } from './helpers/signing.js';

/** Short wait for something that must NOT arrive, used only after a positive control. */
const QUIET_MS = 400;

const BACKEND_APP: TestApp = { id: 'app-be', key: 'be-key', secret: 'be-secret', max_backend_events_per_second: 5 };
const BATCH_APP: TestApp = { id: 'app-batch', key: 'batch-key', secret: 'batch-secret', max_backend_events_per_second: 5 };
const READ_APP: TestApp = { id: 'app-read', key: 'read-key', secret: 'read-secret', max_read_requests_per_second: 3 };
const CLIENT_APP: TestApp = {
  id: 'app-cl',
  key: 'cl-key',
  secret: 'cl-secret',
  enable_client_messages: true,
  max_client_events_per_second: 2,
};
const CONN_APP: TestApp = { id: 'app-conn', key: 'conn-key', secret: 'conn-secret', max_connections: 2 };
const BURST_APP: TestApp = { id: 'app-burst', key: 'burst-key', secret: 'burst-secret', max_connections: 2 };
const SPREAD_APP: TestApp = { id: 'app-spread', key: 'spread-key', secret: 'spread-secret', max_connections: 2 };
const APPS = [BACKEND_APP, BATCH_APP, READ_APP, CLIENT_APP, CONN_APP, BURST_APP, SPREAD_APP];

/**
 * Runs `fn` right after a window boundary (windows are fixed, aligned to multiples of windowMs
 * on this machine's clock, which the nodes share). Retried, a bounded number of times, when the
 * calls straddled a boundary, since then two windows' budgets would apply.
 */
async function inOneWindow<T>(windowMs: number, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; attempt < 4; attempt++) {
    await sleep(windowMs - (Date.now() % windowMs) + 10);
    const start = Date.now();
    const result = await fn();
    if (Math.floor(start / windowMs) === Math.floor(Date.now() / windowMs)) return result;
  }
  throw new Error(`could not fit the calls into one ${windowMs} ms window`);
}

/** A POST /events signed by hand (status and parsed body for any answer). */
function publish(node: ChorusNode, app: TestApp, body: unknown): Promise<ApiResponse> {
  return signedFetch(node, { app, method: 'POST', path: `/apps/${app.id}/events`, body: JSON.stringify(body) });
}

function publishBatch(node: ChorusNode, app: TestApp, batch: unknown[]): Promise<ApiResponse> {
  return signedFetch(node, { app, method: 'POST', path: `/apps/${app.id}/batch_events`, body: JSON.stringify({ batch }) });
}

/** An answer must be 200 {} or 429 with a JSON error. */
function assertAcceptedOrLimited(r: ApiResponse): void {
  if (r.status === 200) {
    assert.deepEqual(r.json, {});
    return;
  }
  assert.equal(r.status, 429, r.text);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(typeof r.json?.error, 'string', r.text);
}

const statuses = (rs: ApiResponse[]) => rs.map((r) => r.status);
const count = (rs: ApiResponse[], status: number) => rs.filter((r) => r.status === status).length;

async function rawConnect(node: ChorusNode, key: string): Promise<{ sock: RawSocket; frame: RawSocket['frames'][number] }> {
  const sock = await rawSocket(node, `/app/${key}?protocol=7&client=js&version=8.4.0`);
  return { sock, frame: await sock.next() };
}

/** A WebSocket upgrade request: its status (101 when upgraded) and response headers. */
function upgradeStatus(node: ChorusNode, key: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${node.url}/app/${key}?protocol=7&client=js&version=8.4.0`, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
      timeout: 5000,
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on('timeout', () => req.destroy(new Error('upgrade timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** N publishes alternating between the nodes, all sent at once. */
function burst(nodes: ChorusNode[], app: TestApp, n: number, channel: string): Promise<ApiResponse[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) => publish(nodes[i % nodes.length], app, { name: 'tick', channel, data: String(i) })),
  );
}

describe('rate limits and quotas', () => {
  describe('two nodes sharing Redis (adapter and limiter)', () => {
    let redis: Broker;
    let a: ChorusNode;
    let b: ChorusNode;
    const clients: PusherClient[] = [];
    const sockets: RawSocket[] = [];

    before(async () => {
      redis = await startRedis();
      const env = { ADAPTER_DRIVER: 'redis', RATE_LIMITER_DRIVER: 'redis', DATABASE_REDIS_PORT: String(redis.port) };
      const config = { app_manager: { array: { apps: APPS } } };
      [a, b] = await Promise.all([startNode({ config, env }), startNode({ config, env })]);
      await until(
        () =>
          a.logs.some((l) => l.includes('cluster peer joined') && l.includes(b.nodeId)) &&
          b.logs.some((l) => l.includes('cluster peer joined') && l.includes(a.nodeId)),
        10_000,
        'the two nodes to see each other',
      );
    });
    after(async () => {
      for (const c of clients) c.disconnect();
      for (const s of sockets) s.close();
      await Promise.all([a?.stop(), b?.stop()]);
      await redis?.stop();
    });

    it('max_backend_events_per_second is one budget for both nodes: accepted stays at the limit, the rest get 429', async () => {
      const listener = pusherClient(a, { app: BACKEND_APP });
      clients.push(listener);
      await connected(listener);
      const ch = listener.subscribe('ticks');
      await waitFor(ch, 'pusher:subscription_succeeded');
      const received: string[] = [];
      ch.bind('tick', (d: unknown) => received.push(String(d)));

      const results = await inOneWindow(1000, () => burst([a, b], BACKEND_APP, 12, 'ticks'));
      results.forEach(assertAcceptedOrLimited);
      assert.equal(count(results, 200), 5, `statuses ${statuses(results)}`);
      assert.equal(count(results, 429), 7, `statuses ${statuses(results)}`);
      // exactly the accepted events were delivered
      await until(() => received.length >= 5, 5000, '5 ticks');
      await sleep(QUIET_MS);
      assert.equal(received.length, 5, `received ${received}`);

      // a later window has a fresh budget
      const next = await inOneWindow(1000, () => burst([a, b], BACKEND_APP, 2, 'ticks'));
      assert.deepEqual(statuses(next), [200, 200]);
    });

    it('every event of a batch and every channel of an event counts against the shared budget', async () => {
      const ev = (n: number) => Array.from({ length: n }, (_, i) => ({ name: 'e', channel: `batch-${i}`, data: '1' }));
      const results = await inOneWindow(1000, async () => [
        await publishBatch(a, BATCH_APP, ev(3)), // 3 of 5
        await publishBatch(b, BATCH_APP, ev(3)), // 6 > 5: refused whole
        await publish(b, BATCH_APP, { name: 'e', channels: ['m-1', 'm-2'], data: '1' }), // 5 of 5
        await publish(a, BATCH_APP, { name: 'e', channel: 'one-more', data: '1' }), // 6 > 5
      ]);
      results.forEach(assertAcceptedOrLimited);
      assert.deepEqual(statuses(results), [200, 429, 200, 429]);
      // a batch bigger than the whole budget is never accepted
      const big = await inOneWindow(1000, () => publishBatch(b, BATCH_APP, ev(6)));
      assert.equal(big.status, 429, big.text);
    });

    it('max_read_requests_per_second is shared too: GETs past it get 429', async () => {
      const results = await inOneWindow(1000, () =>
        Promise.all(
          Array.from({ length: 6 }, (_, i) => signedFetch(i % 2 ? b : a, { app: READ_APP, path: `/apps/${READ_APP.id}/channels` })),
        ),
      );
      assert.equal(count(results, 200), 3, `statuses ${statuses(results)}`);
      assert.equal(count(results, 429), 3, `statuses ${statuses(results)}`);
      for (const r of results) {
        if (r.status === 200) assert.deepEqual(r.json, { channels: {} });
        else assert.match(String(r.json?.error), /read/);
      }
      // publishing is not a read: unaffected
      const post = await publish(a, READ_APP, { name: 'e', channel: 'c', data: '1' });
      assert.equal(post.status, 200);
    });

    it('max_client_events_per_second: pusher-js sees 4301 for the event past the limit, which is not relayed', async () => {
      const sender = pusherClient(a, { app: CLIENT_APP });
      const receiver = pusherClient(b, { app: CLIENT_APP });
      clients.push(sender, receiver);
      await Promise.all([connected(sender), connected(receiver)]);
      const rch = receiver.subscribe('private-chat');
      const sch = sender.subscribe('private-chat');
      await Promise.all([waitFor(rch, 'pusher:subscription_succeeded'), waitFor(sch, 'pusher:subscription_succeeded')]);
      const got: unknown[] = [];
      rch.bind('client-msg', (d: unknown) => got.push(d));
      const errors: Array<{ type: string; data: { code: number; message: string } }> = [];
      sender.connection.bind('error', (e: (typeof errors)[number]) => errors.push(e));

      // a positive control: one event crosses to the other node
      await until(
        async () => {
          sch.trigger('client-msg', { n: 0 });
          await sleep(100);
          return got.length > 0;
        },
        5000,
        'the control event',
      );
      await sleep(1100); // a fresh per-socket window
      got.length = 0;
      for (let n = 1; n <= 3; n++) assert.equal(sch.trigger('client-msg', { n }), true);
      await until(() => errors.length >= 1 && got.length >= 2, 5000, 'two events relayed and one error');
      await sleep(QUIET_MS);
      assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
      assert.equal(errors.length, 1);
      assert.equal(errors[0].type, 'PusherError');
      assert.equal(errors[0].data.code, 4301);
      // the socket stays open
      assert.equal(sender.connection.state, 'connected');
    });

    it('max_connections 2 counts both nodes: the third connection anywhere gets 4004', async () => {
      const first = await rawConnect(a, CONN_APP.key);
      const second = await rawConnect(b, CONN_APP.key);
      sockets.push(first.sock, second.sock);
      assert.equal(first.frame.event, 'pusher:connection_established');
      assert.equal(second.frame.event, 'pusher:connection_established');
      for (const node of [a, b]) {
        const third = await rawConnect(node, CONN_APP.key);
        assert.deepEqual(third.frame, { event: 'pusher:error', data: { code: 4004, message: 'App is over its connection quota' } });
        assert.equal((await third.sock.closed).code, 4004);
      }
      // other apps are not affected
      const other = await rawConnect(b, BACKEND_APP.key);
      sockets.push(other.sock);
      assert.equal(other.frame.event, 'pusher:connection_established');
      // a slot freed on a is usable from b (bounded retries while the close is processed)
      first.sock.close();
      await first.sock.closed;
      let last: RawSocket['frames'][number] | undefined;
      await until(
        async () => {
          const again = await rawConnect(b, CONN_APP.key);
          last = again.frame;
          if (again.frame.event === 'pusher:connection_established') {
            sockets.push(again.sock);
            return true;
          }
          await again.sock.closed;
          return false;
        },
        5000,
        `a freed slot (last ${JSON.stringify(last)})`,
      );
    });

    it('max_connections holds for concurrent upgrades on one node (one atomic reservation per upgrade)', async () => {
      const opened = await Promise.all(Array.from({ length: 6 }, () => rawConnect(a, BURST_APP.key)));
      sockets.push(...opened.map((o) => o.sock));
      const events = opened.map((o) => o.frame.event);
      assert.equal(events.filter((e) => e === 'pusher:connection_established').length, 2, events.join(','));
      for (const o of opened.filter((x) => x.frame.event === 'pusher:error')) {
        assert.equal(dataOf<{ code: number }>(o.frame).code, 4004);
        assert.equal((await o.sock.closed).code, 4004);
      }
      // and b sees the quota full
      const fromB = await rawConnect(b, BURST_APP.key);
      assert.equal(dataOf<{ code: number }>(fromB.frame).code, 4004);
    });

    it('max_connections holds for concurrent upgrades spread over both nodes', async () => {
      const opened = await Promise.all(Array.from({ length: 6 }, (_, i) => rawConnect(i % 2 ? b : a, SPREAD_APP.key)));
      sockets.push(...opened.map((o) => o.sock));
      const events = opened.map((o) => o.frame.event);
      assert.equal(events.filter((e) => e === 'pusher:connection_established').length, 2, events.join(','));
      // a freed slot is usable again from either node
      const accepted = opened.filter((o) => o.frame.event === 'pusher:connection_established');
      accepted[0].sock.close();
      await accepted[0].sock.closed;
      let again: Awaited<ReturnType<typeof rawConnect>> | null = null;
      for (let i = 0; i < 20; i++) {
        again = await rawConnect(i % 2 ? a : b, SPREAD_APP.key);
        sockets.push(again.sock);
        if (again.frame.event === 'pusher:connection_established') break;
        await sleep(50);
      }
      assert.equal(again?.frame.event, 'pusher:connection_established');
    });
  });

  describe('contrast: the memory driver on two unconnected nodes', () => {
    let a: ChorusNode;
    let b: ChorusNode;
    before(async () => {
      const config = { app_manager: { array: { apps: [BACKEND_APP] } }, rate_limiter: { driver: 'memory' } };
      [a, b] = await Promise.all([startNode({ config }), startNode({ config })]);
    });
    after(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
    });

    it('each node enforces its own budget', async () => {
      const results = await inOneWindow(1000, () => burst([a, b], BACKEND_APP, 12, 'ticks'));
      results.forEach(assertAcceptedOrLimited);
      assert.equal(
        count(
          results.filter((_, i) => i % 2 === 0),
          200,
        ),
        5,
        `node a: ${statuses(results)}`,
      );
      assert.equal(
        count(
          results.filter((_, i) => i % 2 === 1),
          200,
        ),
        5,
        `node b: ${statuses(results)}`,
      );
    });
  });

  describe('per-IP limits (rate_limiter.enabled)', () => {
    let node: ChorusNode;
    const sockets: RawSocket[] = [];
    before(async () => {
      node = await startNode({
        config: {
          rate_limiter: {
            enabled: true,
            driver: 'memory',
            api_rate_limit: { max_requests: 3, window_seconds: 2, trust_hops: 1 },
            websocket_rate_limit: { max_requests: 2, window_seconds: 2 },
          },
        },
      });
    });
    after(async () => {
      for (const s of sockets) s.close();
      await node?.stop();
    });

    /** A signed GET /channels for the demo app, optionally as if forwarded for `xff`. */
    const get = async (xff?: string) => {
      const path = `/apps/${DEMO_APP.id}/channels`;
      const res = await fetch(`${node.url}${path}?${signedQuery({ path })}`, { headers: xff ? { 'X-Forwarded-For': xff } : {} });
      return readResponse(res);
    };

    it('the 4th HTTP call from one address within the window gets 429', async () => {
      const results = await inOneWindow(2000, async () => [await get(), await get(), await get(), await get()]);
      assert.deepEqual(statuses(results), [200, 200, 200, 429]);
      assert.match(results[3].headers.get('content-type') ?? '', /application\/json/);
      assert.equal(typeof results[3].json?.error, 'string');
    });

    it('with trust_hops 1 the limit is per forwarded client', async () => {
      const results = await inOneWindow(2000, async () => {
        const out: ApiResponse[] = [];
        for (let i = 0; i < 3; i++) out.push(await get('10.0.0.1'));
        for (let i = 0; i < 3; i++) out.push(await get('10.0.0.2'));
        out.push(await get('10.0.0.1'));
        out.push(await get('10.0.0.2'));
        out.push(await get('10.0.0.3'));
        return out;
      });
      assert.deepEqual(statuses(results), [200, 200, 200, 200, 200, 200, 429, 429, 200]);
    });

    it("the 4th HTTP call's 429 carries Sockudo's X-RateLimit-* and Retry-After headers", async () => {
      const results = await inOneWindow(2000, async () => [
        await get('10.9.0.1'),
        await get('10.9.0.1'),
        await get('10.9.0.1'),
        await get('10.9.0.1'),
      ]);
      assert.deepEqual(statuses(results), [200, 200, 200, 429]);
      const h = results[3].headers;
      assert.equal(h.get('x-ratelimit-limit'), '3');
      assert.equal(h.get('x-ratelimit-remaining'), '0');
      const reset = Number(h.get('x-ratelimit-reset'));
      assert.ok(reset >= 1 && reset <= 2, `reset ${reset}`);
      assert.equal(h.get('retry-after'), String(reset));
    });

    it('the 3rd WebSocket upgrade from one address within the window gets HTTP 429, as in Sockudo', async () => {
      const answers = await inOneWindow(2000, async () => [
        await upgradeStatus(node, DEMO_APP.key),
        await upgradeStatus(node, DEMO_APP.key),
        await upgradeStatus(node, DEMO_APP.key),
      ]);
      assert.deepEqual(
        answers.map((a) => a.status),
        [101, 101, 429],
      );
      assert.equal(answers[2].headers['x-ratelimit-limit'], '2');
      assert.ok(Number(answers[2].headers['retry-after']) >= 1);
    });

    it("websocket_refusal 'close_4100': the 3rd WebSocket is accepted and closed with 4100 instead", async () => {
      const pusherStyle = await startNode({
        config: {
          rate_limiter: { enabled: true, websocket_rate_limit: { max_requests: 2, window_seconds: 2 }, websocket_refusal: 'close_4100' },
        },
      });
      try {
        const opened = await inOneWindow(2000, async () => [
          await rawConnect(pusherStyle, DEMO_APP.key),
          await rawConnect(pusherStyle, DEMO_APP.key),
          await rawConnect(pusherStyle, DEMO_APP.key),
        ]);
        sockets.push(...opened.map((o) => o.sock));
        assert.equal(opened[1].frame.event, 'pusher:connection_established');
        assert.equal(opened[2].frame.event, 'pusher:error');
        assert.equal(dataOf<{ code: number }>(opened[2].frame).code, 4100);
        assert.equal((await opened[2].sock.closed).code, 4100);
      } finally {
        await pusherStyle.stop();
      }
    });
  });

  describe('the limiter cannot reach Redis (adapter local)', () => {
    let redis: Broker;
    let open: ChorusNode;
    let closed: ChorusNode;
    const APP: TestApp = { id: 'app-rf', key: 'rf-key', secret: 'rf-secret', max_backend_events_per_second: 100 };
    const LOG_LINE = 'rate limiter cannot reach Redis';

    before(async () => {
      redis = await startRedis();
      const config = (failOpen: boolean) => ({
        app_manager: { array: { apps: [APP] } },
        database: { redis: { port: redis.port } },
        rate_limiter: { driver: 'redis', fail_open: failOpen },
      });
      [open, closed] = await Promise.all([startNode({ config: config(true) }), startNode({ config: config(false) })]);
    });
    after(async () => {
      await Promise.all([open?.stop(), closed?.stop()]);
      await redis?.stop();
    });

    it('fail_open true accepts publishes, fail_open false answers 429; the error is logged once', async () => {
      // both work while Redis is up
      for (const node of [open, closed]) assert.equal((await publish(node, APP, { name: 'e', channel: 'c', data: '1' })).status, 200);
      await redis.stop();
      await sleep(200);
      const ev = { name: 'e', channel: 'c', data: '1' };
      const fromOpen: ApiResponse[] = [];
      const fromClosed: ApiResponse[] = [];
      const t0 = Date.now();
      for (let i = 0; i < 4; i++) {
        fromOpen.push(await publish(open, APP, ev));
        fromClosed.push(await publish(closed, APP, ev));
      }
      // Only the first check waits on the dead Redis; the others are decided at once.
      assert.ok(Date.now() - t0 < 7000, `8 publishes took ${Date.now() - t0} ms`);
      assert.deepEqual(statuses(fromOpen), [200, 200, 200, 200]);
      assert.deepEqual(statuses(fromClosed), [429, 429, 429, 429]);
      fromClosed.forEach(assertAcceptedOrLimited);
      await sleep(QUIET_MS);
      for (const node of [open, closed]) {
        const lines = node.logs.filter((l) => l.includes(LOG_LINE));
        assert.equal(lines.length, 1, lines.join('\n'));
      }
      assert.match(
        open.logs.find((l) => l.includes(LOG_LINE))!,
        /"fail_open":true/,
      );
      assert.match(
        closed.logs.find((l) => l.includes(LOG_LINE))!,
        /"fail_open":false/,
      );
      assert.equal(open.proc.exitCode, null);
      assert.equal(closed.proc.exitCode, null);
    });
  });
});
