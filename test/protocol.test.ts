// Unit tests of the pure protocol helpers: signatures, HTTP request auth,
// channel names, frame codecs, origin rules and the presence book.
// Signatures are checked against what the real `pusher` SDK produces.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import PusherServer from 'pusher';
import {
  channelStringToSign,
  hmacSha256Hex,
  httpStringToSign,
  md5Hex,
  safeEqual,
  userStringToSign,
  verifyClientAuth,
} from '../src/protocol/signatures.js';
import { parseQuery, requestAuthProblem } from '../src/edge/http/request-auth.js';
import { TIMESTAMP_WINDOW_SECONDS } from '../src/protocol/limits.js';
import { allowsClientEvents, channelInfo, channelNameProblem, needsAuth } from '../src/protocol/channels.js';
import {
  connectionEstablished,
  dataAsObject,
  decodeClientFrame,
  encodeChannelEvent,
  encodeClientEvent,
  encodeEvent,
  errorFrame,
  PING,
  PONG,
  subscriptionError,
  subscriptionSucceededFrame,
} from '../src/protocol/frames.js';
import { appKeyOf, newSocketId } from '../src/edge/ws/upgrade.js';
import { originAllowed } from '../src/edge/origins.js';
import { PresenceBook } from '../src/cluster/presence-book.js';
import { appSchema } from '../src/config/schema.js';

const require = createRequire(import.meta.url);
// The SDK's own HTTP signer and token (pusher-http-node lib/requests.js, lib/token.js).
const { createSignedQueryString } = require('pusher/lib/requests.js') as {
  createSignedQueryString(token: unknown, req: { method: string; path: string; params?: Record<string, string>; body?: string }): string;
};
const Token = require('pusher/lib/token.js') as new (key: string, secret: string) => unknown;

const KEY = 'app-key';
const SECRET = 'app-secret';
const sdk = new PusherServer({ appId: 'app-id', key: KEY, secret: SECRET, host: '127.0.0.1', useTLS: false });
const SOCKET = '1234.5678';

// ---------------------------------------------------------------------------
describe('signatures: HTTP API worked example (PROTOCOL.md section 8)', () => {
  const key = '278d425bdf160c739803';
  const secret = '7ad3773142a6692b25b8';
  const body = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';
  const params = new Map([
    ['auth_key', key],
    ['auth_timestamp', '1353088179'],
    ['auth_version', '1.0'],
    ['body_md5', 'ec365a775a4cd0599faeb73354201b6f'],
  ]);
  const expected = 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c';

  it('md5 of the documented body is the documented body_md5', () => {
    assert.equal(md5Hex(body), 'ec365a775a4cd0599faeb73354201b6f');
    assert.equal(md5Hex(Buffer.from(body)), 'ec365a775a4cd0599faeb73354201b6f');
  });

  it('the string to sign and its HMAC match the documented signature', () => {
    const toSign = httpStringToSign('post', '/apps/3/events', params);
    assert.equal(
      toSign,
      'POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f',
    );
    assert.equal(hmacSha256Hex(secret, toSign), expected);
  });

  it('auth_signature itself is left out of the signed query, whatever order the params came in', () => {
    const shuffled = new Map([
      ['body_md5', 'ec365a775a4cd0599faeb73354201b6f'],
      ['auth_signature', expected],
      ['auth_version', '1.0'],
      ['auth_timestamp', '1353088179'],
      ['auth_key', key],
    ]);
    assert.equal(hmacSha256Hex(secret, httpStringToSign('POST', '/apps/3/events', shuffled)), expected);
  });

  it('requestAuthProblem accepts the documented request at its own timestamp', () => {
    const app = appSchema.parse({ id: '3', key, secret });
    const signed = new Map([...params, ['auth_signature', expected]]);
    assert.equal(requestAuthProblem(app, 'POST', ['/apps/3/events'], signed, Buffer.from(body), 1353088179), null);
  });
});

// ---------------------------------------------------------------------------
describe('signatures: channel auth and sign-in vs the pusher SDK', () => {
  it('private channel auth from authorizeChannel verifies', () => {
    const { auth } = sdk.authorizeChannel(SOCKET, 'private-room');
    assert.match(auth, /^app-key:[0-9a-f]{64}$/);
    assert.equal(verifyClientAuth(auth, KEY, SECRET, channelStringToSign(SOCKET, 'private-room')), true);
    assert.equal(auth, `${KEY}:${hmacSha256Hex(SECRET, `${SOCKET}:private-room`)}`);
  });

  it('private-encrypted channel auth is signed like private (shared_secret aside)', () => {
    const enc = new PusherServer({
      appId: 'app-id',
      key: KEY,
      secret: SECRET,
      host: '127.0.0.1',
      encryptionMasterKeyBase64: Buffer.alloc(32, 7).toString('base64'),
    });
    const res = enc.authorizeChannel(SOCKET, 'private-encrypted-room') as { auth: string; shared_secret?: string };
    assert.equal(typeof res.shared_secret, 'string');
    assert.equal(verifyClientAuth(res.auth, KEY, SECRET, channelStringToSign(SOCKET, 'private-encrypted-room')), true);
  });

  it('presence auth covers the exact channel_data string', () => {
    const res = sdk.authorizeChannel(SOCKET, 'presence-room', { user_id: '42', user_info: { name: 'Ada', n: 1 } });
    assert.equal(res.channel_data, '{"user_id":"42","user_info":{"name":"Ada","n":1}}');
    assert.equal(channelStringToSign(SOCKET, 'presence-room', res.channel_data), `${SOCKET}:presence-room:${res.channel_data}`);
    assert.equal(verifyClientAuth(res.auth, KEY, SECRET, channelStringToSign(SOCKET, 'presence-room', res.channel_data)), true);
    // Re-serialised (different spacing) data is a different string and must not verify.
    const respaced = JSON.stringify(JSON.parse(res.channel_data), null, 1);
    assert.equal(verifyClientAuth(res.auth, KEY, SECRET, channelStringToSign(SOCKET, 'presence-room', respaced)), false);
    // Without channel_data the presence signature does not verify either.
    assert.equal(verifyClientAuth(res.auth, KEY, SECRET, channelStringToSign(SOCKET, 'presence-room')), false);
  });

  it('presence auth with a numeric user_id verifies', () => {
    const res = sdk.authorizeChannel(SOCKET, 'presence-room', { user_id: 7 as unknown as string });
    assert.equal(res.channel_data, '{"user_id":7}');
    assert.equal(verifyClientAuth(res.auth, KEY, SECRET, channelStringToSign(SOCKET, 'presence-room', res.channel_data)), true);
  });

  it('auth for another socket or another channel does not verify', () => {
    const { auth } = sdk.authorizeChannel(SOCKET, 'private-room');
    assert.equal(verifyClientAuth(auth, KEY, SECRET, channelStringToSign('1234.5679', 'private-room')), false);
    assert.equal(verifyClientAuth(auth, KEY, SECRET, channelStringToSign(SOCKET, 'private-room2')), false);
    assert.equal(verifyClientAuth(auth, KEY, 'other-secret', channelStringToSign(SOCKET, 'private-room')), false);
  });

  it('user sign-in auth from authenticateUser verifies over the exact user_data', () => {
    const res = sdk.authenticateUser(SOCKET, { id: 'u1', user_info: { name: 'Ada' }, watchlist: ['u2', 'u3'] });
    assert.equal(res.user_data, '{"id":"u1","user_info":{"name":"Ada"},"watchlist":["u2","u3"]}');
    assert.equal(userStringToSign(SOCKET, res.user_data), `${SOCKET}::user::${res.user_data}`);
    assert.equal(verifyClientAuth(res.auth, KEY, SECRET, userStringToSign(SOCKET, res.user_data)), true);
    assert.equal(verifyClientAuth(res.auth, KEY, SECRET, userStringToSign(SOCKET, '{"id":"u2"}')), false);
    // A sign-in signature is not a channel signature.
    assert.equal(verifyClientAuth(res.auth, KEY, SECRET, channelStringToSign(SOCKET, 'private-u1')), false);
  });

  it('a valid signature under another key prefix is rejected', () => {
    const other = new PusherServer({ appId: 'x', key: 'other-key', secret: SECRET, host: '127.0.0.1' });
    const { auth } = other.authorizeChannel(SOCKET, 'private-room');
    const signature = auth.slice(auth.indexOf(':') + 1);
    assert.equal(signature, hmacSha256Hex(SECRET, `${SOCKET}:private-room`));
    assert.equal(verifyClientAuth(auth, KEY, SECRET, channelStringToSign(SOCKET, 'private-room')), false);
    // prefixes of the right key, or the key with extra characters, are rejected too
    assert.equal(verifyClientAuth(`app-ke:${signature}`, KEY, SECRET, `${SOCKET}:private-room`), false);
    assert.equal(verifyClientAuth(`app-keyy:${signature}`, KEY, SECRET, `${SOCKET}:private-room`), false);
    assert.equal(verifyClientAuth(`${KEY}:${signature}`, KEY, SECRET, `${SOCKET}:private-room`), true);
  });

  it('malformed auth values are rejected without throwing', () => {
    const toSign = channelStringToSign(SOCKET, 'private-room');
    const good = sdk.authorizeChannel(SOCKET, 'private-room').auth;
    for (const bad of [undefined, null, 42, {}, '', ':', 'app-key', 'app-key:', `:${good.split(':')[1]}`, good.toUpperCase(), `${good} `]) {
      assert.equal(verifyClientAuth(bad, KEY, SECRET, toSign), false, `accepted ${JSON.stringify(bad)}`);
    }
  });

  it('safeEqual compares exactly, including different lengths and multi-byte text', () => {
    assert.equal(safeEqual('abc', 'abc'), true);
    assert.equal(safeEqual('', ''), true);
    assert.equal(safeEqual('abc', 'abd'), false);
    assert.equal(safeEqual('abc', 'ab'), false);
    assert.equal(safeEqual('ab', 'abc'), false);
    assert.equal(safeEqual('abc', 'ABC'), false);
    assert.equal(safeEqual('é', 'é'), true);
    assert.equal(safeEqual('é', 'e'), false);
    assert.equal(safeEqual('', 'a'), false);
  });
});

// ---------------------------------------------------------------------------
describe('request-auth: requestAuthProblem', () => {
  const app = appSchema.parse({ id: 'app-id', key: KEY, secret: SECRET });
  const NOW = 1_700_000_000;
  const PATH = '/apps/app-id/events';
  const BODY = Buffer.from('{"name":"e","channel":"c","data":"{}"}');

  /** Signs like the SDK: auth params, optional body_md5, sorted, unescaped. */
  function signed(
    opts: {
      ts?: number;
      body?: Buffer;
      method?: string;
      path?: string;
      extra?: Record<string, string>;
      omit?: string[];
      version?: string;
      md5?: string;
    } = {},
  ) {
    const params = new Map<string, string>([
      ['auth_key', KEY],
      ['auth_timestamp', String(opts.ts ?? NOW)],
      ['auth_version', opts.version ?? '1.0'],
    ]);
    const body = opts.body ?? BODY;
    if (opts.md5 !== undefined) params.set('body_md5', opts.md5);
    else if (body.length > 0) params.set('body_md5', md5Hex(body));
    for (const [k, v] of Object.entries(opts.extra ?? {})) params.set(k, v);
    for (const k of opts.omit ?? []) params.delete(k);
    params.set('auth_signature', hmacSha256Hex(SECRET, httpStringToSign(opts.method ?? 'POST', opts.path ?? PATH, params)));
    return { params, body };
  }
  const check = (s: { params: Map<string, string>; body: Buffer }, method = 'POST', paths = [PATH], now = NOW) =>
    requestAuthProblem(app, method, paths, s.params, s.body, now);

  it('accepts a correctly signed request', () => {
    assert.equal(check(signed()), null);
  });

  it('accepts a query string produced by the pusher SDK signer (with extra params)', () => {
    const token = new Token(KEY, SECRET);
    const path = '/apps/app-id/channels';
    const qs = createSignedQueryString(token, { method: 'GET', path, params: { filter_by_prefix: 'presence-', info: 'user_count' } });
    const params = parseQuery(qs);
    assert.equal(params.get('filter_by_prefix'), 'presence-');
    assert.equal(requestAuthProblem(app, 'GET', [path], params, Buffer.alloc(0)), null);
    // The same signature is wrong for another path or method.
    assert.equal(requestAuthProblem(app, 'GET', ['/apps/app-id/channels/x'], params, Buffer.alloc(0)), 'Invalid signature');
    assert.equal(requestAuthProblem(app, 'POST', [path], params, Buffer.alloc(0)), 'Invalid signature');
  });

  it('accepts an SDK-signed POST with a body', () => {
    const token = new Token(KEY, SECRET);
    const body = JSON.stringify({ name: 'ev', channels: ['a', 'b'], data: '{"x":1}' });
    const qs = createSignedQueryString(token, { method: 'POST', path: PATH, body });
    assert.equal(requestAuthProblem(app, 'POST', [PATH], parseQuery(qs), Buffer.from(body)), null);
  });

  it('tries every candidate path (path prefix)', () => {
    const s = signed({ path: '/prefix/apps/app-id/events' });
    assert.equal(check(s, 'POST', [PATH]), 'Invalid signature');
    assert.equal(check(s, 'POST', ['/prefix/apps/app-id/events', PATH]), null);
  });

  it('parseQuery lower-cases keys and decodes values', () => {
    const q = parseQuery('Auth_Key=k&AUTH_TIMESTAMP=1&filter_by_prefix=presence%2D&x=a%20b');
    assert.deepEqual(
      [...q.entries()],
      [
        ['auth_key', 'k'],
        ['auth_timestamp', '1'],
        ['filter_by_prefix', 'presence-'],
        ['x', 'a b'],
      ],
    );
    assert.equal(parseQuery('').size, 0);
  });

  it(`timestamp window is ±${TIMESTAMP_WINDOW_SECONDS} s inclusive`, () => {
    assert.equal(TIMESTAMP_WINDOW_SECONDS, 600);
    const tooFar = /auth_timestamp/;
    assert.equal(check(signed({ ts: NOW - 600 })), null);
    assert.equal(check(signed({ ts: NOW + 600 })), null);
    assert.match(check(signed({ ts: NOW - 601 })) ?? '', tooFar);
    assert.match(check(signed({ ts: NOW + 601 })) ?? '', tooFar);
    assert.match(check(signed({ ts: 0 })) ?? '', tooFar);
  });

  it('rejects a non-numeric or fractional timestamp', () => {
    for (const ts of ['abc', '1700000000.5', '-1700000000', '1e9', ' 1700000000']) {
      const s = signed();
      s.params.set('auth_timestamp', ts);
      s.params.set('auth_signature', hmacSha256Hex(SECRET, httpStringToSign('POST', PATH, s.params)));
      assert.match(check(s) ?? '', /auth_timestamp/, `accepted timestamp ${JSON.stringify(ts)}`);
    }
  });

  it('reports missing auth_key, auth_timestamp or auth_signature', () => {
    for (const missing of ['auth_key', 'auth_timestamp', 'auth_signature']) {
      const s = signed();
      s.params.delete(missing);
      assert.equal(check(s), 'Missing auth_key, auth_timestamp or auth_signature', `without ${missing}`);
    }
    const empty = signed();
    empty.params.set('auth_key', '');
    assert.equal(check(empty), 'Missing auth_key, auth_timestamp or auth_signature');
  });

  it('rejects another app key even with a signature made with our secret', () => {
    const s = signed();
    s.params.set('auth_key', 'other-key');
    s.params.set('auth_signature', hmacSha256Hex(SECRET, httpStringToSign('POST', PATH, s.params)));
    assert.equal(check(s), 'Unknown auth_key');
  });

  it('requires body_md5 when there is a body, and it must match', () => {
    assert.equal(check(signed({ omit: ['body_md5'] })), 'body_md5 is required with a body');
    assert.equal(check(signed({ md5: md5Hex('something else') })), 'body_md5 does not match the body');
    // A correctly signed md5 of a different body than the one sent.
    const s = signed();
    assert.equal(
      requestAuthProblem(app, 'POST', [PATH], s.params, Buffer.from(BODY.toString() + ' '), NOW),
      'body_md5 does not match the body',
    );
  });

  it('an empty body needs no body_md5, and a given one must be md5 of ""', () => {
    assert.equal(check(signed({ body: Buffer.alloc(0) }), 'POST'), null);
    assert.equal(check(signed({ body: Buffer.alloc(0), md5: md5Hex('') })), null);
    assert.equal(check(signed({ body: Buffer.alloc(0), md5: 'ec365a775a4cd0599faeb73354201b6f' })), 'body_md5 does not match the body');
  });

  it('rejects a bad signature', () => {
    const s = signed();
    const sig = s.params.get('auth_signature')!;
    s.params.set('auth_signature', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
    assert.equal(check(s), 'Invalid signature');
    s.params.set('auth_signature', 'short');
    assert.equal(check(s), 'Invalid signature');
    // A param added after signing invalidates it.
    const t = signed();
    t.params.set('info', 'user_count');
    assert.equal(check(t), 'Invalid signature');
    // Signed for GET, sent as POST.
    assert.equal(check(signed({ method: 'GET' })), 'Invalid signature');
  });

  it('rejects auth_version other than 1.0', () => {
    for (const v of ['2.0', '1', '1.0.0', '']) {
      assert.equal(check(signed({ version: v })), 'Unsupported auth_version', `accepted auth_version ${JSON.stringify(v)}`);
    }
  });
});

// ---------------------------------------------------------------------------
describe('channels: channelInfo and channelNameProblem', () => {
  const cases: Array<[string, string, boolean]> = [
    ['my-channel', 'public', false],
    ['cache-news', 'public', true],
    ['cachenews', 'public', false],
    ['private-room', 'private', false],
    ['private-cache-room', 'private', true],
    ['private-encrypted-room', 'encrypted', false],
    ['private-encrypted-cache-room', 'encrypted', true],
    ['presence-room', 'presence', false],
    ['presence-cache-room', 'presence', true],
    ['#server-to-user-42', 'user', false],
    // prefixes must be at the start
    ['x-private-room', 'public', false],
    ['public-presence-room', 'public', false],
  ];
  for (const [name, kind, cache] of cases) {
    it(`${name} is ${kind}${cache ? ' (cache)' : ''}`, () => {
      assert.deepEqual(channelInfo(name), { kind, cache });
    });
  }

  it('needsAuth / allowsClientEvents by kind', () => {
    assert.deepEqual(
      (['public', 'private', 'encrypted', 'presence', 'user'] as const).map((k) => [needsAuth(k), allowsClientEvents(k)]),
      [
        [false, false],
        [true, true],
        [true, false],
        [true, true],
        [false, false],
      ],
    );
  });

  it('accepts every allowed character', () => {
    assert.equal(channelNameProblem('azAZ09_-=@,.;', 200), null);
    assert.equal(channelNameProblem('presence-a@b.c,d;e=f_g', 200), null);
    assert.equal(channelNameProblem('#server-to-user-u_1@x.y', 200), null);
  });

  it('rejects forbidden characters', () => {
    for (const bad of ['a b', 'a/b', 'a:b', 'a#b', '#foo', 'a*', 'é', 'a\nb', 'private-ä', 'a+b', '%20']) {
      assert.notEqual(channelNameProblem(bad, 200), null, `accepted ${JSON.stringify(bad)}`);
    }
  });

  it('#server-to-user- needs a valid, non-empty user id', () => {
    assert.notEqual(channelNameProblem('#server-to-user-', 200), null);
    assert.notEqual(channelNameProblem('#server-to-user-a b', 200), null);
    assert.notEqual(channelNameProblem('#server-to-user-#x', 200), null);
  });

  it('enforces the length limit inclusively, and null means none', () => {
    const at = 'a'.repeat(200);
    assert.equal(channelNameProblem(at, 200), null);
    assert.equal(channelNameProblem(at + 'a', 200), 'channel name is longer than 200 characters');
    assert.equal(channelNameProblem('private-' + 'a'.repeat(156), 164), null);
    assert.notEqual(channelNameProblem('private-' + 'a'.repeat(157), 164), null);
    assert.notEqual(channelNameProblem('#server-to-user-' + 'a'.repeat(200), 200), null);
    assert.equal(channelNameProblem('a'.repeat(5000), null), null);
  });

  it('rejects empty and non-string names', () => {
    for (const bad of ['', undefined, null, 42, {}, ['a'], true]) {
      assert.equal(channelNameProblem(bad, 200), 'channel name must be a non-empty string', `accepted ${JSON.stringify(bad)}`);
    }
  });
});

// ---------------------------------------------------------------------------
/** pusher-js 8's Protocol.decodeMessage (src/core/connection/protocol/protocol.ts), reproduced verbatim in logic. */
function pusherJsDecode(text: string): { event: string; channel?: string; data: unknown; user_id?: string } {
  const messageData = JSON.parse(text);
  let data = messageData.data;
  if (typeof data === 'string') {
    try {
      data = JSON.parse(messageData.data);
    } catch {
      /* keeps the raw string */
    }
  }
  const out: { event: string; channel?: string; data: unknown; user_id?: string } = {
    event: messageData.event,
    channel: messageData.channel,
    data,
  };
  if (messageData.user_id) out.user_id = messageData.user_id;
  return out;
}

const buf = (s: string | number[]): ArrayBuffer => {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
};

describe('frames: decoding client frames', () => {
  it('decodes a pusher-js subscribe frame', () => {
    const res = decodeClientFrame(buf('{"event":"pusher:subscribe","data":{"auth":"","channel":"c"}}'));
    assert.deepEqual(res, { ok: true, frame: { event: 'pusher:subscribe', data: { auth: '', channel: 'c' } } });
  });

  it('decodes UTF-8 payloads', () => {
    const res = decodeClientFrame(buf('{"event":"client-é","channel":"private-x","data":"ünï €"}'));
    assert.equal(res.ok, true);
    assert.deepEqual(res.ok && res.frame, { event: 'client-é', channel: 'private-x', data: 'ünï €' });
  });

  it('rejects invalid UTF-8', () => {
    // {"event":"x\xff"}
    const bytes = [...Buffer.from('{"event":"x'), 0xff, ...Buffer.from('"}')];
    assert.deepEqual(decodeClientFrame(buf(bytes)), { ok: false, reason: 'frame is not valid UTF-8' });
    // a truncated multi-byte sequence
    assert.deepEqual(decodeClientFrame(buf([0x7b, 0xe2, 0x82])), { ok: false, reason: 'frame is not valid UTF-8' });
  });

  it('rejects non-JSON', () => {
    for (const text of ['', 'hello', '{"event":', "{'event':'x'}", '{"event":"x"} trailing']) {
      assert.deepEqual(decodeClientFrame(buf(text)), { ok: false, reason: 'frame is not valid JSON' }, text);
    }
  });

  it('rejects JSON that is not an object', () => {
    for (const text of ['[]', '[{"event":"x"}]', 'null', '1', '"pusher:ping"', 'true']) {
      assert.deepEqual(decodeClientFrame(buf(text)), { ok: false, reason: 'frame must be a JSON object' }, text);
    }
  });

  it('rejects a missing, empty or non-string event', () => {
    for (const text of ['{}', '{"data":{}}', '{"event":""}', '{"event":1}', '{"event":null}', '{"event":["x"]}', '{"event":{"a":1}}']) {
      assert.deepEqual(decodeClientFrame(buf(text)), { ok: false, reason: 'frame must have a string "event"' }, text);
    }
  });

  it('dataAsObject accepts objects and JSON object strings only', () => {
    assert.deepEqual(dataAsObject({ channel: 'c' }), { channel: 'c' });
    assert.deepEqual(dataAsObject('{"channel":"c"}'), { channel: 'c' });
    assert.deepEqual(dataAsObject({}), {});
    for (const bad of ['not json', '[1]', '"str"', '1', 'null', null, undefined, 3, [{ a: 1 }], true]) {
      assert.equal(dataAsObject(bad), null, `accepted ${JSON.stringify(bad)}`);
    }
  });
});

describe('frames: encoders as pusher-js parses them', () => {
  it('connection_established double-encodes socket_id and activity_timeout', () => {
    const text = connectionEstablished('123.456', 120);
    assert.equal(typeof JSON.parse(text).data, 'string');
    assert.deepEqual(pusherJsDecode(text), {
      event: 'pusher:connection_established',
      channel: undefined,
      data: { socket_id: '123.456', activity_timeout: 120 },
    });
  });

  it('the concatenated frames of a connect are byte for byte what JSON encoding makes', () => {
    const taken = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const id = newSocketId(taken);
      assert.match(id, /^[1-9]\d*\.[1-9]\d*$/);
      assert.ok(!taken.has(id), 'ids are unique');
      taken.add(id);
      const json = JSON.stringify({
        event: 'pusher:connection_established',
        data: JSON.stringify({ socket_id: id, activity_timeout: 120 }),
      });
      assert.equal(connectionEstablished(id, 120), json);
    }
    for (const channel of ['a', 'cache-x', 'private-p', '#server-to-user-u1', '-_=@,.;']) {
      const json = JSON.stringify({ event: 'pusher_internal:subscription_succeeded', channel, data: '{}' });
      assert.equal(subscriptionSucceededFrame(channel), json);
      const presence = '{"presence":{"ids":["1"],"hash":{"1":null},"count":1}}';
      assert.deepEqual(JSON.parse(subscriptionSucceededFrame(channel, presence)), {
        event: 'pusher_internal:subscription_succeeded',
        channel,
        data: presence,
      });
    }
  });

  it('the app key of an upgrade path: decoded when percent-encoded, refused when malformed', () => {
    assert.equal(appKeyOf('/app/plain-key', ''), 'plain-key');
    assert.equal(appKeyOf('/ws/app/plain-key', '/ws'), 'plain-key');
    assert.equal(appKeyOf('/app/my%20key', ''), 'my key');
    assert.equal(appKeyOf('/app/%E0%A4%A', ''), null, 'malformed percent-encoding');
    assert.equal(appKeyOf('/app/a%2Fb', ''), null, 'a slash once decoded');
    assert.equal(appKeyOf('/app/a/b', ''), null);
    assert.equal(appKeyOf('/app/', ''), null);
    assert.equal(appKeyOf('/other/key', ''), null);
  });

  it('channel events carry data as a string that pusher-js parses back', () => {
    const text = encodeChannelEvent('my-event', 'my-channel', '{"a":1,"b":"ü"}');
    assert.deepEqual(JSON.parse(text), { event: 'my-event', channel: 'my-channel', data: '{"a":1,"b":"ü"}' });
    assert.deepEqual(pusherJsDecode(text), { event: 'my-event', channel: 'my-channel', data: { a: 1, b: 'ü' } });
  });

  it('a non-JSON data string reaches pusher-js unchanged', () => {
    const text = encodeChannelEvent('e', 'c', 'just "text" \n with \\ escapes');
    assert.equal(pusherJsDecode(text).data, 'just "text" \n with \\ escapes');
  });

  it('channel events with user_id expose it to pusher-js', () => {
    const text = encodeChannelEvent('client-x', 'presence-r', '{}', 'u1');
    assert.deepEqual(pusherJsDecode(text), { event: 'client-x', channel: 'presence-r', data: {}, user_id: 'u1' });
  });

  it('internal events like member_added decode to objects', () => {
    const text = encodeChannelEvent('pusher_internal:member_added', 'presence-r', JSON.stringify({ user_id: '1', user_info: { n: 'A' } }));
    assert.deepEqual(pusherJsDecode(text).data, { user_id: '1', user_info: { n: 'A' } });
  });

  it('client events relay data as sent (object or string)', () => {
    assert.deepEqual(JSON.parse(encodeClientEvent('client-a', 'private-c', { x: [1, 2] })), {
      event: 'client-a',
      channel: 'private-c',
      data: { x: [1, 2] },
    });
    assert.deepEqual(JSON.parse(encodeClientEvent('client-a', 'private-c', 'raw')), {
      event: 'client-a',
      channel: 'private-c',
      data: 'raw',
    });
    assert.deepEqual(pusherJsDecode(encodeClientEvent('client-a', 'presence-c', { x: 1 }, 'u9')), {
      event: 'client-a',
      channel: 'presence-c',
      data: { x: 1 },
      user_id: 'u9',
    });
  });

  it('pusher:error carries {code, message} that pusher-js reads directly', () => {
    assert.deepEqual(pusherJsDecode(errorFrame(4009, 'nope')), {
      event: 'pusher:error',
      channel: undefined,
      data: { code: 4009, message: 'nope' },
    });
    assert.deepEqual(JSON.parse(errorFrame(null, 'n', 'private-c')), {
      event: 'pusher:error',
      channel: 'private-c',
      data: { code: null, message: 'n' },
    });
  });

  it('subscription_error carries {type, error, status}', () => {
    assert.deepEqual(pusherJsDecode(subscriptionError('private-c', 'AuthError', 'bad sig', 401)), {
      event: 'pusher:subscription_error',
      channel: 'private-c',
      data: { type: 'AuthError', error: 'bad sig', status: 401 },
    });
  });

  it('ping, pong and plain events', () => {
    assert.deepEqual(JSON.parse(PING), { event: 'pusher:ping', data: {} });
    assert.deepEqual(JSON.parse(PONG), { event: 'pusher:pong', data: {} });
    assert.deepEqual(JSON.parse(encodeEvent('pusher:cache_miss', undefined)), { event: 'pusher:cache_miss' });
    assert.deepEqual(pusherJsDecode(encodeEvent('pusher:signin_success', { user_data: '{"id":"u"}' })).data, { user_data: '{"id":"u"}' });
  });
});

// ---------------------------------------------------------------------------
describe('origins: originAllowed', () => {
  it('an empty list or "*" allows everything, even no Origin header', () => {
    assert.equal(originAllowed([], ''), true);
    assert.equal(originAllowed([], 'https://evil.test'), true);
    assert.equal(originAllowed(['*'], ''), true);
    assert.equal(originAllowed(['https://a.test', '*'], 'https://evil.test'), true);
  });

  it('a non-empty list refuses a missing Origin', () => {
    assert.equal(originAllowed(['https://a.test'], ''), false);
  });

  it('an entry with a scheme matches exactly (scheme, host and port)', () => {
    const list = ['https://app.example.com'];
    assert.equal(originAllowed(list, 'https://app.example.com'), true);
    assert.equal(originAllowed(list, 'HTTPS://APP.EXAMPLE.COM'), true);
    assert.equal(originAllowed(list, 'https://app.example.com/'), true);
    assert.equal(originAllowed(list, 'http://app.example.com'), false);
    assert.equal(originAllowed(list, 'https://app.example.com:8443'), false);
    assert.equal(originAllowed(list, 'https://app.example.com.evil.test'), false);
    assert.equal(originAllowed(list, 'https://evilapp.example.com'), false);
  });

  it('an entry without a scheme matches http and https', () => {
    const list = ['example.com', 'localhost:3000'];
    assert.equal(originAllowed(list, 'https://example.com'), true);
    assert.equal(originAllowed(list, 'http://example.com'), true);
    assert.equal(originAllowed(list, 'http://localhost:3000'), true);
    assert.equal(originAllowed(list, 'http://localhost:3001'), false);
    assert.equal(originAllowed(list, 'https://sub.example.com'), false);
    assert.equal(originAllowed(list, 'https://example.community'), false);
  });

  it('"*.example.com" matches subdomains but not the bare domain or look-alikes', () => {
    const list = ['*.example.com'];
    assert.equal(originAllowed(list, 'https://a.example.com'), true);
    assert.equal(originAllowed(list, 'http://a.b.example.com'), true);
    assert.equal(originAllowed(list, 'https://example.com'), false);
    assert.equal(originAllowed(list, 'https://evil-example.com'), false);
    assert.equal(originAllowed(list, 'https://aexample.com'), false);
    assert.equal(originAllowed(list, 'https://a.example.com.evil.test'), false);
    assert.equal(originAllowed(list, 'https://a.exampleXcom'), false);
  });

  it('a wildcard entry with a scheme keeps the scheme', () => {
    const list = ['https://*.example.com'];
    assert.equal(originAllowed(list, 'https://a.example.com'), true);
    assert.equal(originAllowed(list, 'http://a.example.com'), false);
  });

  it('any one matching entry is enough', () => {
    const list = ['https://a.test', 'b.test', '*.c.test'];
    assert.equal(originAllowed(list, 'http://b.test'), true);
    assert.equal(originAllowed(list, 'https://x.c.test'), true);
    assert.equal(originAllowed(list, 'http://a.test'), false);
    assert.equal(originAllowed(list, 'null'), false);
  });
});

// ---------------------------------------------------------------------------
describe('presence-book: PresenceBook', () => {
  const A = 'app';
  const CH = 'presence-room';

  it('counts one member per user across sockets and nodes', () => {
    const book = new PresenceBook();
    assert.equal(book.join(A, CH, 'n1', 'u1', { v: 1 }), true);
    assert.equal(book.join(A, CH, 'n1', 'u1', { v: 2 }), false);
    assert.equal(book.join(A, CH, 'n2', 'u1', { v: 3 }), false);
    assert.equal(book.join(A, CH, 'n2', 'u2', null), true);
    assert.equal(book.memberCount(A, CH), 2);
    assert.deepEqual([...book.members(A, CH).keys()].sort(), ['u1', 'u2']);
    assert.deepEqual(book.members(A, CH).get('u1')?.info, { v: 3 });
    assert.deepEqual(
      [...book.members(A, CH).get('u1')!.nodes],
      [
        ['n1', 2],
        ['n2', 1],
      ],
    );

    // u1 leaves only when its last socket on any node leaves
    assert.equal(book.leave(A, CH, 'n1', 'u1'), false);
    assert.equal(book.leave(A, CH, 'n1', 'u1'), false);
    assert.equal(book.has(A, CH, 'u1'), true);
    assert.equal(book.leave(A, CH, 'n2', 'u1'), true);
    assert.equal(book.has(A, CH, 'u1'), false);
    assert.equal(book.memberCount(A, CH), 1);
    // leaving again, or leaving an unknown user/channel, is not a departure
    assert.equal(book.leave(A, CH, 'n2', 'u1'), false);
    assert.equal(book.leave(A, 'presence-none', 'n1', 'u1'), false);
    assert.equal(book.leave(A, CH, 'n2', 'u2'), true);
    assert.equal(book.memberCount(A, CH), 0);
    assert.deepEqual([...book.channelsOf(A)], []);
  });

  it('keeps apps and channels apart', () => {
    const book = new PresenceBook();
    book.join('a1', CH, 'n1', 'u1', {});
    book.join('a2', CH, 'n1', 'u1', {});
    book.join('a1', 'presence-other', 'n1', 'u2', {});
    book.join('a1', 'presence-other', 'n1', 'u3', {});
    assert.deepEqual(
      new Map(book.channelsOf('a1')),
      new Map([
        [CH, 1],
        ['presence-other', 2],
      ]),
    );
    assert.deepEqual([...book.channelsOf('a2')], [[CH, 1]]);
    assert.equal(book.leave('a2', CH, 'n1', 'u1'), true);
    assert.equal(book.has('a1', CH, 'u1'), true);
  });

  it('dropNode returns only users who left a channel entirely', () => {
    const book = new PresenceBook();
    book.join(A, CH, 'n1', 'only-n1', {});
    book.join(A, CH, 'n1', 'only-n1', {});
    book.join(A, CH, 'n1', 'both', {});
    book.join(A, CH, 'n2', 'both', {});
    book.join(A, CH, 'n2', 'only-n2', {});
    book.join(A, 'presence-b', 'n1', 'only-n1', {});
    book.join('other', CH, 'n1', 'x', {});

    const gone = book.dropNode('n1');
    const key = (r: { appId: string; channel: string; userId: string }) => `${r.appId}/${r.channel}/${r.userId}`;
    assert.deepEqual(gone.map(key).sort(), [`${A}/${CH}/only-n1`, `${A}/presence-b/only-n1`, `other/${CH}/x`].sort());
    assert.deepEqual([...book.members(A, CH).keys()].sort(), ['both', 'only-n2']);
    assert.deepEqual([...book.members(A, CH).get('both')!.nodes], [['n2', 1]]);
    assert.equal(book.memberCount(A, 'presence-b'), 0);
    assert.deepEqual([...book.channelsOf('other')], []);
    assert.deepEqual(book.dropNode('n1'), []);
    assert.deepEqual(book.entriesOf('n2').map(key).sort(), [`${A}/${CH}/both`, `${A}/${CH}/only-n2`]);
  });

  it("entriesOf lists this node's sockets per user", () => {
    const book = new PresenceBook();
    book.join(A, CH, 'n1', 'u1', { a: 1 });
    book.join(A, CH, 'n1', 'u1', { a: 1 });
    book.join(A, CH, 'n2', 'u2', { b: 2 });
    assert.deepEqual(book.entriesOf('n1'), [{ appId: A, channel: CH, userId: 'u1', info: { a: 1 }, sockets: 2 }]);
    assert.deepEqual(book.entriesOf('n3'), []);
  });
});
