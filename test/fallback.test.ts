// Issue 19: pusher-js's HTTP fallbacks (xhr_streaming, xhr_polling) on one node. The
// Node build of pusher-js, forced onto one HTTP transport, does what a WebSocket client
// does beside a WebSocket client (presence, client events both ways, sign-in and
// server-to-user, the HTTP API sees it); raw requests check the wire, every refusal
// and the bounds (expiry, per-address cap, slow consumers, bodies, drain).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { get as httpGet, request as httpRequest } from 'node:http';
import { DEMO_APP, startNode, type ChorusNode } from './helpers/node.js';
import { connected, dataOf, pusherClient, serverSdk, sleep, until, waitFor, type PusherClient } from './helpers/clients.js';
import {
  call,
  fallbackClient,
  openStream,
  parseLines,
  Q,
  sendFrames,
  sessionBase,
  transportOf,
  type FallbackTransport,
} from './helpers/fallback.js';

const GATED_APP = { id: 'gated', key: 'gated-key', secret: 'gated-secret', allowed_origins: ['https://good.example'] };

function metricsText(node: ChorusNode): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port: node.metricsPort!, path: '/metrics' }, (r) => {
      let body = '';
      r.on('data', (c) => (body += c));
      r.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

const TRANSPORTS: FallbackTransport[] = ['xhr_streaming', 'xhr_polling'];

describe('HTTP fallbacks on one node', () => {
  let node: ChorusNode;
  const clients: PusherClient[] = [];
  const track = (c: PusherClient) => (clients.push(c), c);

  before(async () => {
    node = await startNode({
      config: {
        app_manager: { array: { apps: [DEMO_APP, GATED_APP] } },
        http_fallback: { disconnect_delay_seconds: 1, max_sessions_per_ip: 40 },
        websocket_max_payload_kb: 4,
      },
    });
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await node?.stop();
  });

  for (const transport of TRANSPORTS) {
    it(`${transport}: pusher-js subscribes, receives, shares presence and client events with a WebSocket client, signs in`, async () => {
      const sdk = serverSdk(node);
      // Ids of their own per transport: the previous test's members may still be leaving.
      const [alice, bob] = [`alice-${transport}`, `bob-${transport}`];
      const fb = track(fallbackClient(node.port, transport, { user: { user_id: alice }, signinUser: { id: alice } }));
      const ws = track(pusherClient(node, { user: { user_id: bob } }));
      const fbSocket = await connected(fb, 8000);
      await connected(ws);
      assert.equal(transportOf(fb), transport);
      assert.match(fbSocket, /^\d+\.\d+$/);

      const news = fb.subscribe('news');
      await waitFor(news, 'pusher:subscription_succeeded');
      const got = waitFor<{ n: number }>(news, 'headline');
      await sdk.trigger('news', 'headline', { n: 1 });
      assert.deepEqual(await got, { n: 1 });

      // Presence across the two transports.
      const fbRoom = fb.subscribe('presence-room');
      await waitFor(fbRoom, 'pusher:subscription_succeeded');
      const wsRoom = ws.subscribe('presence-room');
      const joined = waitFor<{ id: string }>(fbRoom, 'pusher:member_added');
      const wsMembers = await waitFor<{ count: number; each(cb: (m: { id: string }) => void): void }>(
        wsRoom,
        'pusher:subscription_succeeded',
      );
      const ids: string[] = [];
      wsMembers.each((m) => ids.push(m.id));
      assert.deepEqual(ids.sort(), [alice, bob]);
      assert.equal((await joined).id, bob);
      const users = (await (await sdk.get({ path: '/channels/presence-room/users' })).json()) as { users: Array<{ id: string }> };
      assert.deepEqual(users.users.map((u) => u.id).sort(), [alice, bob]);

      // Client events both ways, never back to the sender.
      const fromFb = waitFor<{ from: string }>(wsRoom, 'client-wave');
      let echoed = 0;
      fbRoom.bind('client-wave', (d: { from: string }) => d.from === 'fb' && echoed++);
      fbRoom.trigger('client-wave', { from: 'fb' });
      assert.deepEqual(await fromFb, { from: 'fb' });
      const fromWs = waitFor<{ from: string }>(fbRoom, 'client-wave');
      wsRoom.trigger('client-wave', { from: 'ws' });
      assert.deepEqual(await fromWs, { from: 'ws' });
      assert.equal(echoed, 0);

      // Sign-in, then an event to the user.
      fb.signin();
      await until(() => fb.user.serverToUserChannel?.subscribed === true, 5000, 'server-to-user channel subscribed');
      const toUser = waitFor<{ x: number }>(fb.user, 'note');
      await sdk.sendToUser(alice, 'note', { x: 7 });
      assert.deepEqual(await toUser, { x: 7 });

      const metrics = await metricsText(node);
      assert.match(metrics, new RegExp(`connections_by_transport\\{app_id="app-id",transport="${transport}"\\} 1`));
      assert.match(metrics, /connections_by_transport\{app_id="app-id",transport="ws"\} 1/);

      // pusher-js drops its request and sends nothing: the session expires and the member leaves.
      const left = waitFor<{ id: string }>(wsRoom, 'pusher:member_removed', 6000);
      fb.disconnect();
      assert.equal((await left).id, alice);
      ws.disconnect();
    });
  }

  it('speaks the wire: o, then a lines, a heartbeat reply, a replaced poll answered with h, CORS', async () => {
    const base = sessionBase('7/wirecheck');
    const first = await call(node.port, `${base}/xhr${Q}`, '', { Origin: 'https://page.example' });
    assert.equal(first.status, 200);
    assert.equal(first.headers['access-control-allow-origin'], '*');
    assert.equal(first.headers['cache-control'], 'no-store, no-cache, must-revalidate, max-age=0');
    const opened = parseLines(first.body);
    assert.deepEqual(opened.kinds, ['o', 'a']);
    assert.equal(opened.frames[0].event, 'pusher:connection_established');
    const { socket_id } = dataOf<{ socket_id: string }>(opened.frames[0]);

    // A held poll is answered by the next frame.
    const held = call(node.port, `${base}/xhr${Q}`);
    await sleep(100);
    const sent = await sendFrames(node, base, { event: 'pusher:ping', data: {} });
    assert.equal(sent.status, 204);
    assert.deepEqual(parseLines((await held).body).frames, [{ event: 'pusher:pong', data: {} }]);

    // `[]` is a heartbeat; invalid frames get the same errors as over a WebSocket.
    assert.equal((await call(node.port, `${base}/xhr_send`, '[]')).status, 204);
    assert.equal((await call(node.port, `${base}/xhr_send`, '["not json"]')).status, 204);
    const errors = parseLines((await call(node.port, `${base}/xhr${Q}`)).body).frames;
    assert.equal(errors[0].event, 'pusher:error');
    assert.match(String((errors[0].data as { message: string }).message), /not valid JSON/);

    // A second poll replaces the first (pusher-js drops a poll before it opens the next).
    const one = call(node.port, `${base}/xhr${Q}`);
    await sleep(100);
    const two = call(node.port, `${base}/xhr${Q}`);
    assert.equal((await one).body, 'h\n');
    await sendFrames(node, base, { event: 'pusher:ping', data: {} });
    assert.equal(parseLines((await two).body).frames[0].event, 'pusher:pong');

    // The HTTP API counts the session as a connection of the app.
    const sdk = serverSdk(node);
    await sendFrames(node, base, { event: 'pusher:subscribe', data: { channel: 'wire' } });
    const succeeded = parseLines((await call(node.port, `${base}/xhr${Q}`)).body).frames;
    assert.equal(succeeded[0].event, 'pusher_internal:subscription_succeeded');
    const info = (await (await sdk.get({ path: '/channels/wire', params: { info: 'subscription_count' } })).json()) as {
      occupied: boolean;
      subscription_count: number;
    };
    assert.equal(info.occupied, true);
    assert.equal(info.subscription_count, 1);
    // An event excluding this socket skips it.
    const poll = call(node.port, `${base}/xhr${Q}`);
    await sdk.trigger('wire', 'skipped', {}, { socket_id });
    await sdk.trigger('wire', 'kept', {});
    const events = parseLines((await poll).body).frames.map((f) => f.event);
    assert.ok(!events.includes('skipped') && events.includes('kept'), events.join());

    // CORS preflight for the fallback paths.
    const pre = await new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
      const r = httpRequest(
        {
          host: '127.0.0.1',
          port: node.port,
          path: `${base}/xhr_send`,
          method: 'OPTIONS',
          headers: {
            Origin: 'https://page.example',
            'Access-Control-Request-Method': 'POST',
            'Access-Control-Request-Headers': 'content-type',
          },
        },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, headers: res.headers });
        },
      );
      r.on('error', reject);
      r.end();
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], '*');
    assert.match(String(pre.headers['access-control-allow-methods']), /POST/);
  });

  it('refuses as a WebSocket would: unknown key, bad protocol, origin, malformed ids and bodies', async () => {
    const refusal = async (path: string, headers: Record<string, string> = {}) => {
      const a = await call(node.port, path, '', headers);
      assert.equal(a.status, 200, path);
      const lines = parseLines(a.body);
      assert.deepEqual(lines.kinds, ['o', 'a', 'c'], a.body);
      assert.equal(lines.frames[0].event, 'pusher:error');
      return lines.close;
    };
    assert.deepEqual(await refusal(`${sessionBase('1/nokey', 'no-such-key')}/xhr${Q}`), [4001, 'App key does not exist']);
    assert.equal((await refusal(`${sessionBase('1/noproto')}/xhr`))?.[0], 4008);
    assert.equal((await refusal(`${sessionBase('1/badproto')}/xhr_streaming?protocol=99`))?.[0], 4007);
    assert.equal((await refusal(`${sessionBase('1/origin', GATED_APP.key)}/xhr${Q}`, { Origin: 'https://evil.example' }))?.[0], 4009);
    const good = parseLines(
      (await call(node.port, `${sessionBase('1/origin-ok', GATED_APP.key)}/xhr${Q}`, '', { Origin: 'https://good.example' })).body,
    );
    assert.equal(good.frames[0].event, 'pusher:connection_established');

    // Ids pusher-js never makes, and sends to sessions nobody holds.
    assert.equal((await call(node.port, `${sessionBase('1/a.b')}/xhr${Q}`)).status, 404);
    assert.equal((await call(node.port, `${sessionBase('1/%zz', '%E0%A4%A')}/xhr${Q}`)).status, 404);
    assert.equal((await call(node.port, `${sessionBase('1/nobody')}/xhr_send`, '[]')).status, 404);

    const base = sessionBase('2/bodies');
    await call(node.port, `${base}/xhr${Q}`);
    const bad = async (body: string, status: number, text: RegExp) => {
      const a = await call(node.port, `${base}/xhr_send`, body);
      assert.equal(a.status, status, body.slice(0, 40));
      assert.match(a.body, text);
    };
    await bad('[', 400, /Broken JSON/);
    await bad('{"a":1}', 400, /JSON array/);
    await bad('[1]', 400, /strings/);
    await bad(JSON.stringify(['x'.repeat(30 * 1024)]), 413, /too_large/);
    // A frame over websocket_max_payload_kb closes the session with 1009, as a WebSocket.
    assert.equal((await sendFrames(node, base, { event: 'client-x', channel: 'c', data: 'y'.repeat(5000) })).status, 204);
    const closed = parseLines((await call(node.port, `${base}/xhr${Q}`)).body);
    assert.equal(closed.close?.[0], 1009);
    // Once the close went out, the session is gone.
    assert.equal((await call(node.port, `${base}/xhr_send`, '[]')).status, 404);
  });

  it('bounds: a session whose client went away expires, a poll nobody collects closes a slow consumer, a cap per address', async () => {
    const sdk = serverSdk(node);
    const watcher = track(pusherClient(node, { user: { user_id: 'watcher' } }));
    await connected(watcher);
    const room = watcher.subscribe('presence-bounds');
    await waitFor(room, 'pusher:subscription_succeeded');

    // Expiry: a stream opened, a presence join sent, then the client vanishes.
    const base = sessionBase('3/expiry');
    const stream = openStream(node.port, `${base}/xhr_streaming${Q}`);
    const first = await stream.until((t) => t.includes('connection_established'));
    const socketId = dataOf<{ socket_id: string }>(parseLines(first).frames[0]).socket_id;
    const channelData = JSON.stringify({ user_id: 'ghost' });
    const auth = sdk.authorizeChannel(socketId, 'presence-bounds', { user_id: 'ghost' });
    const added = waitFor<{ id: string }>(room, 'pusher:member_added');
    await sendFrames(node, base, {
      event: 'pusher:subscribe',
      data: { channel: 'presence-bounds', auth: auth.auth, channel_data: channelData },
    });
    assert.equal((await added).id, 'ghost');
    const removed = waitFor<{ id: string }>(room, 'pusher:member_removed', 5000);
    const t0 = Date.now();
    stream.abort();
    assert.equal((await removed).id, 'ghost');
    const took = Date.now() - t0;
    assert.ok(took >= 700 && took < 4000, `expired after ${took} ms (disconnect_delay_seconds 1)`);

    // A slow consumer: frames pile up past 1 MiB while no poll collects them.
    const slow = sessionBase('3/slow');
    await call(node.port, `${slow}/xhr${Q}`);
    await sendFrames(node, slow, { event: 'pusher:subscribe', data: { channel: 'flood' } });
    await until(async () => {
      const r = (await (await sdk.get({ path: '/channels/flood', params: { info: 'subscription_count' } })).json()) as {
        subscription_count?: number;
      };
      return r.subscription_count === 1;
    }, 3000);
    const chunk = 'z'.repeat(9000);
    for (let i = 0; i < 14; i++) {
      await sdk.triggerBatch(Array.from({ length: 10 }, () => ({ channel: 'flood', name: 'big', data: chunk })));
    }
    const late = parseLines((await call(node.port, `${slow}/xhr${Q}`)).body);
    assert.deepEqual(late.close, [4100, 'slow consumer']);
    assert.equal(late.frames.length, 0, 'the backlog is dropped, not delivered late');

    // The per-address cap (max_sessions_per_ip 40, loopback is one address).
    const opened: string[] = [];
    for (let i = 0; i < 45; i++) {
      const a = await call(node.port, `${sessionBase(`9/cap${i}`)}/xhr${Q}`);
      const lines = parseLines(a.body);
      if (lines.close) {
        assert.equal(lines.close[0], 4100);
        break;
      }
      opened.push(`9/cap${i}`);
    }
    assert.ok(opened.length <= 40 && opened.length >= 30, `opened ${opened.length} before the cap`);
    watcher.disconnect();
  });

  it('liveness and drain: a silent session gets 4201, SIGTERM sends 4200 over streams and held polls, pusher-js moves on', async () => {
    // The activity timeout as on a WebSocket: a silent session is pinged, then closed with 4201.
    const lively = await startNode({ config: { activity_timeout: 1 } });
    try {
      const silent = openStream(lively.port, `${sessionBase('4/silent')}/xhr_streaming${Q}`);
      const pinged = await silent.until((t) => t.includes('\nc['), 6000);
      assert.ok(
        parseLines(pinged).frames.some((f) => f.event === 'pusher:ping'),
        pinged,
      );
      assert.equal(parseLines(pinged).close?.[0], 4201);
    } finally {
      await lively.stop();
    }
    const drained = await startNode({ config: { shutdown_grace_period: 3, http_fallback: { heartbeat_interval_seconds: 1 } } });
    try {
      const stream = openStream(drained.port, `${sessionBase('4/stream')}/xhr_streaming${Q}`);
      await stream.until((t) => t.includes('connection_established'));
      // Quiet streams and polls get heartbeats (pusher-js counts them as activity).
      await stream.until((t) => t.endsWith('\nh\n'), 3000);
      const pollBase = sessionBase('4/poll');
      await call(drained.port, `${pollBase}/xhr${Q}`);
      const t0 = Date.now();
      assert.equal((await call(drained.port, `${pollBase}/xhr${Q}`)).body, 'h\n');
      assert.ok(Date.now() - t0 >= 900, 'a poll is held until the heartbeat interval');
      const held = call(drained.port, `${pollBase}/xhr${Q}`);
      const fb = track(fallbackClient(drained.port, 'xhr_streaming'));
      await connected(fb, 8000);
      const left = new Promise<string>((resolve) => fb.connection.bind('state_change', (s: { current: string }) => resolve(s.current)));
      await sleep(100);
      const stopped = drained.stop();
      const body = await stream.until((t) => t.includes('\nc['));
      assert.equal(parseLines(body).close?.[0], 4200);
      assert.equal(parseLines((await held).body).close?.[0], 4200);
      assert.notEqual(await left, 'connected');
      assert.equal(await stopped, 0);
    } finally {
      await drained.stop();
    }
  });
});
