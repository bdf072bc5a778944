// A Sockudo user moving over with their files unchanged: Sockudo's own example config.json
// (test/fixtures/sockudo-config.json, from Sockudo's repository) and a Sockudo-style .env
// written out below from Sockudo's documented variables, given to one real node the way
// docker compose's env_file would. The effective limits are then checked over the wire as
// Sockudo documents them: payload, channel name length, presence members, connection quota,
// client-event rate, read-request rate and the API rate limit.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { cleanup, connected, dataOf, pusherClient, rawSocket, roundTrip, sleep, until, type RawSocket } from './helpers/clients.js';
import { signedFetch } from './helpers/signing.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';
import { createHmac } from 'node:crypto';

const SOCKUDO_ENV = `
# Sockudo-style .env (names from Sockudo's docs)
HOST=127.0.0.1
PORT=0
METRICS_HOST=127.0.0.1
METRICS_PORT=0
SOCKUDO_DEFAULT_APP_ID=env-app
SOCKUDO_DEFAULT_APP_KEY=env-key
SOCKUDO_DEFAULT_APP_SECRET=env-secret
SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=4
SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND=2
SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND=3
SOCKUDO_DEFAULT_APP_MAX_PRESENCE_MEMBERS_PER_CHANNEL=2
SOCKUDO_DEFAULT_APP_ENABLE_USER_AUTHENTICATION=false
SOCKUDO_DEFAULT_APP_ENABLE_WATCHLIST_EVENTS=true
SOCKUDO_ENABLE_CLIENT_MESSAGES=true
DATABASE_POOLING_ENABLED=true
DATABASE_POOL_MIN=2
DATABASE_POOL_MAX=8
RATE_LIMITER_ENABLED=true
RATE_LIMITER_API_MAX_REQUESTS=8
RATE_LIMITER_API_WINDOW_SECONDS=60
# Sockudo features Chorus lacks: named at start-up, never dropped silently
CONNECTION_RECOVERY_ENABLED=true
`;

/** KEY=VALUE lines as compose's env_file reads them (comments and blank lines skipped). */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

const FILE_APP: TestApp = { id: 'app-id', key: 'app-key', secret: 'app-secret' };
const ENV_APP: TestApp = { id: 'env-app', key: 'env-key', secret: 'env-secret' };
const wsPath = (app: TestApp) => `/app/${app.key}?protocol=7&client=js&version=8.4.0`;

async function connect(node: ChorusNode, app: TestApp): Promise<{ sock: RawSocket; socketId: string }> {
  const sock = await rawSocket(node, wsPath(app));
  const established = await sock.next((f) => f.event === 'pusher:connection_established');
  return { sock, socketId: dataOf<{ socket_id: string }>(established).socket_id };
}

const channelAuth = (app: TestApp, socketId: string, channel: string, channelData?: string) =>
  `${app.key}:${createHmac('sha256', app.secret)
    .update([socketId, channel, ...(channelData ? [channelData] : [])].join(':'))
    .digest('hex')}`;

/** An HTTP API event whose data is `kb` KiB. */
const publishKb = (node: ChorusNode, app: TestApp, kb: number) =>
  signedFetch(node, {
    app,
    method: 'POST',
    path: `/apps/${app.id}/events`,
    body: JSON.stringify({ name: 'e', channels: ['payload'], data: 'x'.repeat(kb * 1024) }),
  });

const subscriptionResult = (sock: RawSocket, channel: string) =>
  sock.next(
    (f) => f.channel === channel && (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error'),
  );

describe("migration: Sockudo's example config.json and a Sockudo .env, unchanged", () => {
  let node: ChorusNode;
  const open: RawSocket[] = [];
  const track = <T extends { sock: RawSocket }>(c: T) => (open.push(c.sock), c);

  before(async () => {
    const config = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/sockudo-config.json'), 'utf8')) as Record<string, unknown>;
    node = await startNode({ config, env: { ...parseEnvFile(SOCKUDO_ENV), LOG_LEVEL: 'info' } });
  });
  after(async () => {
    await cleanup(...open);
    await cleanup(node);
  });

  it("starts, and names what it cannot honour (the .env's CONNECTION_RECOVERY_ENABLED, the file's websocket section)", () => {
    const logs = node.logs.join('\n');
    assert.match(logs, /environment variable CONNECTION_RECOVERY_ENABLED is not read by Chorus/);
    assert.match(logs, /unknown config key \\"websocket\\" ignored/, 'logs are JSON lines: the quotes are escaped');
  });

  it('the file app: event_limits.max_payload_in_kb (100) bounds an HTTP event; 100 KB passes, 101 KB is refused with 413', async () => {
    assert.equal((await publishKb(node, FILE_APP, 100)).status, 200);
    assert.equal((await publishKb(node, FILE_APP, 101)).status, 413);
  });

  it('the file app: channel_limits.max_name_length (200) bounds a channel name; the error echoes the name sent', async () => {
    const { sock } = track(await connect(node, FILE_APP));
    const ok = 'n'.repeat(200);
    sock.send({ event: 'pusher:subscribe', data: { channel: ok } });
    assert.equal((await subscriptionResult(sock, ok)).event, 'pusher_internal:subscription_succeeded');
    const tooLong = 'n'.repeat(201);
    sock.send({ event: 'pusher:subscribe', data: { channel: tooLong } });
    const refused = await subscriptionResult(sock, tooLong);
    assert.equal(refused.event, 'pusher:subscription_error');
  });

  it("pusher-js routes the long name's subscription_error to that channel's handler, and keeps the connection", async () => {
    const client = pusherClient(node, { app: FILE_APP });
    try {
      await connected(client);
      const tooLong = 'p'.repeat(201);
      const channel = client.subscribe(tooLong);
      const error = await new Promise<unknown>((res, rej) => {
        const timer = setTimeout(() => rej(new Error('no subscription_error on the channel')), 5000);
        channel.bind('pusher:subscription_error', (data: unknown) => (clearTimeout(timer), res(data)));
      });
      assert.ok(error, 'the error reached the channel the app subscribed');
      assert.equal(channel.subscribed, false);
      const fine = client.subscribe('fine');
      await new Promise<void>((res) => fine.bind('pusher:subscription_succeeded', () => res()));
      assert.equal(client.connection.state, 'connected');
    } finally {
      client.disconnect();
    }
  });

  it('websocket_max_payload_kb (64): a bigger frame closes the socket with 1009', async () => {
    const { sock } = await connect(node, FILE_APP);
    sock.sendRaw(JSON.stringify({ event: 'client-x', channel: 'private-a', data: 'y'.repeat(65 * 1024) }));
    const closed = await Promise.race([sock.closed, sleep(5000).then(() => null)]);
    assert.equal(closed?.code, 1009);
  });

  it('the .env app: SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS (4) — the 5th socket is refused with 4004', async () => {
    const held = [];
    try {
      for (let i = 0; i < 4; i++) held.push((await connect(node, ENV_APP)).sock);
      const fifth = await rawSocket(node, wsPath(ENV_APP));
      const error = await fifth.next((f) => f.event === 'pusher:error');
      assert.equal(dataOf<{ code: number }>(error).code, 4004);
      assert.equal((await fifth.closed).code, 4004);
    } finally {
      for (const sock of held) sock.close();
      const probe = () =>
        connect(node, ENV_APP).then(
          ({ sock }) => (sock.close(), true),
          () => false,
        );
      await until(probe, 5000, 'the quota freed again');
    }
  });

  it('the .env app: SOCKUDO_DEFAULT_APP_MAX_PRESENCE_MEMBERS_PER_CHANNEL (2) — a 3rd member is refused', async () => {
    const channel = 'presence-room';
    const results = [];
    for (const userId of ['u1', 'u2', 'u3']) {
      const { sock, socketId } = track(await connect(node, ENV_APP));
      const channelData = JSON.stringify({ user_id: userId });
      sock.send({
        event: 'pusher:subscribe',
        data: { channel, auth: channelAuth(ENV_APP, socketId, channel, channelData), channel_data: channelData },
      });
      results.push((await subscriptionResult(sock, channel)).event);
    }
    assert.deepEqual(results, [
      'pusher_internal:subscription_succeeded',
      'pusher_internal:subscription_succeeded',
      'pusher:subscription_error',
    ]);
    for (const sock of open.splice(0)) sock.close();
  });

  it('the .env app: SOCKUDO_ENABLE_CLIENT_MESSAGES on, MAX_CLIENT_EVENTS_PER_SECOND (2) — the 3rd in a second gets 4301', async () => {
    const { sock, socketId } = track(await connect(node, ENV_APP));
    const channel = 'private-chat';
    sock.send({ event: 'pusher:subscribe', data: { channel, auth: channelAuth(ENV_APP, socketId, channel) } });
    assert.equal((await subscriptionResult(sock, channel)).event, 'pusher_internal:subscription_succeeded');
    await sleep(1100); // a fresh rate window
    for (let i = 0; i < 3; i++) sock.send({ event: 'client-typing', channel, data: { i } });
    await roundTrip(sock);
    const errors = sock.frames.filter((f) => f.event === 'pusher:error').map((f) => dataOf<{ code: number }>(f).code);
    assert.deepEqual(errors, [4301], 'two client events pass, the third is refused');
  });

  it('the .env app: MAX_READ_REQUESTS_PER_SECOND (3) — the 4th read in a second gets 429', async () => {
    await sleep(1100);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await signedFetch(node, { app: ENV_APP, path: `/apps/${ENV_APP.id}/channels` })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
  });

  it('RATE_LIMITER_API_MAX_REQUESTS (8 per 60 s) covers every route, as in Sockudo: the API answers 429 past it', async () => {
    // Earlier cases made API calls from this address too; keep calling until refused, bounded.
    let refused = null;
    for (let i = 0; i < 12 && !refused; i++) {
      const res = await signedFetch(node, { app: FILE_APP, path: `/apps/${FILE_APP.id}/channels` });
      if (res.status === 429) refused = res;
    }
    assert.ok(refused, 'an API call past the limit is refused');
    assert.equal(refused.headers.get('x-ratelimit-limit'), '8');
  });
});

describe("migration: a soketi compose file's SOKETI_* environment", () => {
  const SOKETI_APP: TestApp = { id: 'soketi-app', key: 'soketi-key', secret: 'soketi-secret' };
  let node: ChorusNode;
  let receiver: WebhookReceiver;
  before(async () => {
    receiver = await startWebhookReceiver([SOKETI_APP]);
    // The config file holds only where to listen: the app and limits come from soketi's names.
    node = await startNode({
      config: { app_manager: {} },
      env: {
        SOKETI_DEFAULT_APP_ID: SOKETI_APP.id,
        SOKETI_DEFAULT_APP_KEY: SOKETI_APP.key,
        SOKETI_DEFAULT_APP_SECRET: SOKETI_APP.secret,
        SOKETI_DEFAULT_APP_MAX_CONNS: '2',
        SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: 'true',
        SOKETI_DEFAULT_APP_WEBHOOKS: JSON.stringify([
          { url: receiver.url, event_types: ['channel_occupied'], filter: { channel_name_starts_with: 'hooked-' } },
        ]),
        SOKETI_EVENT_MAX_SIZE_IN_KB: '5',
        SOKETI_SHUTDOWN_GRACE_PERIOD: '2000',
      },
    });
  });
  after(async () => {
    await cleanup(node);
    await receiver.stop();
  });

  it('serves the default app with its limits: 5 KB events, 2 connections, webhooks with their filter', async () => {
    assert.equal((await publishKb(node, SOKETI_APP, 5)).status, 200);
    assert.equal((await publishKb(node, SOKETI_APP, 6)).status, 413);

    const a = await connect(node, SOKETI_APP);
    const b = await connect(node, SOKETI_APP);
    try {
      const third = await rawSocket(node, wsPath(SOKETI_APP));
      assert.equal((await third.closed).code, 4004);
      for (const channel of ['plain-1', 'hooked-1']) {
        a.sock.send({ event: 'pusher:subscribe', data: { channel } });
        assert.equal((await subscriptionResult(a.sock, channel)).event, 'pusher_internal:subscription_succeeded');
      }
      await until(() => receiver.deliveries.length > 0, 5000, 'a channel_occupied webhook');
      await sleep(300);
      const channels = receiver.deliveries.flatMap((d) => d.body?.events ?? []).map((e) => e.channel);
      assert.deepEqual(channels, ['hooked-1'], "soketi's channel_name_starts_with filter holds");
    } finally {
      a.sock.close();
      b.sock.close();
    }
  });
});
