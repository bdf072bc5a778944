// Hardening, WebSocket side: hostile frames of every kind, subscribe floods against the
// per-connection channel cap, per-connection and node-wide limits, and allowed_origins
// wildcards. Each hostile input must get the protocol's answer (an exact frame, or a
// close where the protocol or RFC 6455 says), and the node must keep serving everyone else.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { DEMO_APP, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import {
  cleanup,
  connected,
  dataOf,
  pusherClient,
  rawSocket,
  serverSdk,
  sleep,
  waitFor,
  type PusherClient,
  type RawSocket,
} from './helpers/clients.js';

type Frame = RawSocket['frames'][number];

const PATH = (key: string) => `/app/${key}?protocol=7&client=js&version=8.6.0`;
const sign = (secret: string, text: string) => createHmac('sha256', secret).update(text).digest('hex');

/** The promise's value, or null after ms (without keeping the process alive). */
const within = <T>(p: Promise<T>, ms: number): Promise<T | null> =>
  Promise.race([p, new Promise<null>((r) => setTimeout(() => r(null), ms).unref())]);

async function socketIdOf(sock: RawSocket): Promise<string> {
  const f =
    sock.frames.find((x) => x.event === 'pusher:connection_established') ??
    (await sock.next((x) => x.event === 'pusher:connection_established'));
  return dataOf<{ socket_id: string }>(f).socket_id;
}

async function rawConnected(node: ChorusNode, key = 'app-key', headers: Record<string, string> = {}): Promise<RawSocket> {
  const sock = await rawSocket(node, PATH(key), headers);
  await socketIdOf(sock);
  return sock;
}

/**
 * Sends one payload, then a pusher:ping, and returns every frame that came before the pong.
 * Frames on one socket are handled in order and these replies are synchronous, so the
 * list is exactly what the payload caused (and the pong proves the socket still works).
 */
async function exchange(sock: RawSocket, payload: string | Buffer, binary = false): Promise<Frame[]> {
  const start = sock.frames.length;
  sock.sendRaw(payload, binary);
  sock.send({ event: 'pusher:ping', data: {} });
  await sock.next((f) => f.event === 'pusher:pong');
  const between = sock.frames.slice(start);
  const pong = between.findIndex((f) => f.event === 'pusher:pong');
  return between.slice(0, pong);
}

const errorOf = (message: string, code: number | null = null): Frame => ({ event: 'pusher:error', data: { code, message } });
const subError = (channel: string, type: string, error: string, status: number): Frame => ({
  event: 'pusher:subscription_error',
  channel,
  data: { type, error, status },
});

/** Nested arrays `[[[...]]]`, `depth` deep: small on the wire, deep enough to overflow a recursive encoder. */
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** A bystander that must keep receiving while others misbehave. */
async function bystanderGets(node: ChorusNode, client: PusherClient, channelName: string, n: number): Promise<void> {
  const channel = client.channel(channelName) ?? client.subscribe(channelName);
  if (!channel.subscribed) await waitFor(channel, 'pusher:subscription_succeeded');
  const got = waitFor<{ n: number }>(channel, 'tick');
  await serverSdk(node).trigger(channelName, 'tick', { n });
  assert.deepEqual(await got, { n });
}

// ---------------------------------------------------------------------------
describe('hardening: hostile frames', () => {
  let node: ChorusNode;
  let sock: RawSocket;
  let bystander: PusherClient;
  const open: Array<RawSocket | PusherClient> = [];

  before(async () => {
    node = await startNode();
    sock = await rawConnected(node);
    bystander = pusherClient(node);
    open.push(sock, bystander);
    await connected(bystander);
  });
  after(async () => {
    await cleanup(...open);
    await cleanup(node);
  });

  it('answers frames that are not a JSON object with an "event" with one pusher:error each, and stays open', async () => {
    const cases: Array<[string, string]> = [
      ['hello', 'Invalid message: frame is not valid JSON'],
      ['{"event":"pusher:ping"', 'Invalid message: frame is not valid JSON'],
      ['', 'Invalid message: frame is not valid JSON'],
      ['[1,2]', 'Invalid message: frame must be a JSON object'],
      ['"pusher:ping"', 'Invalid message: frame must be a JSON object'],
      ['null', 'Invalid message: frame must be a JSON object'],
      ['42', 'Invalid message: frame must be a JSON object'],
      ['{}', 'Invalid message: frame must have a string "event"'],
      ['{"event":5}', 'Invalid message: frame must have a string "event"'],
      ['{"event":""}', 'Invalid message: frame must have a string "event"'],
      ['{"event":{"a":1}}', 'Invalid message: frame must have a string "event"'],
      ['{"event":["pusher:ping"]}', 'Invalid message: frame must have a string "event"'],
      ['{"event":null,"data":{}}', 'Invalid message: frame must have a string "event"'],
    ];
    for (const [payload, message] of cases) {
      assert.deepEqual(await exchange(sock, payload), [errorOf(message)], `reply to ${JSON.stringify(payload)}`);
    }
  });

  it('answers unknown events with "Unknown event", cut to 100 characters', async () => {
    assert.deepEqual(await exchange(sock, '{"event":"foo"}'), [errorOf('Unknown event: foo')]);
    assert.deepEqual(await exchange(sock, '{"event":"pusher:foo","data":{}}'), [errorOf('Unknown event: pusher:foo')]);
    assert.deepEqual(await exchange(sock, '{"event":"pusher_internal:member_added","channel":"x"}'), [
      errorOf('Unknown event: pusher_internal:member_added'),
    ]);
    assert.deepEqual(await exchange(sock, '{"event":"__proto__","data":{"__proto__":{"polluted":1}}}'), [
      errorOf('Unknown event: __proto__'),
    ]);
    const long = 'e'.repeat(5000);
    assert.deepEqual(await exchange(sock, JSON.stringify({ event: long })), [errorOf(`Unknown event: ${'e'.repeat(100)}`)]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('answers a binary frame with a pusher:error and keeps the socket', async () => {
    assert.deepEqual(await exchange(sock, Buffer.from('{"event":"pusher:ping","data":{}}'), true), [
      errorOf('Binary frames are not supported'),
    ]);
    assert.deepEqual(await exchange(sock, Buffer.from([0, 1, 2, 255]), true), [errorOf('Binary frames are not supported')]);
  });

  it('answers pusher:subscribe of the wrong shape with subscription_error InvalidChannel 400', async () => {
    const invalid = subError('', 'InvalidChannel', 'channel name must be a non-empty string', 400);
    const payloads = [
      '{"event":"pusher:subscribe"}',
      '{"event":"pusher:subscribe","data":5}',
      '{"event":"pusher:subscribe","data":[{"channel":"a"}]}',
      '{"event":"pusher:subscribe","data":"{not json"}',
      '{"event":"pusher:subscribe","data":null}',
      '{"event":"pusher:subscribe","data":{"channel":{"name":"a"}}}',
      '{"event":"pusher:subscribe","data":{"channel":["a"]}}',
      '{"event":"pusher:subscribe","data":{"channel":7}}',
      '{"event":"pusher:subscribe","data":{"channel":""}}',
      '{"event":"pusher:subscribe","data":{"__proto__":{"channel":"proto-chan"}}}',
      '{"event":"pusher:subscribe","data":' + '{"a":'.repeat(5000) + '1' + '}'.repeat(5000) + '}',
    ];
    for (const p of payloads) assert.deepEqual(await exchange(sock, p), [invalid], `reply to ${p.slice(0, 80)}`);
    const charsMsg = 'channel name may contain only letters, digits and _ - = @ , . ;';
    for (const name of ['a b', 'caf\u00e9', 'a/b', 'x\u0000y', '#evil', '*']) {
      assert.deepEqual(await exchange(sock, JSON.stringify({ event: 'pusher:subscribe', data: { channel: name } })), [
        subError(name, 'InvalidChannel', charsMsg, 400),
      ]);
    }
    const long = 'c'.repeat(201);
    assert.deepEqual(await exchange(sock, JSON.stringify({ event: 'pusher:subscribe', data: { channel: long } })), [
      subError(long, 'InvalidChannel', 'channel name is longer than 200 characters', 400),
    ]);
  });

  it('refuses auth strings of every wrong form with AuthError 401', async () => {
    const socketId = await socketIdOf(sock);
    const good = sign(DEMO_APP.secret, `${socketId}:private-h`);
    const auths: unknown[] = [
      undefined,
      null,
      5,
      true,
      [],
      {},
      ['app-key:' + good],
      { auth: 'app-key:' + good },
      '',
      ':',
      'app-key',
      'app-key:',
      ':' + good,
      'app-key:' + good.toUpperCase(),
      'app-key:' + good + '0',
      'app-key:' + good.slice(1),
      'wrong-key:' + good,
      'APP-KEY:' + good,
      ' app-key:' + good,
      'app-key: ' + good,
      'app-key:' + sign(DEMO_APP.secret, `1.1:private-h`),
      'app-key:' + sign('wrong-secret', `${socketId}:private-h`),
      'app-key:' + sign(DEMO_APP.secret, `${socketId}:private-other`),
      'app-key:' + good + ':extra',
      'app-key:' + '\u00e9'.repeat(64),
      'app-key:' + 'z'.repeat(50_000),
    ];
    const denied = subError('private-h', 'AuthError', 'Invalid signature for channel private-h', 401);
    for (const auth of auths) {
      const frame = JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'private-h', auth } });
      assert.deepEqual(await exchange(sock, frame), [denied], `auth ${JSON.stringify(auth)?.slice(0, 60)}`);
    }
    // Positive control: the right signature on the same socket is accepted.
    sock.send({ event: 'pusher:subscribe', data: { channel: 'private-h', auth: `app-key:${good}` } });
    await sock.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'private-h');
  });

  it('refuses presence channel_data of the wrong type or shape, signed or not', async () => {
    const socketId = await socketIdOf(sock);
    const ch = 'presence-h';
    const need = subError(ch, 'AuthError', 'presence channels need channel_data', 401);
    for (const cd of [undefined, null, 5, { user_id: 'u' }, ['u'], true]) {
      const frame = JSON.stringify({ event: 'pusher:subscribe', data: { channel: ch, auth: 'app-key:00', channel_data: cd } });
      assert.deepEqual(await exchange(sock, frame), [need], `channel_data ${JSON.stringify(cd)}`);
    }
    // Signed (the app's backend vouched for it) but malformed: 400s after the signature check.
    const signed = (cd: string) =>
      JSON.stringify({
        event: 'pusher:subscribe',
        data: { channel: ch, auth: `app-key:${sign(DEMO_APP.secret, `${socketId}:${ch}:${cd}`)}`, channel_data: cd },
      });
    const cases: Array<[string, Frame]> = [
      ['{not json', subError(ch, 'AuthError', 'channel_data is not valid JSON', 400)],
      ['[1]', subError(ch, 'AuthError', 'channel_data must be a JSON object', 400)],
      ['"u"', subError(ch, 'AuthError', 'channel_data must be a JSON object', 400)],
      ['{}', subError(ch, 'AuthError', 'channel_data.user_id must be a non-empty string', 400)],
      ['{"user_id":{"a":1}}', subError(ch, 'AuthError', 'channel_data.user_id must be a non-empty string', 400)],
      ['{"user_id":true}', subError(ch, 'AuthError', 'channel_data.user_id must be a non-empty string', 400)],
      ['{"user_id":""}', subError(ch, 'AuthError', 'channel_data.user_id must be a non-empty string', 400)],
      [JSON.stringify({ user_id: 'u'.repeat(129) }), subError(ch, 'LimitReached', 'user_id is longer than 128 characters', 400)],
      [
        JSON.stringify({ user_id: 'u', user_info: { blob: 'x'.repeat(1100) } }),
        subError(ch, 'LimitReached', 'user_info is larger than 1 KB', 400),
      ],
      // Small enough for the frame limit, deep enough to overflow JSON.stringify: too large, not a crash.
      ['{"user_id":"u","user_info":' + nested(25_000) + '}', subError(ch, 'LimitReached', 'user_info is larger than 1 KB', 400)],
    ];
    for (const [cd, reply] of cases) assert.deepEqual(await exchange(sock, signed(cd)), [reply], `channel_data ${cd.slice(0, 60)}`);
    // Positive control: the limits themselves are accepted.
    sock.send(JSON.parse(signed(JSON.stringify({ user_id: 'u'.repeat(128), user_info: { blob: 'x'.repeat(900) } }))));
    const ok = await sock.next((f) => f.channel === ch && f.event.startsWith('pusher'));
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
  });

  it('refuses client events for channels not subscribed, without a channel, or on public channels (4301)', async () => {
    const payloads: Array<[string, Frame]> = [
      [
        '{"event":"client-x","channel":"private-not-mine","data":{}}',
        { event: 'pusher:error', channel: 'private-not-mine', data: { code: 4301, message: 'Not subscribed to private-not-mine' } },
      ],
      [
        '{"event":"client-x","channel":"presence-nope","data":"s"}',
        { event: 'pusher:error', channel: 'presence-nope', data: { code: 4301, message: 'Not subscribed to presence-nope' } },
      ],
      ['{"event":"client-x","data":{}}', errorOf('Client events need a channel', 4301)],
      ['{"event":"client-x","channel":{"a":1},"data":{}}', errorOf('Client events need a channel', 4301)],
    ];
    for (const [p, reply] of payloads) assert.deepEqual(await exchange(sock, p), [reply], p);
    sock.send({ event: 'pusher:subscribe', data: { channel: 'public-h' } });
    await sock.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'public-h');
    assert.deepEqual(await exchange(sock, '{"event":"client-x","channel":"public-h","data":{}}'), [
      {
        event: 'pusher:error',
        channel: 'public-h',
        data: { code: 4301, message: 'Client events are allowed only on private and presence channels' },
      },
    ]);
  });

  it('survives client-event data nested 30,000 deep (under the frame limit): an error, no crash, no relay', async () => {
    // private-h was joined above; a second subscriber would see a relay if one happened.
    const peer = await rawConnected(node);
    open.push(peer);
    const peerId = await socketIdOf(peer);
    peer.send({
      event: 'pusher:subscribe',
      data: { channel: 'private-h', auth: `app-key:${sign(DEMO_APP.secret, `${peerId}:private-h`)}` },
    });
    await peer.next((f) => f.event === 'pusher_internal:subscription_succeeded');
    const tooDeep = errorOf('Invalid message: data is nested too deeply');
    assert.deepEqual(await exchange(sock, `{"event":"client-deep","channel":"private-h","data":${nested(30_000)}}`), [tooDeep]);
    const deepObject = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
    assert.deepEqual(await exchange(sock, `{"event":"client-deep","channel":"private-h","data":${deepObject}}`), [tooDeep]);
    // pusher:ping ignores its data, so depth there is harmless.
    sock.sendRaw(`{"event":"pusher:ping","data":${nested(30_000)}}`);
    assert.deepEqual(await sock.next(() => true), { event: 'pusher:pong', data: {} });
    // Positive control: a normal client event reaches the peer, and it is the first one it got.
    sock.send({ event: 'client-ok', channel: 'private-h', data: { n: 1 } });
    const got = await peer.next((f) => f.event.startsWith('client-'));
    assert.deepEqual(got, { event: 'client-ok', channel: 'private-h', data: { n: 1 } });
  });

  it('answers pusher:signin of the wrong shape with 4009 errors and unsubscribe of any shape with silence', async () => {
    const cases: Array<[string, Frame]> = [
      ['{"event":"pusher:signin"}', errorOf('pusher:signin needs user_data as a JSON string', 4009)],
      ['{"event":"pusher:signin","data":7}', errorOf('pusher:signin needs user_data as a JSON string', 4009)],
      [
        '{"event":"pusher:signin","data":{"auth":7,"user_data":{"id":"u"}}}',
        errorOf('pusher:signin needs user_data as a JSON string', 4009),
      ],
      ['{"event":"pusher:signin","data":{"auth":7,"user_data":"{\\"id\\":\\"u\\"}"}}', errorOf('Invalid signature for user sign-in', 4009)],
      [
        '{"event":"pusher:signin","data":{"auth":"app-key:00","user_data":"{\\"id\\":\\"u\\"}"}}',
        errorOf('Invalid signature for user sign-in', 4009),
      ],
    ];
    for (const [p, reply] of cases) assert.deepEqual(await exchange(sock, p), [reply], p);
    // Signed user_info too deep to re-encode: refused, so it cannot poison the presence
    // channels this user would join (their member lists are encoded for every subscriber).
    const deepSigner = await rawConnected(node);
    open.push(deepSigner);
    const deepId = await socketIdOf(deepSigner);
    const userData = `{"id":"deep-user","user_info":${nested(20_000)}}`;
    const signin = JSON.stringify({
      event: 'pusher:signin',
      data: { auth: `app-key:${sign(DEMO_APP.secret, `${deepId}::user::${userData}`)}`, user_data: userData },
    });
    assert.deepEqual(await exchange(deepSigner, signin), [errorOf('user_data.user_info is nested too deeply', 4009)]);
    const cd = '{"user_id":"deep-user"}';
    deepSigner.send({
      event: 'pusher:subscribe',
      data: { channel: 'presence-deep', auth: `app-key:${sign(DEMO_APP.secret, `${deepId}:presence-deep:${cd}`)}`, channel_data: cd },
    });
    const joined = await deepSigner.next((f) => f.channel === 'presence-deep');
    assert.equal(joined.event, 'pusher_internal:subscription_succeeded');
    for (const p of [
      '{"event":"pusher:unsubscribe"}',
      '{"event":"pusher:unsubscribe","data":[1]}',
      '{"event":"pusher:unsubscribe","data":{"channel":5}}',
      '{"event":"pusher:unsubscribe","data":{"channel":"never-joined"}}',
    ]) {
      assert.deepEqual(await exchange(sock, p), [], p);
    }
  });

  it('closes on invalid UTF-8 and on a frame over websocket_max_payload_kb, and serves the next connection', async () => {
    const bad = await rawConnected(node);
    bad.sendRaw(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), false);
    const c1 = await within(bad.closed, 5000);
    assert.ok(c1, 'invalid UTF-8 must close the socket');
    // uWS drops the TCP connection (RFC 6455 would say 1007); either way it is gone.
    assert.ok([1006, 1007].includes(c1.code), `close code ${c1.code}`);

    const huge = await rawConnected(node);
    huge.sendRaw(JSON.stringify({ event: 'pusher:ping', data: 'x'.repeat(65 * 1024) }));
    const c2 = await within(huge.closed, 5000);
    assert.ok(c2, 'a frame over 64 KB must close the socket');
    assert.ok([1006, 1009].includes(c2.code), `close code ${c2.code}`);

    // Just under the limit is fine.
    const big = await rawConnected(node);
    open.push(big);
    assert.deepEqual(await exchange(big, JSON.stringify({ event: 'pusher:ping', data: 'x'.repeat(60 * 1024) })), []);
    await bystanderGets(node, bystander, 'bystander', 1);
  });

  it('keeps the first socket and the bystander working after all of the above', async () => {
    // A client's pusher:pong is accepted silently; the exchange's own ping gets its pong.
    assert.deepEqual(await exchange(sock, '{"event":"pusher:pong","data":{}}'), []);
    await bystanderGets(node, bystander, 'bystander', 2);
    assert.equal(node.proc.exitCode, null);
    assert.equal(node.logs.filter((l) => l.includes('"level":60')).length, 0, 'no fatal log lines');
  });
});

// ---------------------------------------------------------------------------
describe('hardening: subscribe floods and the per-connection channel cap', () => {
  let node: ChorusNode;
  let small: ChorusNode;
  const open: Array<RawSocket | PusherClient> = [];
  before(async () => {
    [node, small] = await Promise.all([startNode(), startNode({ config: { max_channels_per_connection: 3 } })]);
  });
  after(async () => {
    await cleanup(...open);
    await cleanup(node, small);
  });

  it('accepts 1000 channels on one connection (the default cap) and refuses the next ones with LimitReached', async () => {
    const flood = await rawConnected(node);
    open.push(flood);
    // Within the control-frame burst (1100): past it the socket is closed (next test).
    const N = 1080;
    for (let i = 0; i < N; i++) flood.send({ event: 'pusher:subscribe', data: { channel: `flood-${i}` } });
    const answers = new Map<string, Frame>();
    const deadline = Date.now() + 20_000;
    while (answers.size < N && Date.now() < deadline) {
      const f = await flood.next(
        (x) => x.event === 'pusher_internal:subscription_succeeded' || x.event === 'pusher:subscription_error',
        20_000,
      );
      answers.set(f.channel as string, f);
    }
    assert.equal(answers.size, N, 'every subscribe is answered once');
    const ok = [...answers.values()].filter((f) => f.event === 'pusher_internal:subscription_succeeded');
    const refused = [...answers.values()].filter((f) => f.event === 'pusher:subscription_error');
    assert.equal(ok.length, 1000);
    assert.equal(refused.length, N - 1000);
    for (let i = 1000; i < N; i++) {
      assert.deepEqual(
        answers.get(`flood-${i}`),
        subError(`flood-${i}`, 'LimitReached', 'a connection may hold at most 1000 channels', 403),
      );
    }
    // The node still answers others, and the HTTP API sees the 1000 channels.
    const other = pusherClient(node);
    open.push(other);
    await bystanderGets(node, other, 'after-flood', 1);
    const res = await serverSdk(node).get({ path: '/channels', params: { filter_by_prefix: 'flood-' } });
    const body = (await res.json()) as { channels: Record<string, unknown> };
    assert.equal(Object.keys(body.channels).length, 1000);
    // Closing the flooding socket releases every channel.
    flood.close();
    await flood.closed;
    const deadline2 = Date.now() + 5000;
    let left = -1;
    while (Date.now() < deadline2) {
      const r = await serverSdk(node).get({ path: '/channels', params: { filter_by_prefix: 'flood-' } });
      left = Object.keys(((await r.json()) as { channels: Record<string, unknown> }).channels).length;
      if (left === 0) break;
      await sleep(100);
    }
    assert.equal(left, 0, 'channels released after the flooding socket closed');
  });

  it('applies max_channels_per_connection from the config; an unsubscribe frees a slot; repeats do not count', async () => {
    const sock = await rawConnected(small);
    open.push(sock);
    for (const ch of ['c1', 'c2', 'c3']) {
      sock.send({ event: 'pusher:subscribe', data: { channel: ch } });
      await sock.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === ch);
    }
    // A repeat subscribe of a held channel is neither refused nor answered again.
    sock.send({ event: 'pusher:subscribe', data: { channel: 'c2' } });
    assert.deepEqual(await exchange(sock, JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'c4' } })), [
      subError('c4', 'LimitReached', 'a connection may hold at most 3 channels', 403),
    ]);
    sock.send({ event: 'pusher:unsubscribe', data: { channel: 'c1' } });
    sock.send({ event: 'pusher:subscribe', data: { channel: 'c4' } });
    await sock.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'c4');
    // The cap is per connection: another socket has its own 3.
    const other = await rawConnected(small);
    open.push(other);
    other.send({ event: 'pusher:subscribe', data: { channel: 'c5' } });
    await other.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'c5');
  });
});

// ---------------------------------------------------------------------------
const QUOTA_APP: TestApp = { id: 'quota-app', key: 'quota-key', secret: 'quota-secret', max_connections: 2 };
const WILD_APP: TestApp = {
  id: 'wild-app',
  key: 'wild-key',
  secret: 'wild-secret',
  allowed_origins: ['*.example.com', 'plain.example.org', 'https://exact.example.net'],
};

async function expectRefused(node: ChorusNode, key: string, code: number, message: string, headers: Record<string, string> = {}) {
  const sock = await rawSocket(node, PATH(key), headers);
  const closed = await within(sock.closed, 5000);
  assert.ok(closed, `not closed (${key}, ${JSON.stringify(headers)})`);
  assert.equal(closed.code, code, `close code (${key}, ${JSON.stringify(headers)})`);
  assert.deepEqual(sock.frames, [errorOf(message, code)]);
}

describe('hardening: connection limits and origins', () => {
  let node: ChorusNode;
  let capped: ChorusNode;
  const open: RawSocket[] = [];
  before(async () => {
    const apps = { app_manager: { array: { apps: [DEMO_APP, QUOTA_APP, WILD_APP] } } };
    [node, capped] = await Promise.all([startNode({ config: apps }), startNode({ config: { ...apps, max_connections: 4 } })]);
  });
  after(async () => {
    await cleanup(...open);
    await cleanup(node, capped);
  });

  it('refuses connections past an app max_connections with 4004 and takes one again once a slot is free', async () => {
    const a = await rawConnected(node, 'quota-key');
    const b = await rawConnected(node, 'quota-key');
    await expectRefused(node, 'quota-key', 4004, 'App is over its connection quota');
    await expectRefused(node, 'quota-key', 4004, 'App is over its connection quota');
    // Other apps are not affected.
    open.push(await rawConnected(node));
    a.close();
    await a.closed;
    let c: RawSocket | null = null;
    for (let i = 0; i < 20 && !c; i++) {
      const s = await rawSocket(node, PATH('quota-key'));
      const f = await s.next(() => true);
      if (f.event === 'pusher:connection_established') c = s;
      else await sleep(100);
    }
    assert.ok(c, 'a freed slot is taken again');
    open.push(b, c);
  });

  it('refuses connections past the node-wide max_connections with 4100, for every app', async () => {
    for (let i = 0; i < 4; i++) open.push(await rawConnected(capped, i % 2 ? 'app-key' : 'wild-key', { Origin: 'https://a.example.com' }));
    await expectRefused(capped, 'app-key', 4100, 'Node is over capacity');
    await expectRefused(capped, 'quota-key', 4100, 'Node is over capacity');
    // Closing one frees one place, and only one.
    const one = open.pop()!;
    one.close();
    await one.closed;
    await sleep(100);
    open.push(await rawConnected(capped));
    await expectRefused(capped, 'app-key', 4100, 'Node is over capacity');
  });

  it('matches allowed_origins wildcards and scheme-less entries on the upgrade (4009 otherwise)', async () => {
    const allowed = [
      'https://a.example.com',
      'http://a.example.com',
      'https://deep.sub.example.com',
      'HTTPS://UPPER.EXAMPLE.COM',
      'https://plain.example.org',
      'http://plain.example.org',
      'https://plain.example.org/',
      'https://exact.example.net',
    ];
    for (const origin of allowed) {
      const s = await rawSocket(node, PATH('wild-key'), { Origin: origin });
      const f = await s.next(() => true);
      assert.equal(f.event, 'pusher:connection_established', `origin ${origin}`);
      s.close();
    }
    const refused = [
      'https://example.com', // the wildcard needs a subdomain
      'https://evilexample.com',
      'https://a.example.com.evil.io',
      'https://example.com.a.example.co',
      'https://plain.example.org.evil.io',
      'https://sub.plain.example.org',
      'http://exact.example.net', // an entry with a scheme matches that scheme only
      'https://exact.example.net.evil.io',
      'null',
      '',
    ];
    for (const origin of refused) {
      await expectRefused(node, 'wild-key', 4009, 'Origin not allowed', origin ? { Origin: origin } : {});
    }
  });
});
