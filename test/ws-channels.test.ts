// Channel semantics seen from the WebSocket side: every channel type, signatures,
// presence membership and limits, channel names, cache channels, subscription counts
// and socket exclusion. One node for the whole file; every test uses its own channels.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type PusherServer from 'pusher';
import { DEMO_APP, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import {
  cleanup,
  connected,
  dataOf,
  Pusher,
  pusherClient,
  rawSocket,
  serverSdk,
  sleep,
  waitFor,
  type PusherClient,
  type RawSocket,
} from './helpers/clients.js';

type Frame = RawSocket['frames'][number];

const LIMITS_APP: TestApp = {
  id: 'limits-id',
  key: 'limits-key',
  secret: 'limits-secret',
  max_presence_members_per_channel: 2,
  max_channel_name_length: 164,
};
const COUNT_APP: TestApp = { id: 'count-id', key: 'count-key', secret: 'count-secret', enable_subscription_count: true };

/** Short fixed wait for events that must NOT arrive, always after a positive control. */
const QUIET_MS = 400;
const MASTER_KEY = randomBytes(32).toString('base64');

let node: ChorusNode;
const open: Array<RawSocket | PusherClient> = [];

before(async () => {
  node = await startNode({ config: { app_manager: { array: { apps: [DEMO_APP, LIMITS_APP, COUNT_APP] } } } });
});
after(async () => {
  await cleanup(...open);
  await cleanup(node);
});

/** The SDK with an encryption master key, for private-encrypted- channels. */
const encryptingSdk = (app: TestApp = DEMO_APP): PusherServer => serverSdk(node, app, { encryptionMasterKeyBase64: MASTER_KEY });

function track<T extends RawSocket | PusherClient>(x: T): T {
  open.push(x);
  return x;
}

interface Raw {
  sock: RawSocket;
  socketId: string;
  app: TestApp;
}

async function raw(app: TestApp = DEMO_APP): Promise<Raw> {
  const sock = track(await rawSocket(node, `/app/${app.key}?protocol=7&client=js&version=8.6.0`));
  const established = await sock.next((f) => f.event === 'pusher:connection_established');
  return { sock, socketId: dataOf<{ socket_id: string }>(established).socket_id, app };
}

const isOutcome = (channel: string) => (f: Frame) =>
  f.channel === channel && (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error');

/** Sends pusher:subscribe as pusher-js does and resolves its outcome (succeeded or subscription_error). */
function subscribe(r: Raw, channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  r.sock.send({ event: 'pusher:subscribe', data: { auth: '', channel, ...extra } });
  return r.sock.next(isOutcome(channel));
}

/** Subscribes with a correct SDK signature (presence: with the given member). */
function subscribeSigned(r: Raw, channel: string, member?: { user_id: unknown; user_info?: unknown }): Promise<Frame> {
  const sdk = channel.startsWith('private-encrypted-') ? encryptingSdk(r.app) : serverSdk(node, r.app);
  const auth = sdk.authorizeChannel(r.socketId, channel, member as never);
  return subscribe(r, channel, { auth: auth.auth, ...(auth.channel_data ? { channel_data: auth.channel_data } : {}) });
}

function assertSucceeded(f: Frame, channel: string): void {
  assert.equal(f.event, 'pusher_internal:subscription_succeeded', JSON.stringify(f));
  assert.equal(f.channel, channel);
}

function assertRefused(f: Frame, channel: string, status: number): void {
  assert.equal(f.event, 'pusher:subscription_error', JSON.stringify(f));
  assert.equal(f.channel, channel);
  const data = dataOf<{ type: string; error: string; status: number }>(f);
  assert.equal(data.status, status, JSON.stringify(data));
  assert.equal(typeof data.type, 'string');
  assert.equal(typeof data.error, 'string');
}

type PresenceData = { presence: { ids: string[]; hash: Record<string, unknown>; count: number } };

/** Round trip on the socket: every frame it sent before has been processed by the server. */
async function barrier(r: Raw): Promise<void> {
  r.sock.send({ event: 'pusher:ping', data: {} });
  await r.sock.next((f) => f.event === 'pusher:pong');
}

const eventsNamed = (r: Raw, event: string, channel?: string) =>
  r.sock.frames.filter((f) => f.event === event && (channel === undefined || f.channel === channel));

async function pusherSubscribed(client: PusherClient, channel: string) {
  await connected(client);
  const ch = client.subscribe(channel);
  await waitFor(ch, 'pusher:subscription_succeeded');
  return ch;
}

describe('ws channels: every channel type subscribes and receives events', () => {
  it('public channel (pusher-js)', async () => {
    const client = track(pusherClient(node));
    const ch = await pusherSubscribed(client, 'type-public');
    const got = waitFor(ch, 'ev');
    await serverSdk(node).trigger('type-public', 'ev', { kind: 'public', n: [1, 2] });
    assert.deepEqual(await got, { kind: 'public', n: [1, 2] });
  });

  it('public channel subscription_succeeded carries no presence payload (raw)', async () => {
    const r = await raw();
    const f = await subscribe(r, 'type-public-raw');
    assertSucceeded(f, 'type-public-raw');
    assert.deepEqual(f.data === undefined || f.data === '' ? {} : dataOf(f), {});
  });

  it('private- channel (pusher-js, signed by the SDK)', async () => {
    const client = track(pusherClient(node));
    const ch = await pusherSubscribed(client, 'private-type');
    const got = waitFor(ch, 'ev');
    await serverSdk(node).trigger('private-type', 'ev', { kind: 'private' });
    assert.deepEqual(await got, { kind: 'private' });
  });

  it('presence- channel (pusher-js)', async () => {
    const client = track(pusherClient(node, { user: { user_id: 'type-alice', user_info: { name: 'Alice' } } }));
    await connected(client);
    const ch = client.subscribe('presence-type');
    const members = await waitFor<{ count: number; me: { id: string; info: unknown } }>(ch, 'pusher:subscription_succeeded');
    assert.equal(members.count, 1);
    assert.deepEqual(members.me, { id: 'type-alice', info: { name: 'Alice' } });
    const got = waitFor(ch, 'ev');
    await serverSdk(node).trigger('presence-type', 'ev', { kind: 'presence' });
    assert.deepEqual(await got, { kind: 'presence' });
  });

  it('private-encrypted- channel: pusher-js decrypts, the server relays only {nonce, ciphertext}', async () => {
    const sdk = encryptingSdk();
    const client = track(
      new Pusher(DEMO_APP.key, {
        wsHost: '127.0.0.1',
        wsPort: node.port,
        forceTLS: false,
        enabledTransports: ['ws'],
        disableStats: true,
        cluster: 'mt1',
        channelAuthorization: {
          customHandler: (p: { socketId: string; channelName: string }, cb: (e: Error | null, d: unknown) => void) =>
            cb(null, sdk.authorizeChannel(p.socketId, p.channelName)),
        } as never,
      }),
    );
    const ch = await pusherSubscribed(client, 'private-encrypted-type');
    const r = await raw();
    assertSucceeded(await subscribeSigned(r, 'private-encrypted-type'), 'private-encrypted-type');

    const got = waitFor(ch, 'sealed');
    const res = await sdk.trigger('private-encrypted-type', 'sealed', { secret: 'only-for-subscribers' });
    assert.equal(res.status, 200);
    assert.deepEqual(await got, { secret: 'only-for-subscribers' });

    const f = await r.sock.next((x) => x.event === 'sealed');
    assert.equal(f.channel, 'private-encrypted-type');
    assert.equal(typeof f.data, 'string', 'encrypted payload is a JSON string');
    const payload = dataOf<Record<string, string>>(f);
    assert.deepEqual(Object.keys(payload).sort(), ['ciphertext', 'nonce']);
    assert.equal(Buffer.from(payload.nonce, 'base64').length, 24);
    assert.ok(!String(f.data).includes('only-for-subscribers'), 'the server never sees or adds plaintext');
  });

  it('private-encrypted- channel needs a signature like private- (raw, no auth → 401)', async () => {
    const r = await raw();
    assertRefused(await subscribe(r, 'private-encrypted-nosig'), 'private-encrypted-nosig', 401);
  });

  it('cache- channel (pusher-js) receives live events', async () => {
    const client = track(pusherClient(node));
    const ch = await pusherSubscribed(client, 'cache-type-live');
    const got = waitFor(ch, 'ev');
    await serverSdk(node).trigger('cache-type-live', 'ev', { kind: 'cache' });
    assert.deepEqual(await got, { kind: 'cache' });
  });
});

describe('ws channels: bad signatures', () => {
  const zeros = '0'.repeat(64);

  it('private-: every wrong auth gets subscription_error 401 and no subscription', async () => {
    const channel = 'private-guarded';
    const r = await raw();
    const other = await raw();
    const sdk = serverSdk(node);
    const good = sdk.authorizeChannel(r.socketId, channel).auth;
    const badAuths: unknown[] = [
      `app-key:${zeros}`,
      '', // what pusher-js sends for public channels
      'app-key', // no signature part
      `other-key:${good.split(':')[1]}`, // correct HMAC, wrong key
      sdk.authorizeChannel(other.socketId, channel).auth, // signed for another socket
      sdk.authorizeChannel(r.socketId, 'private-elsewhere').auth, // signed for another channel
      good.toUpperCase(), // hex case matters
      42,
    ];
    for (const auth of badAuths) {
      r.sock.send({ event: 'pusher:subscribe', data: { channel, auth } });
      assertRefused(await r.sock.next(isOutcome(channel)), channel, 401);
    }
    r.sock.send({ event: 'pusher:subscribe', data: { channel } }); // no auth at all
    assertRefused(await r.sock.next(isOutcome(channel)), channel, 401);

    // Positive control: a properly signed subscriber gets the event; the refused socket does not.
    const control = track(pusherClient(node));
    const ch = await pusherSubscribed(control, channel);
    const got = waitFor(ch, 'leak');
    await sdk.trigger(channel, 'leak', { n: 1 });
    assert.deepEqual(await got, { n: 1 });
    await sleep(QUIET_MS);
    assert.equal(eventsNamed(r, 'leak').length, 0, 'a refused socket received a private event');
    // Client events from the refused socket are rejected as well (it is not subscribed).
    r.sock.send({ event: 'client-sneak', channel, data: {} });
    assert.equal((await r.sock.next((f) => f.event === 'pusher:error')).event, 'pusher:error');
  });

  it('presence-: a wrong signature or tampered channel_data gets 401, and the socket is not a member', async () => {
    const channel = 'presence-guarded';
    const r = await raw();
    const sdk = serverSdk(node);
    const channelData = JSON.stringify({ user_id: 'mallory' });
    // Wrong signature.
    assertRefused(await subscribe(r, channel, { auth: `app-key:${zeros}`, channel_data: channelData }), channel, 401);
    // Signed for one member, sent with another.
    const signed = sdk.authorizeChannel(r.socketId, channel, { user_id: 'mallory' });
    const tampered = JSON.stringify({ user_id: 'admin' });
    assertRefused(await subscribe(r, channel, { auth: signed.auth, channel_data: tampered }), channel, 401);
    // A private-style signature without channel_data.
    const privateStyle = sdk.authorizeChannel(r.socketId, channel).auth;
    assertRefused(await subscribe(r, channel, { auth: privateStyle }), channel, 401);

    const control = track(pusherClient(node, { user: { user_id: 'control' } }));
    await connected(control);
    const ch = control.subscribe(channel);
    const members = await waitFor<{ count: number }>(ch, 'pusher:subscription_succeeded');
    assert.equal(members.count, 1, 'the refused socket must not be a member');
    const got = waitFor(ch, 'leak');
    await sdk.trigger(channel, 'leak', { n: 2 });
    assert.deepEqual(await got, { n: 2 });
    await sleep(QUIET_MS);
    assert.equal(eventsNamed(r, 'leak').length, 0);
  });
});

describe('ws channels: presence membership', () => {
  it('subscription_succeeded lists ids/hash/count; member_added once per user; member_removed on the last socket', async () => {
    const channel = 'presence-room';
    const sdk = serverSdk(node);
    const a = await raw();
    const fa = await subscribeSigned(a, channel, { user_id: 'u1', user_info: { name: 'A' } });
    assertSucceeded(fa, channel);
    assert.deepEqual(dataOf<PresenceData>(fa), { presence: { ids: ['u1'], hash: { u1: { name: 'A' } }, count: 1 } });

    const b = await raw();
    const fb = await subscribeSigned(b, channel, { user_id: 'u2', user_info: { name: 'B' } });
    assertSucceeded(fb, channel);
    const pb = dataOf<PresenceData>(fb).presence;
    assert.equal(pb.count, 2);
    assert.deepEqual([...pb.ids].sort(), ['u1', 'u2']);
    assert.deepEqual(pb.hash, { u1: { name: 'A' }, u2: { name: 'B' } });

    const added = await a.sock.next((f) => f.event === 'pusher_internal:member_added');
    assert.equal(added.channel, channel);
    assert.deepEqual(dataOf(added), { user_id: 'u2', user_info: { name: 'B' } });

    // A second socket of u2: the same member, so no member_added anywhere.
    const b2 = await raw();
    const fb2 = await subscribeSigned(b2, channel, { user_id: 'u2', user_info: { name: 'B' } });
    assertSucceeded(fb2, channel);
    const pb2 = dataOf<PresenceData>(fb2).presence;
    assert.equal(pb2.count, 2);
    assert.deepEqual([...pb2.ids].sort(), ['u1', 'u2']);
    await sdk.trigger(channel, 'tick', {});
    const afterB2 = await a.sock.next((f) => f.event === 'pusher_internal:member_added' || f.event === 'tick');
    assert.equal(afterB2.event, 'tick', 'a second socket of the same user must not add a member');
    await b.sock.next((f) => f.event === 'tick');
    assert.equal(eventsNamed(b, 'pusher_internal:member_added').length, 0, "no member_added for one's own second socket");

    // u2 closes one socket: still a member.
    b.sock.close();
    await b.sock.closed;
    await barrier(a);
    await sdk.trigger(channel, 'tock', {});
    const afterB = await a.sock.next((f) => f.event === 'pusher_internal:member_removed' || f.event === 'tock');
    assert.equal(afterB.event, 'tock', "member_removed before the user's last socket left");
    const users = await sdk.get({ path: `/channels/${channel}/users` });
    assert.equal(users.status, 200);
    const body = (await users.json()) as { users: Array<{ id: string }> };
    assert.deepEqual(body.users.map((u) => u.id).sort(), ['u1', 'u2']);

    // u2's last socket leaves (by unsubscribing): exactly one member_removed.
    b2.sock.send({ event: 'pusher:unsubscribe', data: { channel } });
    const removed = await a.sock.next((f) => f.event === 'pusher_internal:member_removed');
    assert.equal(removed.channel, channel);
    assert.deepEqual(dataOf(removed), { user_id: 'u2' });
    await sdk.trigger(channel, 'tack', {});
    await a.sock.next((f) => f.event === 'tack');
    assert.equal(eventsNamed(a, 'pusher_internal:member_removed').length, 1);
    assert.equal(eventsNamed(a, 'pusher_internal:member_added').length, 1);
  });

  it('pusher-js sees member_added / member_removed and a consistent members list', async () => {
    const channel = 'presence-js';
    const alice = track(pusherClient(node, { user: { user_id: 'alice', user_info: { role: 'host' } } }));
    const bob = track(pusherClient(node, { user: { user_id: 'bob', user_info: { role: 'guest' } } }));
    await connected(alice);
    const chA = alice.subscribe(channel) as ReturnType<PusherClient['subscribe']> & { members: { count: number } };
    await waitFor(chA, 'pusher:subscription_succeeded');
    const added = waitFor<{ id: string; info: unknown }>(chA, 'pusher:member_added');
    await connected(bob);
    const chB = bob.subscribe(channel) as typeof chA;
    const membersB = await waitFor<{ count: number; each(cb: (m: { id: string }) => void): void }>(chB, 'pusher:subscription_succeeded');
    const ids: string[] = [];
    membersB.each((m) => ids.push(m.id));
    assert.deepEqual(ids.sort(), ['alice', 'bob']);
    assert.deepEqual(await added, { id: 'bob', info: { role: 'guest' } });
    assert.equal(chA.members.count, 2);
    const removed = waitFor<{ id: string }>(chA, 'pusher:member_removed');
    bob.disconnect();
    assert.equal((await removed).id, 'bob');
    assert.equal(chA.members.count, 1);
  });

  it('a numeric user_id is accepted and reported as a string', async () => {
    const channel = 'presence-numeric';
    const watcher = await raw();
    assertSucceeded(await subscribeSigned(watcher, channel, { user_id: 'watcher' }), channel);
    const num = await raw();
    const f = await subscribeSigned(num, channel, { user_id: 42, user_info: { n: 1 } });
    assertSucceeded(f, channel);
    const p = dataOf<PresenceData>(f).presence;
    assert.deepEqual([...p.ids].sort(), ['42', 'watcher']);
    assert.deepEqual(p.hash['42'], { n: 1 });
    const added = await watcher.sock.next((x) => x.event === 'pusher_internal:member_added');
    assert.deepEqual(dataOf(added), { user_id: '42', user_info: { n: 1 } });
    // The string "42" is the same member.
    const same = await raw();
    const fs = await subscribeSigned(same, channel, { user_id: '42', user_info: { n: 1 } });
    assertSucceeded(fs, channel);
    assert.equal(dataOf<PresenceData>(fs).presence.count, 2);
    await serverSdk(node).trigger(channel, 'probe', {});
    const next = await watcher.sock.next((x) => x.event === 'pusher_internal:member_added' || x.event === 'probe');
    assert.equal(next.event, 'probe', 'user_id 42 and "42" are one member');
  });

  it('refuses user_info over max_presence_member_size_in_kb (1 KB) and accepts a smaller one', async () => {
    const channel = 'presence-size';
    const r = await raw();
    assertRefused(await subscribeSigned(r, channel, { user_id: 'big', user_info: { blob: 'x'.repeat(1100) } }), channel, 400);
    const f = await subscribeSigned(r, channel, { user_id: 'small', user_info: { blob: 'x'.repeat(900) } });
    assertSucceeded(f, channel);
    assert.deepEqual(dataOf<PresenceData>(f).presence.ids, ['small']);
  });

  it('refuses a user_id longer than 128 characters and accepts exactly 128', async () => {
    const channel = 'presence-idlen';
    const r = await raw();
    assertRefused(await subscribeSigned(r, channel, { user_id: 'u'.repeat(129) }), channel, 400);
    const f = await subscribeSigned(r, channel, { user_id: 'u'.repeat(128) });
    assertSucceeded(f, channel);
    assert.deepEqual(dataOf<PresenceData>(f).presence.ids, ['u'.repeat(128)]);
  });

  it('refuses channel_data without a usable user_id', async () => {
    const channel = 'presence-noid';
    const r = await raw();
    for (const member of [{ user_info: {} }, { user_id: '' }, { user_id: null }, { user_id: { nested: 1 } }]) {
      const f = await subscribeSigned(r, channel, member as never);
      assert.equal(f.event, 'pusher:subscription_error', JSON.stringify(member));
      assert.equal(dataOf<{ status: number }>(f).status, 400);
    }
  });

  it('max_presence_members_per_channel 2: the 3rd distinct user is refused, another socket of a member is not', async () => {
    const channel = 'presence-full';
    const u1 = await raw(LIMITS_APP);
    const u2 = await raw(LIMITS_APP);
    const u3 = await raw(LIMITS_APP);
    const u1b = await raw(LIMITS_APP);
    assertSucceeded(await subscribeSigned(u1, channel, { user_id: 'one' }), channel);
    assertSucceeded(await subscribeSigned(u2, channel, { user_id: 'two' }), channel);
    assertRefused(await subscribeSigned(u3, channel, { user_id: 'three' }), channel, 403);
    const again = await subscribeSigned(u1b, channel, { user_id: 'one' });
    assertSucceeded(again, channel);
    assert.equal(dataOf<PresenceData>(again).presence.count, 2);
    // When a member leaves, a new user fits again.
    u2.sock.send({ event: 'pusher:unsubscribe', data: { channel } });
    await u1.sock.next((f) => f.event === 'pusher_internal:member_removed');
    const now = await subscribeSigned(u3, channel, { user_id: 'three' });
    assertSucceeded(now, channel);
    assert.deepEqual([...dataOf<PresenceData>(now).presence.ids].sort(), ['one', 'three']);
    // The limit is per app: the demo app (default 100) takes a third user on a same-named channel.
    const d = [await raw(), await raw(), await raw()];
    for (const [i, r] of d.entries()) assertSucceeded(await subscribeSigned(r, channel, { user_id: `d${i}` }), channel);
  });
});

describe('ws channels: channel names and unsubscribe', () => {
  it('refuses names with invalid characters or empty names with subscription_error 400', async () => {
    const r = await raw();
    for (const name of ['has space', 'slash/inside', 'ümlaut', 'star*', 'mid#hash', 'quote"', 'new\nline']) {
      assertRefused(await subscribe(r, name), name, 400);
    }
    r.sock.send({ event: 'pusher:subscribe', data: { channel: '' } });
    const f = await r.sock.next((x) => x.event === 'pusher:subscription_error' || x.event === 'pusher:error');
    assert.ok(f.event === 'pusher:subscription_error' || f.event === 'pusher:error');
    // All the allowed characters.
    assertSucceeded(await subscribe(r, 'Az09-_=@,.;'), 'Az09-_=@,.;');
  });

  it('refuses names over max_channel_name_length (default 200, per app 164)', async () => {
    const r = await raw();
    assertSucceeded(await subscribe(r, 'n'.repeat(200)), 'n'.repeat(200));
    assertRefused(await subscribe(r, 'n'.repeat(201)), 'n'.repeat(201), 400);
    const l = await raw(LIMITS_APP);
    assertSucceeded(await subscribe(l, 'm'.repeat(164)), 'm'.repeat(164));
    assertRefused(await subscribe(l, 'm'.repeat(165)), 'm'.repeat(165), 400);
  });

  it('refuses #server-to-user- channels from a connection that is not signed in as that user', async () => {
    const r = await raw();
    assertRefused(await subscribe(r, '#server-to-user-someone'), '#server-to-user-someone', 403);
  });

  it('unsubscribe stops delivery; resubscribing restores it', async () => {
    const channel = 'news';
    const sdk = serverSdk(node);
    const r = await raw();
    assertSucceeded(await subscribe(r, channel), channel);
    await sdk.trigger(channel, 'e1', { n: 1 });
    assert.deepEqual(dataOf(await r.sock.next((f) => f.event === 'e1')), { n: 1 });

    r.sock.send({ event: 'pusher:unsubscribe', data: { channel } });
    await barrier(r); // the server has processed the unsubscribe
    const control = track(pusherClient(node));
    const ch = await pusherSubscribed(control, channel);
    const got = waitFor(ch, 'e2');
    await sdk.trigger(channel, 'e2', { n: 2 });
    assert.deepEqual(await got, { n: 2 });
    await sleep(QUIET_MS);
    assert.equal(eventsNamed(r, 'e2').length, 0, 'an unsubscribed socket received an event');

    assertSucceeded(await subscribe(r, channel), channel);
    await sdk.trigger(channel, 'e3', { n: 3 });
    assert.deepEqual(dataOf(await r.sock.next((f) => f.event === 'e3')), { n: 3 });
    assert.equal(eventsNamed(r, 'e3').length, 1, 'one subscription, one delivery');
  });

  it('unsubscribing from a channel never joined is silent; a repeated subscribe is answered once, delivered once', async () => {
    const r = await raw();
    r.sock.send({ event: 'pusher:unsubscribe', data: { channel: 'never-joined' } });
    r.sock.send({ event: 'pusher:ping', data: {} });
    assert.equal((await r.sock.next()).event, 'pusher:pong');
    assertSucceeded(await subscribe(r, 'twice'), 'twice');
    // The repeat is not answered again (on a presence channel that would resend the member list).
    r.sock.send({ event: 'pusher:subscribe', data: { channel: 'twice' } });
    await barrier(r);
    assert.equal(r.sock.frames.filter((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'twice').length, 1);
    await serverSdk(node).trigger('twice', 'once', {});
    await r.sock.next((f) => f.event === 'once');
    await barrier(r);
    assert.equal(eventsNamed(r, 'once').length, 1);
  });

  it('pusher-js unsubscribe stops delivery to that client only', async () => {
    const a = track(pusherClient(node));
    const b = track(pusherClient(node));
    const chA = await pusherSubscribed(a, 'news-js');
    const chB = await pusherSubscribed(b, 'news-js');
    let aGot = 0;
    chA.bind('ping', () => aGot++);
    a.unsubscribe('news-js');
    await sleep(100);
    const got = waitFor(chB, 'ping');
    await serverSdk(node).trigger('news-js', 'ping', {});
    await got;
    await sleep(QUIET_MS);
    assert.equal(aGot, 0);
  });
});

describe('ws channels: cache channels', () => {
  /** Subscribes and returns the outcome and the frame right after it. */
  async function subscribeAndNext(r: Raw, channel: string, member?: { user_id: string }, signed = false) {
    const f = signed || member ? await subscribeSigned(r, channel, member) : await subscribe(r, channel);
    assertSucceeded(f, channel);
    const next = await r.sock.next((x) => x.channel === channel);
    const i = r.sock.frames.indexOf(f);
    assert.equal(r.sock.frames[i + 1], next, 'the cache frame comes right after subscription_succeeded');
    return next;
  }

  it('replays the last event of cache-* right after subscription_succeeded', async () => {
    const sdk = serverSdk(node);
    assert.equal((await sdk.trigger('cache-replay', 'state', { v: 1 })).status, 200);
    assert.equal((await sdk.trigger('cache-replay', 'state', { v: 2 })).status, 200);
    const r = await raw();
    const f = await subscribeAndNext(r, 'cache-replay');
    assert.equal(f.event, 'state');
    assert.equal(f.data, JSON.stringify({ v: 2 }), 'the latest event, as published');
  });

  it('pusher-js receives the cached event on subscribe', async () => {
    await serverSdk(node).trigger('cache-replay-js', 'state', { v: 'js' });
    const client = track(pusherClient(node));
    await connected(client);
    const ch = client.subscribe('cache-replay-js');
    assert.deepEqual(await waitFor(ch, 'state'), { v: 'js' });
  });

  it('sends pusher:cache_miss for an empty cache channel (raw and pusher-js)', async () => {
    const r = await raw();
    const f = await subscribeAndNext(r, 'cache-empty');
    assert.equal(f.event, 'pusher:cache_miss');
    assert.equal(f.channel, 'cache-empty');
    const client = track(pusherClient(node));
    await connected(client);
    const ch = client.subscribe('cache-empty-js');
    await waitFor(ch, 'pusher:cache_miss');
  });

  it('private-cache-: replay and miss', async () => {
    await serverSdk(node).trigger('private-cache-x', 'state', { p: 1 });
    const r = await raw();
    const f = await subscribeAndNext(r, 'private-cache-x', undefined, true);
    assert.equal(f.event, 'state');
    assert.deepEqual(dataOf(f), { p: 1 });
    const miss = await subscribeAndNext(r, 'private-cache-empty', undefined, true);
    assert.equal(miss.event, 'pusher:cache_miss');
  });

  it('presence-cache-: replay and miss', async () => {
    await serverSdk(node).trigger('presence-cache-x', 'state', { q: 1 });
    const r = await raw();
    const f = await subscribeAndNext(r, 'presence-cache-x', { user_id: 'cacher' });
    assert.equal(f.event, 'state');
    assert.deepEqual(dataOf(f), { q: 1 });
    const miss = await subscribeAndNext(r, 'presence-cache-empty', { user_id: 'cacher' });
    assert.equal(miss.event, 'pusher:cache_miss');
  });

  it('private-encrypted-cache-: replays the encrypted payload untouched', async () => {
    await encryptingSdk().trigger('private-encrypted-cache-x', 'state', { secret: 'sealed' });
    const r = await raw();
    const f = await subscribeAndNext(r, 'private-encrypted-cache-x', undefined, true);
    assert.equal(f.event, 'state');
    assert.deepEqual(Object.keys(dataOf(f)).sort(), ['ciphertext', 'nonce']);
  });

  it('a refused subscription to a cache channel gets no cached event', async () => {
    await serverSdk(node).trigger('private-cache-refused', 'state', { no: 1 });
    const r = await raw();
    assertRefused(await subscribe(r, 'private-cache-refused', { auth: `app-key:${'0'.repeat(64)}` }), 'private-cache-refused', 401);
    await barrier(r);
    assert.equal(eventsNamed(r, 'state').length, 0);
  });
});

describe('ws channels: subscription_count', () => {
  const countsOf = (r: Raw, channel: string) =>
    eventsNamed(r, 'pusher_internal:subscription_count', channel).map((f) => dataOf<{ subscription_count: number }>(f).subscription_count);
  const nextCount = async (r: Raw, channel: string) => {
    const f = await r.sock.next((x) => x.event === 'pusher_internal:subscription_count' && x.channel === channel);
    return dataOf<{ subscription_count: number }>(f).subscription_count;
  };

  it('sends the count to subscribers as they join and leave (raw)', async () => {
    const channel = 'counted';
    const a = await raw(COUNT_APP);
    assertSucceeded(await subscribe(a, channel), channel);
    assert.equal(await nextCount(a, channel), 1);
    const b = await raw(COUNT_APP);
    assertSucceeded(await subscribe(b, channel), channel);
    assert.equal(await nextCount(b, channel), 2);
    assert.equal(await nextCount(a, channel), 2);
    b.sock.send({ event: 'pusher:unsubscribe', data: { channel } });
    assert.equal(await nextCount(a, channel), 1);
    const c = await raw(COUNT_APP);
    assertSucceeded(await subscribe(c, channel), channel);
    assert.equal(await nextCount(a, channel), 2);
    c.sock.close();
    assert.equal(await nextCount(a, channel), 1);
    assert.deepEqual(countsOf(a, channel), [1, 2, 1, 2, 1]);
  });

  it('counts private channels too', async () => {
    const a = await raw(COUNT_APP);
    assertSucceeded(await subscribeSigned(a, 'private-counted'), 'private-counted');
    assert.equal(await nextCount(a, 'private-counted'), 1);
  });

  it('pusher-js emits it as pusher:subscription_count', async () => {
    const p = track(pusherClient(node, { app: COUNT_APP }));
    const q = track(pusherClient(node, { app: COUNT_APP }));
    await connected(p);
    const chP = p.subscribe('counted-js') as ReturnType<PusherClient['subscribe']> & { subscriptionCount: number | null };
    assert.deepEqual(await waitFor(chP, 'pusher:subscription_count'), { subscription_count: 1 });
    const two = waitFor(chP, 'pusher:subscription_count');
    await pusherSubscribed(q, 'counted-js');
    assert.deepEqual(await two, { subscription_count: 2 });
    assert.equal(chP.subscriptionCount, 2);
  });

  it('is not sent on presence channels', async () => {
    const channel = 'presence-counted';
    const a = await raw(COUNT_APP);
    const b = await raw(COUNT_APP);
    assertSucceeded(await subscribeSigned(a, channel, { user_id: 'a' }), channel);
    assertSucceeded(await subscribeSigned(b, channel, { user_id: 'b' }), channel);
    await serverSdk(node, COUNT_APP).trigger(channel, 'control', {});
    await a.sock.next((f) => f.event === 'control');
    await b.sock.next((f) => f.event === 'control');
    await sleep(QUIET_MS);
    assert.equal(eventsNamed(a, 'pusher_internal:subscription_count').length, 0);
    assert.equal(eventsNamed(b, 'pusher_internal:subscription_count').length, 0);
  });

  it('an app without enable_subscription_count gets none', async () => {
    const channel = 'uncounted';
    const a = await raw();
    const b = await raw();
    assertSucceeded(await subscribe(a, channel), channel);
    assertSucceeded(await subscribe(b, channel), channel);
    b.sock.send({ event: 'pusher:unsubscribe', data: { channel } });
    await barrier(b);
    await serverSdk(node).trigger(channel, 'control', {});
    await a.sock.next((f) => f.event === 'control');
    await sleep(QUIET_MS);
    assert.equal(eventsNamed(a, 'pusher_internal:subscription_count').length, 0);
    assert.equal(eventsNamed(b, 'pusher_internal:subscription_count').length, 0);
  });
});

describe('ws channels: socket exclusion', () => {
  it('an SDK trigger with socket_id skips exactly that socket', async () => {
    const channel = 'excl';
    const [a, b, c] = [track(pusherClient(node)), track(pusherClient(node)), track(pusherClient(node))];
    const [chA, chB, chC] = await Promise.all([a, b, c].map((x) => pusherSubscribed(x, channel)));
    const aGot: unknown[] = [];
    chA.bind('note', (d: unknown) => aGot.push(d));
    const gotB = waitFor(chB, 'note');
    const gotC = waitFor(chC, 'note');
    const res = await serverSdk(node).trigger(channel, 'note', { n: 1 }, { socket_id: a.connection.socket_id });
    assert.equal(res.status, 200);
    assert.deepEqual(await gotB, { n: 1 });
    assert.deepEqual(await gotC, { n: 1 });
    await sleep(QUIET_MS);
    assert.deepEqual(aGot, [], 'the excluded socket received the event');

    // Without socket_id the same socket gets it.
    const gotA = waitFor(chA, 'note');
    await serverSdk(node).trigger(channel, 'note', { n: 2 });
    assert.deepEqual(await gotA, { n: 2 });
  });

  it('exclusion holds across several channels and only for the named socket (raw)', async () => {
    const sdk = serverSdk(node);
    const a = await raw();
    const b = await raw();
    for (const r of [a, b]) {
      assertSucceeded(await subscribe(r, 'excl-1'), 'excl-1');
      assertSucceeded(await subscribeSigned(r, 'private-excl-2'), 'private-excl-2');
    }
    await sdk.trigger(['excl-1', 'private-excl-2'], 'multi', { m: 1 }, { socket_id: a.socketId });
    await b.sock.next((f) => f.event === 'multi' && f.channel === 'excl-1');
    await b.sock.next((f) => f.event === 'multi' && f.channel === 'private-excl-2');
    await sleep(QUIET_MS);
    assert.equal(eventsNamed(a, 'multi').length, 0);
    assert.equal(eventsNamed(b, 'multi').length, 2);
  });

  it('a socket_id that is not subscribed (or unknown) excludes nobody', async () => {
    const sdk = serverSdk(node);
    const a = await raw();
    const outsider = await raw();
    assertSucceeded(await subscribe(a, 'excl-none'), 'excl-none');
    await sdk.trigger('excl-none', 'all', {}, { socket_id: outsider.socketId });
    await a.sock.next((f) => f.event === 'all');
    await sdk.trigger('excl-none', 'all2', {}, { socket_id: '1.1' });
    await a.sock.next((f) => f.event === 'all2');
  });
});
