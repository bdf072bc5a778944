// Client events (client-*): relayed to the other subscribers of a private or
// presence channel, never echoed, and refused with 4301 in every other case.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { DEMO_APP, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
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
  framesOf,
  roundTrip,
} from './helpers/clients.js';

type Frame = RawSocket['frames'][number];

/** An app with client messages off, to check the per-app switch. */
const NO_CLIENT_APP: TestApp = { id: 'noclient-id', key: 'noclient-key', secret: 'noclient-secret', enable_client_messages: false };
/** An app with small limits, to check that the limits come from the app config. */
const SMALL_APP: TestApp = {
  id: 'small-id',
  key: 'small-key',
  secret: 'small-secret',
  enable_client_messages: true,
  max_event_name_length: 20,
  max_event_payload_in_kb: 1,
};

/** Short wait for something that must NOT arrive, used only after a positive control. */
const QUIET_MS = 400;

const isError4301 = (f: Frame) => f.event === 'pusher:error' && dataOf<{ code: number }>(f).code === 4301;

async function socketIdOf(sock: RawSocket): Promise<string> {
  const f =
    sock.frames.find((x) => x.event === 'pusher:connection_established') ??
    (await sock.next((x) => x.event === 'pusher:connection_established'));
  return dataOf<{ socket_id: string }>(f).socket_id;
}

/** Opens a raw socket for an app and subscribes it (signing private/presence auth with the SDK). */
async function rawSubscribed(
  node: ChorusNode,
  channel: string,
  opts: { app?: TestApp; user?: { user_id: string; user_info?: unknown } } = {},
): Promise<RawSocket> {
  const app = opts.app ?? DEMO_APP;
  const sock = await rawSocket(node, `/app/${app.key}?protocol=7&client=js&version=8.4.0`);
  const socketId = await socketIdOf(sock);
  const data: Record<string, unknown> = { channel };
  if (channel.startsWith('private-encrypted-')) {
    // The SDK insists on a master key for encrypted channels; the signature itself is the private one.
    data.auth = `${app.key}:${createHmac('sha256', app.secret).update(`${socketId}:${channel}`).digest('hex')}`;
  } else if (channel.startsWith('private-') || channel.startsWith('presence-')) {
    const signed = serverSdk(node, app).authorizeChannel(socketId, channel, opts.user as never) as {
      auth: string;
      channel_data?: string;
    };
    data.auth = signed.auth;
    if (signed.channel_data !== undefined) data.channel_data = signed.channel_data;
  }
  sock.send({ event: 'pusher:subscribe', data });
  await sock.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
  return sock;
}

/** Every frame of an event seen by a socket so far. */
describe('client events', () => {
  let node: ChorusNode;
  const open: Array<RawSocket | PusherClient> = [];
  const track = <T extends RawSocket | PusherClient>(x: T): T => {
    open.push(x);
    return x;
  };

  before(async () => {
    node = await startNode({ config: { app_manager: { array: { apps: [DEMO_APP, NO_CLIENT_APP, SMALL_APP] } } } });
  });
  after(async () => {
    for (const x of open) {
      if ('disconnect' in x) x.disconnect();
      else x.close();
    }
    await node?.stop();
  });

  it('on a private channel reaches the other subscribers and never the sender (pusher-js)', async () => {
    const sender = track(pusherClient(node));
    const receiver = track(pusherClient(node));
    const third = track(pusherClient(node));
    await Promise.all([connected(sender), connected(receiver), connected(third)]);
    const chSender = sender.subscribe('private-chat');
    const chReceiver = receiver.subscribe('private-chat');
    const chThird = third.subscribe('private-chat');
    await Promise.all([
      waitFor(chSender, 'pusher:subscription_succeeded'),
      waitFor(chReceiver, 'pusher:subscription_succeeded'),
      waitFor(chThird, 'pusher:subscription_succeeded'),
    ]);
    const echoed: unknown[] = [];
    chSender.bind('client-typing', (d: unknown) => echoed.push(d));
    const got = waitFor(chReceiver, 'client-typing');
    const gotThird = waitFor(chThird, 'client-typing');
    assert.equal(chSender.trigger('client-typing', { who: 'sender', n: 1 }), true);
    assert.deepEqual(await got, { who: 'sender', n: 1 });
    assert.deepEqual(await gotThird, { who: 'sender', n: 1 });
    await sleep(QUIET_MS);
    assert.deepEqual(echoed, [], 'the sender must not receive its own client event');
  });

  it('on a private channel the wire frame is relayed as sent, without user_id (raw)', async () => {
    const a = track(await rawSubscribed(node, 'private-wire'));
    const b = track(await rawSubscribed(node, 'private-wire'));
    a.send({ event: 'client-x', channel: 'private-wire', data: { k: [1, 2, 3] } });
    const f = await b.next((x) => x.event === 'client-x');
    assert.deepEqual(f, { event: 'client-x', channel: 'private-wire', data: { k: [1, 2, 3] } });
    // String data stays a string.
    a.send({ event: 'client-y', channel: 'private-wire', data: 'plain text' });
    const g = await b.next((x) => x.event === 'client-y');
    assert.deepEqual(g, { event: 'client-y', channel: 'private-wire', data: 'plain text' });
    await roundTrip(a);
    await sleep(QUIET_MS);
    assert.equal(framesOf(a, 'client-x').length + framesOf(a, 'client-y').length, 0, 'no echo to the sender');
    assert.equal(a.frames.filter(isError4301).length, 0);
  });

  it('on a presence channel carries user_id of the sender, as pusher-js metadata (pusher-js)', async () => {
    const alice = track(pusherClient(node, { user: { user_id: 'alice', user_info: { name: 'Alice' } } }));
    const bob = track(pusherClient(node, { user: { user_id: 'bob' } }));
    await Promise.all([connected(alice), connected(bob)]);
    const chA = alice.subscribe('presence-room');
    const chB = bob.subscribe('presence-room');
    await Promise.all([waitFor(chA, 'pusher:subscription_succeeded'), waitFor(chB, 'pusher:subscription_succeeded')]);
    const echoed: unknown[] = [];
    chA.bind('client-wave', (d: unknown) => echoed.push(d));
    const got = new Promise<{ data: unknown; meta: { user_id?: string } }>((res, rej) => {
      const t = setTimeout(() => rej(new Error('no client-wave on bob')), 5000);
      chB.bind('client-wave', (data: unknown, meta: { user_id?: string }) => {
        clearTimeout(t);
        res({ data, meta });
      });
    });
    chA.trigger('client-wave', { hi: 'bob' });
    const { data, meta } = await got;
    assert.deepEqual(data, { hi: 'bob' });
    assert.equal(meta?.user_id, 'alice');
    await sleep(QUIET_MS);
    assert.deepEqual(echoed, []);
  });

  it('on a presence channel the wire frame has a top-level user_id (raw)', async () => {
    const a = track(await rawSubscribed(node, 'presence-wire', { user: { user_id: 'u-1' } }));
    const b = track(await rawSubscribed(node, 'presence-wire', { user: { user_id: 'u-2' } }));
    // The sender cannot spoof user_id: the server sets it from the subscription.
    a.send({ event: 'client-p', channel: 'presence-wire', data: { n: 7 }, user_id: 'mallory' });
    const f = await b.next((x) => x.event === 'client-p');
    assert.deepEqual(f, { event: 'client-p', channel: 'presence-wire', data: { n: 7 }, user_id: 'u-1' });
    await roundTrip(a);
    await sleep(QUIET_MS);
    assert.equal(framesOf(a, 'client-p').length, 0);
  });

  /**
   * Sends a refused client event from `sender` and checks: one 4301 pusher:error, nothing
   * delivered to `receiver`; then a positive control on `control` proves delivery works.
   */
  async function expectRefused(
    sender: RawSocket,
    frame: Record<string, unknown>,
    receiver: RawSocket,
    control?: { from: RawSocket; channel: string },
  ): Promise<Frame> {
    const errorsBefore = sender.frames.filter(isError4301).length;
    sender.send(frame);
    await until(() => sender.frames.filter(isError4301).length > errorsBefore, 3000, '4301 pusher:error');
    const err = sender.frames.filter(isError4301)[errorsBefore];
    if (control) {
      control.from.send({ event: 'client-control', channel: control.channel, data: { ok: true } });
      await receiver.next((x) => x.event === 'client-control');
    }
    await sleep(QUIET_MS);
    assert.equal(framesOf(receiver, frame.event as string).length, 0, `${String(frame.event)} must not be delivered`);
    assert.equal(sender.frames.filter(isError4301).length, errorsBefore + 1, 'exactly one 4301 error');
    return err;
  }

  it('is refused with 4301 on a public channel', async () => {
    const a = track(await rawSubscribed(node, 'public-room'));
    const b = track(await rawSubscribed(node, 'public-room'));
    const err = await expectRefused(a, { event: 'client-pub', channel: 'public-room', data: {} }, b);
    assert.equal(dataOf<{ code: number }>(err).code, 4301);
    assert.equal(typeof dataOf<{ message: string }>(err).message, 'string');
    // The socket stays open and usable.
    await roundTrip(a);
  });

  it('is refused with 4301 on a private-encrypted- channel (raw socket)', async () => {
    const a = track(await rawSubscribed(node, 'private-encrypted-secret'));
    const b = track(await rawSubscribed(node, 'private-encrypted-secret'));
    await expectRefused(a, { event: 'client-enc', channel: 'private-encrypted-secret', data: { nonce: 'x', ciphertext: 'y' } }, b);
    await roundTrip(a);
  });

  it('is refused with 4301 on a channel the socket did not subscribe', async () => {
    const outsider = track(await rawSubscribed(node, 'private-other'));
    const a = track(await rawSubscribed(node, 'private-members'));
    const b = track(await rawSubscribed(node, 'private-members'));
    await expectRefused(outsider, { event: 'client-sneak', channel: 'private-members', data: {} }, b, {
      from: a,
      channel: 'private-members',
    });
    // A socket that is connected but has no channel at all is refused too.
    const bare = track(await rawSocket(node));
    await socketIdOf(bare);
    await expectRefused(bare, { event: 'client-sneak', channel: 'private-members', data: {} }, b);
  });

  it('is refused with 4301 after unsubscribing', async () => {
    const a = track(await rawSubscribed(node, 'private-leave'));
    const b = track(await rawSubscribed(node, 'private-leave'));
    a.send({ event: 'pusher:unsubscribe', data: { channel: 'private-leave' } });
    await roundTrip(a);
    await expectRefused(a, { event: 'client-after', channel: 'private-leave', data: {} }, b);
  });

  it('is refused with 4301 when the app has enable_client_messages: false', async () => {
    const a = track(await rawSubscribed(node, 'private-quiet', { app: NO_CLIENT_APP }));
    const b = track(await rawSubscribed(node, 'private-quiet', { app: NO_CLIENT_APP }));
    await expectRefused(a, { event: 'client-nope', channel: 'private-quiet', data: {} }, b);
    // Delivery on that app works for server events, so the refusal is about client events only.
    const got = b.next((x) => x.event === 'server-ok');
    const res = await serverSdk(node, NO_CLIENT_APP).trigger('private-quiet', 'server-ok', { ok: 1 });
    assert.equal(res.status, 200);
    assert.deepEqual(dataOf(await got), { ok: 1 });
  });

  it('is refused with 4301 for an event name over max_event_name_length (default 200)', async () => {
    const a = track(await rawSubscribed(node, 'private-names'));
    const b = track(await rawSubscribed(node, 'private-names'));
    const long = 'client-' + 'n'.repeat(194); // 201 characters
    assert.equal(long.length, 201);
    await expectRefused(a, { event: long, channel: 'private-names', data: {} }, b);
    // Exactly 200 characters is accepted.
    const ok = 'client-' + 'n'.repeat(193);
    a.send({ event: ok, channel: 'private-names', data: {} });
    const f = await b.next((x) => x.event === ok);
    assert.equal(f.event.length, 200);
  });

  it('is refused with 4301 for data over max_event_payload_in_kb (default 10)', async () => {
    const a = track(await rawSubscribed(node, 'private-sizes'));
    const b = track(await rawSubscribed(node, 'private-sizes'));
    await expectRefused(a, { event: 'client-big', channel: 'private-sizes', data: 'x'.repeat(10 * 1024 + 1) }, b);
    await expectRefused(a, { event: 'client-bigobj', channel: 'private-sizes', data: { blob: 'y'.repeat(11 * 1024) } }, b);
    // Exactly 10 KB of string data is accepted.
    a.send({ event: 'client-fits', channel: 'private-sizes', data: 'z'.repeat(10 * 1024) });
    const f = await b.next((x) => x.event === 'client-fits');
    assert.equal((f.data as string).length, 10 * 1024);
    // Object data whose JSON is exactly 10 KB is accepted; one byte more is refused.
    const exact = { b: 'w'.repeat(10 * 1024 - 8) };
    assert.equal(JSON.stringify(exact).length, 10 * 1024);
    a.send({ event: 'client-fitsobj', channel: 'private-sizes', data: exact });
    const g = await b.next((x) => x.event === 'client-fitsobj');
    assert.deepEqual(g.data, exact);
    await expectRefused(a, { event: 'client-overobj', channel: 'private-sizes', data: { b: 'w'.repeat(10 * 1024 - 7) } }, b);
  });

  it('takes the name and size limits from the app config', async () => {
    const a = track(await rawSubscribed(node, 'private-small', { app: SMALL_APP }));
    const b = track(await rawSubscribed(node, 'private-small', { app: SMALL_APP }));
    await expectRefused(a, { event: 'client-' + 'a'.repeat(14), channel: 'private-small', data: {} }, b); // 21 chars
    await expectRefused(a, { event: 'client-kb', channel: 'private-small', data: 'q'.repeat(1025) }, b);
    a.send({ event: 'client-' + 'a'.repeat(13), channel: 'private-small', data: 'q'.repeat(1024) });
    const f = await b.next((x) => x.event === 'client-' + 'a'.repeat(13));
    assert.equal((f.data as string).length, 1024);
  });

  it('rate limit: 25 at once from one socket -> at most 10 delivered, 4301 for the rest, still connected', async () => {
    const a = track(await rawSubscribed(node, 'private-burst'));
    const b = track(await rawSubscribed(node, 'private-burst'));
    for (let i = 0; i < 25; i++) a.send({ event: 'client-burst', channel: 'private-burst', data: { i } });
    await roundTrip(a);
    const errors = () => a.frames.filter(isError4301).length;
    const delivered = () => framesOf(b, 'client-burst').length;
    await until(() => delivered() + errors() === 25, 3000, 'every burst event answered or delivered');
    await sleep(QUIET_MS);
    assert.equal(delivered() + errors(), 25, 'each event is either delivered or refused');
    assert.ok(delivered() >= 1 && delivered() <= 10, `delivered ${delivered()} in one second`);
    assert.ok(errors() >= 15, `refused ${errors()}`);
    // Delivered events are the first ones, in order.
    const seen = framesOf(b, 'client-burst').map((f) => (f.data as { i: number }).i);
    assert.deepEqual(seen, [...Array(seen.length).keys()]);
    const err = a.frames.find(isError4301)!;
    assert.equal(err.channel, 'private-burst');
    assert.equal(a.ws.readyState, a.ws.OPEN, 'the socket stays connected');

    // A new second allows more.
    await sleep(1100);
    const errorsBefore = errors();
    for (let i = 0; i < 3; i++) a.send({ event: 'client-later', channel: 'private-burst', data: { i } });
    await until(() => framesOf(b, 'client-later').length === 3, 3000, '3 events in the next second');
    await roundTrip(a);
    assert.equal(errors(), errorsBefore, 'no refusal in the new second');
  });

  it('rate limit is per connection: another socket is not affected by a burst', async () => {
    const a = track(await rawSubscribed(node, 'private-percon'));
    const c = track(await rawSubscribed(node, 'private-percon'));
    const b = track(await rawSubscribed(node, 'private-percon'));
    for (let i = 0; i < 15; i++) a.send({ event: 'client-a', channel: 'private-percon', data: { i } });
    await roundTrip(a);
    for (let i = 0; i < 5; i++) c.send({ event: 'client-c', channel: 'private-percon', data: { i } });
    await until(() => framesOf(b, 'client-c').length === 5, 3000, "c's 5 events");
    await roundTrip(c);
    assert.equal(c.frames.filter(isError4301).length, 0);
    assert.ok(a.frames.filter(isError4301).length >= 5);
  });
});
