// Redis through Sentinel with Sockudo's keys: a real redis-server master and a real sentinel
// (`redis-server --sentinel`, what Debian's redis-sentinel runs) on loopback, two Chorus nodes
// that are told only the sentinel's address and the master's name. Cross-node delivery, the
// rate limiter and occupancy all run through the master the sentinel names.
// (Failover under traffic is issue 17's own suite, not this one.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type Broker } from './helpers/brokers.js';
import { startSentinel, type Sentinel } from './helpers/ha-brokers.js';
import { startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { connected, pusherClient, serverSdk, until, waitFor, type PusherClient } from './helpers/clients.js';

const APP: TestApp = { id: 'sentinel-app', key: 'sentinel-key', secret: 'sentinel-secret' };

describe('Redis Sentinel: database.redis.sentinels and name', () => {
  let master: Broker;
  let sentinel: Sentinel;
  const nodes: ChorusNode[] = [];
  const clients: PusherClient[] = [];

  before(async () => {
    master = await startRedis();
    sentinel = await startSentinel('chorus-master', master.port, 1, ['sentinel down-after-milliseconds chorus-master 1000']);
    const config = {
      adapter: { driver: 'redis' },
      rate_limiter: { enabled: true, driver: 'redis', api_rate_limit: { max_requests: 1000 } },
      database: {
        redis: {
          host: '127.0.0.9',
          port: 1,
          sentinels: [{ host: '127.0.0.1', port: sentinel.port }],
          name: 'chorus-master',
          key_prefix: 'sent:',
        },
      },
      app_manager: { array: { apps: [APP] } },
    };
    nodes.push(...(await Promise.all([startNode({ config }), startNode({ config })])));
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(nodes.map((n) => n.stop()));
    await sentinel?.stop();
    await master.stop();
  });

  it('nodes given only the sentinel find the master: an event crosses nodes, keys land on the master', async () => {
    const client = pusherClient(nodes[1], { app: APP });
    clients.push(client);
    await connected(client);
    const channel = client.subscribe('via-sentinel');
    await waitFor(channel, 'pusher:subscription_succeeded');
    await until(
      async () => {
        const res = await serverSdk(nodes[0], APP).get({ path: '/channels/via-sentinel' });
        return ((await res.json()) as { occupied?: boolean }).occupied === true;
      },
      5000,
      'node 0 sees the subscription on node 1',
    );
    const got = waitFor(channel, 'hello');
    await serverSdk(nodes[0], APP).trigger('via-sentinel', 'hello', { n: 1 });
    assert.deepEqual(await got, { n: 1 });

    const onMaster = new Redis({ host: '127.0.0.1', port: master.port, lazyConnect: true });
    try {
      await onMaster.connect();
      const clientNames = String(await onMaster.client('LIST'));
      assert.match(clientNames, /name=chorus/, 'Chorus connections on the master the sentinel named');
      const keys = await onMaster.keys('sent:*');
      assert.ok(keys.length > 0, `the rate limiter's keys are on the master, under the prefix (${keys.join(', ')})`);
    } finally {
      onMaster.disconnect();
    }
  });
});
