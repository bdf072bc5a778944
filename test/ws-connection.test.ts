// The WebSocket connection lifecycle: handshake, refusals with their close codes,
// ping/pong and server-side liveness, and robustness against malformed frames.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { DEMO_APP, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import {
  cleanup,
  connected,
  dataOf,
  pusherClient,
  rawSocket,
  roundTrip,
  serverSdk,
  sleep,
  waitFor,
  type PusherClient,
  type RawSocket,
} from './helpers/clients.js';

/** Writes a raw request and resolves with the response head (up to the blank line). */
function responseHead(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => (sock.destroy(), reject(new Error(`no response head in 3 s: ${got}`))), 3000);
    sock.on('data', (d) => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end !== -1) {
        clearTimeout(timer);
        sock.destroy();
        resolve(got.slice(0, end));
      }
    });
    sock.on('error', (err) => (clearTimeout(timer), reject(err)));
    sock.write(request);
  });
}

const PATH = (key: string, query = 'protocol=7&client=js&version=8.6.0') => `/app/${key}?${query}`;

const DISABLED_APP: TestApp = { id: 'disabled-id', key: 'disabled-key', secret: 'disabled-secret', enabled: false };
const QUOTA_APP: TestApp = { id: 'quota-id', key: 'quota-key', secret: 'quota-secret', max_connections: 2 };
const ORIGIN_APP: TestApp = {
  id: 'origin-id',
  key: 'origin-key',
  secret: 'origin-secret',
  allowed_origins: ['https://good.example'],
};

type Frame = RawSocket['frames'][number];

/** Opens a raw socket and waits for connection_established; returns the socket and its parsed handshake. */
async function rawConnected(node: ChorusNode, path = PATH('app-key'), headers: Record<string, string> = {}) {
  const sock = await rawSocket(node, path, headers);
  const frame = await sock.next((f) => f.event === 'pusher:connection_established');
  return { sock, frame, handshake: dataOf<{ socket_id: string; activity_timeout: number }>(frame) };
}

/** A refused connection gets exactly one pusher:error frame with the code, then a close with that same code. */
async function expectRefusal(node: ChorusNode, path: string, code: number, headers: Record<string, string> = {}) {
  const sock = await rawSocket(node, path, headers);
  const closed = await Promise.race([sock.closed, sleep(5000).then(() => null)]);
  assert.ok(closed, `socket on ${path} was not closed by the server`);
  assert.equal(closed.code, code, `close code for ${path}`);
  assert.equal(sock.frames.length, 1, `frames on ${path}: ${JSON.stringify(sock.frames)}`);
  const [frame] = sock.frames;
  assert.equal(frame.event, 'pusher:error');
  const data = dataOf<{ code: number; message: string }>(frame);
  assert.equal(data.code, code);
  assert.equal(typeof data.message, 'string');
  assert.ok(data.message.length > 0);
}

const isPusherError = (f: Frame) => f.event === 'pusher:error';

describe('ws connection: handshake', () => {
  let node: ChorusNode;
  let tuned: ChorusNode;
  const open: Array<RawSocket | PusherClient> = [];
  before(async () => {
    [node, tuned] = await Promise.all([startNode(), startNode({ config: { activity_timeout: 7 } })]);
  });
  after(async () => {
    await cleanup(...open);
    await cleanup(node, tuned);
  });

  it('sends connection_established first, with data as a JSON string, a socket id and activity_timeout 120', async () => {
    const { sock, frame, handshake } = await rawConnected(node);
    open.push(sock);
    assert.equal(sock.frames[0], frame, 'connection_established is the first frame');
    assert.equal(typeof frame.data, 'string', 'data is double-encoded');
    assert.match(handshake.socket_id, /^\d+\.\d+$/);
    assert.equal(handshake.activity_timeout, 120);
  });

  it('advertises the configured activity_timeout', async () => {
    const { sock, handshake } = await rawConnected(tuned);
    open.push(sock);
    assert.equal(handshake.activity_timeout, 7);
    assert.match(handshake.socket_id, /^\d+\.\d+$/);
  });

  it('gives every connection its own socket id, and pusher-js accepts the handshake', async () => {
    const a = pusherClient(node);
    const b = pusherClient(node);
    open.push(a, b);
    const [idA, idB] = await Promise.all([connected(a), connected(b)]);
    assert.match(idA, /^\d+\.\d+$/);
    assert.match(idB, /^\d+\.\d+$/);
    assert.notEqual(idA, idB);
  });

  it('echoes the first offered subprotocol when it is a short token, and none for a long or odd offer', async () => {
    const opened = async (protocols: string | string[]) => {
      const ws = new WebSocket(`ws://127.0.0.1:${node.port}${PATH(DEMO_APP.key)}`, protocols);
      const upgraded = new Promise<string | undefined>((resolve, reject) => {
        ws.once('upgrade', (res) => resolve(res.headers['sec-websocket-protocol']));
        ws.once('error', reject);
      });
      try {
        return await upgraded;
      } finally {
        ws.terminate();
      }
    };
    assert.equal(await opened(['pusher', 'other']), 'pusher');
    // ws refuses a 101 without the protocol it asked for, so the odd offers go raw.
    for (const offer of ['z'.repeat(4000), 'a b', '"quoted"']) {
      const head = await responseHead(
        node.port,
        `GET ${PATH(DEMO_APP.key)} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${offer}\r\n\r\n`,
      );
      assert.match(head, /^HTTP\/1\.1 101 /);
      assert.doesNotMatch(head, /sec-websocket-protocol/i);
    }
  });
});

describe('ws connection: refusals', () => {
  let node: ChorusNode;
  const open: Array<RawSocket | PusherClient> = [];
  before(async () => {
    node = await startNode({
      config: { app_manager: { array: { apps: [DEMO_APP, DISABLED_APP, QUOTA_APP, ORIGIN_APP] } } },
    });
  });
  after(async () => {
    await cleanup(...open);
    await cleanup(node);
  });

  it('refuses an unknown app key with 4001', () => expectRefusal(node, PATH('no-such-key'), 4001));

  it('refuses a disabled app with 4003', () => expectRefusal(node, PATH('disabled-key'), 4003));

  it('refuses a path that is not /app/{key} with 4005', async () => {
    await expectRefusal(node, '/foo?protocol=7', 4005);
    await expectRefusal(node, '/app/?protocol=7', 4005);
    await expectRefusal(node, '/app/app-key/extra?protocol=7', 4005);
  });

  it('refuses a missing protocol with 4008', async () => {
    await expectRefusal(node, '/app/app-key', 4008);
    await expectRefusal(node, '/app/app-key?client=js&version=8.6.0', 4008);
  });

  it('refuses a non-numeric protocol with 4006', async () => {
    await expectRefusal(node, PATH('app-key', 'protocol=abc'), 4006);
    await expectRefusal(node, PATH('app-key', 'protocol=7.1'), 4006);
  });

  it('refuses an unsupported protocol with 4007', async () => {
    await expectRefusal(node, PATH('app-key', 'protocol=3'), 4007);
    await expectRefusal(node, PATH('app-key', 'protocol=99'), 4007);
  });

  it('accepts protocol 7 with the query params pusher-js sends', async () => {
    const { sock } = await rawConnected(node, PATH('app-key', 'protocol=7&client=js&version=8.6.0&flash=false'));
    open.push(sock);
  });

  it('refuses an Origin outside allowed_origins with 4009 and accepts an allowed one', async () => {
    await expectRefusal(node, PATH('origin-key'), 4009, { Origin: 'https://evil.example' });
    const { sock } = await rawConnected(node, PATH('origin-key'), { Origin: 'https://good.example' });
    open.push(sock);
    // Same host under another scheme is not the listed origin.
    await expectRefusal(node, PATH('origin-key'), 4009, { Origin: 'http://good.example' });
  });

  it('refuses a connection over the app max_connections with 4004 and admits one after a disconnect', async () => {
    const first = await rawConnected(node, PATH('quota-key'));
    const second = await rawConnected(node, PATH('quota-key'));
    try {
      await expectRefusal(node, PATH('quota-key'), 4004);
      // The quota is per app: the demo app is unaffected.
      const other = await rawConnected(node);
      other.sock.close();
      first.sock.close();
      await first.sock.closed;
      // The server may see the close a moment after the client does; retry a few times.
      let admitted: Awaited<ReturnType<typeof rawConnected>> | null = null;
      for (let i = 0; i < 20 && !admitted; i++) {
        const sock = await rawSocket(node, PATH('quota-key'));
        const f = await sock.next(() => true, 2000);
        if (f.event === 'pusher:connection_established') {
          admitted = { sock, frame: f, handshake: dataOf(f) };
        } else {
          assert.equal(dataOf<{ code: number }>(f).code, 4004);
          await sock.closed;
          await sleep(50);
        }
      }
      assert.ok(admitted, 'a new connection was admitted after one disconnected');
      // ...and the quota holds again at two.
      await expectRefusal(node, PATH('quota-key'), 4004);
      admitted.sock.close();
    } finally {
      first.sock.close();
      second.sock.close();
    }
  });

  it('pusher-js sees the refusal code and stops without reconnecting', async () => {
    const client = pusherClient(node, { app: { id: 'x', key: 'no-such-key', secret: 'x' } });
    open.push(client);
    const errors: Array<{ type: string; error?: { type: string; data: { code: number } } }> = [];
    const states: string[] = [];
    client.connection.bind('error', (e: (typeof errors)[number]) => errors.push(e));
    client.connection.bind('state_change', (s: { current: string }) => states.push(s.current));
    const err = await waitFor<(typeof errors)[number]>(client.connection, 'error');
    assert.equal(err.error?.data.code, 4001);
    // Give pusher-js time to (wrongly) retry; it must stay down after one attempt.
    await sleep(1500);
    assert.equal(errors.length, 1, `errors: ${JSON.stringify(errors)}`);
    assert.ok(['disconnected', 'failed', 'unavailable'].includes(client.connection.state), client.connection.state);
    // The first 'connecting' happens inside the constructor, before our listener; any later one is a retry.
    assert.ok(states.filter((s) => s === 'connecting').length <= 1, `states: ${states}`);
    assert.ok(!states.includes('connected'));
  });

  it('pusher-js sees 4003 for a disabled app', async () => {
    const client = pusherClient(node, { app: DISABLED_APP });
    open.push(client);
    const err = await waitFor<{ error?: { data: { code: number } } }>(client.connection, 'error');
    assert.equal(err.error?.data.code, 4003);
  });
});

describe("ws connection: Sockudo's default-app environment", () => {
  let node: ChorusNode;
  before(async () => {
    node = await startNode({
      env: {
        SOCKUDO_DEFAULT_APP_ID: 'env-id',
        SOCKUDO_DEFAULT_APP_KEY: 'env-key',
        SOCKUDO_DEFAULT_APP_SECRET: 'env-secret',
        SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS: '3',
      },
    });
  });
  after(() => cleanup(node));

  it('SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS caps the default app: the 4th socket gets 4004', async () => {
    const held = [];
    try {
      for (let i = 0; i < 3; i++) held.push((await rawConnected(node, PATH('env-key'))).sock);
      await expectRefusal(node, PATH('env-key'), 4004);
    } finally {
      for (const sock of held) sock.close();
    }
  });
});

describe('ws connection: ping, pong and liveness', () => {
  let node: ChorusNode;
  const open: RawSocket[] = [];
  before(async () => {
    node = await startNode({ config: { activity_timeout: 2 } });
  });
  after(async () => {
    await cleanup(...open);
    await cleanup(node);
  });

  it('answers pusher:ping with pusher:pong (object and string data)', async () => {
    const { sock } = await rawConnected(node);
    open.push(sock);
    sock.send({ event: 'pusher:ping', data: {} });
    const pong = await sock.next((f) => f.event !== 'pusher:ping');
    assert.equal(pong.event, 'pusher:pong');
    sock.send({ event: 'pusher:ping', data: '{}' });
    assert.equal((await sock.next((f) => f.event !== 'pusher:ping')).event, 'pusher:pong');
    sock.send({ event: 'pusher:ping' });
    assert.equal((await sock.next((f) => f.event !== 'pusher:ping')).event, 'pusher:pong');
  });

  it('pings a silent socket and closes it with 4201 when no pong comes; a socket that answers stays open', async () => {
    const silent = await rawConnected(node);
    const polite = await rawConnected(node);
    open.push(silent.sock, polite.sock);
    let pongsSent = 0;
    polite.sock.ws.on('message', (buf) => {
      const f = JSON.parse(buf.toString()) as Frame;
      if (f.event === 'pusher:ping') {
        pongsSent++;
        polite.sock.send({ event: 'pusher:pong', data: {} });
      }
    });
    const ping = await silent.sock.next((f) => f.event === 'pusher:ping', 8000);
    assert.equal(ping.event, 'pusher:ping');
    const closed = await Promise.race([silent.sock.closed, sleep(8000).then(() => null)]);
    assert.ok(closed, 'the silent socket was not closed');
    assert.equal(closed.code, 4201);
    // The polite socket was pinged at least once too and is still open and served.
    await polite.sock.next((f) => f.event === 'pusher:ping', 5000).catch(() => undefined);
    assert.ok(pongsSent >= 1, 'the polite socket was pinged');
    assert.equal(polite.sock.ws.readyState, WebSocket.OPEN);
    polite.sock.send({ event: 'pusher:ping', data: {} });
    await polite.sock.next((f) => f.event === 'pusher:pong');
  });

  it('counts any inbound frame as activity (a chatty client is not pinged)', async () => {
    const { sock } = await rawConnected(node);
    open.push(sock);
    // Send something every 500 ms for 3.5 s (longer than activity_timeout 2 s).
    for (let i = 0; i < 7; i++) {
      sock.send({ event: 'pusher:ping', data: {} });
      await sleep(500);
    }
    assert.equal(sock.frames.filter((f) => f.event === 'pusher:ping').length, 0);
    assert.equal(sock.ws.readyState, WebSocket.OPEN);
  });
});

describe('ws connection: malformed frames', () => {
  let node: ChorusNode;
  let bad: RawSocket;
  const open: Array<RawSocket | PusherClient> = [];
  before(async () => {
    node = await startNode({ config: { websocket_max_payload_kb: 4 } });
    bad = (await rawConnected(node)).sock;
    open.push(bad);
  });
  after(async () => {
    await cleanup(...open);
    await cleanup(node);
  });

  /** Sends a frame and expects a pusher:error that does not tell pusher-js to reconnect, with the socket left open. */
  async function expectSoftError(send: () => void, what: string) {
    send();
    const f = await bad.next((x) => x.event !== 'pusher:pong');
    assert.ok(isPusherError(f), `${what}: expected pusher:error, got ${JSON.stringify(f)}`);
    const data = dataOf<{ code: number | null; message: string }>(f);
    assert.equal(typeof data.message, 'string', what);
    assert.ok(data.code === null || (data.code >= 4300 && data.code < 4400), `${what}: code ${data.code}`);
    // Still served: a ping is answered on the same socket.
    bad.send({ event: 'pusher:ping', data: {} });
    const pong = await bad.next();
    assert.equal(pong.event, 'pusher:pong', `${what}: socket still answers after the bad frame`);
  }

  it('answers invalid JSON with pusher:error', () => expectSoftError(() => bad.sendRaw('{not json'), 'invalid JSON'));

  it('answers plain text with pusher:error', () => expectSoftError(() => bad.sendRaw('hello'), 'plain text'));

  it('answers a JSON array with pusher:error', () => expectSoftError(() => bad.sendRaw('[{"event":"pusher:ping"}]'), 'JSON array'));

  it('answers JSON scalars with pusher:error', async () => {
    await expectSoftError(() => bad.sendRaw('42'), 'number');
    await expectSoftError(() => bad.sendRaw('null'), 'null');
    await expectSoftError(() => bad.sendRaw('"pusher:ping"'), 'string');
  });

  it('answers an object without a string event with pusher:error', async () => {
    await expectSoftError(() => bad.send({ data: {} }), 'no event');
    await expectSoftError(() => bad.send({ event: 42 }), 'numeric event');
    await expectSoftError(() => bad.send({ event: '' }), 'empty event');
  });

  it('answers a binary frame with pusher:error', () =>
    expectSoftError(() => bad.sendRaw(Buffer.from(JSON.stringify({ event: 'pusher:ping', data: {} })), true), 'binary'));

  it('answers an unknown pusher:* event and an unknown non-client event with pusher:error', async () => {
    await expectSoftError(() => bad.send({ event: 'pusher:bogus', data: {} }), 'unknown pusher event');
    await expectSoftError(() => bad.send({ event: 'whatever', data: {} }), 'unknown event');
  });

  it('answers pusher:subscribe with unusable data with a refusal and keeps the socket', async () => {
    bad.send({ event: 'pusher:subscribe', data: 'not json' });
    const f = await bad.next();
    assert.ok(['pusher:subscription_error', 'pusher:error'].includes(f.event), JSON.stringify(f));
    bad.send({ event: 'pusher:subscribe', data: { channel: 42 } });
    const g = await bad.next();
    assert.ok(['pusher:subscription_error', 'pusher:error'].includes(g.event), JSON.stringify(g));
    bad.send({ event: 'pusher:ping', data: {} });
    assert.equal((await bad.next()).event, 'pusher:pong');
  });

  it('rejects a text frame with invalid UTF-8 (pusher:error, or uWS failing the connection) without harming the node', async () => {
    const { sock } = await rawConnected(node);
    open.push(sock);
    // ws does not validate outgoing text, so these bytes go out as a text frame.
    sock.sendRaw(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), false);
    const outcome = await Promise.race([
      sock.next((f) => f.event !== 'pusher:connection_established', 5000).then((f) => ({ frame: f })),
      sock.closed.then((c) => ({ close: c })),
    ]);
    if ('frame' in outcome) {
      assert.equal(outcome.frame.event, 'pusher:error', JSON.stringify(outcome.frame));
    } else {
      // uWS fails the connection itself: a 1007 close or a dropped TCP connection (1006 at the client).
      assert.ok([1006, 1007].includes(outcome.close.code), `close code ${outcome.close.code}`);
    }
  });

  it('closes a socket that sends a frame over websocket_max_payload_kb', async () => {
    const { sock } = await rawConnected(node);
    open.push(sock);
    // Under the limit is fine...
    sock.send({ event: 'pusher:ping', data: { pad: 'x'.repeat(3000) } });
    assert.equal((await sock.next((f) => f.event === 'pusher:pong')).event, 'pusher:pong');
    // ...over it closes the connection.
    sock.send({ event: 'pusher:ping', data: { pad: 'x'.repeat(5 * 1024) } });
    const closed = await Promise.race([sock.closed, sleep(5000).then(() => null)]);
    assert.ok(closed, 'the server did not close the oversize sender');
    // RFC 6455's 1009 with a reason naming the limit, not a dropped TCP connection (1006).
    assert.equal(closed.code, 1009);
    assert.equal(closed.reason, 'frame over 4 KB (websocket_max_payload_kb)');
    assert.equal(sock.frames.filter((f) => f.event === 'pusher:pong').length, 1, 'the oversize ping was not answered');
  });

  it('cuts a frame far over the limit before reading it (uWS: 1006), and serves the next connection', async () => {
    const { sock } = await rawConnected(node);
    open.push(sock);
    // 4 KB limit: uWS reads frames up to 16 KB; past that it drops the connection unread.
    sock.send({ event: 'pusher:ping', data: { pad: 'x'.repeat(40 * 1024) } });
    const closed = await Promise.race([sock.closed, sleep(5000).then(() => null)]);
    assert.ok(closed, 'the server did not close the oversize sender');
    assert.ok(closed.code === 1006 || closed.code === 1009, `close code ${closed.code}`);
    const { sock: next } = await rawConnected(node);
    open.push(next);
    await roundTrip(next);
  });

  it('keeps serving: a well-behaved pusher-js client subscribes and receives an SDK event after all that', async () => {
    const client = pusherClient(node);
    open.push(client);
    await connected(client);
    const channel = client.subscribe('after-the-storm');
    await waitFor(channel, 'pusher:subscription_succeeded');
    const got = waitFor<{ ok: boolean }>(channel, 'calm');
    const res = await serverSdk(node).trigger('after-the-storm', 'calm', { ok: true });
    assert.equal(res.status, 200);
    assert.deepEqual(await got, { ok: true });
    // The bad socket is still connected too.
    assert.equal(bad.ws.readyState, WebSocket.OPEN);
  });
});
