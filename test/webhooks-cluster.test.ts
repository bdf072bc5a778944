// Webhooks across nodes: the Redis queue hands a dead node's undelivered
// webhook to a survivor, the vacated delay holds across nodes, metrics count.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startRedis, type Broker } from './helpers/brokers.js';
import { connected, pusherClient, sleep, waitFor, type PusherClient, until } from './helpers/clients.js';
import { DEMO_APP, startNode, type ChorusNode } from './helpers/node.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

const HEALTH = {
  ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: '200',
  ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: '1500',
  ADAPTER_CLUSTER_HEALTH_CLEANUP_INTERVAL_MS: '200',
};

function processingList(redis: Broker, prefix: string, nodeId: string): string[] {
  const out = spawnSync('redis-cli', ['-p', String(redis.port), 'LRANGE', `${prefix}{webhooks}:processing:${nodeId}`, '0', '-1'], {
    encoding: 'utf8',
  }).stdout;
  return out.split('\n').filter(Boolean);
}

async function metric(node: ChorusNode, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && !l.startsWith('#'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('webhooks across nodes (redis adapter, redis queue)', () => {
  let redis: Broker;
  let receiver: WebhookReceiver;
  let a: ChorusNode;
  let b: ChorusNode;
  const clients: PusherClient[] = [];
  const keyPrefix = `wq${process.pid}:`;

  before(async () => {
    redis = await startRedis();
    receiver = await startWebhookReceiver();
    const app = { ...DEMO_APP, webhooks: [{ url: receiver.url, event_types: ['channel_occupied', 'channel_vacated'] }] };
    const config = {
      app_manager: { array: { apps: [app] } },
      webhooks: { vacated_delay_ms: 1500 },
    };
    const env = {
      ...HEALTH,
      ADAPTER_DRIVER: 'redis',
      QUEUE_DRIVER: 'redis',
      DATABASE_REDIS_PORT: String(redis.port),
      DATABASE_REDIS_KEY_PREFIX: keyPrefix,
    };
    [a, b] = await Promise.all([
      startNode({ config, env: { ...env, INSTANCE_PROCESS_ID: 'wq-a' } }),
      startNode({ config, env: { ...env, INSTANCE_PROCESS_ID: 'wq-b' } }),
    ]);
    await until(
      () => a.logs.some((l) => l.includes('cluster peer joined')) && b.logs.some((l) => l.includes('cluster peer joined')),
      10_000,
      'peers',
    );
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all([a?.stop(), b?.stop()]);
    await receiver?.stop();
    await redis?.stop();
  });

  it('a vacated within the delay on one node and a re-occupation on another cancel each other', async () => {
    receiver.reset();
    const onA = pusherClient(a);
    const onB = pusherClient(b);
    clients.push(onA, onB);
    await Promise.all([connected(onA), connected(onB)]);
    await waitFor(onA.subscribe('hop'), 'pusher:subscription_succeeded');
    await receiver.waitFor((r) => r.events('channel_occupied').length === 1);
    onA.unsubscribe('hop');
    await sleep(300);
    await waitFor(onB.subscribe('hop'), 'pusher:subscription_succeeded');
    await sleep(2500); // past the delay
    assert.deepEqual(
      receiver.events().map((e) => `${e.name}:${e.channel}`),
      ['channel_occupied:hop'],
    );
    onB.unsubscribe('hop');
    await receiver.waitFor((r) => r.events('channel_vacated').length === 1, 5000);
    assert.deepEqual(
      receiver.events().map((e) => e.name),
      ['channel_occupied', 'channel_vacated'],
    );
  });

  it('a webhook in flight on a node that is SIGKILLed is delivered by the survivor, once', async () => {
    receiver.reset();
    receiver.holdNext(1); // the first attempt hangs: the job stays in its node's processing list
    const onA = pusherClient(a);
    clients.push(onA);
    await connected(onA);
    await waitFor(onA.subscribe('queued'), 'pusher:subscription_succeeded');
    await receiver.waitFor((r) => r.deliveries.length === 1, 5000);
    const webhookId = String(receiver.deliveries[0].headers['x-chorus-webhook-id']);
    // Whichever node took the job holds it; kill that one.
    let holder: ChorusNode | null = null;
    await until(
      () => {
        holder = processingList(redis, keyPrefix, a.nodeId).length ? a : processingList(redis, keyPrefix, b.nodeId).length ? b : null;
        return holder !== null;
      },
      3000,
      'the job in a processing list',
    );
    const survivor = holder === a ? b : a;
    await holder!.kill();
    await receiver.waitFor((r) => r.deliveries.some((d) => d.status === 200 && d.headers['x-chorus-webhook-id'] === webhookId), 15_000);
    await sleep(1000);
    const answered = receiver.deliveries.filter((d) => d.status === 200 && d.headers['x-chorus-webhook-id'] === webhookId);
    assert.equal(answered.length, 1);
    assert.ok(answered[0].valid);
    assert.deepEqual(
      answered[0].body?.events.map((e) => `${e.name}:${e.channel}`),
      ['channel_occupied:queued'],
    );
    assert.ok((await metric(survivor, 'chorus_webhooks_sent_total')) >= 1);
    assert.ok((await metric(survivor, 'chorus_webhook_queue_depth')) >= 0);
  });
});

describe('webhooks while the queue Redis is away (local adapter, redis queue)', () => {
  let redis: Broker;
  let receiver: WebhookReceiver;
  let node: ChorusNode;
  const clients: PusherClient[] = [];

  before(async () => {
    redis = await startRedis();
    receiver = await startWebhookReceiver();
    const app = { ...DEMO_APP, webhooks: [{ url: receiver.url, event_types: ['channel_occupied'] }] };
    node = await startNode({
      config: { app_manager: { array: { apps: [app] } } },
      env: { QUEUE_DRIVER: 'redis', DATABASE_REDIS_PORT: String(redis.port), DATABASE_REDIS_KEY_PREFIX: 'away:' },
    });
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await node?.stop();
    await receiver?.stop();
    await redis?.stop();
  });

  it('a batch raised during a short outage is offered again and delivered once Redis is back, not dropped', async () => {
    await redis.stop('SIGKILL');
    const client = pusherClient(node);
    clients.push(client);
    await connected(client);
    await waitFor(client.subscribe('raised-while-away'), 'pusher:subscription_succeeded');
    await sleep(2500); // the first offers fail: Redis refuses connections
    assert.equal(receiver.events('channel_occupied').length, 0);
    await redis.restart();
    await receiver.waitFor((r) => r.events('channel_occupied').some((e) => e.channel === 'raised-while-away'), 15_000);
    assert.equal(receiver.events('channel_occupied').filter((e) => e.channel === 'raised-while-away').length, 1, 'once');
    assert.equal(await metric(node, 'chorus_webhooks_dropped_total'), 0);
  });
});
