// A NATS server without JetStream has no shared key-value state: the cluster still works,
// with claims, occupancy edges, quotas and cache channels answered per node.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './helpers/brokers.js';
import { connected, pusherClient, serverSdk, sleep, until, waitFor, type PusherClient } from './helpers/clients.js';
import { DEMO_APP, startNode, type ChorusNode } from './helpers/node.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

describe('nats without JetStream (3 nodes)', () => {
  let nats: ChildProcess;
  let receiver: WebhookReceiver;
  let nodes: ChorusNode[] = [];
  const clients: PusherClient[] = [];

  before(async () => {
    const port = await freePort();
    nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    await sleep(300);
    receiver = await startWebhookReceiver();
    const app = { ...DEMO_APP, webhooks: [{ url: receiver.url, event_types: ['channel_occupied', 'channel_vacated', 'member_removed'] }] };
    const env = {
      ADAPTER_DRIVER: 'nats',
      NATS_SERVERS: `nats://127.0.0.1:${port}`,
      ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: '200',
      ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: '1500',
      ADAPTER_CLUSTER_HEALTH_CLEANUP_INTERVAL_MS: '200',
    };
    const config = { app_manager: { array: { apps: [app] } }, webhooks: { vacated_delay_ms: 0 } };
    nodes = await Promise.all(['a', 'b', 'c'].map((id) => startNode({ config, env: { ...env, INSTANCE_PROCESS_ID: `nojs-${id}` } })));
    await until(() => nodes.every((n) => n.logs.filter((l) => l.includes('cluster peer joined')).length >= 2), 10_000, 'peers');
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(nodes.map((n) => n.stop()));
    await receiver?.stop();
    nats?.kill();
  });

  it('warns once that JetStream is missing, and still delivers across nodes', async () => {
    for (const n of nodes) assert.equal(n.logs.filter((l) => l.includes('has no JetStream')).length, 1);
    const onA = pusherClient(nodes[0]);
    clients.push(onA);
    await connected(onA);
    const ch = onA.subscribe('plain');
    await waitFor(ch, 'pusher:subscription_succeeded');
    const got = waitFor(ch, 'ev');
    await serverSdk(nodes[1]).trigger('plain', 'ev', { n: 1 });
    assert.deepEqual(await got, { n: 1 });
  });

  it('one channel_occupied and one channel_vacated for a channel held on two nodes in turn', async () => {
    receiver.reset();
    const onA = pusherClient(nodes[0]);
    const onB = pusherClient(nodes[1]);
    clients.push(onA, onB);
    await Promise.all([connected(onA), connected(onB)]);
    await waitFor(onA.subscribe('turns'), 'pusher:subscription_succeeded');
    await sleep(300); // the interest message reaches the peers
    await waitFor(onB.subscribe('turns'), 'pusher:subscription_succeeded');
    onA.unsubscribe('turns');
    await sleep(300);
    onB.unsubscribe('turns');
    await receiver.waitFor((r) => r.events('channel_vacated').length === 1, 5000);
    await sleep(500);
    const turns = receiver
      .events()
      .filter((e) => e.channel === 'turns')
      .map((e) => e.name);
    assert.deepEqual(turns, ['channel_occupied', 'channel_vacated']);
  });

  it('a killed node: survivors tell their clients, and one of them sends member_removed once', async () => {
    receiver.reset();
    const watcher = pusherClient(nodes[0], { user: { user_id: 'watcher' } });
    const goner = pusherClient(nodes[2], { user: { user_id: 'goner' } });
    clients.push(watcher, goner);
    await Promise.all([connected(watcher), connected(goner)]);
    const room = watcher.subscribe('presence-nojs');
    await waitFor(room, 'pusher:subscription_succeeded');
    const added = waitFor(room, 'pusher:member_added');
    await waitFor(goner.subscribe('presence-nojs'), 'pusher:subscription_succeeded');
    await added;
    const removed = waitFor<{ id: string }>(room, 'pusher:member_removed', 8000);
    await nodes[2].kill();
    assert.equal((await removed).id, 'goner');
    await receiver.waitFor((r) => r.events('member_removed').length >= 1, 5000);
    await sleep(1000);
    assert.deepEqual(
      receiver.events('member_removed').map((e) => `${e.channel}:${e.user_id}`),
      ['presence-nojs:goner'],
    );
  });
});
