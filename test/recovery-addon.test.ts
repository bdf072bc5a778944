// The recovery add-on (src/recovery/recovery.ts, docs/RECOVERY.md) on real pusher-js 8 — the
// Node build, and the browser build in a node:vm context with the add-on's browser script —
// against a small fake server made with `ws` that speaks just enough of the Pusher protocol
// and the RECOVERY.md frames. What is checked: numbered events reach handlers exactly as plain
// frames do (channel handlers, presence user_id, encrypted channels, bind_global), duplicates
// are dropped, the opt-in goes out before the subscribes on every connect with the right
// positions and socket ids, and chorus:recovered / chorus:recovery_failed reach the channel.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import vm from 'node:vm';
import PusherModule from 'pusher-js';
import nacl from 'tweetnacl';
import { WebSocket, WebSocketServer } from 'ws';
import { enableRecovery, type RecoveryHandle, type RecoveryPusher } from '../src/recovery/recovery.js';
import { sleep, until } from './helpers/wait.js';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const WAIT_MS = 5000;

type PusherClass = typeof PusherModule.default;
const Pusher: PusherClass = (PusherModule as unknown as { default?: PusherClass }).default ?? (PusherModule as unknown as PusherClass);
type PusherClient = InstanceType<PusherClass>;

interface Frame {
  event: string;
  channel?: string;
  data?: unknown;
  [k: string]: unknown;
}

interface FakeConn {
  ws: WebSocket;
  socketId: string;
  /** frames received from the client, in order */
  frames: Frame[];
  send(frame: Frame): void;
  /** waits (bounded) for a received frame matching `pred` */
  frame(pred: (f: Frame) => boolean, what: string): Promise<Frame>;
}

interface FakeServer {
  port: number;
  conns: FakeConn[];
  /** how chorus:recovery is answered: the extension's ack, or an old server's "Unknown event" */
  optIn: 'ack' | 'unknown';
  /** waits (bounded) for the n-th connection (0-based) */
  conn(n: number): Promise<FakeConn>;
  close(): Promise<void>;
}

/** A Pusher-protocol server just big enough for pusher-js: handshake, ping, subscribe (public, private, presence). */
async function startFake(): Promise<FakeServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  let seq = 0;
  const server: FakeServer = {
    port: (wss.address() as { port: number }).port,
    conns: [],
    optIn: 'ack',
    async conn(n) {
      await until(() => server.conns.length > n, WAIT_MS, `connection #${n}`);
      return server.conns[n];
    },
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
  wss.on('connection', (ws) => {
    const conn: FakeConn = {
      ws,
      socketId: `${1000 + ++seq}.${2000 + seq}`,
      frames: [],
      send: (frame) => ws.send(JSON.stringify(frame)),
      async frame(pred, what) {
        let found: Frame | undefined;
        await until(() => (found = conn.frames.find(pred)) !== undefined, WAIT_MS, what);
        return found!;
      },
    };
    server.conns.push(conn);
    ws.on('message', (buf) => {
      const f = JSON.parse(buf.toString()) as Frame;
      conn.frames.push(f);
      if (f.event === 'pusher:ping') conn.send({ event: 'pusher:pong', data: {} });
      else if (f.event === 'chorus:recovery') {
        if (server.optIn === 'ack') conn.send({ event: 'pusher_internal:chorus_recovery', data: { v: 1 } });
        else conn.send({ event: 'pusher:error', data: { code: null, message: 'Unknown event: chorus:recovery' } });
      } else if (f.event === 'pusher:subscribe') {
        const { channel, channel_data } = f.data as { channel: string; channel_data?: string };
        let data = '{}';
        if (channel.startsWith('presence-')) {
          const me = JSON.parse(channel_data ?? '{}') as { user_id: string; user_info?: unknown };
          const hash = { [me.user_id]: me.user_info ?? null, other: { name: 'Other' } };
          data = JSON.stringify({ presence: { count: 2, ids: Object.keys(hash), hash } });
        }
        conn.send({ event: 'pusher_internal:subscription_succeeded', channel, data });
      }
    });
    ws.on('error', () => undefined);
    conn.send({ event: 'pusher:connection_established', data: JSON.stringify({ socket_id: conn.socketId, activity_timeout: 120 }) });
  });
  return server;
}

/** 32 bytes, the shared secret of every private-encrypted- channel here. */
const SHARED_SECRET = new Uint8Array(32).map((_, i) => i + 1);

function encrypt(plain: string): string {
  const nonce = nacl.randomBytes(24);
  const ciphertext = nacl.secretbox(new TextEncoder().encode(plain), nonce, SHARED_SECRET);
  return JSON.stringify({ nonce: Buffer.from(nonce).toString('base64'), ciphertext: Buffer.from(ciphertext).toString('base64') });
}

type AuthCb = (err: Error | null, data: unknown) => void;

function clientOptions(port: number): Record<string, unknown> {
  return {
    wsHost: '127.0.0.1',
    wsPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    cluster: 'mt1',
    channelAuthorization: {
      customHandler: (params: { channelName: string }, cb: AuthCb) => {
        if (params.channelName.startsWith('presence-')) {
          cb(null, { auth: 'key:sig', channel_data: JSON.stringify({ user_id: 'me', user_info: { name: 'Me' } }) });
        } else if (params.channelName.startsWith('private-encrypted-')) {
          cb(null, { auth: 'key:sig', shared_secret: Buffer.from(SHARED_SECRET).toString('base64') });
        } else cb(null, { auth: 'key:sig' });
      },
    },
  };
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function setUp(): Promise<{ server: FakeServer; pusher: PusherClient }> {
  const server = await startFake();
  cleanups.push(() => server.close());
  const pusher = new Pusher('app-key', clientOptions(server.port) as never);
  cleanups.push(() => pusher.disconnect());
  return { server, pusher };
}

/** Records what a channel's handlers get: [event, ...args] per call. */
function record(channel: { bind(ev: string, fn: (...args: unknown[]) => void): unknown }, ...events: string[]): unknown[][] {
  const got: unknown[][] = [];
  for (const ev of events) channel.bind(ev, (...args: unknown[]) => got.push([ev, ...args]));
  return got;
}

const subscribed = (pusher: PusherClient, ...names: string[]) =>
  until(() => names.every((n) => pusher.channel(n)?.subscribed === true), WAIT_MS, `subscribed to ${names.join(', ')}`);

const wrapped = (channel: string, serial: number, epoch: string, frame: Record<string, unknown>): Frame => ({
  event: 'pusher_internal:chorus_event',
  channel,
  data: { serial, epoch, frame: { channel, ...frame } },
});

describe('recovery add-on on pusher-js 8 (Node build)', () => {
  it('delivers a numbered event exactly as pusher-js delivers the plain frame: handlers, presence user_id, encryption, bind_global', async () => {
    const { server, pusher } = await setUp();
    enableRecovery(pusher);
    const names = ['chat-room', 'presence-room', 'private-encrypted-safe'];
    const channels = names.map((n) => pusher.subscribe(n));
    const byChannel = channels.map((ch) => record(ch, 'message', 'other'));
    const channelGlobal: unknown[][] = [];
    channels[0].bind_global((ev: string, data: unknown) => channelGlobal.push([ev, data]));
    const global: unknown[][] = [];
    pusher.bind_global((ev: string, data: unknown) => {
      if (!ev.startsWith('pusher:')) global.push([ev, data]);
    });
    const conn = await server.conn(0);
    await subscribed(pusher, ...names);
    channelGlobal.length = 0; // pusher:subscription_succeeded

    // Every shape of data pusher-js decodes differently, with and without user_id.
    const frames: Array<Record<string, unknown>> = [
      { channel: 'chat-room', event: 'message', data: '{"text":"hi"}' },
      { channel: 'chat-room', event: 'message', data: 'not json' },
      { channel: 'chat-room', event: 'other', data: '5' },
      { channel: 'chat-room', event: 'message', data: { already: 'object' } },
      { channel: 'chat-room', event: 'message', data: '' },
      { channel: 'presence-room', event: 'message', data: '{"n":1}', user_id: 'u1' },
      { channel: 'presence-room', event: 'message', data: '"str"' },
      { channel: 'private-encrypted-safe', event: 'message', data: encrypt('{"secret":true}') },
      { channel: 'private-encrypted-safe', event: 'other', data: encrypt('plain text') },
    ];
    const total = () => byChannel.reduce((n, g) => n + g.length, 0);
    for (const f of frames) conn.send(f as Frame);
    await until(() => total() === frames.length, WAIT_MS, 'the plain frames');
    const plain = { byChannel: byChannel.map((g) => g.splice(0)), channelGlobal: channelGlobal.splice(0), global: global.splice(0) };

    frames.forEach((f, i) => conn.send(wrapped(f.channel as string, i + 1, 'e1', f)));
    await until(() => total() === frames.length, WAIT_MS, 'the numbered frames');
    await sleep(50);
    const numbered = { byChannel, channelGlobal, global };

    assert.deepEqual(numbered, plain);
    // and what pusher-js delivered is what one expects of it
    assert.deepEqual(plain.byChannel[0][0], ['message', { text: 'hi' }, {}]);
    assert.deepEqual(plain.byChannel[0][2], ['other', 5, {}]);
    assert.deepEqual(plain.byChannel[1][0], ['message', { n: 1 }, { user_id: 'u1' }]);
    assert.deepEqual(plain.byChannel[2][0], ['message', { secret: true }]);
    assert.deepEqual(plain.byChannel[2][1], ['other', 'plain text']);
    assert.equal(plain.global.length, frames.length);
  });

  it('drops a numbered event already delivered (same epoch, serial not above the last), takes a new epoch', async () => {
    const { server, pusher } = await setUp();
    const handle = enableRecovery(pusher);
    const got = record(pusher.subscribe('chat-room'), 'message');
    const global: unknown[] = [];
    pusher.bind_global((ev: string, data: unknown) => ev === 'message' && global.push(data));
    const conn = await server.conn(0);
    await subscribed(pusher, 'chat-room');

    const send = (serial: number, epoch: string, n: number) =>
      conn.send(wrapped('chat-room', serial, epoch, { event: 'message', data: `{"n":${n}}` }));
    send(10, 'e1', 1);
    send(11, 'e1', 2);
    send(11, 'e1', 3); // duplicate
    send(9, 'e1', 4); // older
    send(12, 'e1', 5);
    send(3, 'e2', 6); // another epoch: a position of its own
    send(3, 'e2', 7); // duplicate there
    send(4, 'e2', 8);
    await until(() => got.length >= 5, WAIT_MS, 'five events');
    await sleep(100);
    assert.deepEqual(
      got.map((g) => (g[1] as { n: number }).n),
      [1, 2, 5, 6, 8],
    );
    assert.deepEqual(
      global.map((d) => (d as { n: number }).n),
      [1, 2, 5, 6, 8],
    );
    assert.deepEqual(handle.positions(), { 'chat-room': { serial: 4, epoch: 'e2' } });
  });

  it('opts in before the subscribes on every connect, with the positions of the channels still subscribed and the earlier socket ids', async () => {
    const { server, pusher } = await setUp();
    const handle = enableRecovery(pusher);
    const names = ['chat-room', 'chat-b', 'presence-room', 'plain'];
    const ch = Object.fromEntries(names.map((n) => [n, pusher.subscribe(n)]));
    const recovered = Object.fromEntries(names.map((n) => [n, record(ch[n], 'chorus:recovered', 'chorus:recovery_failed')]));
    const messages = record(ch['chat-room'], 'message');

    const subscribesAfterOptIn = (conn: FakeConn) => {
      const optIn = conn.frames.findIndex((f) => f.event === 'chorus:recovery');
      const subs = conn.frames.flatMap((f, i) => (f.event === 'pusher:subscribe' ? [i] : []));
      assert.ok(optIn >= 0, `no chorus:recovery in ${JSON.stringify(conn.frames)}`);
      assert.equal(conn.frames.filter((f) => f.event === 'chorus:recovery').length, 1, 'one opt-in per connection');
      assert.ok(
        subs.every((i) => i > optIn),
        `a subscribe before the opt-in: ${JSON.stringify(conn.frames)}`,
      );
      return conn.frames[optIn];
    };

    // 1st connection: nothing to resume yet.
    const c1 = await server.conn(0);
    await subscribed(pusher, ...names);
    assert.deepEqual(subscribesAfterOptIn(c1).data, { v: 1, previous_socket_ids: [], positions: {} });
    c1.send({ event: 'pusher_internal:chorus_position', channel: 'chat-room', data: { serial: 5, epoch: 'e1', replayed: 0 } });
    // data as a JSON string works the same (pusher-js decodes it)
    c1.send({ event: 'pusher_internal:chorus_position', channel: 'chat-b', data: JSON.stringify({ serial: 0, epoch: 'b1', replayed: 0 }) });
    c1.send(wrapped('chat-room', 6, 'e1', { event: 'message', data: '{"n":6}' }));
    c1.send(wrapped('chat-room', 7, 'e1', { event: 'message', data: '{"n":7}' }));
    c1.send(wrapped('presence-room', 3, 'p1', { event: 'message', data: '{}', user_id: 'other' }));
    await until(() => Object.keys(handle.positions()).length === 3, WAIT_MS, 'three positions');
    assert.deepEqual(recovered['chat-room'], [], 'no chorus:recovered without a resume');
    assert.deepEqual(handle.positions(), {
      'chat-room': { serial: 7, epoch: 'e1' },
      'chat-b': { serial: 0, epoch: 'b1' },
      'presence-room': { serial: 3, epoch: 'p1' },
    });

    // 2nd connection: the server closes with 4200 (reconnect now), pusher-js comes back.
    c1.ws.close(4200, 'reconnect');
    const c2 = await server.conn(1);
    await subscribed(pusher, ...names);
    assert.deepEqual(subscribesAfterOptIn(c2).data, {
      v: 1,
      previous_socket_ids: [c1.socketId],
      positions: {
        'chat-room': { serial: 7, epoch: 'e1' },
        'chat-b': { serial: 0, epoch: 'b1' },
        'presence-room': { serial: 3, epoch: 'p1' },
      },
    });
    // replay (with one the client already has), then the position; the other one cannot be served
    c2.send(wrapped('chat-room', 7, 'e1', { event: 'message', data: '{"n":7}' }));
    c2.send(wrapped('chat-room', 8, 'e1', { event: 'message', data: '{"n":8}' }));
    c2.send({ event: 'pusher_internal:chorus_position', channel: 'chat-room', data: { serial: 8, epoch: 'e1', replayed: 2 } });
    c2.send({
      event: 'pusher_internal:chorus_recovery_failed',
      channel: 'presence-room',
      data: { reason: 'trimmed', serial: 20, epoch: 'p1' },
    });
    c2.send({ event: 'pusher_internal:chorus_position', channel: 'chat-b', data: { serial: 0, epoch: 'b1', replayed: 0 } });
    await until(() => recovered['chat-b'].length === 1, WAIT_MS, 'chat-b recovered');
    assert.deepEqual(
      messages.map((m) => (m[1] as { n: number }).n),
      [6, 7, 8],
    );
    assert.deepEqual(recovered['chat-room'], [['chorus:recovered', { replayed: 2, serial: 8, epoch: 'e1' }]]);
    assert.deepEqual(recovered['presence-room'], [['chorus:recovery_failed', { reason: 'trimmed', serial: 20, epoch: 'p1' }]]);
    assert.deepEqual(recovered['chat-b'], [['chorus:recovered', { replayed: 0, serial: 0, epoch: 'b1' }]]);
    assert.deepEqual(recovered.plain, []);
    // a position is used once per connection
    c2.send({ event: 'pusher_internal:chorus_position', channel: 'chat-room', data: { serial: 8, epoch: 'e1', replayed: 0 } });
    c2.send({ event: 'pusher_internal:chorus_position', channel: 'chat-b', data: { serial: 1, epoch: 'b1', replayed: 0 } });
    await until(() => handle.positions()['chat-b']?.serial === 1, WAIT_MS, 'chat-b at 1');
    assert.equal(recovered['chat-room'].length, 1);

    // 3rd connection: the app unsubscribed chat-room, and presence-room again as a new subscription.
    pusher.unsubscribe('chat-room');
    await c2.frame((f) => f.event === 'pusher:unsubscribe', 'the unsubscribe');
    pusher.disconnect();
    pusher.unsubscribe('presence-room');
    pusher.subscribe('presence-room');
    pusher.connect();
    const c3 = await server.conn(2);
    await subscribed(pusher, 'chat-b', 'presence-room', 'plain');
    assert.deepEqual(subscribesAfterOptIn(c3).data, {
      v: 1,
      previous_socket_ids: [c2.socketId, c1.socketId],
      positions: { 'chat-b': { serial: 1, epoch: 'b1' } },
    });
    assert.deepEqual(handle.positions(), { 'chat-b': { serial: 1, epoch: 'b1' } });
  });

  it('keeps at most 8 previous socket ids, newest first', async () => {
    const { server, pusher } = await setUp();
    enableRecovery(pusher);
    for (let i = 0; i < 10; i++) {
      const c = await server.conn(i);
      await until(() => pusher.connection.state === 'connected' && pusher.connection.socket_id === c.socketId, WAIT_MS, `connected #${i}`);
      pusher.disconnect();
      pusher.connect();
    }
    const last = await server.conn(10);
    const optIn = await last.frame((f) => f.event === 'chorus:recovery', 'the opt-in');
    const ids = server.conns.slice(0, 10).map((c) => c.socketId);
    assert.deepEqual((optIn.data as { previous_socket_ids: string[] }).previous_socket_ids, ids.reverse().slice(0, 8));
  });

  it('keeps the position of a channel without history yet (epoch null) and offers it again; drops values the server would refuse', async () => {
    const { server, pusher } = await setUp();
    const handle = enableRecovery(pusher, {
      positions: { 'chat-bad': { serial: 1, epoch: 'not an epoch!' }, 'chat-neg': { serial: -1, epoch: 'e' } },
      previousSocketIds: ['bogus', '1.2'],
    });
    const chat = pusher.subscribe('chat-empty');
    pusher.subscribe('chat-bad');
    pusher.subscribe('chat-neg');
    const got = record(chat, 'chorus:recovered', 'chorus:recovery_failed');
    const c1 = await server.conn(0);
    assert.deepEqual((await c1.frame((f) => f.event === 'chorus:recovery', 'the opt-in')).data, {
      v: 1,
      previous_socket_ids: ['1.2'],
      positions: {},
    });
    await subscribed(pusher, 'chat-empty');
    c1.send({ event: 'pusher_internal:chorus_position', channel: 'chat-empty', data: { serial: 0, epoch: null, replayed: 0 } });
    await until(() => 'chat-empty' in handle.positions(), WAIT_MS, 'the position');
    assert.deepEqual(handle.positions(), { 'chat-empty': { serial: 0, epoch: null } });
    c1.ws.close(4200, 'reconnect');
    const c2 = await server.conn(1);
    const optIn = await c2.frame((f) => f.event === 'chorus:recovery', 'the opt-in');
    assert.deepEqual((optIn.data as { positions: unknown }).positions, { 'chat-empty': { serial: 0, epoch: null } });
    await subscribed(pusher, 'chat-empty');
    c2.send({
      event: 'pusher_internal:chorus_recovery_failed',
      channel: 'chat-empty',
      data: { reason: 'no_history', serial: 0, epoch: null },
    });
    await until(() => got.length === 1, WAIT_MS, 'chorus:recovery_failed');
    assert.deepEqual(got, [['chorus:recovery_failed', { reason: 'no_history', serial: 0, epoch: null }]]);
  });

  it('offers at most 100 positions, the most recently updated', async () => {
    const { server, pusher } = await setUp();
    const names = Array.from({ length: 105 }, (_, i) => `chat-${i}`);
    enableRecovery(pusher, { positions: Object.fromEntries(names.map((n, i) => [n, { serial: i, epoch: 'e' }])) });
    for (const n of names) pusher.subscribe(n);
    const c1 = await server.conn(0);
    const optIn = await c1.frame((f) => f.event === 'chorus:recovery', 'the opt-in');
    const positions = (optIn.data as { positions: Record<string, { serial: number }> }).positions;
    assert.deepEqual(Object.keys(positions), names.slice(5));
    assert.deepEqual(positions['chat-104'], { serial: 104, epoch: 'e' });
  });

  it('against a server without the extension ("Unknown event"), stays passive for the connection; seeded positions are offered', async () => {
    const { server, pusher } = await setUp();
    server.optIn = 'unknown';
    const debug: string[] = [];
    const handle = enableRecovery(pusher, {
      positions: { 'chat-room': { serial: 4, epoch: 'e0' }, gone: { serial: 1, epoch: 'x' } },
      previousSocketIds: ['9.9'],
      onDebug: (m) => debug.push(m),
    });
    const chat = pusher.subscribe('chat-room');
    const got = record(chat, 'message', 'chorus:recovered', 'chorus:recovery_failed');
    const c1 = await server.conn(0);
    const optIn = await c1.frame((f) => f.event === 'chorus:recovery', 'the opt-in');
    assert.deepEqual(optIn.data, { v: 1, previous_socket_ids: ['9.9'], positions: { 'chat-room': { serial: 4, epoch: 'e0' } } });
    await subscribed(pusher, 'chat-room');
    await until(() => debug.some((m) => m.includes('refused')), WAIT_MS, 'the refusal seen');
    // an old server never sends these; if something did, no resume is claimed
    c1.send({ event: 'pusher_internal:chorus_position', channel: 'chat-room', data: { serial: 9, epoch: 'e0', replayed: 0 } });
    c1.send({ event: 'message', channel: 'chat-room', data: '{"plain":true}' });
    await until(() => got.length === 1, WAIT_MS, 'the plain event');
    await sleep(50);
    assert.deepEqual(got, [['message', { plain: true }, {}]]);
    assert.equal(pusher.connection.state, 'connected');
    assert.equal(c1.frames.filter((f) => f.event === 'chorus:recovery').length, 1);
    assert.deepEqual(handle.positions(), { 'chat-room': { serial: 9, epoch: 'e0' } });
  });

  it('disable() unbinds it; enabling twice returns the same handle', async () => {
    const { server, pusher } = await setUp();
    const handle = enableRecovery(pusher);
    assert.equal(enableRecovery(pusher), handle);
    const got = record(pusher.subscribe('chat-room'), 'message');
    const c1 = await server.conn(0);
    await subscribed(pusher, 'chat-room');
    c1.send(wrapped('chat-room', 1, 'e1', { event: 'message', data: '1' }));
    await until(() => got.length === 1, WAIT_MS, 'one event');
    handle.disable();
    c1.send(wrapped('chat-room', 2, 'e1', { event: 'message', data: '2' }));
    c1.send({ event: 'message', channel: 'chat-room', data: '3' });
    await until(() => got.length === 2, WAIT_MS, 'the plain event');
    assert.deepEqual(
      got.map((g) => g[1]),
      [1, 3],
    );
    c1.ws.close(4200, 'again');
    const c2 = await server.conn(1);
    await subscribed(pusher, 'chat-room');
    assert.equal(c2.frames.filter((f) => f.event === 'chorus:recovery').length, 0);
    assert.notEqual(enableRecovery(pusher), handle);
  });

  it("is importable as 'chorus/recovery' with its declarations", async () => {
    const specifier = 'chorus/recovery';
    const mod = (await import(specifier)) as { enableRecovery: unknown };
    assert.equal(typeof mod.enableRecovery, 'function');
    assert.ok(existsSync(join(ROOT, 'dist/recovery/recovery.d.ts')), 'dist/recovery/recovery.d.ts');
    assert.match(readFileSync(join(ROOT, 'dist/recovery/recovery.d.ts'), 'utf8'), /export declare function enableRecovery\(/);
  });
});

/** A browser-ish global for node:vm: window === self === the global, WebSocket from `ws`. */
function browserContext(): vm.Context {
  const sandbox: Record<string, unknown> = {
    WebSocket,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    console,
    navigator: { userAgent: 'node-vm', onLine: true },
    location: { protocol: 'http:', host: 'localhost' },
    document: { body: {}, location: { protocol: 'http:' }, getElementsByTagName: () => [] },
    XMLHttpRequest: undefined,
    crypto: globalThis.crypto,
  };
  sandbox.window = sandbox;
  sandbox.self = sandbox;
  return vm.createContext(sandbox);
}

describe('recovery add-on, browser build (dist/client/chorus-recovery.js)', () => {
  const script = () => readFileSync(join(ROOT, 'dist/client/chorus-recovery.js'), 'utf8');

  it('is a classic script that defines window.ChorusRecovery.enableRecovery and nothing else', () => {
    const window: Record<string, unknown> = {};
    const ctx = vm.createContext({ window });
    vm.runInContext(script(), ctx, { filename: 'chorus-recovery.js' });
    const g = window.ChorusRecovery as { enableRecovery?: unknown };
    assert.equal(typeof g?.enableRecovery, 'function');
    assert.deepEqual(Object.keys(window), ['ChorusRecovery']);
    assert.deepEqual(
      Object.keys(ctx).filter((k) => k !== 'window'),
      [],
      'no other globals',
    );
  });

  it("works with pusher-js's browser build (pusher-with-encryption.min.js, as the dev client ships it)", async () => {
    const server = await startFake();
    cleanups.push(() => server.close());
    const ctx = browserContext();
    vm.runInContext(readFileSync(join(ROOT, 'node_modules/pusher-js/dist/web/pusher-with-encryption.min.js'), 'utf8'), ctx, {
      filename: 'pusher.min.js',
    });
    vm.runInContext(script(), ctx, { filename: 'chorus-recovery.js' });
    const WebPusher = ctx.Pusher as new (key: string, opts: unknown) => PusherClient;
    const { enableRecovery: enable } = ctx.ChorusRecovery as { enableRecovery: (p: RecoveryPusher) => RecoveryHandle };
    assert.equal(typeof WebPusher, 'function');
    const pusher = new WebPusher('app-key', clientOptions(server.port));
    cleanups.push(() => pusher.disconnect());
    const handle = enable(pusher);
    const chat = pusher.subscribe('chat-room');
    const pres = pusher.subscribe('presence-room');
    const enc = pusher.subscribe('private-encrypted-safe');
    const got = record(chat, 'message', 'chorus:recovered');
    const presGot = record(pres, 'message');
    const encGot = record(enc, 'message');
    const global: unknown[][] = [];
    pusher.bind_global((ev: string, data: unknown) => ev === 'message' && global.push([ev, data]));
    const c1 = await server.conn(0);
    await subscribed(pusher, 'chat-room', 'presence-room', 'private-encrypted-safe');
    c1.send(wrapped('chat-room', 1, 'e1', { event: 'message', data: '{"a":1}' }));
    c1.send(wrapped('chat-room', 1, 'e1', { event: 'message', data: '{"a":1}' }));
    c1.send(wrapped('presence-room', 1, 'p1', { event: 'message', data: '{"b":2}', user_id: 'other' }));
    c1.send(wrapped('private-encrypted-safe', 1, 's1', { event: 'message', data: encrypt('{"c":3}') }));
    await until(() => got.length === 1 && presGot.length === 1 && encGot.length === 1, WAIT_MS, 'the three events');
    // objects from the vm realm: compare as JSON
    assert.equal(JSON.stringify(got), JSON.stringify([['message', { a: 1 }, {}]]));
    assert.equal(JSON.stringify(presGot), JSON.stringify([['message', { b: 2 }, { user_id: 'other' }]]));
    assert.equal(JSON.stringify(encGot), JSON.stringify([['message', { c: 3 }]]));
    assert.equal(global.length, 3);

    c1.ws.close(4200, 'reconnect');
    const c2 = await server.conn(1);
    const optIn = await c2.frame((f) => f.event === 'chorus:recovery', 'the opt-in');
    assert.ok(c2.frames.indexOf(optIn) < c2.frames.findIndex((f) => f.event === 'pusher:subscribe'));
    assert.deepEqual(optIn.data, {
      v: 1,
      previous_socket_ids: [c1.socketId],
      positions: {
        'chat-room': { serial: 1, epoch: 'e1' },
        'presence-room': { serial: 1, epoch: 'p1' },
        'private-encrypted-safe': { serial: 1, epoch: 's1' },
      },
    });
    await subscribed(pusher, 'chat-room');
    c2.send({ event: 'pusher_internal:chorus_position', channel: 'chat-room', data: { serial: 1, epoch: 'e1', replayed: 0 } });
    await until(() => got.length === 2, WAIT_MS, 'chorus:recovered');
    assert.equal(JSON.stringify(got[1]), JSON.stringify(['chorus:recovered', { replayed: 0, serial: 1, epoch: 'e1' }]));
    assert.equal(JSON.stringify(handle.positions()['chat-room']), JSON.stringify({ serial: 1, epoch: 'e1' }));
  });
});
