// The Transport contract (src/transports/transport.ts), one suite body run against
// every transport: the in-memory one, Redis, a 6-node Redis Cluster (sharded pub/sub),
// the hub of a box of workers (Unix socket), NATS with JetStream and plain NATS without it (whose key-value operations must reject
// with SharedStateUnavailable). Real brokers, started and stopped by pid.
// TRANSPORTS=memory,redis limits the run to some of them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { MemoryBroker, type MemoryTransport } from '../src/transports/memory.js';
import { NatsTransport } from '../src/transports/nats.js';
import { RedisClusterTransport } from '../src/transports/redis-cluster.js';
import { RedisTransport } from '../src/transports/redis.js';
import { SharedStateUnavailable, type Transport } from '../src/transports/transport.js';
import { startNats, startRedis, startRedisCluster, type Broker, type RedisCluster } from './helpers/brokers.js';
import { sleep, until } from './helpers/wait.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoxHub } from '../src/transports/box-hub.js';
import { BoxTransport } from '../src/transports/box.js';

const log = pino({ level: 'silent' });

interface Peer {
  t: Transport;
  got: Array<{ topic: string; payload: string }>;
  statuses: boolean[];
}

interface Harness {
  name: string;
  /** sharedState once connected */
  shared: boolean;
  start(): Promise<void>;
  make(): Transport;
  /** The broker goes away for every connection (a real one is stopped). */
  breakBroker(): Promise<void>;
  fixBroker(): Promise<void>;
  stop(): Promise<void>;
  /** A connection to a namespace no one used yet, where shared state is created on first use. */
  makeFresh?(namespace: string): Transport;
}

function memoryHarness(): Harness {
  let broker: MemoryBroker;
  const made: MemoryTransport[] = [];
  return {
    name: 'memory',
    shared: true,
    start: async () => void (broker = new MemoryBroker({ seed: 7 })),
    make: () => {
      const t = broker.transport();
      made.push(t);
      return t;
    },
    breakBroker: async () => made.forEach((t) => broker.disconnect(t)),
    fixBroker: async () => made.forEach((t) => broker.reconnect(t)),
    stop: async () => broker.close(),
  };
}

/** The hub of a box of workers (the primary's), in this process, on a Unix socket. */
function boxHarness(): Harness {
  const path = join(tmpdir(), `chorus-contract-${process.pid}.sock`);
  let hub: BoxHub | null = null;
  let made = 0;
  return {
    name: 'box',
    shared: true,
    start: async () => void (hub = await BoxHub.listen({ path })),
    make: () => new BoxTransport(path, `contract ${++made}`),
    breakBroker: async () => {
      await hub?.close();
      hub = null;
    },
    fixBroker: async () => void (hub = await BoxHub.listen({ path })),
    stop: async () => {
      await hub?.close();
      hub = null;
    },
  };
}

function redisHarness(): Harness {
  let broker: Broker;
  return {
    name: 'redis',
    shared: true,
    start: async () => void (broker = await startRedis()),
    make: () => new RedisTransport({ host: '127.0.0.1', port: broker.port, connectTimeoutMs: 5000 }, log),
    breakBroker: () => broker.stop(),
    fixBroker: () => broker.restart(),
    stop: () => broker.stop(),
  };
}

function redisClusterHarness(): Harness {
  let cluster: RedisCluster;
  return {
    name: 'redis-cluster',
    shared: true,
    start: async () => void (cluster = await startRedisCluster()),
    make: () =>
      new RedisClusterTransport(
        { clusterNodes: cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), connectTimeoutMs: 10_000 },
        log,
      ),
    breakBroker: async () => void (await Promise.all(cluster.nodes.map((n) => n.stop()))),
    fixBroker: () => cluster.restart(),
    stop: () => cluster.stop(),
  };
}

function natsHarness(jetstream: boolean): Harness {
  let broker: Broker;
  return {
    name: jetstream ? 'nats' : 'nats-without-jetstream',
    shared: jetstream,
    start: async () => void (broker = await startNats([], { jetstream })),
    make: () => new NatsTransport({ servers: [`nats://127.0.0.1:${broker.port}`], connectTimeoutMs: 5000, prefix: 'contract' }, log),
    makeFresh: (namespace) =>
      new NatsTransport({ servers: [`nats://127.0.0.1:${broker.port}`], connectTimeoutMs: 5000, prefix: namespace }, log),
    breakBroker: () => broker.stop(),
    fixBroker: () => broker.restart(),
    stop: () => broker.stop(),
  };
}

/** Lists of parts that naive joining or escaping would map to one topic. */
function adversarialLists(): string[][] {
  const lists: string[][] = [
    ['X#', 'server-to-user-bob'],
    ['X', '#server-to-user-bob'],
    ['a.b'],
    ['a', 'b'],
    ['a#b'],
    ['a%23b'],
    ['a%2Eb'],
    ['a%b'],
    ['%'],
    ['%25'],
    ['%u'],
    ['%uD83D'],
    [''],
    ['', ''],
    ['', '', ''],
    ['a', ''],
    ['', 'a'],
    ['*'],
    ['>'],
    ['a*'],
    ['a>'],
    ['.'],
    ['..'],
    ['#'],
    ['##'],
    ['a b'],
    ['a\tb'],
    ['a\nb'],
    ['a\r\nb'],
    ['a\u00a0b'],
    ['a\u2028b'],
    ['a\u3000b'],
    ['a\u0000b'],
    ['a\u007fb'],
    ['é'],
    ['e\u0301'],
    ['日本'],
    ['😀'],
    ['\ud83d\ude00'],
    ['\ud83d', '\ude00'],
    ['\ud83d'],
    ['\ude00'],
    ['\ud83e'],
    ['\ufffd'],
    ['a.b', 'c'],
    ['a', 'b.c'],
    ['a', 'b', 'c'],
  ];
  // Every list of 1-3 parts over characters that matter to some broker.
  const alphabet = ['', 'a', '#', '.', '%', '%2', ' ', '*'];
  for (const x of alphabet) {
    lists.push([x]);
    for (const y of alphabet) {
      lists.push([x, y]);
      for (const z of alphabet) lists.push([x, y, z]);
    }
  }
  return lists;
}

const payloadsOn = (p: Peer, topic: string): string[] => p.got.filter((m) => m.topic === topic).map((m) => m.payload);

let runId = 0;

function contract(h: Harness): void {
  describe(`transport contract: ${h.name}`, () => {
    const peers: Peer[] = [];
    let a: Peer;
    let b: Peer;
    let c: Peer;
    const unique = (label: string) => `${label}-${++runId}`;

    async function open(): Promise<Peer> {
      const t = h.make();
      const p: Peer = { t, got: [], statuses: [] };
      await t.connect({ message: (topic, payload) => void p.got.push({ topic, payload }), status: (up) => void p.statuses.push(up) });
      peers.push(p);
      return p;
    }

    before(async () => {
      await h.start();
      [a, b, c] = [await open(), await open(), await open()];
    });

    after(async () => {
      await Promise.allSettled(peers.map((p) => p.t.close()));
      await h.stop();
    });

    it(`sharedState is ${h.shared} and ping answers`, async () => {
      assert.equal(a.t.sharedState, h.shared);
      await a.t.ping();
    });

    it('topic() is injective over adversarial part lists, in the bytes the broker sees', () => {
      const seen = new Map<string, string[]>();
      for (const parts of adversarialLists()) {
        const bytes = Buffer.from(a.t.topic(...parts), 'utf8').toString('hex');
        const earlier = seen.get(bytes);
        if (earlier) assert.deepEqual(earlier, parts, `${JSON.stringify(earlier)} and ${JSON.stringify(parts)} give one topic`);
        seen.set(bytes, parts);
      }
      assert.ok(seen.size > 500);
      assert.throws(() => a.t.topic(), RangeError);
    });

    it('adversarial topics are valid broker names, each delivering only its own messages', async () => {
      const lists = adversarialLists().slice(0, 48);
      const topics = [...new Set(lists.map((parts) => a.t.topic(unique('adv'), ...parts)))];
      await a.t.subscribe(topics);
      topics.forEach((topic, i) => b.t.publish(topic, String(i)));
      await until(() => topics.every((topic) => payloadsOn(a, topic).length > 0), 5000, 'a message on every topic');
      topics.forEach((topic, i) => assert.deepEqual(payloadsOn(a, topic), [String(i)], JSON.stringify(topic)));
      await a.t.unsubscribe(topics);
    });

    it('a publish right after subscribe resolves is received', async () => {
      const topics = Array.from({ length: 10 }, (_, i) => a.t.topic('contract', unique('confirm'), String(i)));
      for (const topic of topics) {
        await a.t.subscribe([topic]);
        b.t.publish(topic, 'x');
      }
      await until(() => topics.every((t) => payloadsOn(a, t).length === 1), 5000, 'every first message');
    });

    it('subscribing twice is a no-op: one message arrives once', async () => {
      const topic = a.t.topic('contract', unique('twice'));
      await a.t.subscribe([topic, topic]);
      await a.t.subscribe([topic]);
      b.t.publish(topic, 'once');
      await until(() => payloadsOn(a, topic).length > 0, 5000, 'the message');
      await sleep(150);
      assert.deepEqual(payloadsOn(a, topic), ['once']);
      await a.t.unsubscribe([topic]);
    });

    it('unsubscribe stops delivery; nothing arrives on topics not held', async () => {
      const [held, dropped, never] = ['held', 'dropped', 'never'].map((x) => a.t.topic('contract', unique(x)));
      await a.t.subscribe([held, dropped]);
      b.t.publish(dropped, 'before');
      await until(() => payloadsOn(a, dropped).length === 1, 5000, 'the message before unsubscribing');
      await a.t.unsubscribe([dropped, never]);
      b.t.publish(dropped, 'after');
      b.t.publish(never, 'never');
      b.t.publish(held, 'marker');
      await until(() => payloadsOn(a, held).length === 1, 5000, 'the marker');
      await sleep(150);
      assert.deepEqual(payloadsOn(a, dropped), ['before']);
      assert.deepEqual(payloadsOn(a, never), []);
      assert.equal(c.got.length, 0, 'a connection that holds no topic receives nothing');
      await a.t.unsubscribe([held]);
    });

    it('subscribes and unsubscribes 1000 topics in one batch', async () => {
      const topics = Array.from({ length: 1000 }, (_, i) => a.t.topic('contract', unique('batch'), String(i)));
      const mine = new Set(topics);
      const arrived = (payload: string) => a.got.filter((m) => m.payload === payload && mine.has(m.topic)).length;
      await a.t.subscribe(topics);
      for (const topic of topics) b.t.publish(topic, '1');
      await until(() => arrived('1') === 1000, 10_000, '1000 messages');
      await a.t.unsubscribe(topics);
      const marker = a.t.topic('contract', unique('batch-marker'));
      await a.t.subscribe([marker]);
      for (const topic of topics) b.t.publish(topic, '2');
      b.t.publish(marker, 'end');
      await until(() => payloadsOn(a, marker).length === 1, 5000, 'the marker');
      await sleep(200);
      assert.equal(arrived('1'), 1000, 'each message once');
      assert.equal(arrived('2'), 0, 'no message after the batch unsubscribe');
      await a.t.unsubscribe([marker]);
    });

    it("one publisher's messages on one topic arrive in order", async () => {
      const topic = a.t.topic('contract', unique('order'));
      await a.t.subscribe([topic]);
      const sent = Array.from({ length: 300 }, (_, i) => String(i));
      for (const m of sent) b.t.publish(topic, m);
      await until(() => payloadsOn(a, topic).length === sent.length, 5000, 'all messages');
      assert.deepEqual(payloadsOn(a, topic), sent);
      await a.t.unsubscribe([topic]);
    });

    if (!h.shared) {
      it('key-value operations reject with SharedStateUnavailable', async () => {
        const ops: Array<[string, () => Promise<unknown>]> = [
          ['claim', () => a.t.claim('k', 1000)],
          ['take', () => a.t.take('k')],
          ['put', () => a.t.put('k', 'v', 1000)],
          ['get', () => a.t.get('k')],
          ['quotaTake', () => a.t.quotaTake('q', 'm', 1, null)],
          ['quotaRelease', () => a.t.quotaRelease('q', 'm')],
        ];
        for (const [name, op] of ops) {
          await assert.rejects(
            op(),
            (err: unknown) => err instanceof SharedStateUnavailable && err.code === 'SHARED_STATE_UNAVAILABLE',
            name,
          );
        }
      });
    } else {
      if (h.makeFresh) {
        const makeFresh = h.makeFresh;
        // Nodes starting together all create the shared state (NATS: the KV buckets) at once.
        it('first use of a fresh namespace from 3 connections at once: no creation race', async () => {
          for (let round = 0; round < 6; round++) {
            const namespace = unique('fresh');
            const fresh = [makeFresh(namespace), makeFresh(namespace), makeFresh(namespace)];
            try {
              await Promise.all(fresh.map((t) => t.connect({ message: () => undefined, status: () => undefined })));
              const key = unique('first');
              const won = await Promise.all(fresh.map((t) => t.claim(key, 5000)));
              assert.equal(won.filter(Boolean).length, 1, `round ${round}: one winner`);
              const quota = await Promise.all(fresh.map((t, i) => t.quotaTake(unique('q'), `m${i}`, 5, null)));
              assert.equal(quota.length, 3);
            } finally {
              await Promise.allSettled(fresh.map((t) => t.close()));
            }
          }
        });
      }

      it('claim: exactly one of 10 concurrent claimers on 3 connections wins', async () => {
        const key = unique('claim');
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => [a, b, c][i % 3].t.claim(key, 5000)));
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal(await c.t.claim(key, 5000), false);
      });

      it('claim: after its TTL the key can be claimed again', async () => {
        const key = unique('claim-ttl');
        assert.equal(await a.t.claim(key, 300), true);
        assert.equal(await b.t.claim(key, 300), false);
        await sleep(450);
        const again = await Promise.all([a, b, c].map((p) => p.t.claim(key, 5000)));
        assert.equal(again.filter(Boolean).length, 1, 'one winner over the expired claim');
        assert.equal(await a.t.take(unique('never-claimed')), false);
      });

      it('take: exactly one of 10 concurrent takers finds the key; then it is free', async () => {
        const key = unique('take');
        assert.equal(await a.t.claim(key, 5000), true);
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => [a, b, c][i % 3].t.take(key)));
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal(await b.t.take(key), false);
        assert.equal(await c.t.claim(key, 5000), true);
        const short = unique('take-expired');
        assert.equal(await a.t.claim(short, 200), true);
        await sleep(300);
        assert.equal(await b.t.take(short), false, 'an expired key is not there to take');
      });

      it('put/get: the value with its remaining TTL, null once expired', async () => {
        const [key, short] = [unique('put'), unique('put-short')];
        assert.equal(await a.t.get(key), null);
        await a.t.put(key, 'v1', 1500);
        await a.t.put(key, 'v2 | with bars|', 1500);
        await a.t.put(short, 'gone soon', 300);
        const hit = await b.t.get(key);
        assert.equal(hit?.value, 'v2 | with bars|');
        assert.ok(hit && hit.ttlMs > 0 && hit.ttlMs <= 1500, `remaining ttl ${hit?.ttlMs}`);
        assert.equal((await c.t.get(short))?.value, 'gone soon');
        await sleep(450);
        assert.equal(await c.t.get(short), null);
        const later = await c.t.get(key);
        assert.ok(later && later.ttlMs <= hit.ttlMs, 'the remaining ttl shrinks');
      });

      it('rejects a TTL that is not a positive number of milliseconds', async () => {
        await assert.rejects(a.t.claim(unique('bad-ttl'), 0), RangeError);
        await assert.rejects(a.t.put(unique('bad-ttl'), 'v', -5), RangeError);
        await assert.rejects(a.t.put(unique('bad-ttl'), 'v', Number.NaN), RangeError);
      });

      it('quotaTake is exact under concurrency: max 5, 20 takers on 3 connections', async () => {
        const key = unique('quota');
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => [a, b, c][i % 3].t.quotaTake(key, `n${i % 4}`, 5, null)));
        assert.equal(results.filter(Boolean).length, 5);
        assert.equal(await a.t.quotaTake(key, 'n9', 5, null), false);
      });

      it('quotaTake drops the counts of members that are not live', async () => {
        const key = unique('quota-live');
        for (let i = 0; i < 3; i++) assert.equal(await a.t.quotaTake(key, 'dead', 10, null), true);
        assert.equal(await b.t.quotaTake(key, 'alive', 3, null), false, 'all members count while live is null');
        for (let i = 0; i < 3; i++) assert.equal(await b.t.quotaTake(key, 'alive', 3, ['alive', 'other']), true);
        assert.equal(await b.t.quotaTake(key, 'alive', 3, ['alive']), false);
        assert.equal(await c.t.quotaTake(key, 'dead', 4, null), true, "the dead member's counts were dropped for good");
      });

      it('quotaRelease gives one unit back and never goes below zero', async () => {
        const key = unique('quota-release');
        assert.equal(await a.t.quotaTake(key, 'm', 2, null), true);
        assert.equal(await a.t.quotaTake(key, 'm', 2, null), true);
        assert.equal(await a.t.quotaTake(key, 'm', 2, null), false);
        await b.t.quotaRelease(key, 'm');
        assert.equal(await a.t.quotaTake(key, 'm', 2, null), true);
        for (let i = 0; i < 5; i++) await b.t.quotaRelease(key, 'm');
        await b.t.quotaRelease(key, 'never-took');
        const after = await Promise.all([0, 1, 2].map(() => c.t.quotaTake(key, 'm', 2, null)));
        assert.equal(after.filter(Boolean).length, 2);
      });
    }

    it('close: no more messages, and later calls do not throw', async () => {
      const z = await open();
      const topic = z.t.topic('contract', unique('close'));
      await z.t.subscribe([topic]);
      await z.t.close();
      b.t.publish(topic, 'after close');
      z.t.publish(topic, 'from a closed transport');
      await sleep(150);
      assert.equal(z.got.length, 0);
      await z.t.close();
    });

    it('status: down when the broker goes, up again with subscriptions restored', { timeout: 45_000 }, async () => {
      const [x, y] = [await open(), await open()];
      const topic = x.t.topic('contract', unique('restore'));
      await x.t.subscribe([topic]);
      await h.breakBroker();
      await until(() => x.statuses.includes(false) && y.statuses.includes(false), 15_000, 'status(false)');
      x.t.publish(topic, 'while down');
      await h.fixBroker();
      await until(() => x.statuses.at(-1) === true && y.statuses.at(-1) === true, 20_000, 'status(true)');
      assert.deepEqual(x.statuses, [false, true]);
      y.t.publish(topic, 'after restore');
      await until(() => payloadsOn(x, topic).includes('after restore'), 5000, 'a message after the restore');
      assert.ok(!payloadsOn(x, topic).includes('while down'), 'publishes while down are dropped, not queued');
      await y.t.ping();
    });
  });
}

const harnesses = [memoryHarness(), boxHarness(), redisHarness(), redisClusterHarness(), natsHarness(true), natsHarness(false)];
const only = process.env.TRANSPORTS?.split(',');
for (const h of harnesses) if (!only || only.includes(h.name)) contract(h);
