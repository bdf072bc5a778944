// User sign-in (pusher:signin), server-to-user channels, watchlists,
// terminate_connections and authorized connections.
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
type UserData = { id: string; user_info?: unknown; watchlist?: string[] };
type WatchlistEvent = { name: string; user_ids: string[] };

/** Short wait for something that must NOT arrive, used only after a positive control. */
const QUIET_MS = 400;

const errorCode = (f: Frame) => dataOf<{ code: number | null }>(f).code;
const isError = (code: number) => (f: Frame) => f.event === 'pusher:error' && errorCode(f) === code;
async function socketIdOf(sock: RawSocket): Promise<string> {
  const f =
    sock.frames.find((x) => x.event === 'pusher:connection_established') ??
    (await sock.next((x) => x.event === 'pusher:connection_established'));
  return dataOf<{ socket_id: string }>(f).socket_id;
}

async function rawFor(node: ChorusNode, app: TestApp = DEMO_APP): Promise<RawSocket> {
  const sock = await rawSocket(node, `/app/${app.key}?protocol=7&client=js&version=8.4.0`);
  await socketIdOf(sock);
  return sock;
}

/** Signs a raw socket in with SDK-signed user data and waits for signin_success. */
async function rawSignin(node: ChorusNode, sock: RawSocket, user: UserData, app: TestApp = DEMO_APP): Promise<Frame> {
  const socketId = await socketIdOf(sock);
  const signed = serverSdk(node, app).authenticateUser(socketId, user);
  sock.send({ event: 'pusher:signin', data: { auth: signed.auth, user_data: signed.user_data } });
  const ok = sock.frames.length;
  await until(
    () => sock.frames.slice(ok).some((f) => f.event === 'pusher:signin_success' || f.event === 'pusher:error'),
    3000,
    'signin answer',
  );
  const answer = sock.frames.slice(ok).find((f) => f.event === 'pusher:signin_success' || f.event === 'pusher:error')!;
  assert.equal(answer.event, 'pusher:signin_success', `sign-in as ${user.id} failed: ${JSON.stringify(answer)}`);
  return answer;
}

/** Subscribes a raw socket and returns the answer (succeeded or error). */
async function rawSubscribe(sock: RawSocket, channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  sock.send({ event: 'pusher:subscribe', data: { channel, auth: '', ...extra } });
  return sock.next(
    (f) => f.channel === channel && (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error'),
  );
}

/** Signs in a pusher-js client and waits until its #server-to-user channel is subscribed. */
async function signinClient(client: PusherClient): Promise<void> {
  await connected(client);
  client.signin();
  await until(() => client.user.serverToUserChannel?.subscribed === true, 5000, 'sign-in and #server-to-user subscription');
}

/** Signature of a user sign-in string, for user data the SDK refuses to sign (no id). */
const signUser = (socketId: string, userData: string): string =>
  createHmac('sha256', DEMO_APP.secret).update(`${socketId}::user::${userData}`).digest('hex');

const watchlistEvents = (f: Frame): WatchlistEvent[] => {
  assert.equal(typeof f.data, 'string', 'watchlist_events data is a JSON string');
  return dataOf<{ events: WatchlistEvent[] }>(f).events;
};

describe('user sign-in, server-to-user, watchlists, terminate_connections', () => {
  let node: ChorusNode;
  const open: Array<RawSocket | PusherClient> = [];
  const track = <T extends RawSocket | PusherClient>(x: T): T => {
    open.push(x);
    return x;
  };

  before(async () => {
    node = await startNode();
  });
  after(async () => {
    for (const x of open) {
      if ('disconnect' in x) x.disconnect();
      else x.close();
    }
    await node?.stop();
  });

  it('pusher-js signin() -> signin_success, #server-to-user-<id> subscription, sendToUser reaches only that user', async () => {
    const alice = track(pusherClient(node, { signinUser: { id: 'alice', user_info: { name: 'Alice' } } }));
    const bob = track(pusherClient(node, { signinUser: { id: 'bob' } }));
    const frames: Frame[] = [];
    alice.connection.bind('message', (f: Frame) => frames.push(f));
    await Promise.all([signinClient(alice), signinClient(bob)]);
    const success = frames.find((f) => f.event === 'pusher:signin_success')!;
    assert.deepEqual(JSON.parse((success.data as { user_data: string }).user_data), { id: 'alice', user_info: { name: 'Alice' } });
    assert.equal(alice.user.user_data.id, 'alice');
    assert.equal(alice.user.serverToUserChannel.name, '#server-to-user-alice');
    assert.equal(bob.user.serverToUserChannel.name, '#server-to-user-bob');

    const bobGot: unknown[] = [];
    bob.user.bind('private-note', (d: unknown) => bobGot.push(d));
    const aliceGot = waitFor(alice.user, 'private-note');
    const res = await serverSdk(node).sendToUser('alice', 'private-note', { text: 'hi alice' });
    assert.equal(res.status, 200);
    assert.deepEqual(await aliceGot, { text: 'hi alice' });
    // Positive control for bob, then nothing more.
    const bobControl = waitFor(bob.user, 'control');
    await serverSdk(node).sendToUser('bob', 'control', { n: 1 });
    assert.deepEqual(await bobControl, { n: 1 });
    await sleep(QUIET_MS);
    assert.deepEqual(bobGot, [], 'bob must not get events sent to alice');
  });

  it('a raw socket signed in receives sendToUser on #server-to-user-<id> as a channel event', async () => {
    const sock = track(await rawFor(node));
    const ok = await rawSignin(node, sock, { id: 'carol' });
    assert.deepEqual(dataOf(ok), { user_data: JSON.stringify({ id: 'carol' }) });
    const sub = await rawSubscribe(sock, '#server-to-user-carol');
    assert.equal(sub.event, 'pusher_internal:subscription_succeeded');
    // A second connection of the same user gets the events too.
    const second = track(await rawFor(node));
    await rawSignin(node, second, { id: 'carol' });
    assert.equal((await rawSubscribe(second, '#server-to-user-carol')).event, 'pusher_internal:subscription_succeeded');
    await serverSdk(node).sendToUser('carol', 'hello', { to: 'carol' });
    for (const s of [sock, second]) {
      const f = await s.next((x) => x.event === 'hello');
      assert.equal(f.channel, '#server-to-user-carol');
      assert.equal(typeof f.data, 'string');
      assert.deepEqual(dataOf(f), { to: 'carol' });
    }
    await sleep(QUIET_MS);
    assert.equal(framesOf(sock, 'hello').length, 1, 'delivered once per connection');
  });

  it('a socket not signed in, or signed in as another user, cannot subscribe to #server-to-user-alice', async () => {
    const alice = track(pusherClient(node, { signinUser: { id: 'alice' } }));
    await signinClient(alice);
    const anon = track(await rawFor(node));
    const mallory = track(await rawFor(node));
    await rawSignin(node, mallory, { id: 'mallory' });

    const e1 = await rawSubscribe(anon, '#server-to-user-alice');
    assert.equal(e1.event, 'pusher:subscription_error');
    const e2 = await rawSubscribe(mallory, '#server-to-user-alice');
    assert.equal(e2.event, 'pusher:subscription_error');
    for (const e of [e1, e2]) {
      const d = dataOf<{ type: string; status: number }>(e);
      assert.equal(typeof d.type, 'string');
      assert.ok(d.status === 401 || d.status === 403, `status ${d.status}`);
    }
    // With a forged auth string too.
    const e3 = await rawSubscribe(anon, '#server-to-user-alice', { auth: 'app-key:' + '0'.repeat(64) });
    assert.equal(e3.event, 'pusher:subscription_error');

    const aliceGot = waitFor(alice.user, 'secret');
    await serverSdk(node).sendToUser('alice', 'secret', { s: 1 });
    assert.deepEqual(await aliceGot, { s: 1 });
    await sleep(QUIET_MS);
    assert.equal(framesOf(anon, 'secret').length, 0);
    assert.equal(framesOf(mallory, 'secret').length, 0);
  });

  it('a bad sign-in signature -> pusher:error 4009, no signin_success, not signed in', async () => {
    const sock = track(await rawFor(node));
    const socketId = await socketIdOf(sock);
    const good = serverSdk(node).authenticateUser(socketId, { id: 'dave' });
    // Signature for other user data.
    sock.send({ event: 'pusher:signin', data: { auth: good.auth, user_data: JSON.stringify({ id: 'eve' }) } });
    await sock.next(isError(4009));
    // A signature made with the wrong secret.
    const wrong = serverSdk(node, { ...DEMO_APP, secret: 'not-the-secret' }).authenticateUser(socketId, { id: 'dave' });
    sock.send({ event: 'pusher:signin', data: wrong });
    await sock.next(isError(4009));
    // Missing auth.
    sock.send({ event: 'pusher:signin', data: { user_data: good.user_data } });
    await sock.next(isError(4009));
    await roundTrip(sock);
    assert.equal(framesOf(sock, 'pusher:signin_success').length, 0);
    // Not signed in: its server-to-user channel is refused.
    const sub = await rawSubscribe(sock, '#server-to-user-dave');
    assert.equal(sub.event, 'pusher:subscription_error');
    assert.equal(sock.ws.readyState, sock.ws.OPEN);
  });

  it('user_data without an id (correctly signed) -> pusher:error, no signin_success', async () => {
    const sock = track(await rawFor(node));
    const socketId = await socketIdOf(sock);
    const sign = (userData: string) => `${DEMO_APP.key}:${signUser(socketId, userData)}`;
    for (const userData of [
      JSON.stringify({ user_info: { name: 'x' } }),
      JSON.stringify({ id: '' }),
      JSON.stringify({ id: 42 }),
      'not json',
    ]) {
      const before = framesOf(sock, 'pusher:error').length;
      sock.send({ event: 'pusher:signin', data: { auth: sign(userData), user_data: userData } });
      await until(() => framesOf(sock, 'pusher:error').length > before, 3000, `error for ${userData}`);
      assert.equal(errorCode(framesOf(sock, 'pusher:error')[before]), 4009, `code for ${userData}`);
    }
    await roundTrip(sock);
    assert.equal(framesOf(sock, 'pusher:signin_success').length, 0);
  });

  it('signing in again as another user on the same connection -> pusher:error 4009, first user kept', async () => {
    const sock = track(await rawFor(node));
    await rawSignin(node, sock, { id: 'dup-1' });
    const socketId = await socketIdOf(sock);
    const other = serverSdk(node).authenticateUser(socketId, { id: 'dup-2' });
    sock.send({ event: 'pusher:signin', data: other });
    await sock.next(isError(4009));
    assert.equal(framesOf(sock, 'pusher:signin_success').length, 1);
    assert.equal((await rawSubscribe(sock, '#server-to-user-dup-2')).event, 'pusher:subscription_error');
    assert.equal((await rawSubscribe(sock, '#server-to-user-dup-1')).event, 'pusher_internal:subscription_succeeded');
    await serverSdk(node).sendToUser('dup-1', 'still-me', {});
    await sock.next((f) => f.event === 'still-me');
  });

  it('watchlist (pusher-js): initial report, then online when B signs in and offline when B leaves', async () => {
    const a = track(pusherClient(node, { signinUser: { id: 'wa', watchlist: ['wb', 'wc'] } }));
    const initial = new Promise<Frame>((res) =>
      a.connection.bind('message', (f: Frame) => {
        if (f.event === 'pusher_internal:watchlist_events') res(f);
      }),
    );
    const events: WatchlistEvent[] = [];
    a.user.watchlist.bind('online', (e: WatchlistEvent) => events.push(e));
    a.user.watchlist.bind('offline', (e: WatchlistEvent) => events.push(e));
    await signinClient(a);
    const first = await Promise.race([initial, sleep(3000).then(() => null)]);
    assert.ok(first, 'A gets pusher_internal:watchlist_events after signing in');
    const online = (first.data as { events: WatchlistEvent[] }).events.filter((e) => e.name === 'online').flatMap((e) => e.user_ids);
    assert.deepEqual(online, [], 'nobody on the watchlist is online yet');
    assert.deepEqual(events, []);

    const b = track(pusherClient(node, { signinUser: { id: 'wb' } }));
    const gotOnline = waitFor<WatchlistEvent>(a.user.watchlist, 'online');
    await signinClient(b);
    assert.deepEqual(await gotOnline, { name: 'online', user_ids: ['wb'] });

    const gotOffline = waitFor<WatchlistEvent>(a.user.watchlist, 'offline');
    b.disconnect();
    assert.deepEqual(await gotOffline, { name: 'offline', user_ids: ['wb'] });
    assert.deepEqual(events, [
      { name: 'online', user_ids: ['wb'] },
      { name: 'offline', user_ids: ['wb'] },
    ]);
  });

  it('watchlist wire frames (raw): JSON-string data, online/offline per user not per socket, initial online list', async () => {
    const x1 = track(await rawFor(node));
    await rawSignin(node, x1, { id: 'rx' });
    const w = track(await rawFor(node));
    await rawSignin(node, w, { id: 'rw', watchlist: ['rx', 'ry'] });
    const first = await w.next((f) => f.event === 'pusher_internal:watchlist_events');
    assert.equal(first.channel, undefined);
    assert.deepEqual(watchlistEvents(first), [{ name: 'online', user_ids: ['rx'] }], 'rx is already online');

    const y1 = track(await rawFor(node));
    await rawSignin(node, y1, { id: 'ry' });
    const on = await w.next((f) => f.event === 'pusher_internal:watchlist_events');
    assert.deepEqual(JSON.parse(on.data as string), { events: [{ name: 'online', user_ids: ['ry'] }] });

    // A second socket of ry: no new event; closing one of two: no offline.
    const y2 = track(await rawFor(node));
    await rawSignin(node, y2, { id: 'ry' });
    y1.close();
    await y1.closed;
    // Positive control: rx going offline is reported.
    x1.close();
    const off = await w.next((f) => f.event === 'pusher_internal:watchlist_events');
    assert.deepEqual(watchlistEvents(off), [{ name: 'offline', user_ids: ['rx'] }]);
    await sleep(QUIET_MS);
    assert.equal(framesOf(w, 'pusher_internal:watchlist_events').length, 3, 'no event for a second socket of an online user');

    y2.close();
    const off2 = await w.next((f) => f.event === 'pusher_internal:watchlist_events');
    assert.deepEqual(watchlistEvents(off2), [{ name: 'offline', user_ids: ['ry'] }]);
    // A user not on the watchlist going online is not reported.
    const z = track(await rawFor(node));
    await rawSignin(node, z, { id: 'rz' });
    await sleep(QUIET_MS);
    assert.equal(framesOf(w, 'pusher_internal:watchlist_events').length, 4);
  });

  it('a watchlist of 150 ids -> pusher:error 4302, sign-in succeeds and the first 100 are kept', async () => {
    const ids = Array.from({ length: 150 }, (_, i) => `big-${i}`);
    const w = track(await rawFor(node));
    await rawSignin(node, w, { id: 'big-watcher', watchlist: ids });
    const err = await w.next(isError(4302));
    assert.equal(typeof dataOf<{ message: string }>(err).message, 'string');
    await w.next((f) => f.event === 'pusher_internal:watchlist_events');
    assert.equal(w.frames.filter(isError(4302)).length, 1);

    const last = track(await rawFor(node));
    await rawSignin(node, last, { id: 'big-99' });
    const on = await w.next((f) => f.event === 'pusher_internal:watchlist_events');
    assert.deepEqual(watchlistEvents(on), [{ name: 'online', user_ids: ['big-99'] }]);
    const dropped = track(await rawFor(node));
    await rawSignin(node, dropped, { id: 'big-100' });
    await sleep(QUIET_MS);
    assert.equal(framesOf(w, 'pusher_internal:watchlist_events').length, 2, 'big-100 is past the first 100');
  });

  it('terminate_connections closes every socket of the user with 4009, not other users; HTTP 200 {}', async () => {
    const a1 = track(await rawFor(node));
    const a2 = track(await rawFor(node));
    const b1 = track(await rawFor(node));
    const anon = track(await rawFor(node));
    const watcher = track(await rawFor(node));
    await rawSignin(node, watcher, { id: 'term-watcher', watchlist: ['term-alice'] });
    await watcher.next((f) => f.event === 'pusher_internal:watchlist_events');
    await rawSignin(node, a1, { id: 'term-alice' });
    await rawSignin(node, a2, { id: 'term-alice' });
    await rawSignin(node, b1, { id: 'term-bob' });
    // (Raw sockets only: pusher-js on Node, after a server close with 4009, calls close() on the
    // closed faye socket, whose 30 s close timer then keeps the test process alive.)

    const res = await serverSdk(node).terminateUserConnections('term-alice');
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(await res.text()), {});
    const closes = await Promise.race([Promise.all([a1.closed, a2.closed]), sleep(3000).then(() => null)]);
    assert.ok(closes, 'both alice sockets are closed');
    assert.deepEqual(
      closes.map((c) => c.code),
      [4009, 4009],
    );
    assert.ok(a1.frames.some(isError(4009)), 'a pusher:error 4009 precedes the close');
    // Watchers see the user go online once and offline once.
    const off = await watcher.next(
      (f) => f.event === 'pusher_internal:watchlist_events' && f.data !== undefined && (f.data as string).includes('offline'),
    );
    assert.deepEqual(watchlistEvents(off), [{ name: 'offline', user_ids: ['term-alice'] }]);
    assert.deepEqual(framesOf(watcher, 'pusher_internal:watchlist_events').slice(1).map(watchlistEvents), [
      [{ name: 'online', user_ids: ['term-alice'] }],
      [{ name: 'offline', user_ids: ['term-alice'] }],
    ]);

    await roundTrip(b1);
    await roundTrip(anon);
    assert.equal(b1.ws.readyState, b1.ws.OPEN);
    // A user with no connection: still 200 {}.
    const none = await serverSdk(node).terminateUserConnections('nobody-here');
    assert.equal(none.status, 200);
    assert.deepEqual(JSON.parse(await none.text()), {});
  });
});

describe('authorized connections (enable_user_authentication, user_authentication_timeout 1 s)', () => {
  const AUTH_APP: TestApp = { ...DEMO_APP, enable_user_authentication: true };
  const PLAIN_APP: TestApp = { id: 'plain-id', key: 'plain-key', secret: 'plain-secret' };
  let node: ChorusNode;
  const open: RawSocket[] = [];

  before(async () => {
    node = await startNode({
      config: { user_authentication_timeout: 1, app_manager: { array: { apps: [AUTH_APP, PLAIN_APP] } } },
    });
  });
  after(async () => {
    open.forEach((s) => s.close());
    await node?.stop();
  });

  it('idle and public-only sockets are closed with 4009; signed-in and private-subscribed ones stay open', async () => {
    const idle = await rawFor(node, AUTH_APP);
    const publicOnly = await rawFor(node, AUTH_APP);
    const signedIn = await rawFor(node, AUTH_APP);
    const privateSub = await rawFor(node, AUTH_APP);
    const badAuth = await rawFor(node, AUTH_APP);
    const otherApp = await rawFor(node, PLAIN_APP);
    open.push(idle, publicOnly, signedIn, privateSub, badAuth, otherApp);

    await rawSignin(node, signedIn, { id: 'authorized-user' }, AUTH_APP);
    assert.equal((await rawSubscribe(publicOnly, 'public-news')).event, 'pusher_internal:subscription_succeeded');
    const socketId = await socketIdOf(privateSub);
    const { auth } = serverSdk(node, AUTH_APP).authorizeChannel(socketId, 'private-ok') as { auth: string };
    assert.equal((await rawSubscribe(privateSub, 'private-ok', { auth })).event, 'pusher_internal:subscription_succeeded');

    const refused = await rawSubscribe(badAuth, 'private-ok', { auth: `${AUTH_APP.key}:${'0'.repeat(64)}` });
    assert.equal(refused.event, 'pusher:subscription_error');

    const closedIn = (s: RawSocket, ms: number) => Promise.race([s.closed, sleep(ms).then(() => null)]);
    const [idleClose, publicClose, badClose] = await Promise.all([
      closedIn(idle, 4000),
      closedIn(publicOnly, 4000),
      closedIn(badAuth, 4000),
    ]);
    assert.equal(idleClose?.code, 4009, 'an idle socket is closed with 4009');
    assert.equal(publicClose?.code, 4009, 'a public subscription does not authorize a connection');
    assert.equal(badClose?.code, 4009, 'a refused private subscription does not authorize a connection');
    assert.ok(idle.frames.some(isError(4009)), 'a pusher:error 4009 precedes the close');

    // The others are still open well after the timeout.
    await sleep(1000);
    for (const s of [signedIn, privateSub, otherApp]) {
      await roundTrip(s);
      assert.equal(s.ws.readyState, s.ws.OPEN);
    }
  });
});
