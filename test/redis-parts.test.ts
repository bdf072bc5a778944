// Sockudo's per-part Redis settings on real servers: two nodes whose database.redis names
// server A, while adapter.redis.redis_pub_options / redis_sub_options, queue.redis and
// rate_limiter.redis (url_override and prefix) name server B. Everything must land on B:
// cross-node delivery works through it, its keys carry the parts' prefixes, the webhook
// queue's blocking reader waits on it, and A sees no Chorus client at all.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type Broker } from './helpers/brokers.js';
import { startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { connected, pusherClient, serverSdk, waitFor, until, type PusherClient } from './helpers/clients.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

const APP: TestApp = { id: 'parts-app', key: 'parts-key', secret: 'parts-secret', max_backend_events_per_second: 1000 };

describe("Sockudo's per-part Redis: url_override, prefix, redis_pub/sub_options", () => {
  let a: Broker;
  let b: Broker;
  let receiver: WebhookReceiver;
  const nodes: ChorusNode[] = [];
  const clients: PusherClient[] = [];
  let onA: Redis;
  let onB: Redis;

  before(async () => {
    [a, b] = await Promise.all([startRedis(), startRedis()]);
    receiver = await startWebhookReceiver([APP]);
    const urlB = `redis://127.0.0.1:${b.port}`;
    const config = {
      app_manager: { array: { apps: [{ ...APP, webhooks: [{ url: receiver.url, event_types: ['channel_occupied'] }] }] } },
      adapter: { driver: 'redis', redis: { redis_pub_options: { url: urlB }, redis_sub_options: { url: urlB } } },
      database: { redis: { host: '127.0.0.1', port: a.port } },
      queue: { driver: 'redis', redis: { url_override: urlB, prefix: 'q-part:' } },
      rate_limiter: { enabled: false, driver: 'redis', redis: { url_override: urlB, prefix: 'rl-part:' } },
    };
    nodes.push(...(await Promise.all([startNode({ config }), startNode({ config })])));
    onA = new Redis({ port: a.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
    onB = new Redis({ port: b.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
    await Promise.all([onA.connect(), onB.connect()]);
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(nodes.map((n) => n.stop()));
    onA?.disconnect();
    onB?.disconnect();
    await receiver?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  /** Chorus's connections (named chorus:<role>) on one server, as CLIENT LIST shows them. */
  const chorusClients = async (r: Redis): Promise<string[]> =>
    ((await r.client('LIST')) as string).split('\n').filter((line) => / name=chorus:/.test(line));

  it('the adapter, the queue and the rate limiter use B with their prefixes; A is never used', async () => {
    const client = pusherClient(nodes[1], { app: APP });
    clients.push(client);
    await connected(client);
    const channel = client.subscribe('parts-channel');
    await waitFor(channel, 'pusher:subscription_succeeded');
    // Published on node 0, delivered by node 1: the adapter's pub/sub runs through B.
    await until(
      async () => {
        const res = await serverSdk(nodes[0], APP).get({ path: '/channels/parts-channel' });
        return ((await res.json()) as { occupied?: boolean }).occupied === true;
      },
      5000,
      'node 0 sees the subscription',
    );
    const got = waitFor(channel, 'hello');
    await serverSdk(nodes[0], APP).trigger('parts-channel', 'hello', { n: 1 });
    assert.deepEqual(await got, { n: 1 });

    await receiver.waitFor((r) => r.events('channel_occupied').some((e) => e.channel === 'parts-channel'), 10_000);
    assert.ok(
      receiver.deliveries.every((d) => d.valid),
      'deliveries signed',
    );

    const keysB = await onB.keys('*');
    assert.ok(
      keysB.some((k) => k.startsWith('rl-part:rl:')),
      `the rate limiter's keys on B under its prefix: ${keysB.join(' ')}`,
    );
    const listB = await chorusClients(onB);
    assert.ok(
      listB.some((line) => /cmd=blmove/.test(line)),
      `the webhook queue's blocking reader waits on B:\n${listB.join('\n')}`,
    );
    const listA = await chorusClients(onA);
    assert.deepEqual(listA, [], 'no Chorus connection on A');
    assert.equal(await onA.dbsize(), 0, 'no key on A');
    // The queue's keys, while it works, sit under its own prefix on B.
    const queueKeys = keysB.filter((k) => k.includes('{webhooks}'));
    assert.ok(
      queueKeys.every((k) => k.startsWith('q-part:')),
      `queue keys under q-part: ${queueKeys.join(' ')}`,
    );
  });
});
