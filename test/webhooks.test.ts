// Webhooks from one node (local adapter) to a real HTTP receiver: every event
// type, signed as Pusher signs them (checked by the `pusher` SDK and by hand),
// channel filters, custom headers, batching on and off, the vacated delay and
// retries after 500s.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { dataOf, rawSocket, serverSdk, sleep, type RawSocket } from './helpers/clients.js';
import { startWebhookReceiver, type Delivery, type WebhookReceiver } from './helpers/webhook-receiver.js';

/** Short wait for something that must NOT arrive, used only after a positive control. */
const QUIET_MS = 400;

const ALL_TYPES = [
  'channel_occupied',
  'channel_vacated',
  'member_added',
  'member_removed',
  'client_event',
  'cache_miss',
  'subscription_count',
];

let seq = 0;
const fresh = (base: string) => `${base}-${++seq}-${Date.now().toString(36)}`;

async function socketIdOf(sock: RawSocket): Promise<string> {
  const f =
    sock.frames.find((x) => x.event === 'pusher:connection_established') ??
    (await sock.next((x) => x.event === 'pusher:connection_established'));
  return dataOf<{ socket_id: string }>(f).socket_id;
}

async function connect(node: ChorusNode, app: TestApp): Promise<RawSocket> {
  const sock = await rawSocket(node, `/app/${app.key}?protocol=7&client=js&version=8.4.0`);
  await socketIdOf(sock);
  return sock;
}

/** Subscribes a raw socket (private/presence signed with the SDK) and waits for subscription_succeeded. */
async function subscribe(node: ChorusNode, sock: RawSocket, app: TestApp, channel: string, presence?: { user_id: string }): Promise<void> {
  const data: Record<string, unknown> = { channel };
  if (channel.startsWith('private-') || channel.startsWith('presence-')) {
    Object.assign(data, serverSdk(node, app).authorizeChannel(await socketIdOf(sock), channel, presence as never));
  }
  sock.send({ event: 'pusher:subscribe', data });
  const answer = await sock.next(
    (f) => f.channel === channel && (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error'),
  );
  assert.equal(answer.event, 'pusher_internal:subscription_succeeded', JSON.stringify(answer));
}

const unsubscribe = (sock: RawSocket, channel: string) => sock.send({ event: 'pusher:unsubscribe', data: { channel } });

/** Every delivery whose 2xx body holds an event of this name on this channel. */
const deliveriesWith = (rx: WebhookReceiver, name: string, channel: string): Delivery[] =>
  rx.deliveries.filter((d) => d.status === 200 && d.body?.events.some((e) => e.name === name && e.channel === channel));

const eventsOn = (rx: WebhookReceiver, name: string, channel: string) => rx.events(name).filter((e) => e.channel === channel);

/** Waits for exactly one delivery carrying the event and checks how it was signed. */
async function oneSignedDelivery(rx: WebhookReceiver, app: TestApp, name: string, channel: string): Promise<Delivery> {
  await rx.waitFor(() => deliveriesWith(rx, name, channel).length > 0, 5000);
  const [d] = deliveriesWith(rx, name, channel);
  assert.equal(d.valid, true, 'the pusher SDK accepts the webhook');
  assert.equal(d.headers['x-pusher-key'], app.key);
  assert.equal(d.headers['x-pusher-signature'], createHmac('sha256', app.secret).update(d.rawBody).digest('hex'));
  assert.equal(d.headers['content-type'], 'application/json');
  assert.match(String(d.headers['x-chorus-webhook-id']), /^[0-9a-f-]{36}$/);
  assert.equal(typeof d.body!.time_ms, 'number');
  assert.ok(Math.abs(d.body!.time_ms - Date.now()) < 60_000, 'time_ms is a current unix time in ms');
  return d;
}

describe('webhooks: every event type, signed (batching off, no vacated delay)', () => {
  let rx: WebhookReceiver;
  let node: ChorusNode;
  const APP: TestApp = { id: 'wh-all', key: 'wh-all-key', secret: 'wh-all-secret', enable_client_messages: true };
  const FILTER_APP: TestApp = { id: 'wh-filter', key: 'wh-filter-key', secret: 'wh-filter-secret' };
  const socks: RawSocket[] = [];

  before(async () => {
    rx = await startWebhookReceiver([APP, FILTER_APP]);
    APP.webhooks = [
      { url: `${rx.url}/all`, event_types: ALL_TYPES, headers: { 'X-Custom-Header': 'custom-value', Authorization: 'Bearer t0k3n' } },
    ];
    FILTER_APP.webhooks = [
      { url: `${rx.url}/prefix`, event_types: ['channel_occupied'], filter: { channel_prefix: 'pre-' } },
      { url: `${rx.url}/suffix`, event_types: ['channel_occupied'], filter: { channel_suffix: '-suf' } },
      { url: `${rx.url}/pattern`, event_types: ['channel_occupied'], filter: { channel_pattern: '^pat-[0-9]+$' } },
    ];
    node = await startNode({
      config: {
        app_manager: { array: { apps: [APP, FILTER_APP] } },
        webhooks: { batching: { enabled: false }, vacated_delay_ms: 0 },
      },
    });
  });
  after(async () => {
    for (const s of socks) s.close();
    await node?.stop();
    await rx?.stop();
  });

  const open = async (app: TestApp = APP) => {
    const s = await connect(node, app);
    socks.push(s);
    return s;
  };

  it('channel_occupied and channel_vacated: {name, channel}, one event per request, signed', async () => {
    const channel = fresh('public');
    const sock = await open();
    await subscribe(node, sock, APP, channel);
    const occ = await oneSignedDelivery(rx, APP, 'channel_occupied', channel);
    assert.equal(occ.path, '/all');
    const hookEvents = (d: Delivery) => d.body!.events.filter((e) => e.name !== 'subscription_count');
    assert.deepEqual(hookEvents(occ), [{ name: 'channel_occupied', channel }]);
    assert.equal(occ.body!.events.length, 1, 'batching off: one event per request');
    unsubscribe(sock, channel);
    const vac = await oneSignedDelivery(rx, APP, 'channel_vacated', channel);
    assert.deepEqual(vac.body!.events, [{ name: 'channel_vacated', channel }]);
    await sleep(QUIET_MS);
    assert.equal(eventsOn(rx, 'channel_occupied', channel).length, 1);
    assert.equal(eventsOn(rx, 'channel_vacated', channel).length, 1);
  });

  it('custom headers configured on the webhook arrive with every request', async () => {
    const channel = fresh('hdr');
    const sock = await open();
    await subscribe(node, sock, APP, channel);
    const d = await oneSignedDelivery(rx, APP, 'channel_occupied', channel);
    assert.equal(d.headers['x-custom-header'], 'custom-value');
    assert.equal(d.headers['authorization'], 'Bearer t0k3n');
  });

  it('member_added and member_removed carry user_id, once per user (not per socket)', async () => {
    const channel = fresh('presence-room');
    const a = await open();
    const b = await open();
    await subscribe(node, a, APP, channel, { user_id: 'alice' });
    await subscribe(node, b, APP, channel, { user_id: 'alice' });
    const added = await oneSignedDelivery(rx, APP, 'member_added', channel);
    assert.deepEqual(added.body!.events, [{ name: 'member_added', channel, user_id: 'alice' }]);
    unsubscribe(a, channel);
    // The user still has a socket: no member_removed until the second one leaves.
    await sleep(QUIET_MS);
    assert.equal(eventsOn(rx, 'member_removed', channel).length, 0);
    unsubscribe(b, channel);
    const removed = await oneSignedDelivery(rx, APP, 'member_removed', channel);
    assert.deepEqual(removed.body!.events, [{ name: 'member_removed', channel, user_id: 'alice' }]);
    await sleep(QUIET_MS);
    assert.equal(eventsOn(rx, 'member_added', channel).length, 1);
    assert.equal(eventsOn(rx, 'member_removed', channel).length, 1);
  });

  it('client_event: event, data, socket_id, and user_id on presence channels only', async () => {
    const presence = fresh('presence-chat');
    const priv = fresh('private-chat');
    const sender = await open();
    const other = await open();
    const senderId = await socketIdOf(sender);
    await subscribe(node, sender, APP, presence, { user_id: 'bob' });
    await subscribe(node, other, APP, presence, { user_id: 'carol' });
    await subscribe(node, sender, APP, priv);
    sender.send({ event: 'client-typing', channel: presence, data: { text: 'hi' } });
    const onPresence = await oneSignedDelivery(rx, APP, 'client_event', presence);
    assert.deepEqual(onPresence.body!.events, [
      {
        name: 'client_event',
        channel: presence,
        event: 'client-typing',
        data: JSON.stringify({ text: 'hi' }),
        socket_id: senderId,
        user_id: 'bob',
      },
    ]);
    sender.send({ event: 'client-ping', channel: priv, data: 'plain' });
    const onPrivate = await oneSignedDelivery(rx, APP, 'client_event', priv);
    assert.deepEqual(onPrivate.body!.events, [
      { name: 'client_event', channel: priv, event: 'client-ping', data: 'plain', socket_id: senderId },
    ]);
  });

  it('cache_miss when a cache channel has nothing cached, none once it has', async () => {
    const channel = fresh('cache-news');
    const sock = await open();
    await subscribe(node, sock, APP, channel);
    const d = await oneSignedDelivery(rx, APP, 'cache_miss', channel);
    assert.deepEqual(d.body!.events, [{ name: 'cache_miss', channel }]);
    const res = await serverSdk(node, APP).trigger(channel, 'update', { v: 1 });
    assert.equal(res.status, 200);
    const second = await open();
    await subscribe(node, second, APP, channel);
    await second.next((f) => f.channel === channel && f.event === 'update');
    await sleep(QUIET_MS);
    assert.equal(eventsOn(rx, 'cache_miss', channel).length, 1);
  });

  it('subscription_count reports the count as subscribers come and go', async () => {
    const channel = fresh('counted');
    const a = await open();
    const b = await open();
    await subscribe(node, a, APP, channel);
    await rx.waitFor(() => eventsOn(rx, 'subscription_count', channel).length >= 1);
    await subscribe(node, b, APP, channel);
    await rx.waitFor(() => eventsOn(rx, 'subscription_count', channel).length >= 2);
    unsubscribe(b, channel);
    await rx.waitFor(() => eventsOn(rx, 'subscription_count', channel).length >= 3);
    const counts = eventsOn(rx, 'subscription_count', channel);
    assert.deepEqual(counts, [
      { name: 'subscription_count', channel, subscription_count: 1 },
      { name: 'subscription_count', channel, subscription_count: 2 },
      { name: 'subscription_count', channel, subscription_count: 1 },
    ]);
    for (const d of deliveriesWith(rx, 'subscription_count', channel)) assert.equal(d.valid, true);
  });

  it('filters: channel_prefix, channel_suffix and channel_pattern deliver only matching channels', async () => {
    const sock = await open(FILTER_APP);
    const tag = Date.now().toString(36);
    const names = {
      prefixed: `pre-${tag}`,
      suffixed: `${tag}-suf`,
      patterned: `pat-${Date.now()}`,
      patternMiss: `pat-x${tag}`,
      none: `plain-${tag}`,
    };
    for (const ch of Object.values(names)) await subscribe(node, sock, FILTER_APP, ch);
    await rx.waitFor(
      () => [names.prefixed, names.suffixed, names.patterned].every((ch) => eventsOn(rx, 'channel_occupied', ch).length === 1),
      5000,
    );
    await sleep(QUIET_MS);
    const byPath = (path: string) =>
      rx.deliveries
        .filter((d) => d.path === path && d.headers['x-pusher-key'] === FILTER_APP.key)
        .flatMap((d) => (assert.equal(d.valid, true), d.body!.events.map((e) => e.channel)));
    assert.deepEqual(byPath('/prefix'), [names.prefixed]);
    assert.deepEqual(byPath('/suffix'), [names.suffixed]);
    assert.deepEqual(byPath('/pattern'), [names.patterned]);
    assert.equal(eventsOn(rx, 'channel_occupied', names.none).length, 0);
    assert.equal(eventsOn(rx, 'channel_occupied', names.patternMiss).length, 0);
  });

  it('batching off: three channels occupied at once give three requests of one event each', async () => {
    const sock = await open();
    const chans = [fresh('nb'), fresh('nb'), fresh('nb')];
    await Promise.all(chans.map((ch) => subscribe(node, sock, APP, ch)));
    await rx.waitFor(() => chans.every((ch) => eventsOn(rx, 'channel_occupied', ch).length === 1));
    const ds = chans.map((ch) => deliveriesWith(rx, 'channel_occupied', ch));
    for (const list of ds) {
      assert.equal(list.length, 1);
      assert.equal(list[0].body!.events.length, 1);
    }
    assert.equal(new Set(ds.map((l) => l[0].headers['x-chorus-webhook-id'])).size, 3);
  });
});

describe('webhooks: batching on (duration 200 ms) and retries', () => {
  let rx: WebhookReceiver;
  let node: ChorusNode;
  const APP: TestApp = { id: 'wh-batch', key: 'wh-batch-key', secret: 'wh-batch-secret' };
  const socks: RawSocket[] = [];

  before(async () => {
    rx = await startWebhookReceiver([APP]);
    APP.webhooks = [{ url: `${rx.url}/batch`, event_types: ['channel_occupied', 'channel_vacated'] }];
    node = await startNode({
      config: {
        app_manager: { array: { apps: [APP] } },
        webhooks: { batching: { enabled: true, duration: 200 }, vacated_delay_ms: 0 },
      },
    });
  });
  after(async () => {
    for (const s of socks) s.close();
    await node?.stop();
    await rx?.stop();
  });

  it('several events within the window arrive in one signed request', async () => {
    const sock = await connect(node, APP);
    socks.push(sock);
    const chans = [fresh('b'), fresh('b'), fresh('b')];
    await Promise.all(chans.map((ch) => subscribe(node, sock, APP, ch)));
    await rx.waitFor(() => chans.every((ch) => eventsOn(rx, 'channel_occupied', ch).length === 1));
    const carrying = new Set(chans.flatMap((ch) => deliveriesWith(rx, 'channel_occupied', ch)));
    assert.equal(carrying.size, 1, 'one request carries all three');
    const [d] = carrying;
    assert.equal(d.valid, true);
    assert.deepEqual(d.body!.events.map((e) => e.channel).sort(), [...chans].sort());
    assert.ok(d.body!.events.every((e) => e.name === 'channel_occupied'));
    assert.equal(d.headers['x-pusher-signature'], createHmac('sha256', APP.secret).update(d.rawBody).digest('hex'));
    await sleep(QUIET_MS);
    assert.equal(rx.deliveries.filter((x) => x.body?.events.some((e) => chans.includes(e.channel))).length, 1);
  });

  it('a receiver answering 500 twice then 200 gets the batch exactly once, same webhook id', async () => {
    const sock = await connect(node, APP);
    socks.push(sock);
    const channel = fresh('retry');
    const mark = rx.deliveries.length;
    rx.failNext(2);
    await subscribe(node, sock, APP, channel);
    // Backoff is 0.5-1 s then 1-2 s.
    await rx.waitFor(() => eventsOn(rx, 'channel_occupied', channel).length === 1, 10_000);
    const attempts = rx.deliveries.slice(mark).filter((d) => d.body?.events.some((e) => e.channel === channel));
    assert.deepEqual(
      attempts.map((d) => d.status),
      [500, 500, 200],
    );
    assert.equal(new Set(attempts.map((d) => d.headers['x-chorus-webhook-id'])).size, 1, 'retries keep the webhook id');
    assert.equal(new Set(attempts.map((d) => d.rawBody)).size, 1, 'retries resend the same body');
    for (const d of attempts) assert.equal(d.valid, true);
    // Well after another backoff step would have fired: no redelivery after the 2xx.
    await sleep(2500);
    const after2xx = rx.deliveries.slice(mark).filter((d) => d.body?.events.some((e) => e.channel === channel));
    assert.equal(after2xx.length, 3);
    assert.equal(eventsOn(rx, 'channel_occupied', channel).length, 1);
  });
});

describe('webhooks: vacated delay (1000 ms)', () => {
  let rx: WebhookReceiver;
  let node: ChorusNode;
  const DELAY = 1000;
  const APP: TestApp = { id: 'wh-delay', key: 'wh-delay-key', secret: 'wh-delay-secret' };
  const socks: RawSocket[] = [];

  before(async () => {
    rx = await startWebhookReceiver([APP]);
    APP.webhooks = [{ url: `${rx.url}/delay`, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }];
    node = await startNode({
      config: {
        app_manager: { array: { apps: [APP] } },
        webhooks: { batching: { enabled: false }, vacated_delay_ms: DELAY },
      },
    });
  });
  after(async () => {
    for (const s of socks) s.close();
    await node?.stop();
    await rx?.stop();
  });

  const open = async () => {
    const s = await connect(node, APP);
    socks.push(s);
    return s;
  };

  it('unsubscribe and resubscribe within the delay: neither channel_vacated nor a second channel_occupied', async () => {
    const channel = fresh('flap');
    const sock = await open();
    await subscribe(node, sock, APP, channel);
    await rx.waitFor(() => eventsOn(rx, 'channel_occupied', channel).length === 1);
    unsubscribe(sock, channel);
    await sleep(100);
    await subscribe(node, sock, APP, channel);
    await sleep(DELAY + QUIET_MS);
    assert.equal(eventsOn(rx, 'channel_vacated', channel).length, 0);
    assert.equal(eventsOn(rx, 'channel_occupied', channel).length, 1);
  });

  it('a presence user who leaves and comes back within the delay: no member_removed, no second member_added', async () => {
    const channel = fresh('presence-flap');
    const sock = await open();
    await subscribe(node, sock, APP, channel, { user_id: 'dan' });
    await rx.waitFor(() => eventsOn(rx, 'member_added', channel).length === 1);
    unsubscribe(sock, channel);
    await sleep(100);
    await subscribe(node, sock, APP, channel, { user_id: 'dan' });
    await sleep(DELAY + QUIET_MS);
    assert.equal(eventsOn(rx, 'member_removed', channel).length, 0);
    assert.equal(eventsOn(rx, 'member_added', channel).length, 1);
  });

  it('after the delay: channel_vacated and member_removed arrive, held at least the delay', async () => {
    const channel = fresh('presence-gone');
    const sock = await open();
    await subscribe(node, sock, APP, channel, { user_id: 'erin' });
    await rx.waitFor(() => eventsOn(rx, 'channel_occupied', channel).length === 1 && eventsOn(rx, 'member_added', channel).length === 1);
    const leftAt = Date.now();
    unsubscribe(sock, channel);
    await rx.waitFor(
      () => eventsOn(rx, 'channel_vacated', channel).length === 1 && eventsOn(rx, 'member_removed', channel).length === 1,
      DELAY + 5000,
    );
    for (const name of ['channel_vacated', 'member_removed']) {
      const [d] = deliveriesWith(rx, name, channel);
      assert.equal(d.valid, true);
      assert.ok(d.receivedAt - leftAt >= DELAY - 50, `${name} held for the delay (${d.receivedAt - leftAt} ms)`);
    }
    assert.deepEqual(eventsOn(rx, 'member_removed', channel), [{ name: 'member_removed', channel, user_id: 'erin' }]);
    await sleep(QUIET_MS);
    assert.equal(eventsOn(rx, 'channel_vacated', channel).length, 1);
  });
});
