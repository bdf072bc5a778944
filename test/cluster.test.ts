// Three real Chorus nodes over each horizontal adapter (redis, redis-cluster,
// nats), checked from outside with pusher-js, the pusher SDK and raw sockets:
// fan-out, presence, the HTTP API's cluster view, interest routing, the
// subscription handshake, a new node, a frozen peer and a broker outage.
// One shared suite body runs for every adapter.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { masterFor, redisCli, startNats, startRedis, startRedisCluster, waitForReplicasSynced, type Broker } from './helpers/brokers.js';
import { DEMO_APP, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { signedFetch } from './helpers/signing.js';
import {
  connected,
  dataOf,
  pusherClient,
  rawSocket,
  serverSdk,
  sleep,
  waitFor,
  type PusherClient,
  type RawSocket,
  until,
} from './helpers/clients.js';

type Frame = RawSocket['frames'][number];

/** Short wait for something that must NOT arrive, used only after a positive control. */
const QUIET_MS = 400;

/** Presence limited to two members cluster-wide. */
const LIMITED_APP: TestApp = { id: 'app-lim', key: 'lim-key', secret: 'lim-secret', max_presence_members_per_channel: 2 };
/** subscription_count events on. */
const COUNT_APP: TestApp = { id: 'app-count', key: 'count-key', secret: 'count-secret', enable_subscription_count: true };

/** Faster than the defaults so a frozen or lost peer is noticed within a test's time. */
const HEALTH_ENV = {
  ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: '500',
  ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: '2500',
  ADAPTER_CLUSTER_HEALTH_CLEANUP_INTERVAL_MS: '500',
};

/** What differs per adapter: the broker, the env for nodes and how to take the broker away. */
interface AdapterSetup {
  name: string;
  start(): Promise<BrokerHandle>;
}

interface BrokerHandle {
  env: Record<string, string>;
  /** The env for a node that reaches the broker through 127.0.0.1:port (a proxy); null when the broker cannot be proxied. */
  envVia(port: number): Record<string, string> | null;
  /** Subscriber connections the broker holds for a topic (interest routing, seen from the broker); null if not observable. */
  subscribers(topic: string): number | null;
  /** Takes the broker (or the shard owning `topic`) away. */
  outageBegin(topic: string): Promise<void>;
  /** Gives it back (or nothing, when a replica takes over by itself). */
  outageEnd(): Promise<void>;
  stop(): Promise<void>;
  brokerPort: number;
}

/**
 * A TCP proxy that holds every byte from the node to the broker for delayMs (replies pass at once):
 * the node's subscriptions are confirmed late, while other nodes publish without delay.
 */
function delayingProxy(targetPort: number, delayMs: number): Promise<{ port: number; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    // Timers of equal duration fire in creation order, so the byte stream keeps its order.
    client.on('data', (chunk) => setTimeout(() => upstream.writable && upstream.write(chunk), delayMs));
    upstream.on('data', (chunk) => client.writable && client.write(chunk));
    const end = () => (client.destroy(), upstream.destroy());
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  return new Promise((res) =>
    server.listen(0, '127.0.0.1', () =>
      res({
        port: (server.address() as { port: number }).port,
        close: () => {
          server.close();
          for (const s of sockets) s.destroy();
        },
      }),
    ),
  );
}

/** `PUBSUB NUMSUB t` / `SHARDNUMSUB t` answer "t\nN". */
const numsub = (out: string): number => Number(out.trim().split('\n').pop());

const redisSetup: AdapterSetup = {
  name: 'redis',
  async start() {
    const broker: Broker = await startRedis();
    return {
      env: { ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(broker.port) },
      envVia: (port) => ({ ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(port) }),
      brokerPort: broker.port,
      subscribers: (topic) => numsub(redisCli(broker.port, 'PUBSUB', 'NUMSUB', topic)),
      outageBegin: () => broker.stop('SIGKILL'),
      outageEnd: () => broker.restart(),
      stop: () => broker.stop(),
    };
  },
};

const redisClusterSetup: AdapterSetup = {
  name: 'redis-cluster',
  async start() {
    const cluster = await startRedisCluster();
    // A replica that has not synced yet would never take over from a killed master.
    await waitForReplicasSynced(cluster);
    return {
      env: { ADAPTER_DRIVER: 'redis-cluster', REDIS_CLUSTER_NODES: cluster.seeds },
      // Clients follow the addresses the cluster announces, so a proxy in front of the seeds is bypassed.
      envVia: () => null,
      brokerPort: 0,
      // Sharded subscriptions are held by the shard's nodes only: sum over every node.
      subscribers: (topic) =>
        cluster.nodes
          .filter((n) => n.proc.exitCode === null && n.proc.signalCode === null)
          .reduce((sum, n) => sum + numsub(redisCli(n.port, 'PUBSUB', 'SHARDNUMSUB', topic)), 0),
      // SIGKILL the master of the channel's slot; its replica is promoted after cluster-node-timeout (2 s).
      outageBegin: async (topic) => {
        const master = masterFor(cluster, topic);
        await master.stop('SIGKILL');
      },
      outageEnd: async () => undefined,
      stop: () => cluster.stop(),
    };
  },
};

const natsSetup: AdapterSetup = {
  name: 'nats',
  async start() {
    const broker = await startNats();
    return {
      env: { ADAPTER_DRIVER: 'nats', NATS_SERVERS: `nats://127.0.0.1:${broker.port}` },
      envVia: (port) => ({ ADAPTER_DRIVER: 'nats', NATS_SERVERS: `nats://127.0.0.1:${port}` }),
      brokerPort: broker.port,
      subscribers: () => null,
      outageBegin: () => broker.stop('SIGKILL'),
      outageEnd: () => broker.restart(),
      stop: () => broker.stop(),
    };
  },
};

// helpers

async function socketIdOf(sock: RawSocket): Promise<string> {
  const f =
    sock.frames.find((x) => x.event === 'pusher:connection_established') ??
    (await sock.next((x) => x.event === 'pusher:connection_established'));
  return dataOf<{ socket_id: string }>(f).socket_id;
}

/** Subscribes a raw socket (public channels, or private/presence signed with the SDK) and returns the answer. */
async function rawSubscribe(
  node: ChorusNode,
  sock: RawSocket,
  channel: string,
  app: TestApp = DEMO_APP,
  presence?: { user_id: string },
): Promise<Frame> {
  const data: Record<string, unknown> = { channel };
  if (channel.startsWith('private-') || channel.startsWith('presence-')) {
    Object.assign(data, serverSdk(node, app).authorizeChannel(await socketIdOf(sock), channel, presence as never));
  }
  sock.send({ event: 'pusher:subscribe', data });
  return sock.next(
    (f) => f.channel === channel && (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error'),
  );
}

/** Signs a raw socket in and waits for signin_success. */
async function rawSignin(node: ChorusNode, sock: RawSocket, user: { id: string }): Promise<void> {
  const signed = serverSdk(node).authenticateUser(await socketIdOf(sock), user);
  sock.send({ event: 'pusher:signin', data: signed });
  const answer = await sock.next((f) => f.event === 'pusher:signin_success' || f.event === 'pusher:error');
  assert.equal(answer.event, 'pusher:signin_success', JSON.stringify(answer));
}

const eventsOf = (sock: RawSocket, channel: string, event: string) => sock.frames.filter((f) => f.channel === channel && f.event === event);

/** A channel name unique to this run of a test. */
let seq = 0;
const fresh = (base: string) => `${base}-${++seq}-${Date.now().toString(36)}`;

async function metric(node: ChorusNode, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`chorus_${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** GET on the HTTP API through the SDK, JSON body. */
async function apiGet<T = Record<string, unknown>>(
  node: ChorusNode,
  path: string,
  params: Record<string, string> = {},
  app = DEMO_APP,
): Promise<T> {
  const res = await serverSdk(node, app).get({ path, params });
  assert.equal(res.status, 200);
  return (await res.json()) as T;
}

/** Each node logged the others as peers (hello and heartbeats crossed the bus both ways). */
async function clusterFormed(nodes: ChorusNode[], timeoutMs = 10_000): Promise<void> {
  await until(
    () => nodes.every((n) => nodes.every((m) => m === n || n.logs.some((l) => l.includes('cluster peer joined') && l.includes(m.nodeId)))),
    timeoutMs,
    'cluster formation',
  );
}

/** Publishes every 200 ms until the socket gets one of them; returns how long that took. */
async function publishUntilReceived(from: ChorusNode, sock: RawSocket, channel: string, timeoutMs = 20_000): Promise<number> {
  const t0 = Date.now();
  const mark = sock.frames.length;
  const arrived = () => sock.frames.slice(mark).some((f) => f.channel === channel && f.event === 'probe');
  const sdk = serverSdk(from);
  for (let i = 0; Date.now() - t0 < timeoutMs; i++) {
    await sdk.trigger(channel, 'probe', { i }).catch(() => undefined);
    const next = Date.now() + 200;
    while (Date.now() < next) {
      if (arrived()) return Date.now() - t0;
      await sleep(20);
    }
  }
  throw new Error(`no cross-node delivery on ${channel} within ${timeoutMs} ms`);
}

// the shared suite

function clusterSuite(setup: AdapterSetup): void {
  describe(`cluster over ${setup.name}`, () => {
    let broker: BrokerHandle;
    let nodes: ChorusNode[] = [];
    let n1: ChorusNode;
    let n2: ChorusNode;
    let n3: ChorusNode;
    const extraNodes: ChorusNode[] = [];
    const open: Array<RawSocket | PusherClient> = [];
    const track = <T extends RawSocket | PusherClient>(x: T): T => (open.push(x), x);
    const raw = async (node: ChorusNode, app: TestApp = DEMO_APP) => {
      const sock = track(await rawSocket(node, `/app/${app.key}?protocol=7&client=js&version=8.4.0`));
      await socketIdOf(sock);
      return sock;
    };
    const closeAll = async () => {
      for (const x of open.splice(0)) {
        if ('disconnect' in x) x.disconnect();
        else x.close();
      }
      await sleep(100);
    };
    const startOne = (id: string) =>
      startNode({
        config: { app_manager: { array: { apps: [DEMO_APP, LIMITED_APP, COUNT_APP] } } },
        env: { ...broker.env, ...HEALTH_ENV, INSTANCE_PROCESS_ID: `${setup.name}-${id}` },
        timeoutMs: 15_000,
      });
    const topicOf = (channel: string, app: TestApp = DEMO_APP) => `chorus#ch#${app.id}#${channel}`;

    before(async () => {
      broker = await setup.start();
      nodes = await Promise.all(['n1', 'n2', 'n3'].map(startOne));
      [n1, n2, n3] = nodes;
      await clusterFormed(nodes);
    });

    after(async () => {
      await closeAll();
      for (const n of [...nodes, ...extraNodes]) n.proc.kill('SIGCONT');
      await Promise.all([...nodes, ...extraNodes].map((n) => n.stop()));
      await broker?.stop();
    });

    it('delivers 50 events published on one node to every node exactly once, in order', async () => {
      const channel = fresh('order');
      const clients = nodes.map((n) => track(pusherClient(n)));
      const got: number[][] = clients.map(() => []);
      await Promise.all(
        clients.map(async (c, i) => {
          const ch = c.subscribe(channel);
          ch.bind('tick', (d: { n: number }) => got[i].push(d.n));
          await waitFor(ch, 'pusher:subscription_succeeded');
        }),
      );
      const sdk = serverSdk(n2);
      for (let i = 0; i < 50; i++) assert.equal((await sdk.trigger(channel, 'tick', { n: i })).status, 200);
      await until(() => got.every((g) => g.length >= 50), 10_000, '50 events on every node');
      await sleep(QUIET_MS);
      const expected = Array.from({ length: 50 }, (_, i) => i);
      got.forEach((g, i) => assert.deepEqual(g, expected, `node ${i + 1} received ${JSON.stringify(g)}`));
      await closeAll();
    });

    it('excludes a socket_id that lives on another node', async () => {
      const channel = fresh('except');
      const socks = await Promise.all(nodes.map((n) => raw(n)));
      for (const [i, s] of socks.entries()) {
        assert.equal((await rawSubscribe(nodes[i], s, channel)).event, 'pusher_internal:subscription_succeeded');
      }
      const excluded = await socketIdOf(socks[0]);
      // published on n3, excluding a socket on n1
      await serverSdk(n3).trigger(channel, 'skip', { n: 1 }, { socket_id: excluded });
      await socks[1].next((f) => f.event === 'skip');
      await socks[2].next((f) => f.event === 'skip');
      // positive control: the next event reaches n1, and it is the first one it sees on the channel (per-channel order)
      await serverSdk(n3).trigger(channel, 'after', { n: 2 });
      const first = await socks[0].next((f) => f.channel === channel && f.event !== 'pusher_internal:subscription_succeeded');
      assert.equal(first.event, 'after');
      await sleep(QUIET_MS);
      assert.equal(eventsOf(socks[0], channel, 'skip').length, 0);
      assert.equal(eventsOf(socks[1], channel, 'skip').length, 1);
      assert.equal(eventsOf(socks[2], channel, 'skip').length, 1);
      await closeAll();
    });

    it('relays client events to subscribers on other nodes, not back to the sender', async () => {
      const channel = fresh('private-ce');
      const clients = nodes.map((n) => track(pusherClient(n)));
      const got: string[][] = clients.map(() => []);
      const chans = await Promise.all(
        clients.map(async (c, i) => {
          const ch = c.subscribe(channel);
          ch.bind_global((event: string) => {
            if (event.startsWith('client-')) got[i].push(event);
          });
          await waitFor(ch, 'pusher:subscription_succeeded');
          return ch;
        }),
      );
      assert.equal(chans[0].trigger('client-from-1', { x: 1 }), true);
      await until(() => got[1].length === 1 && got[2].length === 1, 5000, 'client event on n2 and n3');
      // positive control for the sender: an event from n2 reaches n1
      assert.equal(chans[1].trigger('client-from-2', { x: 2 }), true);
      await until(() => got[0].length >= 1, 5000, 'client event from n2 on n1');
      await sleep(QUIET_MS);
      assert.deepEqual(got, [['client-from-2'], ['client-from-1'], ['client-from-1', 'client-from-2']]);
      await closeAll();
    });

    it('presence is cluster-wide: members listed everywhere, added and removed once per user', async () => {
      const channel = fresh('presence-room');
      const join = async (node: ChorusNode, userId: string) => {
        const client = track(pusherClient(node, { user: { user_id: userId, user_info: { name: userId } } }));
        const ch = client.subscribe(channel) as ReturnType<PusherClient['subscribe']> & {
          members: { count: number; members: Record<string, unknown> };
        };
        const added: string[] = [];
        const removed: string[] = [];
        ch.bind('pusher:member_added', (m: { id: string }) => added.push(m.id));
        ch.bind('pusher:member_removed', (m: { id: string }) => removed.push(m.id));
        await waitFor(ch, 'pusher:subscription_succeeded');
        return { client, ch, added, removed, ids: () => Object.keys(ch.members.members).sort() };
      };
      const a = await join(n1, 'u1');
      assert.deepEqual(a.ids(), ['u1']);
      // u2 on n2 sees u1 (held by n1) in subscription_succeeded; u1 is told about u2
      const b = await join(n2, 'u2');
      assert.deepEqual(b.ids(), ['u1', 'u2']);
      await until(() => a.added.length === 1, 5000, 'member_added u2 on n1');
      assert.deepEqual(a.added, ['u2']);
      // u2's second socket, on n3: not a new member anywhere
      const b2 = await join(n3, 'u2');
      assert.deepEqual(b2.ids(), ['u1', 'u2']);
      assert.deepEqual(b2.ch.members.members.u1, { name: 'u1' });
      // positive control: u3 joins on n3, everyone already there hears exactly that
      const c = await join(n3, 'u3');
      assert.deepEqual(c.ids(), ['u1', 'u2', 'u3']);
      await until(() => a.added.length >= 2 && b.added.length >= 1 && b2.added.length >= 1, 5000, 'member_added u3');
      await sleep(QUIET_MS);
      assert.deepEqual(a.added, ['u2', 'u3']);
      assert.deepEqual(b.added, ['u3']);
      assert.deepEqual(b2.added, ['u3']);
      // GET /users from any node
      for (const n of nodes) {
        const body = await apiGet<{ users: Array<{ id: string }> }>(n, `/channels/${channel}/users`);
        assert.deepEqual(body.users.map((u) => u.id).sort(), ['u1', 'u2', 'u3'], `users on ${n.nodeId}`);
      }
      // u2 leaves n2 but is still on n3: nobody hears member_removed
      b.client.disconnect();
      await sleep(QUIET_MS);
      // u2's last socket leaves: member_removed once on every node
      b2.client.disconnect();
      await until(() => a.removed.length >= 1 && c.removed.length >= 1, 5000, 'member_removed u2');
      // positive control for "once": u3 leaves too
      c.client.disconnect();
      await until(() => a.removed.length >= 2, 5000, 'member_removed u3');
      await sleep(QUIET_MS);
      assert.deepEqual(a.removed, ['u2', 'u3']);
      assert.deepEqual(c.removed, ['u2']);
      assert.deepEqual(a.ids(), ['u1']);
      await closeAll();
    });

    it('max_presence_members_per_channel counts members on every node', async () => {
      const channel = fresh('presence-lim');
      const s1 = await raw(n1, LIMITED_APP);
      const s2 = await raw(n2, LIMITED_APP);
      assert.equal((await rawSubscribe(n1, s1, channel, LIMITED_APP, { user_id: 'a' })).event, 'pusher_internal:subscription_succeeded');
      assert.equal((await rawSubscribe(n2, s2, channel, LIMITED_APP, { user_id: 'b' })).event, 'pusher_internal:subscription_succeeded');
      // At once: b was told it joined, so n3 counts b as one server would (it settles first).
      const s3 = await raw(n3, LIMITED_APP);
      const refused = await rawSubscribe(n3, s3, channel, LIMITED_APP, { user_id: 'c' });
      assert.equal(refused.event, 'pusher:subscription_error');
      assert.deepEqual(
        { type: dataOf<{ type: string }>(refused).type, status: dataOf<{ status: number }>(refused).status },
        { type: 'LimitReached', status: 403 },
      );
      // a member already in the channel may add a socket on n3
      const s4 = await raw(n3, LIMITED_APP);
      assert.equal((await rawSubscribe(n3, s4, channel, LIMITED_APP, { user_id: 'a' })).event, 'pusher_internal:subscription_succeeded');
      // b leaves on n2; once a (on n1) is told, c takes the seat on n3 at once.
      s2.send({ event: 'pusher:unsubscribe', data: { channel } });
      await s1.next((f) => f.event === 'pusher_internal:member_removed' && f.channel === channel);
      const seated = await rawSubscribe(n3, s3, channel, LIMITED_APP, { user_id: 'c' });
      assert.equal(seated.event, 'pusher_internal:subscription_succeeded');
      // Six users at once on three nodes for the two seats of a fresh channel: exactly two get in.
      const crowdChannel = fresh('presence-crowd');
      const crowd = await Promise.all([n1, n2, n3, n1, n2, n3].map(async (n) => ({ n, s: await raw(n, LIMITED_APP) })));
      const answers = await Promise.all(crowd.map((c, i) => rawSubscribe(c.n, c.s, crowdChannel, LIMITED_APP, { user_id: `u${i}` })));
      assert.equal(
        answers.filter((f) => f.event === 'pusher_internal:subscription_succeeded').length,
        2,
        answers.map((f) => f.event).join(),
      );
      await closeAll();
    });

    it('GET /channels, /channels/{name} and /users answer for the whole cluster from any node', async () => {
      const pub = fresh('api-pub');
      const pres = fresh('presence-api');
      const a = await raw(n1);
      const b = await raw(n2);
      const b2 = await raw(n2);
      for (const [node, s] of [
        [n1, a],
        [n2, b],
        [n2, b2],
      ] as const) {
        assert.equal((await rawSubscribe(node, s, pub)).event, 'pusher_internal:subscription_succeeded');
      }
      assert.equal((await rawSubscribe(n1, a, pres, DEMO_APP, { user_id: 'p1' })).event, 'pusher_internal:subscription_succeeded');
      assert.equal((await rawSubscribe(n2, b, pres, DEMO_APP, { user_id: 'p2' })).event, 'pusher_internal:subscription_succeeded');
      assert.equal((await rawSubscribe(n2, b2, pres, DEMO_APP, { user_id: 'p1' })).event, 'pusher_internal:subscription_succeeded');
      await until(
        async () => (await apiGet<{ users: unknown[] }>(n3, `/channels/${pres}/users`)).users.length === 2,
        5000,
        'n3 knows p1 and p2',
      );
      for (const n of nodes) {
        const list = await apiGet<{ channels: Record<string, unknown> }>(n, '/channels', {
          filter_by_prefix: 'api-pub',
          info: 'subscription_count',
        });
        assert.deepEqual(list, { channels: { [pub]: { subscription_count: 3 } } }, `GET /channels on ${n.nodeId}`);
        const presList = await apiGet<{ channels: Record<string, unknown> }>(n, '/channels', {
          filter_by_prefix: 'presence-api',
          info: 'user_count',
        });
        assert.deepEqual(presList, { channels: { [pres]: { user_count: 2 } } }, `GET /channels presence on ${n.nodeId}`);
        assert.deepEqual(await apiGet(n, `/channels/${pub}`, { info: 'subscription_count' }), { occupied: true, subscription_count: 3 });
        assert.deepEqual(await apiGet(n, `/channels/${pres}`, { info: 'user_count' }), { occupied: true, user_count: 2 });
        const users = await apiGet<{ users: Array<{ id: string }> }>(n, `/channels/${pres}/users`);
        assert.deepEqual(users.users.map((u) => u.id).sort(), ['p1', 'p2']);
      }
      await closeAll();
      for (const n of nodes) {
        await until(async () => (await apiGet<{ occupied: boolean }>(n, `/channels/${pub}`)).occupied === false, 5000, 'channel vacated');
        assert.deepEqual(await apiGet(n, '/channels', { filter_by_prefix: 'api-' }), { channels: {} });
      }
    });

    it("terminate_connections closes the user's sockets on every node", async () => {
      const user = fresh('term-user');
      const a = await raw(n1);
      const b = await raw(n2);
      const other = await raw(n2);
      await rawSignin(n1, a, { id: user });
      await rawSignin(n2, b, { id: user });
      await rawSignin(n2, other, { id: 'someone-else' });
      const res = await serverSdk(n3).terminateUserConnections(user);
      assert.equal(res.status, 200);
      const closedWithin = (s: RawSocket) => Promise.race([s.closed, sleep(5000).then(() => ({ code: -1, reason: 'still open' }))]);
      assert.equal((await closedWithin(a)).code, 4009);
      assert.equal((await closedWithin(b)).code, 4009);
      // positive control: the other user's socket on n2 still answers
      other.send({ event: 'pusher:ping', data: {} });
      await other.next((f) => f.event === 'pusher:pong');
      await closeAll();
    });

    it("force_reconnect (Sockudo's) closes the user's sockets on every node with 4200, not other users", async () => {
      const user = fresh('reconnect-user');
      const a = await raw(n1);
      const b = await raw(n2);
      const other = await raw(n2);
      await rawSignin(n1, a, { id: user });
      await rawSignin(n2, b, { id: user });
      await rawSignin(n2, other, { id: 'someone-else' });
      const res = await signedFetch(n3, { method: 'POST', path: `/apps/${DEMO_APP.id}/users/${user}/force_reconnect` });
      assert.equal(res.status, 200, res.text);
      const closedWithin = (s: RawSocket) => Promise.race([s.closed, sleep(5000).then(() => ({ code: -1, reason: 'still open' }))]);
      for (const s of [a, b]) {
        assert.equal((await closedWithin(s)).code, 4200);
        const error = s.frames.find((f) => f.event === 'pusher:error');
        assert.equal(dataOf<{ code: number }>(error!).code, 4200, 'pusher:error 4200 before the close, so pusher-js reconnects at once');
      }
      other.send({ event: 'pusher:ping', data: {} });
      await other.next((f) => f.event === 'pusher:pong');
      await closeAll();
    });

    it('sendToUser reaches a user signed in on another node', async () => {
      const user = fresh('dm-user');
      const client = track(pusherClient(n2, { signinUser: { id: user } }));
      await connected(client);
      client.signin();
      await until(() => client.user.serverToUserChannel?.subscribed === true, 5000, 'server-to-user channel subscribed');
      const got = waitFor<{ text: string }>(client.user, 'dm');
      assert.equal((await serverSdk(n1).sendToUser(user, 'dm', { text: 'hi' })).status, 200);
      assert.deepEqual(await got, { text: 'hi' });
      await closeAll();
    });

    it('a cache channel replays the last event published on another node', async () => {
      const channel = fresh('cache-x');
      await serverSdk(n1).trigger(channel, 'first', { v: 1 });
      await serverSdk(n1).trigger(channel, 'last', { v: 2 });
      const s = await raw(n3);
      assert.equal((await rawSubscribe(n3, s, channel)).event, 'pusher_internal:subscription_succeeded');
      const replay = await s.next((f) => f.channel === channel);
      assert.equal(replay.event, 'last');
      assert.deepEqual(dataOf(replay), { v: 2 });
      const detail = await apiGet<{ cache?: { event: string } }>(n2, `/channels/${channel}`, { info: 'cache' });
      assert.equal(detail.cache?.event, 'last');
      await closeAll();
    });

    it('subscription_count events carry the cluster count to every node', async () => {
      const channel = fresh('counted');
      const counts = (s: RawSocket) =>
        eventsOf(s, channel, 'pusher_internal:subscription_count').map((f) => dataOf<{ subscription_count: number }>(f).subscription_count);
      const last = (s: RawSocket) => counts(s).at(-1);
      const socks: RawSocket[] = [];
      for (const [i, n] of nodes.entries()) {
        const s = await raw(n, COUNT_APP);
        socks.push(s);
        assert.equal((await rawSubscribe(n, s, channel, COUNT_APP)).event, 'pusher_internal:subscription_succeeded');
        await until(
          () => socks.every((x) => last(x) === i + 1),
          5000,
          `count ${i + 1} on every node: ${JSON.stringify(socks.map(counts))}`,
        );
      }
      socks[2].close();
      await until(() => last(socks[0]) === 2 && last(socks[1]) === 2, 5000, `count back to 2: ${JSON.stringify(socks.map(counts))}`);
      await closeAll();
    });

    it("routes by interest: nodes without subscribers receive none of a channel's traffic", async () => {
      const channel = fresh('interest');
      const s = await raw(n1);
      assert.equal((await rawSubscribe(n1, s, channel)).event, 'pusher_internal:subscription_succeeded');
      // n2 and n3 are busy with other channels of the same app: a shared per-app (or global) topic would reach them
      const o2 = await raw(n2);
      const o3 = await raw(n3);
      assert.equal((await rawSubscribe(n2, o2, `${channel}-other-2`)).event, 'pusher_internal:subscription_succeeded');
      assert.equal((await rawSubscribe(n3, o3, `${channel}-other-3`)).event, 'pusher_internal:subscription_succeeded');
      const observed = broker.subscribers(topicOf(channel));
      if (observed !== null) assert.equal(observed, 1, 'one subscriber connection (node 1) in the broker');
      const before = await Promise.all(nodes.map((n) => metric(n, 'bus_messages_received_total', 'kind="channel"')));
      for (let i = 0; i < 10; i++) {
        await serverSdk(n2).trigger(channel, 'e', { i });
        await serverSdk(n3).trigger(channel, 'e', { i });
      }
      await until(() => eventsOf(s, channel, 'e').length === 20, 5000, '20 events on n1');
      await sleep(QUIET_MS);
      const afterCounts = await Promise.all(nodes.map((n) => metric(n, 'bus_messages_received_total', 'kind="channel"')));
      assert.ok(afterCounts[0] - before[0] >= 20, `n1 received ${afterCounts[0] - before[0]} channel payloads`);
      assert.equal(afterCounts[1] - before[1], 0, 'n2 received channel traffic without interest');
      assert.equal(afterCounts[2] - before[2], 0, 'n3 received channel traffic without interest');
      assert.equal(eventsOf(s, channel, 'e').length, 20);
      await closeAll();
      if (observed !== null) await until(() => broker.subscribers(topicOf(channel)) === 0, 5000, 'broker subscription dropped');
    });

    it('subscription_succeeded comes after the broker subscription: an immediate remote publish arrives (20 channels)', async () => {
      // Node A reaches the broker through a proxy that delays what it sends by 100 ms, so a success sent
      // before the broker confirmed the subscription would let the publish below overtake it.
      const proxy = setup.name === 'redis-cluster' ? null : await delayingProxy(broker.brokerPort, 100);
      const a = proxy
        ? await startNode({
            config: { app_manager: { array: { apps: [DEMO_APP] } } },
            env: { ...broker.envVia(proxy.port)!, ...HEALTH_ENV, INSTANCE_PROCESS_ID: `${setup.name}-slow` },
            timeoutMs: 15_000,
          })
        : n1;
      if (proxy) extraNodes.push(a);
      try {
        const s = await raw(a);
        const sdk = serverSdk(n2);
        for (let i = 0; i < 20; i++) {
          const channel = fresh('handshake');
          assert.equal((await rawSubscribe(a, s, channel)).event, 'pusher_internal:subscription_succeeded');
          await sdk.trigger(channel, 'now', { i });
          const f = await s.next((x) => x.channel === channel && x.event === 'now', 3000);
          assert.deepEqual(dataOf(f), { i });
        }
        await closeAll();
      } finally {
        if (proxy) {
          await a.stop();
          proxy.close();
        }
      }
    });

    it('a new node delivers cross-node from the start', async () => {
      const channel = fresh('newcomer');
      const s = await raw(n1);
      assert.equal((await rawSubscribe(n1, s, channel)).event, 'pusher_internal:subscription_succeeded');
      const n4 = await startOne('n4');
      extraNodes.push(n4);
      assert.equal((await serverSdk(n4).trigger(channel, 'hello', { from: 4 })).status, 200);
      const f = await s.next((x) => x.channel === channel && x.event === 'hello', 3000);
      assert.deepEqual(dataOf(f), { from: 4 });
      await closeAll();
      await n4.stop();
    });

    it('a frozen peer never hangs an HTTP call', async () => {
      n3.proc.kill('SIGSTOP');
      try {
        const t0 = Date.now();
        const res = await Promise.race([serverSdk(n1).get({ path: '/channels', params: {} }), sleep(6500).then(() => null)]);
        assert.ok(res, 'GET /channels answered');
        assert.equal(res.status, 200);
        console.log(`[${setup.name}] GET /channels with a frozen peer answered in ${Date.now() - t0} ms`);
      } finally {
        n3.proc.kill('SIGCONT');
      }
      // n3 comes back: cross-node delivery to it works again
      const channel = fresh('thawed');
      const s = await raw(n3);
      assert.equal((await rawSubscribe(n3, s, channel)).event, 'pusher_internal:subscription_succeeded');
      await publishUntilReceived(n1, s, channel, 10_000);
      await closeAll();
    });

    it('survives a broker outage: local delivery goes on, cross-node delivery and the cluster view come back', async () => {
      const channel = fresh('presence-outage');
      const local = await raw(n1);
      const remote = await raw(n2);
      assert.equal((await rawSubscribe(n1, local, channel, DEMO_APP, { user_id: 'L' })).event, 'pusher_internal:subscription_succeeded');
      assert.equal((await rawSubscribe(n2, remote, channel, DEMO_APP, { user_id: 'R' })).event, 'pusher_internal:subscription_succeeded');
      // traffic before: both get it
      await serverSdk(n1).trigger(channel, 'before', {});
      await remote.next((f) => f.event === 'before');
      await local.next((f) => f.event === 'before');

      await broker.outageBegin(topicOf(channel));
      const t0 = Date.now();
      // Traffic in the middle of the outage, for longer than the node timeout (2.5 s):
      // the publishing node's own subscriber gets every event, in order.
      for (let i = 0; i < 30; i++) {
        assert.equal((await serverSdk(n1).trigger(channel, 'during', { i })).status, 200);
        await sleep(100);
      }
      await until(() => eventsOf(local, channel, 'during').length === 30, 3000, 'local delivery during the outage');
      assert.deepEqual(
        eventsOf(local, channel, 'during').map((f) => dataOf<{ i: number }>(f).i),
        Array.from({ length: 30 }, (_, i) => i),
      );

      await broker.outageEnd();
      const polled = await publishUntilReceived(n1, remote, channel, 20_000);
      console.log(
        `[${setup.name}] cross-node delivery back ${Date.now() - t0} ms after the outage began (${polled} ms of polling once the broker was back)`,
      );
      // the other direction, then the cluster view: every node lists both members and counts both sockets
      await publishUntilReceived(n2, local, channel, 20_000);
      for (const n of nodes) {
        await until(
          async () =>
            JSON.stringify(
              (await apiGet<{ users: Array<{ id: string }> }>(n, `/channels/${channel}/users`)).users.map((u) => u.id).sort(),
            ) === '["L","R"]',
          15_000,
          `presence healed on ${n.nodeId}`,
        );
        await until(
          async () =>
            (await apiGet<{ subscription_count: number }>(n, `/channels/${channel}`, { info: 'subscription_count' })).subscription_count ===
            2,
          15_000,
          `subscription_count 2 on ${n.nodeId}`,
        );
      }
      console.log(`[${setup.name}] cluster view healed ${Date.now() - t0} ms after the outage began`);
      await closeAll();
    });
  });
}

/** CLUSTER_ADAPTERS=redis,nats runs a subset. */
const only = process.env.CLUSTER_ADAPTERS?.split(',');
for (const setup of [redisSetup, redisClusterSetup, natsSetup]) {
  if (!only || only.includes(setup.name)) clusterSuite(setup);
}
