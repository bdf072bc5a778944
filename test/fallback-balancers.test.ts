// Issue 19 through the project's nginx and HAProxy configs: three nodes on redis, pusher-js
// forced onto each HTTP transport through each balancer, a WebSocket client on the other
// node. A session's requests stick to its node (ip_hash / balance source); a request for
// a session a node does not hold opens a new one, which pusher-js answers by starting
// over; a node killed under a session is survived the same way.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haproxyStatus, startBalancers, type Balancers } from './helpers/balancers.js';
import { startRedis, type Broker } from './helpers/brokers.js';
import { DEMO_APP, startNode, type ChorusNode } from './helpers/node.js';
import { connected, pusherClient, serverSdk, until, waitFor, type PusherClient } from './helpers/clients.js';
import { call, fallbackClient, parseLines, Q, sessionBase, transportOf, type FallbackTransport } from './helpers/fallback.js';

const NODE_ENV = {
  ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: '500',
  ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: '3000',
  ADAPTER_CLUSTER_HEALTH_CLEANUP_INTERVAL_MS: '500',
  CHORUS_TEST_LOG_LEVEL: 'warn',
};

/** Fallback sessions a node holds, from its connections_by_transport gauge. */
function sessionsOn(node: ChorusNode): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port: node.metricsPort!, path: '/metrics', timeout: 3000 }, (r) => {
      let body = '';
      r.on('data', (c) => (body += c));
      r.on('end', () => {
        let n = 0;
        for (const m of body.matchAll(/connections_by_transport\{app_id="[^"]*",transport="xhr_[a-z]+"\} (\d+)/g)) n += Number(m[1]);
        resolve(n);
      });
    }).on('error', reject);
  });
}

describe('HTTP fallbacks through nginx and HAProxy (3 nodes on redis)', () => {
  let redis: Broker;
  const nodes: ChorusNode[] = [];
  let lbs: Balancers;
  const dir = mkdtempSync(join(tmpdir(), 'chorus-fallback-lb-'));
  const clients: PusherClient[] = [];
  const track = (c: PusherClient) => (clients.push(c), c);

  const nodeOptions = (port = 0) => ({
    config: {
      port,
      app_manager: { array: { apps: [DEMO_APP] } },
      shutdown_grace_period: 3,
      http_fallback: { disconnect_delay_seconds: 2 },
    },
    env: { ...NODE_ENV, ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(redis.port) },
  });

  before(async () => {
    redis = await startRedis();
    nodes.push(...(await Promise.all([0, 1, 2].map(() => startNode(nodeOptions())))));
    lbs = await startBalancers(
      dir,
      nodes.map((n) => n.port),
    );
    await until(
      async () => [...(await haproxyStatus(lbs.statsPort)).values()].filter((s) => s === 'UP').length === 3,
      10_000,
      'HAProxy sees 3 nodes UP',
    );
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await lbs?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // Streaming through one balancer, polling through the other; the drain and SIGKILL tests below
  // run all four pairs.
  const cases: Array<[() => number, string, FallbackTransport]> = [
    [() => lbs.nginx.port, 'nginx', 'xhr_streaming'],
    [() => lbs.haproxy.port, 'haproxy', 'xhr_polling'],
  ];

  for (const [portOf, lb, transport] of cases) {
    it(`${transport} through ${lb}: presence with a WebSocket client on each node, events published on either, client events both ways`, async () => {
      const user = `fb-${lb}-${transport}`;
      const fb = track(fallbackClient(portOf(), transport, { user: { user_id: user } }));
      await connected(fb, 10_000);
      assert.equal(transportOf(fb), transport);
      const room = `presence-${lb}-${transport}`;
      const fbRoom = fb.subscribe(room);
      await waitFor(fbRoom, 'pusher:subscription_succeeded', 8000);
      // A WebSocket member on each node, so the session's node is one of them and the others are remote.
      const others = nodes.map((n, i) => track(pusherClient(n, { user: { user_id: `ws-${i}` } })));
      const seen: string[] = [];
      fbRoom.bind('pusher:member_added', (m: { id: string }) => seen.push(m.id));
      const otherRooms = await Promise.all(
        others.map(async (c) => {
          await connected(c);
          const ch = c.subscribe(room);
          const members = await waitFor<{ each(cb: (m: { id: string }) => void): void }>(ch, 'pusher:subscription_succeeded');
          const ids: string[] = [];
          members.each((m) => ids.push(m.id));
          assert.ok(ids.includes(user), `the fallback member is seen from every node: ${ids.join()}`);
          return ch;
        }),
      );
      await until(() => seen.length === nodes.length, 5000, 'member_added for every WebSocket member');

      for (const n of nodes) {
        const got = waitFor<{ via: number }>(fbRoom, 'published', 8000);
        await serverSdk(n).trigger(room, 'published', { via: n.port });
        assert.deepEqual(await got, { via: n.port });
      }
      const atBoth = otherRooms.map((ch) => waitFor<{ from: string }>(ch, 'client-hello', 8000));
      fbRoom.trigger('client-hello', { from: user });
      assert.deepEqual(
        await Promise.all(atBoth),
        nodes.map(() => ({ from: user })),
      );
      const back = waitFor<{ from: string }>(fbRoom, 'client-hello', 8000);
      otherRooms[1].trigger('client-hello', { from: 'ws-1' });
      assert.deepEqual(await back, { from: 'ws-1' });

      const left = waitFor<{ id: string }>(otherRooms[0], 'pusher:member_removed', 8000);
      fb.disconnect();
      assert.equal((await left).id, user);
      for (const c of others) c.disconnect();
    });
  }

  it('a request for a session another node holds opens a new session there: pusher-js would start over', async () => {
    const base = sessionBase('5/elsewhere');
    const opened = parseLines((await call(nodes[0].port, `${base}/xhr${Q}`)).body);
    assert.equal(opened.frames[0].event, 'pusher:connection_established');
    // The same id on the other node: `o` again, which pusher-js (already open) turns into a
    // 1006 "Server lost session" close and a fresh connection.
    const elsewhere = parseLines((await call(nodes[1].port, `${base}/xhr${Q}`)).body);
    assert.deepEqual(elsewhere.kinds.slice(0, 1), ['o']);
    assert.notEqual(elsewhere.frames[0].data, opened.frames[0].data, 'a different socket id');
    assert.equal((await call(nodes[1].port, `${sessionBase('5/never')}/xhr_send`, '[]')).status, 404);
  });

  /** Fallback clients through both balancers on both transports, subscribed to `channel`. */
  async function clientsOn(channel: string) {
    const fbs = (['nginx', 'haproxy'] as const).flatMap((lb) =>
      (['xhr_streaming', 'xhr_polling'] as const).map((t) => track(fallbackClient(lbs[lb].port, t))),
    );
    await Promise.all(fbs.map((c) => connected(c, 10_000)));
    const channels = fbs.map((c) => c.subscribe(channel));
    await Promise.all(channels.map((ch) => waitFor(ch, 'pusher:subscription_succeeded', 8000)));
    return { fbs, channels };
  }

  /** Publishes on `via` until every channel got an event (bounded); which ones did. */
  async function everyoneReceives(via: ChorusNode, channel: string, channels: Array<{ bind(e: string, cb: () => void): unknown }>) {
    const got = channels.map(() => false);
    channels.forEach((ch, i) => ch.bind('alive', () => (got[i] = true)));
    const deadline = Date.now() + 30_000;
    while (got.includes(false) && Date.now() < deadline) {
      await serverSdk(via).trigger(channel, 'alive', {});
      await new Promise((r) => setTimeout(r, 500));
    }
    return got;
  }

  /**
   * The live node holding the most fallback sessions. Nodes leave for good (no restart on the
   * same port): nginx counts a node it failed to reach out until a request to it succeeds, and
   * with every client on one address no request would.
   */
  const live = () => nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);
  async function busiest(): Promise<{ node: ChorusNode; counts: number[] }> {
    const candidates = live();
    const counts = await Promise.all(candidates.map(sessionsOn));
    const at = counts.indexOf(Math.max(...counts));
    return { node: candidates[at], counts };
  }

  it('drain (SIGTERM) of the node holding sessions: pusher-js gets 4200, moves through the balancer, receives again', async () => {
    const { fbs, channels } = await clientsOn('after-drain');
    const { node: drained, counts } = await busiest();
    assert.ok(Math.max(...counts) > 0, `sessions per node: ${counts.join()}`);
    const codes: number[] = [];
    for (const c of fbs) c.connection.bind('error', (e: { data?: { code?: number } }) => e.data?.code && codes.push(e.data.code));
    assert.equal(await drained.stop(), 0, 'the drained node exits cleanly');
    const got = await everyoneReceives(live()[0], 'after-drain', channels);
    assert.deepEqual(got, [true, true, true, true], `clients that received after the drain (${fbs.map(transportOf).join()})`);
    assert.ok(codes.includes(4200), `the drained node's clients were told 4200: ${codes.join()}`);
    for (const c of fbs) c.disconnect();
  });

  it('SIGKILL of the node holding streaming and polling sessions: pusher-js reconnects through the balancer and receives again', async () => {
    const { fbs, channels } = await clientsOn('after-kill');
    const { node: victim, counts } = await busiest();
    assert.ok(Math.max(...counts) > 0, `sessions per node: ${counts.join()}`);
    await victim.kill();
    // Every client (moved or not) receives an event published after the kill.
    const got = await everyoneReceives(live()[0], 'after-kill', channels);
    assert.deepEqual(got, [true, true, true, true], `clients that received after the kill (${fbs.map(transportOf).join()})`);
  });
});
