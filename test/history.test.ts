// Channel history and recovery on the wire (docs/RECOVERY.md), against real nodes:
// alone (local ring), two nodes on Redis and two on a Redis Cluster (Streams). Raw
// sockets opt in with chorus:recovery as the add-on does; a plain socket must see
// byte-identical frames. The history API is read with the `pusher` SDK and raw
// signed requests, every error path included.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startNats, startRedis, startRedisCluster, type Broker, type RedisCluster } from './helpers/brokers.js';
import { cleanup, rawSocket, serverSdk, sleep, until, type RawSocket } from './helpers/clients.js';
import { startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { signedFetch } from './helpers/signing.js';

const APP: TestApp = {
  id: 'hist-app',
  key: 'hist-key',
  secret: 'hist-secret',
  enable_client_messages: true,
  max_backend_events_per_second: null,
  history: {
    enabled: true,
    channels: ['chat-', 'private-chat-', 'presence-chat-', 'private-encrypted-chat-', 'small-*'],
    max_messages: 50,
    ttl_seconds: 600,
    max_replay_messages: 20,
  },
};
const PATH = `/app/${APP.key}?protocol=7&client=js&version=8.4.0`;

type Frame = RawSocket['frames'][number];

async function publish(
  node: ChorusNode,
  channel: string,
  name: string,
  data: unknown,
  extra: Record<string, unknown> = {},
): Promise<number> {
  const res = await signedFetch(node, {
    app: APP,
    method: 'POST',
    path: `/apps/${APP.id}/events`,
    body: JSON.stringify({ name, channel, data: typeof data === 'string' ? data : JSON.stringify(data), ...extra }),
  });
  return res.status;
}

async function optIn(node: ChorusNode, positions: Record<string, unknown> = {}, previous: string[] = []): Promise<RawSocket> {
  const sock = await rawSocket(node, PATH);
  await sock.next((f) => f.event === 'pusher:connection_established');
  sock.send({ event: 'chorus:recovery', data: { v: 1, positions, previous_socket_ids: previous } });
  await sock.next((f) => f.event === 'pusher_internal:chorus_recovery');
  return sock;
}

async function subscribe(sock: RawSocket, channel: string): Promise<Frame> {
  sock.send({ event: 'pusher:subscribe', data: { channel } });
  await sock.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
  return sock.next(
    (f) => (f.event === 'pusher_internal:chorus_position' || f.event === 'pusher_internal:chorus_recovery_failed') && f.channel === channel,
  );
}

const numbered = (sock: RawSocket, channel: string) =>
  sock.frames
    .filter((f) => f.event === 'pusher_internal:chorus_event' && f.channel === channel)
    .map((f) => f.data as { serial: number; epoch: string; frame: { event: string; data: string } });

const socketIdOf = (sock: RawSocket) => JSON.parse((sock.frames[0].data as string) ?? '{}').socket_id as string;

/** The scenarios every backend must pass; `nodes` are two nodes of one cluster (or one node twice). */
function scenarios(name: string, start: () => Promise<[ChorusNode, ChorusNode]>, stop: () => Promise<void>) {
  describe(`history and recovery: ${name}`, () => {
    let a: ChorusNode;
    let b: ChorusNode;
    before(async () => ([a, b] = await start()));
    after(stop);

    it('a plain subscriber gets byte-identical frames; an opted-in one gets them numbered', async () => {
      const plain = await rawSocket(a, PATH);
      const raw: string[] = [];
      plain.ws.on('message', (m) => raw.push(m.toString()));
      await plain.next((f) => f.event === 'pusher:connection_established');
      plain.send({ event: 'pusher:subscribe', data: { channel: 'chat-bytes' } });
      await plain.next((f) => f.event === 'pusher_internal:subscription_succeeded');
      const opted = await optIn(a);
      const position = await subscribe(opted, 'chat-bytes');
      assert.equal(position.event, 'pusher_internal:chorus_position');
      // No event yet: serial 0, and the epoch where the broker has one before the first (JetStream's stream).
      const start = position.data as { serial: number; epoch: string | null; replayed: number };
      assert.deepEqual({ serial: start.serial, replayed: start.replayed }, { serial: 0, replayed: 0 });
      assert.equal(await publish(b, 'chat-bytes', 'msg', { n: 1 }), 200);
      await plain.next((f) => f.event === 'msg');
      const ev = await opted.next((f) => f.event === 'pusher_internal:chorus_event');
      assert.deepEqual(raw.at(-1), '{"event":"msg","channel":"chat-bytes","data":"{\\"n\\":1}"}');
      const data = ev.data as { serial: number; epoch: string; frame: unknown };
      assert.ok(data.serial >= 1);
      assert.match(data.epoch, /^[A-Za-z0-9_-]+$/);
      assert.deepEqual(data.frame, { event: 'msg', channel: 'chat-bytes', data: '{"n":1}' });
      assert.ok(!plain.frames.some((f) => f.event.startsWith('pusher_internal:chorus')), 'a plain socket saw the extension');
      await cleanup(plain, opted);
    });

    it('resumes after a reconnect to the other node: every event once, in order, then live', async () => {
      const first = await optIn(a);
      await subscribe(first, 'chat-resume');
      for (let i = 1; i <= 3; i++) assert.equal(await publish(b, 'chat-resume', 'e', String(i)), 200);
      await until(() => numbered(first, 'chat-resume').length === 3, 5000);
      const last = numbered(first, 'chat-resume')[2];
      first.close();
      for (let i = 4; i <= 8; i++) assert.equal(await publish(a, 'chat-resume', 'e', String(i)), 200);
      const again = await optIn(b, { 'chat-resume': { serial: last.serial, epoch: last.epoch } });
      const position = await subscribe(again, 'chat-resume');
      assert.equal(position.event, 'pusher_internal:chorus_position', JSON.stringify(position));
      const at = position.data as { serial: number; epoch: string; replayed: number };
      assert.equal(at.epoch, last.epoch);
      assert.equal(at.replayed, 5);
      assert.ok(at.serial > last.serial);
      assert.equal(await publish(a, 'chat-resume', 'e', '9'), 200);
      await until(() => numbered(again, 'chat-resume').length === 6, 5000);
      assert.deepEqual(
        numbered(again, 'chat-resume').map((e) => e.frame.data),
        ['4', '5', '6', '7', '8', '9'],
      );
      await cleanup(again);
    });

    it('splices a replay with publishes landing during it: no gap, no duplicate', async () => {
      const channel = 'chat-splice';
      const first = await optIn(a);
      await subscribe(first, channel);
      assert.equal(await publish(b, channel, 'e', '1'), 200);
      await until(() => numbered(first, channel).length === 1, 5000);
      const mark = numbered(first, channel)[0];
      first.close();
      for (let i = 2; i <= 15; i++) assert.equal(await publish(b, channel, 'e', String(i)), 200);
      let n = 15;
      let publishing = true;
      const publisher = (async () => {
        while (publishing && n < 60) assert.equal(await publish(b, channel, 'e', String(++n)), 200);
      })();
      const again = await optIn(a, { [channel]: { serial: mark.serial, epoch: mark.epoch } });
      await subscribe(again, channel);
      await sleep(100);
      publishing = false;
      await publisher;
      await until(() => numbered(again, channel).length === n - 1, 5000);
      await sleep(100);
      const got = numbered(again, channel).map((e) => Number(e.frame.data));
      assert.deepEqual(
        got,
        Array.from({ length: n - 1 }, (_, i) => i + 2),
      );
      const serials = numbered(again, channel).map((e) => e.serial);
      assert.ok(
        serials.every((s, i) => i === 0 || s > serials[i - 1]),
        `serials not increasing: ${serials.join(',')}`,
      );
      await cleanup(again);
    });

    it('says why a position cannot be served: epoch, trimmed, too far behind, no history', async () => {
      assert.equal(await publish(a, 'chat-fail', 'e', 'x'), 200);
      const wrongEpoch = await optIn(b, { 'chat-fail': { serial: 1, epoch: 'not-this-one' } });
      const f1 = await subscribe(wrongEpoch, 'chat-fail');
      assert.equal(f1.event, 'pusher_internal:chorus_recovery_failed');
      assert.equal((f1.data as { reason: string }).reason, 'epoch_changed');
      assert.ok((f1.data as { serial: number }).serial >= 1, 'the failure names the position now');

      const probe = await optIn(a);
      await subscribe(probe, 'chat-trim');
      for (let i = 1; i <= 60; i++) assert.equal(await publish(a, 'chat-trim', 'e', String(i)), 200);
      await until(() => numbered(probe, 'chat-trim').length === 60, 5000);
      const epoch = numbered(probe, 'chat-trim')[0].epoch;
      const s = numbered(probe, 'chat-trim').map((e) => e.serial);
      const trimmed = await optIn(b, { 'chat-trim': { serial: s[1], epoch } });
      const f2 = await subscribe(trimmed, 'chat-trim');
      assert.equal((f2.data as { reason: string }).reason, 'trimmed', JSON.stringify(f2));
      const behind = await optIn(b, { 'chat-trim': { serial: s[29], epoch } });
      const f3 = await subscribe(behind, 'chat-trim');
      assert.equal((f3.data as { reason: string }).reason, 'too_far_behind', JSON.stringify(f3));
      const ok = await optIn(b, { 'chat-trim': { serial: s[44], epoch } });
      const f4 = await subscribe(ok, 'chat-trim');
      assert.deepEqual(f4.data, { serial: s[59], epoch, replayed: 15 });
      const ahead = await optIn(b, { 'chat-trim': { serial: s[59] + 1000, epoch } });
      assert.equal(((await subscribe(ahead, 'chat-trim')).data as { reason: string }).reason, 'epoch_changed');

      const none = await optIn(a, { 'news-plain': { serial: 3, epoch: 'abc' } });
      none.send({ event: 'pusher:subscribe', data: { channel: 'news-plain' } });
      const f5 = await none.next((f) => f.event === 'pusher_internal:chorus_recovery_failed');
      assert.equal((f5.data as { reason: string }).reason, 'no_history');
      await cleanup(wrongEpoch, probe, trimmed, behind, ok, ahead, none);
    });

    it('numbers client events; the sender does not get its own back on a resume', async () => {
      const channel = 'private-chat-ce';
      const sdk = serverSdk(a, APP);
      const auth = (sock: RawSocket) => sdk.authorizeChannel(socketIdOf(sock), channel).auth;
      const sender = await optIn(a);
      sender.send({ event: 'pusher:subscribe', data: { channel, auth: auth(sender) } });
      const p0 = await sender.next((f) => f.event === 'pusher_internal:chorus_position');
      const receiver = await optIn(b);
      receiver.send({ event: 'pusher:subscribe', data: { channel, auth: auth(receiver) } });
      await receiver.next((f) => f.event === 'pusher_internal:chorus_position');
      sender.send({ event: 'client-typing', channel, data: { who: 'me' } });
      const got = await receiver.next((f) => f.event === 'pusher_internal:chorus_event');
      assert.equal((got.data as { frame: { event: string } }).frame.event, 'client-typing');
      const senderId = socketIdOf(sender);
      sender.close();
      const back = await optIn(a, { [channel]: p0.data }, [senderId]);
      back.send({ event: 'pusher:subscribe', data: { channel, auth: auth(back) } });
      const resumed = await back.next((f) => f.event === 'pusher_internal:chorus_position');
      assert.equal((resumed.data as { replayed: number }).replayed, 0, 'its own client event was replayed to the sender');
      assert.equal((resumed.data as { serial: number }).serial, (got.data as { serial: number }).serial);
      await cleanup(receiver, back);
    });

    it('presence and encrypted channels: members as usual, events numbered and resumed, auth checked', async () => {
      const presence = 'presence-chat-room';
      const sdk = serverSdk(a, APP);
      const join = (sock: RawSocket, user: string) =>
        sock.send({
          event: 'pusher:subscribe',
          data: { channel: presence, ...sdk.authorizeChannel(socketIdOf(sock), presence, { user_id: user, user_info: { n: user } }) },
        });
      const ann = await optIn(a);
      join(ann, 'ann');
      const p0 = await ann.next((f) => f.event === 'pusher_internal:chorus_position');
      const bob = await optIn(b);
      join(bob, 'bob');
      await bob.next((f) => f.event === 'pusher_internal:chorus_position');
      const added = await ann.next((f) => f.event === 'pusher_internal:member_added');
      assert.equal((JSON.parse(added.data as string) as { user_id: string }).user_id, 'bob');
      bob.send({ event: 'client-hi', channel: presence, data: { x: 1 } });
      const hi = await ann.next((f) => f.event === 'pusher_internal:chorus_event');
      // a client event's frame as every subscriber gets it: the data as the client sent it, user_id added
      assert.deepEqual((hi.data as { frame: unknown }).frame, { event: 'client-hi', channel: presence, data: { x: 1 }, user_id: 'bob' });
      const kept = await signedFetch(a, { app: APP, path: `/apps/${APP.id}/channels/${presence}/history` });
      const item = (kept.json.items as Array<{ message: { data: string; user_id: string } }>)[0];
      assert.deepEqual([item.message.data, item.message.user_id], ['{"x":1}', 'bob']);
      const annId = socketIdOf(ann);
      ann.close();
      assert.equal(await publish(b, presence, 'e', 'while-away'), 200);
      const back = await optIn(a, { [presence]: p0.data }, [annId]);
      // a forged signature is refused as on any subscribe: no replay without auth
      back.send({
        event: 'pusher:subscribe',
        data: { channel: presence, auth: `${APP.key}:${'0'.repeat(64)}`, channel_data: '{"user_id":"ann"}' },
      });
      await back.next((f) => f.event === 'pusher:subscription_error');
      assert.ok(!back.frames.some((f) => f.event === 'pusher_internal:chorus_event'));
      join(back, 'ann');
      const resumed = await back.next((f) => f.event === 'pusher_internal:chorus_position');
      assert.equal((resumed.data as { replayed: number }).replayed, 2, JSON.stringify(back.frames));
      assert.deepEqual(
        numbered(back, presence).map((e) => e.frame.event),
        ['client-hi', 'e'],
      );

      const encrypted = 'private-encrypted-chat-x';
      const box = await optIn(a);
      const sealer = serverSdk(a, APP, { encryptionMasterKeyBase64: Buffer.alloc(32, 7).toString('base64') });
      box.send({ event: 'pusher:subscribe', data: { channel: encrypted, ...sealer.authorizeChannel(socketIdOf(box), encrypted) } });
      await box.next((f) => f.event === 'pusher_internal:chorus_position');
      const cipher = JSON.stringify({ nonce: 'bm9uY2U=', ciphertext: 'Y2lwaGVy' });
      assert.equal(await publish(b, encrypted, 'secret', cipher), 200);
      const sealed = await box.next((f) => f.event === 'pusher_internal:chorus_event');
      assert.equal((sealed.data as { frame: { data: string } }).frame.data, cipher, 'the ciphertext travels as published');
      await cleanup(bob, back, box);
    });

    it('refuses a malformed chorus:recovery and changes nothing', async () => {
      const sock = await rawSocket(a, PATH);
      await sock.next((f) => f.event === 'pusher:connection_established');
      for (const data of [
        'nope',
        { v: 2 },
        { v: 1, positions: [] },
        { v: 1, positions: { 'chat-x': { serial: -1, epoch: 'a' } } },
        { v: 1, positions: { 'chat-x': { serial: 1, epoch: 'bad epoch' } } },
        { v: 1, positions: { 'bad name!': { serial: 1, epoch: 'a' } } },
        { v: 1, previous_socket_ids: ['x'] },
      ]) {
        sock.send({ event: 'chorus:recovery', data });
        const err = await sock.next((f) => f.event === 'pusher:error');
        assert.match(String((err.data as { message: string }).message), /Invalid chorus:recovery/);
      }
      sock.send({ event: 'pusher:subscribe', data: { channel: 'chat-malformed' } });
      await sock.next((f) => f.event === 'pusher_internal:subscription_succeeded');
      assert.equal(await publish(a, 'chat-malformed', 'e', 'x'), 200);
      await sock.next((f) => f.event === 'e');
      await cleanup(sock);
    });

    it('serves the history API with the SDK and raw signed requests', async () => {
      const channel = 'chat-api';
      for (let i = 1; i <= 12; i++) assert.equal(await publish(a, channel, 'e', String(i)), 200);
      const res = await serverSdk(b, APP).get({ path: `/channels/${channel}/history`, params: { limit: 5 } });
      const page = (await res.json()) as {
        items: Array<{ serial: number; event_name: string; message: { data: string }; published_at_ms: number }>;
        has_more: boolean;
        next_cursor: string | null;
        direction: string;
      };
      assert.equal(page.direction, 'newest_first');
      assert.deepEqual(
        page.items.map((i) => i.message.data),
        ['12', '11', '10', '9', '8'],
      );
      assert.equal(page.items[0].event_name, 'e');
      assert.ok(page.items[0].published_at_ms > Date.now() - 60_000);
      assert.equal(page.has_more, true);
      const get = (params: Record<string, string>, node = a) =>
        signedFetch(node, { app: APP, path: `/apps/${APP.id}/channels/${channel}/history`, params });
      const next = await get({ limit: '5', cursor: page.next_cursor! });
      assert.deepEqual(
        (next.json.items as Array<{ message: { data: string } }>).map((i) => i.message.data),
        ['7', '6', '5', '4', '3'],
      );
      const lastPage = await get({ limit: '5', cursor: next.json.next_cursor });
      assert.deepEqual(
        (lastPage.json.items as Array<{ message: { data: string } }>).map((i) => i.message.data),
        ['2', '1'],
      );
      assert.equal(lastPage.json.has_more, false);
      assert.equal(lastPage.json.next_cursor, null);
      const all = await get({ direction: 'oldest_first', limit: '12' }, b);
      const serials = (all.json.items as Array<{ serial: number }>).map((i) => i.serial);
      assert.equal(serials.length, 12);
      const oldest = await get({ direction: 'oldest_first', start_serial: String(serials[2]), end_serial: String(serials[5]) }, b);
      assert.deepEqual(
        (oldest.json.items as Array<{ message: { data: string } }>).map((i) => i.message.data),
        ['3', '4', '5', '6'],
      );
      for (const params of <Array<Record<string, string>>>[
        { limit: '0' },
        { limit: '1001' },
        { limit: 'ten' },
        { direction: 'sideways' },
        { cursor: 'garbage' },
        { cursor: page.next_cursor!, direction: 'oldest_first' },
        { start_serial: String(serials[8]), end_serial: String(serials[1]) },
        { start_serial: '-1' },
      ]) {
        const bad = await get(params);
        assert.equal(bad.status, 400, `${JSON.stringify(params)}: ${bad.text}`);
        assert.equal(bad.json.code, 'invalid_input');
      }
      const none = await signedFetch(a, { app: APP, path: `/apps/${APP.id}/channels/news-plain/history` });
      assert.equal(none.status, 404);
      assert.equal(typeof none.json.error, 'string');
      const forged = await signedFetch(a, { app: APP, secret: 'wrong', path: `/apps/${APP.id}/channels/${channel}/history` });
      assert.equal(forged.status, 401);
      const unknown = await signedFetch(a, { app: { ...APP, id: 'nobody' }, path: `/apps/nobody/channels/${channel}/history` });
      assert.equal(unknown.status, 404);
    });
  });
}

const appConfig = { app_manager: { array: { apps: [APP] } } };

let single: ChorusNode | undefined;
scenarios(
  'one node (local)',
  async () => {
    single = await startNode({ config: appConfig });
    return [single, single];
  },
  async () => void (await single?.stop()),
);

let redis: Broker | undefined;
let redisNodes: ChorusNode[] = [];
scenarios(
  'two nodes on Redis',
  async () => {
    redis = await startRedis();
    const env = { ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(redis.port) };
    redisNodes = await Promise.all([startNode({ config: appConfig, env }), startNode({ config: appConfig, env })]);
    return [redisNodes[0], redisNodes[1]];
  },
  async () => {
    await Promise.all(redisNodes.map((n) => n.stop()));
    await redis?.stop();
  },
);

let cluster: RedisCluster | undefined;
let clusterNodes: ChorusNode[] = [];
scenarios(
  'two nodes on a Redis Cluster',
  async () => {
    cluster = await startRedisCluster();
    const env = { ADAPTER_DRIVER: 'redis-cluster', REDIS_CLUSTER_NODES: cluster.seeds };
    clusterNodes = await Promise.all([startNode({ config: appConfig, env }), startNode({ config: appConfig, env })]);
    return [clusterNodes[0], clusterNodes[1]];
  },
  async () => {
    await Promise.all(clusterNodes.map((n) => n.stop()));
    await cluster?.stop();
  },
);

let nats: Broker | undefined;
let natsNodes: ChorusNode[] = [];
scenarios(
  'two nodes on NATS with JetStream',
  async () => {
    nats = await startNats();
    const env = { ADAPTER_DRIVER: 'nats', NATS_SERVERS: `nats://127.0.0.1:${nats.port}` };
    natsNodes = await Promise.all([startNode({ config: appConfig, env }), startNode({ config: appConfig, env })]);
    return [natsNodes[0], natsNodes[1]];
  },
  async () => {
    await Promise.all(natsNodes.map((n) => n.stop()));
    await nats?.stop();
  },
);

describe('history without a broker that keeps logs', () => {
  it('refuses the config on NATS without JetStream (exit 2, naming the apps)', async () => {
    const plain = await startNats([], { jetstream: false });
    try {
      await assert.rejects(
        startNode({ config: appConfig, env: { ADAPTER_DRIVER: 'nats', NATS_SERVERS: `nats://127.0.0.1:${plain.port}` } }),
        (err: Error) => {
          assert.match(err.message, /exited with 2/);
          assert.match(err.message, /hist-app set history\.enabled.*JetStream/);
          return true;
        },
      );
    } finally {
      await plain.stop();
    }
  });
});
