// Cluster health with three real nodes over each horizontal adapter (redis,
// nats, redis-cluster): a peer SIGKILLed, SIGTERMed (drain + bye) or frozen
// (SIGSTOP past the node timeout, then SIGCONT). Checked from outside with
// pusher-js and raw sockets on the survivors, the HTTP API, the metrics port
// and a real webhook receiver that must see each cluster-wide webhook once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startNats, startRedis, startRedisCluster } from './helpers/brokers.js';
import { startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { dataOf, pusherClient, rawSocket, serverSdk, sleep, waitFor, type PusherClient, type RawSocket, until } from './helpers/clients.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

/** Short wait for something that must NOT arrive, used only after a positive control. */
const QUIET_MS = 500;

const HEARTBEAT_MS = 200;
const NODE_TIMEOUT_MS = 1500;
const CLEANUP_MS = 200;
/** Loose bound for a dead peer's members to disappear from the survivors' clients. */
const LOSS_BOUND_MS = NODE_TIMEOUT_MS + CLEANUP_MS + 2000;

const healthEnv = (nodeTimeoutMs: number) => ({
  ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
  ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: String(nodeTimeoutMs),
  ADAPTER_CLUSTER_HEALTH_CLEANUP_INTERVAL_MS: String(CLEANUP_MS),
});

const APP: TestApp = { id: 'health-app', key: 'health-key', secret: 'health-secret' };

interface AdapterSetup {
  name: string;
  start(): Promise<{ env: Record<string, string>; stop(): Promise<void> }>;
}

const setups: AdapterSetup[] = [
  {
    name: 'redis',
    async start() {
      const b = await startRedis();
      return {
        env: { ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(b.port) },
        stop: () => b.stop(),
      };
    },
  },
  {
    name: 'nats',
    async start() {
      const b = await startNats();
      return { env: { ADAPTER_DRIVER: 'nats', NATS_SERVERS: `nats://127.0.0.1:${b.port}` }, stop: () => b.stop() };
    },
  },
  {
    name: 'redis-cluster',
    async start() {
      const c = await startRedisCluster();
      return { env: { ADAPTER_DRIVER: 'redis-cluster', REDIS_CLUSTER_NODES: c.seeds }, stop: () => c.stop() };
    },
  },
];

// helpers

let seq = 0;
const fresh = (base: string) => `${base}-${++seq}-${Date.now().toString(36)}`;

async function socketIdOf(sock: RawSocket): Promise<string> {
  const f =
    sock.frames.find((x) => x.event === 'pusher:connection_established') ??
    (await sock.next((x) => x.event === 'pusher:connection_established'));
  return dataOf<{ socket_id: string }>(f).socket_id;
}

async function rawSubscribe(node: ChorusNode, sock: RawSocket, channel: string, presence?: { user_id: string }): Promise<void> {
  const data: Record<string, unknown> = { channel };
  if (channel.startsWith('presence-')) {
    Object.assign(data, serverSdk(node, APP).authorizeChannel(await socketIdOf(sock), channel, presence as never));
  }
  sock.send({ event: 'pusher:subscribe', data });
  const answer = await sock.next(
    (f) => f.channel === channel && (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error'),
  );
  assert.equal(answer.event, 'pusher_internal:subscription_succeeded', JSON.stringify(answer));
}

async function apiGet<T>(node: ChorusNode, path: string, params: Record<string, string> = {}): Promise<T> {
  const res = await serverSdk(node, APP).get({ path, params });
  assert.equal(res.status, 200, `GET ${path}`);
  return (await res.json()) as T;
}

const usersOn = async (node: ChorusNode, channel: string): Promise<string[]> =>
  (await apiGet<{ users: Array<{ id: string }> }>(node, `/channels/${channel}/users`)).users.map((u) => u.id).sort();

const userCountOn = async (node: ChorusNode, channel: string): Promise<number> =>
  (await apiGet<{ user_count: number }>(node, `/channels/${channel}`, { info: 'user_count' })).user_count;

async function clusterView(
  node: ChorusNode,
): Promise<{ node_id: string; members: Array<{ nodeId: string; self: boolean; ready: boolean }> }> {
  const res = await fetch(`http://127.0.0.1:${node.metricsPort}/cluster`);
  assert.equal(res.status, 200);
  return (await res.json()) as { node_id: string; members: Array<{ nodeId: string; self: boolean; ready: boolean }> };
}

async function clusterNodesGauge(node: ChorusNode): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('chorus_cluster_nodes '));
  assert.ok(line, 'chorus_cluster_nodes is exported');
  return Number(line.split(' ')[1]);
}

/** Every node's /cluster lists exactly these nodes. */
async function clusterIs(nodes: ChorusNode[], timeoutMs = 10_000): Promise<void> {
  const want = nodes.map((n) => n.nodeId).sort();
  await until(
    async () => {
      // Every member ready in every view: until then ownership of channels is still moving
      // between nodes, and a test that counts webhooks from the first socket would race it.
      for (const n of nodes) {
        const members = (await clusterView(n)).members;
        const ids = members.map((m) => m.nodeId).sort();
        if (JSON.stringify(ids) !== JSON.stringify(want) || !members.every((m) => m.ready)) return false;
      }
      return true;
    },
    timeoutMs,
    `cluster of ${nodes.length}`,
  );
}

/** A pusher-js presence observer recording member events with their arrival time. */
interface Observer {
  client: PusherClient;
  seen: Array<{ kind: 'added' | 'removed'; channel: string; user: string; at: number }>;
  members(channel: string): string[];
}

async function observe(node: ChorusNode, user: string, channels: string[]): Promise<Observer> {
  const client = pusherClient(node, { app: APP, user: { user_id: user } });
  const seen: Observer['seen'] = [];
  const subs = channels.map((channel) => {
    const ch = client.subscribe(channel);
    ch.bind('pusher:member_added', (m: { id: string }) => seen.push({ kind: 'added', channel, user: m.id, at: Date.now() }));
    ch.bind('pusher:member_removed', (m: { id: string }) => seen.push({ kind: 'removed', channel, user: m.id, at: Date.now() }));
    return waitFor(ch, 'pusher:subscription_succeeded', 10_000);
  });
  await Promise.all(subs);
  return {
    client,
    seen,
    members: (channel) => {
      const ids: string[] = [];
      (client.channel(channel) as unknown as { members: { each(cb: (m: { id: string }) => void): void } }).members.each((m) =>
        ids.push(m.id),
      );
      return ids.sort();
    },
  };
}

const seenOf = (o: Observer, kind: 'added' | 'removed', channel: string, user: string) =>
  o.seen.filter((s) => s.kind === kind && s.channel === channel && s.user === user);

/** Raw member frames of one kind for one user on one channel. */
const memberFrames = (sock: RawSocket, kind: 'added' | 'removed', channel: string, user: string) =>
  sock.frames.filter(
    (f) => f.channel === channel && f.event === `pusher_internal:member_${kind}` && dataOf<{ user_id: string }>(f).user_id === user,
  );

// the shared suite

function healthSuite(setup: AdapterSetup): void {
  describe(`cluster health over ${setup.name}`, () => {
    let broker: { env: Record<string, string>; stop(): Promise<void> };
    let rx: WebhookReceiver;
    const started: ChorusNode[] = [];
    const open: Array<RawSocket | PusherClient> = [];
    const track = <T extends RawSocket | PusherClient>(x: T): T => (open.push(x), x);

    const raw = async (node: ChorusNode) => {
      const sock = track(await rawSocket(node, `/app/${APP.key}?protocol=7&client=js&version=8.4.0`));
      await socketIdOf(sock);
      return sock;
    };
    /** Each trio gets its own topic and key prefixes, so a trio left running cannot join the next. */
    const startTrio = async (nodeTimeoutMs: number): Promise<ChorusNode[]> => {
      const prefix = `health${++seq}`;
      const prefixes = { ADAPTER_REDIS_PREFIX: prefix, ADAPTER_NATS_PREFIX: prefix, DATABASE_REDIS_KEY_PREFIX: `${prefix}:` };
      const nodes = await Promise.all(
        ['a', 'b', 'c'].map((id) =>
          startNode({
            config: {
              // Each node posts to its own path: a failure can say which node reported an edge.
              app_manager: {
                array: {
                  apps: [{ ...APP, webhooks: (APP.webhooks as Array<{ url: string }>).map((w) => ({ ...w, url: `${w.url}/${id}` })) }],
                },
              },
              webhooks: { batching: { enabled: false }, vacated_delay_ms: 0 },
            },
            env: { ...broker.env, ...healthEnv(nodeTimeoutMs), ...prefixes, INSTANCE_PROCESS_ID: `${setup.name}-${id}-${++seq}` },
            timeoutMs: 15_000,
          }).then((n) => (started.push(n), n)),
        ),
      );
      await clusterIs(nodes);
      return nodes;
    };
    const hooks = (name: string, channel: string, user?: string) =>
      rx.events(name).filter((e) => e.channel === channel && (user === undefined || e.user_id === user));

    before(async () => {
      broker = await setup.start();
      APP.webhooks = [];
      rx = await startWebhookReceiver([APP]);
      APP.webhooks = [{ url: `${rx.url}/hooks`, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }];
    });

    after(async () => {
      for (const x of open.splice(0)) {
        if ('disconnect' in x) x.disconnect();
        else x.close();
      }
      for (const n of started) n.proc.kill('SIGCONT');
      await Promise.all(started.map((n) => n.stop()));
      await rx?.stop();
      await broker?.stop();
    });

    /**
     * The victim (c) holds: u1 and u2 on p1, u1 on p2, `both` on p1 (also on a),
     * the only subscriber of `solo`, and one of two subscribers of `shared` (other on a).
     * a and b have pusher-js observers on p1 and p2 and a raw observer on p1 (on a).
     */
    async function populate(nodes: ChorusNode[]) {
      const [a, b, c] = nodes;
      const ch = { p1: fresh('presence-p1'), p2: fresh('presence-p2'), solo: fresh('solo'), shared: fresh('shared') };
      const onC = { u1: await raw(c), u2: await raw(c), both: await raw(c), pub: await raw(c) };
      await rawSubscribe(c, onC.u1, ch.p1, { user_id: 'u1' });
      await rawSubscribe(c, onC.u1, ch.p2, { user_id: 'u1' });
      await rawSubscribe(c, onC.u2, ch.p1, { user_id: 'u2' });
      await rawSubscribe(c, onC.both, ch.p1, { user_id: 'both' });
      await rawSubscribe(c, onC.pub, ch.solo);
      await rawSubscribe(c, onC.pub, ch.shared);
      const bothOnA = await raw(a);
      await rawSubscribe(a, bothOnA, ch.p1, { user_id: 'both' });
      const sharedOnA = await raw(a);
      await rawSubscribe(a, sharedOnA, ch.shared);
      // Replicated presence reached the survivors before their observers join.
      for (const n of [a, b]) {
        await until(
          async () => (await usersOn(n, ch.p1)).join() === 'both,u1,u2' && (await usersOn(n, ch.p2)).join() === 'u1',
          5000,
          'replicated presence',
        );
      }
      const obsA = await observe(a, 'obs-a', [ch.p1, ch.p2]);
      const obsB = await observe(b, 'obs-b', [ch.p1, ch.p2]);
      track(obsA.client);
      track(obsB.client);
      const rawObs = await raw(a);
      await rawSubscribe(a, rawObs, ch.p1, { user_id: 'obs-raw' });
      for (const o of [obsA, obsB])
        assert.ok(
          ['both', 'u1', 'u2'].every((u) => o.members(ch.p1).includes(u)),
          JSON.stringify(o.members(ch.p1)),
        );
      await rx.waitFor(
        () =>
          ['u1', 'u2', 'both'].every((u) => hooks('member_added', ch.p1, u).length === 1) &&
          hooks('member_added', ch.p2, 'u1').length === 1 &&
          [ch.p1, ch.p2, ch.solo, ch.shared].every((c2) => hooks('channel_occupied', c2).length === 1),
        5000,
      );
      return { ch, onC, bothOnA, sharedOnA, obsA, obsB, rawObs };
    }

    /** The lost users (u1, u2 on p1; u1 on p2) are reported removed to every survivor's clients, `both` is not. */
    async function lossSeen(w: Awaited<ReturnType<typeof populate>>, t0: number, boundMs: number): Promise<number> {
      const { ch, obsA, obsB, rawObs } = w;
      const lost: Array<[string, string]> = [
        [ch.p1, 'u1'],
        [ch.p1, 'u2'],
        [ch.p2, 'u1'],
      ];
      await until(
        () => [obsA, obsB].every((o) => lost.every(([c, u]) => seenOf(o, 'removed', c, u).length === 1)),
        boundMs + 3000,
        'member_removed on the survivors',
      );
      const latest = Math.max(...[obsA, obsB].flatMap((o) => lost.map(([c, u]) => seenOf(o, 'removed', c, u)[0].at))) - t0;
      await until(
        () => memberFrames(rawObs, 'removed', ch.p1, 'u2').length === 1 && memberFrames(rawObs, 'removed', ch.p1, 'u1').length === 1,
        3000,
        'raw member_removed',
      );
      return latest;
    }

    async function survivorsAgree(survivors: ChorusNode[], ch: Record<string, string>) {
      for (const n of survivors) {
        await until(async () => (await usersOn(n, ch.p1)).join() === 'both,obs-a,obs-b,obs-raw', 3000, `users of p1 on ${n.nodeId}`);
        assert.deepEqual(await usersOn(n, ch.p2), ['obs-a', 'obs-b']);
        assert.equal(await userCountOn(n, ch.p1), 4);
        assert.equal(await userCountOn(n, ch.p2), 2);
      }
    }

    let trio: ChorusNode[] = [];

    it('/cluster lists the three live members and chorus_cluster_nodes is 3', async () => {
      trio = await startTrio(NODE_TIMEOUT_MS);
      for (const n of trio) {
        const view = await clusterView(n);
        assert.equal(view.node_id, n.nodeId);
        assert.equal(view.members.length, 3);
        assert.equal(
          view.members
            .filter((m) => m.self)
            .map((m) => m.nodeId)
            .join(),
          n.nodeId,
        );
        assert.equal(await clusterNodesGauge(n), 3);
      }
    });

    it('three nodes give one channel_occupied and one channel_vacated per channel lifetime', async () => {
      const [a, b, c] = trio;
      const sequential = fresh('seq');
      const socks = [await raw(a), await raw(b), await raw(c)];
      for (const [i, n] of [a, b, c].entries()) await rawSubscribe(n, socks[i], sequential);
      for (const s of socks) s.send({ event: 'pusher:unsubscribe', data: { channel: sequential } });
      await rx.waitFor(() => hooks('channel_vacated', sequential).length >= 1, 5000);
      // Concurrent joins and leaves on all three: the replicated interest still gives one edge each way.
      const concurrent = fresh('conc');
      await Promise.all([a, b, c].map((n, i) => rawSubscribe(n, socks[i], concurrent)));
      await Promise.all(socks.map(async (s) => s.send({ event: 'pusher:unsubscribe', data: { channel: concurrent } })));
      await rx.waitFor(() => hooks('channel_vacated', concurrent).length >= 1, 5000);
      // Second lifetime of the first channel.
      await rawSubscribe(b, socks[1], sequential);
      await rawSubscribe(c, socks[2], sequential);
      socks[1].send({ event: 'pusher:unsubscribe', data: { channel: sequential } });
      socks[2].send({ event: 'pusher:unsubscribe', data: { channel: sequential } });
      await rx.waitFor(() => hooks('channel_vacated', sequential).length >= 2, 5000);
      await sleep(QUIET_MS);
      const reported = rx.deliveries
        .filter((d) => d.status === 200 && d.body)
        .flatMap((d) => d.body!.events.map((e) => `${e.name} ${e.channel} by ${d.path} at ${d.body!.time_ms}`))
        .filter((line) => line.includes(sequential) || line.includes(concurrent));
      assert.equal(hooks('channel_occupied', sequential).length, 2, reported.join('\n'));
      assert.equal(hooks('channel_vacated', sequential).length, 2, reported.join('\n'));
      const concurrentOrder = rx
        .events()
        .filter((e) => e.channel === concurrent)
        .map((e) => e.name);
      assert.deepEqual(concurrentOrder, ['channel_occupied', 'channel_vacated'], 'no phantom vacated/occupied pair');
      assert.equal(hooks('channel_vacated', concurrent).length, 1);
      // Webhook requests are not ordered with each other (two may be in flight): order by time_ms.
      const order = rx.deliveries
        .filter((d) => d.status === 200 && d.body)
        .flatMap((d) => d.body!.events.map((e) => ({ e, at: d.body!.time_ms })))
        .filter(({ e }) => e.channel === sequential)
        .sort((x, y) => x.at - y.at)
        .map(({ e }) => e.name);
      assert.deepEqual(order, ['channel_occupied', 'channel_vacated', 'channel_occupied', 'channel_vacated']);
    });

    it("SIGKILL: survivors drop the dead node's members and exactly one survivor sends the webhooks", async () => {
      const [a, b, c] = trio;
      const w = await populate(trio);
      const { ch } = w;
      const t0 = Date.now();
      await c.kill();
      const latest = await lossSeen(w, t0, LOSS_BOUND_MS);
      console.log(`# [${setup.name}] SIGKILL: member_removed on every survivor's clients after ${latest} ms (bound ${LOSS_BOUND_MS} ms)`);
      assert.ok(latest < LOSS_BOUND_MS, `member_removed after ${latest} ms`);
      // `both` still has a socket on a: not removed.
      for (const o of [w.obsA, w.obsB]) assert.equal(seenOf(o, 'removed', ch.p1, 'both').length, 0);
      await survivorsAgree([a, b], ch);
      await rx.waitFor(
        () =>
          hooks('member_removed', ch.p1, 'u1').length >= 1 &&
          hooks('member_removed', ch.p1, 'u2').length >= 1 &&
          hooks('member_removed', ch.p2, 'u1').length >= 1 &&
          hooks('channel_vacated', ch.solo).length >= 1,
        5000,
      );
      console.log(`# [${setup.name}] SIGKILL: webhooks complete after ${Date.now() - t0} ms`);
      await sleep(1000);
      assert.equal(hooks('member_removed', ch.p1, 'u1').length, 1);
      assert.equal(hooks('member_removed', ch.p1, 'u2').length, 1);
      assert.equal(hooks('member_removed', ch.p2, 'u1').length, 1);
      assert.equal(hooks('member_removed', ch.p1, 'both').length, 0);
      assert.equal(hooks('channel_vacated', ch.solo).length, 1);
      for (const still of [ch.p1, ch.p2, ch.shared])
        assert.equal(hooks('channel_vacated', still).length, 0, `no channel_vacated for ${still}`);
      // Exact frame counts on a raw client: one member_removed per lost user, none for `both`.
      assert.equal(memberFrames(w.rawObs, 'removed', ch.p1, 'u1').length, 1);
      assert.equal(memberFrames(w.rawObs, 'removed', ch.p1, 'u2').length, 1);
      assert.equal(memberFrames(w.rawObs, 'removed', ch.p1, 'both').length, 0);
      // The shared channel still works across the survivors.
      const sdk = serverSdk(b, APP);
      await sdk.trigger(ch.shared, 'still-here', { ok: true });
      await w.sharedOnA.next((f) => f.event === 'still-here' && f.channel === ch.shared);
    });

    it('after the kill /cluster lists two members and chorus_cluster_nodes is 2', async () => {
      const [a, b] = trio;
      await clusterIs([a, b]);
      for (const n of [a, b]) assert.equal(await clusterNodesGauge(n), 2);
      await Promise.all(trio.map((n) => n.stop()));
    });

    it("SIGTERM: the drained node's members are removed well before the node timeout", async () => {
      const BIG_TIMEOUT = 10_000;
      const nodes = await startTrio(BIG_TIMEOUT);
      const [a, b, c] = nodes;
      const w = await populate(nodes);
      const { ch } = w;
      const t0 = Date.now();
      const exited = c.stop('SIGTERM');
      const latest = await lossSeen(w, t0, BIG_TIMEOUT - 3000);
      console.log(
        `# [${setup.name}] SIGTERM: member_removed on every survivor's clients after ${latest} ms (node timeout ${BIG_TIMEOUT} ms)`,
      );
      assert.ok(latest < BIG_TIMEOUT / 2, `member_removed after ${latest} ms`);
      assert.equal(await exited, 0);
      assert.equal((await w.onC.u1.closed).code, 4200);
      await survivorsAgree([a, b], ch);
      await clusterIs([a, b], 3000);
      await rx.waitFor(
        () =>
          hooks('member_removed', ch.p1, 'u1').length >= 1 &&
          hooks('member_removed', ch.p1, 'u2').length >= 1 &&
          hooks('member_removed', ch.p2, 'u1').length >= 1 &&
          hooks('channel_vacated', ch.solo).length >= 1,
        5000,
      );
      await sleep(1000);
      assert.equal(hooks('member_removed', ch.p1, 'u1').length, 1);
      assert.equal(hooks('member_removed', ch.p1, 'u2').length, 1);
      assert.equal(hooks('member_removed', ch.p2, 'u1').length, 1);
      assert.equal(hooks('member_removed', ch.p1, 'both').length, 0);
      assert.equal(hooks('channel_vacated', ch.solo).length, 1);
      for (const still of [ch.p1, ch.p2, ch.shared])
        assert.equal(hooks('channel_vacated', still).length, 0, `no channel_vacated for ${still}`);
      for (const o of [w.obsA, w.obsB]) assert.equal(seenOf(o, 'removed', ch.p1, 'both').length, 0);
      await Promise.all([a, b].map((n) => n.stop()));
    });

    it('SIGSTOP past the timeout then SIGCONT: members leave, then come back without a restart', async () => {
      const nodes = await startTrio(NODE_TIMEOUT_MS);
      const [a, b, c] = nodes;
      const w = await populate(nodes);
      const { ch } = w;
      const t0 = Date.now();
      c.proc.kill('SIGSTOP');
      const latest = await lossSeen(w, t0, LOSS_BOUND_MS);
      console.log(`# [${setup.name}] SIGSTOP: member_removed on every survivor's clients after ${latest} ms`);
      await survivorsAgree([a, b], ch);
      await rx.waitFor(() => hooks('member_removed', ch.p1, 'u2').length === 1 && hooks('channel_vacated', ch.solo).length === 1, 5000);
      const t1 = Date.now();
      c.proc.kill('SIGCONT');
      const back: Array<[string, string]> = [
        [ch.p1, 'u1'],
        [ch.p1, 'u2'],
        [ch.p2, 'u1'],
      ];
      await until(
        () => [w.obsA, w.obsB].every((o) => back.every(([c2, u]) => seenOf(o, 'added', c2, u).length === 1)),
        10_000,
        'member_added after SIGCONT',
      );
      console.log(`# [${setup.name}] SIGCONT: member_added on every survivor's clients after ${Date.now() - t1} ms`);
      for (const n of [a, b, c]) {
        await until(
          async () => (await usersOn(n, ch.p1)).join() === 'both,obs-a,obs-b,obs-raw,u1,u2',
          5000,
          `p1 users back on ${n.nodeId}`,
        );
        assert.deepEqual(await usersOn(n, ch.p2), ['obs-a', 'obs-b', 'u1']);
        assert.equal(await userCountOn(n, ch.p1), 6);
      }
      await clusterIs([a, b, c], 5000);
      for (const n of [a, b, c]) assert.equal(await clusterNodesGauge(n), 3);
      // Webhooks: the claim winner reports the returned users once; the solo channel is occupied again once.
      await rx.waitFor(
        () =>
          hooks('member_added', ch.p1, 'u1').length >= 2 &&
          hooks('member_added', ch.p1, 'u2').length >= 2 &&
          hooks('member_added', ch.p2, 'u1').length >= 2 &&
          hooks('channel_occupied', ch.solo).length >= 2,
        5000,
      );
      await sleep(1000);
      for (const [c2, u] of back) {
        assert.equal(hooks('member_removed', c2, u).length, 1, `member_removed ${u} on ${c2}`);
        assert.equal(hooks('member_added', c2, u).length, 2, `member_added ${u} on ${c2}`);
      }
      assert.equal(hooks('channel_vacated', ch.solo).length, 1);
      assert.equal(hooks('channel_occupied', ch.solo).length, 2);
      // Nobody on the healthy majority left: no webhooks about them, and the revived node's
      // sockets see no member_removed for them.
      assert.equal(c.logs.filter((l) => l.includes('cluster peer lost')).length, 0, 'the resumed node declared nobody dead');
      for (const u of ['obs-a', 'obs-b', 'obs-raw']) {
        assert.equal(hooks('member_removed', ch.p1, u).length, 0, `no member_removed webhook for ${u}`);
        assert.equal(memberFrames(w.onC.u2, 'removed', ch.p1, u).length, 0, `c's client saw no member_removed for ${u}`);
      }
      for (const still of [ch.p1, ch.p2, ch.shared])
        assert.equal(hooks('channel_vacated', still).length, 0, `no channel_vacated for ${still}`);
      // The revived node still serves: an event published on a reaches its socket.
      await serverSdk(a, APP).trigger(ch.solo, 'revived', { ok: true });
      await w.onC.pub.next((f) => f.event === 'revived' && f.channel === ch.solo);
      await Promise.all(nodes.map((n) => n.stop()));
    });
  });
}

for (const setup of setups) healthSuite(setup);
