// `chorus start --workers N` (issue 16): one box of three worker processes on one port and
// the local adapter (no external broker) behaves as one node. Clients land on workers as the
// kernel spreads them; each client's worker is read off the box's per-worker connection
// gauge as it connects, so every cross-worker claim below is checked, not assumed.
// Covered: fan-out, presence and client events across workers, webhooks exactly once,
// metrics added up, a SIGKILLed worker restarted with its presence cleaned at once (well
// inside node_timeout_ms), SIGHUP reloading apps in every worker, SIGTERM draining all
// with 4200, rate limits and connection caps counted once for the box, and a box joining
// nodes on Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import {
  connected,
  dataOf,
  pusherClient,
  rawSocket,
  serverSdk,
  sleep,
  until,
  waitFor,
  type PusherClient,
  type RawSocket,
} from './helpers/clients.js';
import { DEMO_APP, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';
import { startRedis, type Broker } from './helpers/brokers.js';
import { call, fallbackClient, parseLines, Q, sendFrames, sessionBase, transportOf } from './helpers/fallback.js';

async function scrape(node: ChorusNode): Promise<string> {
  return (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
}

const sumOf = (text: string, name: string): number =>
  text
    .split('\n')
    .filter((l) => l.startsWith(name) && !l.startsWith('#'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);

/** Open connections per worker index, from the box's own gauge. */
async function perWorker(node: ChorusNode): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const line of (await scrape(node)).split('\n')) {
    const m = /^chorus_box_worker_connections\{worker="(\d+)"\} (\d+)/.exec(line);
    if (m) out.set(Number(m[1]), Number(m[2]));
  }
  return out;
}

/** Connects a client and says which worker took it (the one whose count went up). */
async function connectOn(node: ChorusNode, make: () => PusherClient): Promise<{ client: PusherClient; worker: number }> {
  const before = await perWorker(node);
  const client = make();
  await connected(client);
  let worker = -1;
  await until(
    async () => {
      const now = await perWorker(node);
      for (const [w, n] of now) if (n > (before.get(w) ?? 0)) worker = w;
      return worker >= 0;
    },
    5000,
    'the worker that took the connection',
  );
  return { client, worker };
}

/** A raw socket, and the worker that took it. */
async function connectRawOn(node: ChorusNode, path?: string): Promise<{ sock: RawSocket; socketId: string; worker: number }> {
  const before = await perWorker(node);
  const sock = await rawSocket(node, path);
  const established = await sock.next((f) => f.event === 'pusher:connection_established');
  const socketId = dataOf<{ socket_id: string }>(established).socket_id;
  let worker = -1;
  await until(
    async () => {
      for (const [w, n] of await perWorker(node)) if (n > (before.get(w) ?? 0)) worker = w;
      return worker >= 0;
    },
    5000,
    'the worker that took the socket',
  );
  return { sock, socketId, worker };
}

/** The pid of a worker, from its latest "chorus worker listening" line. */
function workerPid(node: ChorusNode, index: number): number {
  const lines = node.logs.filter((l) => l.includes('chorus worker listening') && l.includes(`"worker":${index},`));
  const last = lines[lines.length - 1];
  assert.ok(last, `worker ${index} never said it listens`);
  return (JSON.parse(last) as { pid: number }).pid;
}

describe('workers: a box of 3 on the local adapter is one node', () => {
  let box: ChorusNode;
  let receiver: WebhookReceiver;
  let configFile: string;
  let config: Record<string, unknown>;
  const clients: PusherClient[] = [];
  const onWorker = new Map<number, PusherClient[]>();
  const app: TestApp & Record<string, unknown> = { ...DEMO_APP };
  const limited: TestApp & Record<string, unknown> = {
    ...DEMO_APP,
    id: 'app-limited',
    key: 'key-limited',
    secret: 'secret-limited',
    max_presence_members_per_channel: 2,
  };

  before(async () => {
    receiver = await startWebhookReceiver([DEMO_APP, { ...DEMO_APP, id: 'app-two', key: 'key-two', secret: 'secret-two' }]);
    Object.assign(app, {
      enable_client_messages: true,
      webhooks: [{ url: receiver.url, event_types: ['channel_occupied', 'member_added', 'member_removed'] }],
    });
    config = {
      port: 0,
      host: '127.0.0.1',
      metrics: { enabled: true, port: 0, host: '127.0.0.1' },
      workers: 3,
      shutdown_grace_period: 3,
      // Batched, as one node batches: events of every worker share the app's requests.
      webhooks: { batching: { enabled: true, duration: 150 } },
      // Far longer than the test waits: only the primary's word can clean a dead worker in time.
      adapter: { cluster_health: { heartbeat_interval_ms: 1000, node_timeout_ms: 60_000, cleanup_interval_ms: 1000 } },
      app_manager: { array: { apps: [app, limited] } },
    };
    box = await startNode({ config, timeoutMs: 20_000 });
    // Passing the same file lets SIGHUP reread it: startNode wrote its own copy, so rewrite that one.
    configFile = box.proc.spawnargs[box.proc.spawnargs.indexOf('--config') + 1];
    // Until every worker knows every other, a publish may miss a subscriber that joined a stranger.
    await until(() => box.logs.filter((l) => l.includes('cluster peer joined')).length >= 6, 10_000, 'workers meet');
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await box?.stop();
    await receiver?.stop();
  });

  it('spreads connections over the workers and fans out to all of them', async () => {
    for (let i = 0; i < 40 && onWorker.size < 3; i++) {
      const { client, worker } = await connectOn(box, () => pusherClient(box));
      clients.push(client);
      onWorker.set(worker, [...(onWorker.get(worker) ?? []), client]);
    }
    assert.ok(onWorker.size >= 2, `connections reached ${onWorker.size} worker(s)`);
    await Promise.all(clients.map((c) => waitFor(c.subscribe('shared'), 'pusher:subscription_succeeded')));
    const got = clients.map((c) => waitFor(c.channel('shared'), 'news'));
    await serverSdk(box).trigger('shared', 'news', { n: 1 });
    assert.deepEqual(
      (await Promise.all(got)).map((d) => (d as { n: number }).n),
      clients.map(() => 1),
    );
    // One occupancy for the box, however many workers hold the channel.
    await receiver.waitFor((r) => r.events('channel_occupied').some((e) => e.channel === 'shared'));
    await sleep(500);
    assert.equal(receiver.events('channel_occupied').filter((e) => e.channel === 'shared').length, 1);
    assert.equal(sumOf(await scrape(box), 'chorus_connected{'), clients.length, 'the gauge adds up over the workers');
    // Channels occupied on three workers at once: one batch, one request, as one node sends it.
    const workers = [...onWorker.keys()];
    const batchChannels = workers.map((w) => `batched-on-${w}`);
    await Promise.all(workers.map((w, i) => waitFor(onWorker.get(w)![0].subscribe(batchChannels[i]), 'pusher:subscription_succeeded')));
    await receiver.waitFor((r) => batchChannels.every((ch) => r.events('channel_occupied').some((e) => e.channel === ch)));
    const carrying = receiver.deliveries.filter((d) => d.body?.events.some((e) => batchChannels.includes(e.channel)));
    assert.equal(carrying.length, 1, `one request for ${workers.length} workers' events, got ${carrying.length}`);
  });

  it('presence and client events cross workers; a SIGKILLed worker is restarted and its member removed at once', async () => {
    const alice = await connectOn(box, () => pusherClient(box, { user: { user_id: 'alice', user_info: { n: 'A' } } }));
    clients.push(alice.client);
    // Bob is a raw socket (pusher-js would reconnect him at once when his worker dies, and
    // rightly cancel the removal within the 3 s delay), on another worker than Alice's.
    let bob: { sock: RawSocket; socketId: string; worker: number } | null = null;
    for (let i = 0; i < 20 && (!bob || bob.worker === alice.worker); i++) {
      bob?.sock.close();
      bob = await connectRawOn(box);
    }
    assert.ok(bob && bob.worker !== alice.worker, `alice and bob both on worker ${alice.worker}`);
    const aliceChannel = alice.client.subscribe('presence-room');
    await waitFor(aliceChannel, 'pusher:subscription_succeeded');
    const added = waitFor(aliceChannel, 'pusher:member_added');
    const presence = { user_id: 'bob', user_info: { n: 'B' } };
    const auth = serverSdk(box).authorizeChannel(bob.socketId, 'presence-room', presence);
    bob.sock.send({ event: 'pusher:subscribe', data: { channel: 'presence-room', ...auth } });
    const members = await bob.sock.next((f) => f.event === 'pusher_internal:subscription_succeeded');
    assert.equal(dataOf<{ presence: { count: number } }>(members).presence.count, 2);
    assert.equal(((await added) as { id: string }).id, 'bob');
    // A client event from Bob's worker reaches Alice's.
    const whisper = waitFor(aliceChannel, 'client-hi');
    bob.sock.send({ event: 'client-hi', channel: 'presence-room', data: { from: 'bob' } });
    assert.deepEqual(await whisper, { from: 'bob' });
    const users = (await (await serverSdk(box).get({ path: '/channels/presence-room/users' })).json()) as { users: Array<{ id: string }> };
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['alice', 'bob']);
    await receiver.waitFor((r) => r.events('member_added').filter((e) => e.channel === 'presence-room').length === 2);

    const removed = waitFor(aliceChannel, 'pusher:member_removed', 8000);
    const killedAt = Date.now();
    process.kill(workerPid(box, bob.worker), 'SIGKILL');
    const bobWorker = bob.worker;
    assert.equal(((await removed) as { id: string }).id, 'bob');
    assert.ok(Date.now() - killedAt < 8000, 'cleaned long before node_timeout_ms (60 s)');
    await receiver.waitFor((r) => r.events('member_removed').some((e) => e.user_id === 'bob'), 8000);
    await until(
      () => box.logs.filter((l) => l.includes('chorus worker listening') && l.includes(`"worker":${bobWorker},`)).length === 2,
      8000,
      'the killed worker back',
    );
    await until(async () => (await perWorker(box)).size === 3, 5000, 'three workers answer the scrape');
    assert.equal(sumOf(await scrape(box), 'chorus_box_worker_restarts_total'), 1);
    await sleep(500);
    assert.equal(receiver.events('member_removed').filter((e) => e.user_id === 'bob').length, 1, 'exactly once');
    assert.equal(receiver.events('member_added').filter((e) => e.user_id === 'bob').length, 1);
  });

  it('the presence member limit counts joins and leaves told on other workers, as one node does', async () => {
    // One socket on each worker; each round the roles move on, so every worker decides on
    // joins and leaves the others just answered (without settling first, about 1 round in 30 fails).
    const byWorker = new Map<number, { sock: RawSocket; socketId: string }>();
    const spare: RawSocket[] = [];
    for (let i = 0; i < 40 && byWorker.size < 3; i++) {
      const s = await connectRawOn(box, `/app/${limited.key}?protocol=7&client=js&version=8.4.0`);
      if (byWorker.has(s.worker)) spare.push(s.sock);
      else byWorker.set(s.worker, s);
    }
    for (const s of spare) s.close();
    assert.equal(byWorker.size, 3, 'a socket on each worker');
    const socks = [...byWorker.entries()].map(([worker, s]) => ({ ...s, worker }));
    const sdk = serverSdk(box, limited);
    const subscribe = async (s: { sock: RawSocket; socketId: string }, channel: string, userId: string) => {
      const auth = sdk.authorizeChannel(s.socketId, channel, { user_id: userId });
      s.sock.send({ event: 'pusher:subscribe', data: { channel, ...auth } });
      return s.sock.next(
        (f) => f.channel === channel && (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error'),
      );
    };
    for (let round = 0; round < 12; round++) {
      const channel = `presence-seats-${round}`;
      const [first, second, third] = [0, 1, 2].map((k) => socks[(round + k) % 3]);
      assert.equal((await subscribe(first, channel, 'one')).event, 'pusher_internal:subscription_succeeded');
      assert.equal((await subscribe(second, channel, 'two')).event, 'pusher_internal:subscription_succeeded');
      const refused = await subscribe(third, channel, 'three');
      assert.equal(refused.event, 'pusher:subscription_error', `round ${round}: the third user is refused`);
      assert.equal(dataOf<{ status: number }>(refused).status, 403);
      second.sock.send({ event: 'pusher:unsubscribe', data: { channel } });
      await first.sock.next((f) => f.event === 'pusher_internal:member_removed' && f.channel === channel);
      const seated = await subscribe(third, channel, 'three');
      assert.equal(seated.event, 'pusher_internal:subscription_succeeded', `round ${round}: a freed seat is taken`);
    }
    // Unsubscribed while its join waits for the hold: the subscription does not stand, and no seat is taken.
    const ghostChannel = 'presence-ghost';
    const ghost = socks[0];
    ghost.sock.send({
      event: 'pusher:subscribe',
      data: { channel: ghostChannel, ...sdk.authorizeChannel(ghost.socketId, ghostChannel, { user_id: 'ghost' }) },
    });
    ghost.sock.send({ event: 'pusher:unsubscribe', data: { channel: ghostChannel } });
    ghost.sock.send({ event: 'pusher:ping', data: {} });
    await ghost.sock.next((f) => f.event === 'pusher:pong');
    await sleep(300);
    const ghostUsers = (await (await sdk.get({ path: `/channels/${ghostChannel}/users` })).json()) as { users: unknown[] };
    assert.deepEqual(ghostUsers.users, [], 'no member left behind');
    assert.equal((await subscribe(socks[1], ghostChannel, 'one')).event, 'pusher_internal:subscription_succeeded');
    assert.equal((await subscribe(socks[2], ghostChannel, 'two')).event, 'pusher_internal:subscription_succeeded');

    // Six users at once, over the workers, for two seats: exactly two get in, as on one node.
    const crowd = [...socks];
    for (let i = 0; i < 3; i++) crowd.push(await connectRawOn(box, `/app/${limited.key}?protocol=7&client=js&version=8.4.0`));
    assert.ok(new Set(crowd.map((c) => (c as { worker?: number }).worker ?? -1)).size >= 2);
    for (let round = 0; round < 5; round++) {
      const channel = `presence-crowd-${round}`;
      const answers = await Promise.all(crowd.map((c, i) => subscribe(c, channel, `user-${i}`)));
      const inside = answers.filter((f) => f.event === 'pusher_internal:subscription_succeeded').length;
      assert.equal(inside, 2, `round ${round}: ${answers.map((f) => f.event).join(', ')}`);
    }
    for (const s of crowd) s.sock.close();
  });

  it('SIGHUP reloads the apps of every worker', async () => {
    const two: TestApp = { ...DEMO_APP, id: 'app-two', key: 'key-two', secret: 'secret-two' };
    writeFileSync(configFile, JSON.stringify({ ...config, app_manager: { array: { apps: [app, two] } } }));
    box.proc.kill('SIGHUP');
    await until(() => box.logs.filter((l) => l.includes('apps reloaded')).length === 3, 5000, 'three workers reload');
    const seen = new Set<number>();
    for (let i = 0; i < 30 && seen.size < 2; i++) {
      const { client, worker } = await connectOn(box, () => pusherClient(box, { app: two }));
      clients.push(client);
      seen.add(worker);
    }
    assert.ok(seen.size >= 2, 'the new app is served by more than one worker');
  });

  it("an HTTP fallback session's requests reach the worker that holds it, on whichever worker they land", async () => {
    // Polling: every poll and send is a new TCP connection (agent: false), so the kernel hands
    // them to any worker; with 12 sends the chance that all land on the holder is 3^-12.
    const base = sessionBase(`9/box${process.pid}`);
    const first = await call(box.port, `${base}/xhr${Q}`);
    assert.equal(first.status, 200);
    assert.equal(parseLines(first.body).frames[0].event, 'pusher:connection_established');
    for (let i = 0; i < 12; i++) {
      const poll = call(box.port, `${base}/xhr${Q}`);
      await sleep(50);
      const sent = await sendFrames(box, base, { event: 'pusher:subscribe', data: { channel: `fb-${i}` } });
      assert.equal(sent.status, 204, `send ${i}: ${sent.status} ${sent.body}`);
      const frames = parseLines((await poll).body).frames;
      assert.deepEqual(
        frames.map((f) => [f.event, f.channel]),
        [['pusher_internal:subscription_succeeded', `fb-${i}`]],
        `poll ${i}`,
      );
    }
    // The box has one connection for it, however many workers passed its requests on.
    const polled = call(box.port, `${base}/xhr${Q}`);
    await sleep(50);
    await serverSdk(box).trigger('fb-3', 'hello', { ok: 1 });
    assert.deepEqual(
      parseLines((await polled).body).frames.map((f) => f.event),
      ['hello'],
    );
    // A session nobody holds is unknown on every worker.
    for (let i = 0; i < 4; i++) assert.equal((await sendFrames(box, sessionBase(`9/none${i}`), { event: 'pusher:ping' })).status, 404);
  });

  it('pusher-js on xhr_streaming and xhr_polling works through the box', async () => {
    for (const transport of ['xhr_streaming', 'xhr_polling'] as const) {
      const client = fallbackClient(box.port, transport);
      clients.push(client);
      await connected(client, 10_000);
      assert.equal(transportOf(client), transport);
      const channel = client.subscribe(`fbjs-${transport}`);
      await waitFor(channel, 'pusher:subscription_succeeded', 10_000);
      const got = waitFor(channel, 'e', 10_000);
      await serverSdk(box).trigger(`fbjs-${transport}`, 'e', { transport });
      assert.deepEqual(await got, { transport });
    }
  });

  it('SIGTERM drains every worker with 4200 and the box exits 0', async () => {
    const socks = await Promise.all(Array.from({ length: 6 }, () => rawSocket(box)));
    await Promise.all(socks.map((s) => s.next((f) => f.event === 'pusher:connection_established')));
    const started = Date.now();
    const code = await box.stop('SIGTERM');
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 3000 + 2000, 'within shutdown_grace_period');
    for (const s of socks) assert.equal((await s.closed).code, 4200);
  });
});

describe('workers: shared limits and a broker', () => {
  it('the API rate limit counts once for the box, whichever worker answers', async () => {
    const box = await startNode({
      config: {
        rate_limiter: { enabled: true, api_rate_limit: { max_requests: 5, window_seconds: 60 } },
      },
      env: { WORKERS: '2' },
      timeoutMs: 20_000,
    });
    try {
      // Not across a window's end (windows start at whole minutes).
      while (Date.now() % 60_000 > 55_000) await sleep(250);
      const statuses: number[] = [];
      for (let i = 0; i < 9; i++) {
        // A new connection each time, so the kernel may hand each to either worker.
        const res = await fetch(`${box.url}/apps/${DEMO_APP.id}/channels`, { headers: { Connection: 'close' } });
        statuses.push(res.status);
      }
      // Unsigned: refused with 401 after the limit let it through, 429 once the box's budget is spent.
      assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429, 429]);
    } finally {
      await box.stop();
    }
  });

  it('the caps count once for the box: max_connections_per_ip, max_connections and fallback sessions per address', async () => {
    const box = await startNode({
      config: {
        workers: 3,
        max_connections_per_ip: 3,
        max_connections: 5,
        http_fallback: { max_sessions_per_ip: 2 },
        rate_limiter: { websocket_rate_limit: { trust_hops: 1 } },
      },
      timeoutMs: 20_000,
    });
    const opened = new Map<string, RawSocket[]>();
    try {
      /** A socket from `ip` (as the proxy says): the refusal's message when it is refused. */
      const attempt = async (ip: string): Promise<true | string> => {
        const sock = await rawSocket(box, undefined, { 'X-Forwarded-For': ip });
        const first = await sock.next();
        if (first.event === 'pusher:connection_established') {
          opened.set(ip, [...(opened.get(ip) ?? []), sock]);
          return true;
        }
        assert.equal((await sock.closed).code, 4100);
        return dataOf<{ message: string }>(first).message;
      };
      const results: Array<true | string> = [];
      for (let i = 0; i < 5; i++) results.push(await attempt('10.0.0.1'));
      const perIp = 'Too many connections from this address, retry later';
      assert.deepEqual(results, [true, true, true, perIp, perIp], 'three for the box (each worker alone would take three)');
      const held = [...(await perWorker(box)).values()].filter((n) => n > 0).length;
      // Closing one frees one place of the address, on whichever worker the next lands.
      opened.get('10.0.0.1')!.shift()!.close();
      await until(async () => (await attempt('10.0.0.1')) === true, 3000, 'a place back');
      assert.equal(await attempt('10.0.0.1'), perIp);
      console.log(`# the three sockets of one address were spread over ${held} worker(s)`);

      // Five for the box across addresses (each worker alone would have taken five).
      const full = 'Node is over capacity';
      assert.deepEqual([await attempt('10.0.0.2'), await attempt('10.0.0.2'), await attempt('10.0.0.3')], [true, true, full]);
      assert.equal(sumOf(await scrape(box), 'chorus_box_worker_connections'), 5);
      opened.get('10.0.0.2')!.shift()!.close();
      await until(async () => (await attempt('10.0.0.3')) === true, 3000, 'a place of the box back');
      assert.equal(await attempt('10.0.0.4'), full);

      // Fallback sessions of one address: two for the box, each on a new TCP connection (any worker).
      for (const socks of opened.values()) for (const sock of socks.splice(0)) sock.close();
      await until(async () => sumOf(await scrape(box), 'chorus_box_worker_connections') === 0, 5000, 'the sockets gone');
      const sessions: string[] = [];
      for (let i = 0; i < 3; i++) {
        const answer = await call(box.port, `${sessionBase(`7/cap${process.pid}${i}`)}/xhr${Q}`, '', { 'X-Forwarded-For': '10.0.0.5' });
        assert.equal(answer.status, 200);
        const frame = parseLines(answer.body).frames[0];
        sessions.push(frame.event === 'pusher:error' ? dataOf<{ message: string }>(frame).message : frame.event);
      }
      assert.deepEqual(sessions, [
        'pusher:connection_established',
        'pusher:connection_established',
        'Too many sessions from this address, retry later',
      ]);
    } finally {
      for (const socks of opened.values()) for (const s of socks) s.close();
      await box.stop();
    }
  });

  it('channel history without a broker: one numbered log for the box, whichever worker publishes or reads', async () => {
    const app: TestApp & Record<string, unknown> = {
      ...DEMO_APP,
      history: { enabled: true, channels: ['chat-'], max_messages: 50, ttl_seconds: 600, max_replay_messages: 20 },
    };
    const box = await startNode({ config: { workers: 2, app_manager: { array: { apps: [app] } } }, timeoutMs: 20_000 });
    try {
      const sdk = serverSdk(box);
      for (let i = 1; i <= 6; i++) await sdk.trigger('chat-box', 'e', String(i));
      for (let i = 0; i < 4; i++) {
        const res = await sdk.get({ path: '/channels/chat-box/history', params: { limit: 10, direction: 'oldest_first' } });
        const page = (await res.json()) as { items: Array<{ serial: number; message: { data: string } }> };
        assert.deepEqual(
          page.items.map((it) => [it.serial, it.message.data]),
          [1, 2, 3, 4, 5, 6].map((n) => [n, String(n)]),
        );
      }
    } finally {
      await box.stop();
    }
  });

  it('with Redis, the workers of a box and a node elsewhere form one cluster', async () => {
    let redis: Broker | null = null;
    let box: ChorusNode | null = null;
    let node: ChorusNode | null = null;
    const env = (redisPort: number) => ({ ADAPTER_DRIVER: 'redis', DATABASE_REDIS_PORT: String(redisPort) });
    try {
      redis = await startRedis();
      box = await startNode({ config: { workers: 2 }, env: env(redis.port), timeoutMs: 20_000 });
      node = await startNode({ env: env(redis.port) });
      await until(() => node!.logs.filter((l) => l.includes('cluster peer joined')).length >= 2, 10_000, 'the node meets both workers');
      const there = pusherClient(node);
      const here = pusherClient(box);
      try {
        await Promise.all([connected(there), connected(here)]);
        await Promise.all([
          waitFor(there.subscribe('x'), 'pusher:subscription_succeeded'),
          waitFor(here.subscribe('x'), 'pusher:subscription_succeeded'),
        ]);
        const got = [waitFor(there.channel('x'), 'e'), waitFor(here.channel('x'), 'e')];
        await serverSdk(box).trigger('x', 'e', { ok: true });
        assert.deepEqual(await Promise.all(got), [{ ok: true }, { ok: true }]);
        const cluster = (await (await fetch(`http://127.0.0.1:${box.metricsPort}/cluster`)).json()) as { members: unknown[] };
        assert.equal(cluster.members.length, 3, 'two workers and the node');
      } finally {
        there.disconnect();
        here.disconnect();
      }
    } finally {
      await box?.stop();
      await node?.stop();
      await redis?.stop();
    }
  });
});
