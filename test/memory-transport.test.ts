// The in-memory broker's own promises beyond the Transport contract (which
// transport-contract.test.ts checks): seeded, replayable faults, pauses and
// disconnects, lost state, counters, and asynchronous deliveries.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBroker, type MemoryBrokerOptions, type MemoryTransport } from '../src/transports/memory.js';
import { SharedStateUnavailable } from '../src/transports/transport.js';
import { sleep, until } from './helpers/wait.js';

interface Node {
  t: MemoryTransport;
  got: string[];
  statuses: boolean[];
}

const brokers: MemoryBroker[] = [];

function broker(options: MemoryBrokerOptions = {}): MemoryBroker {
  const b = new MemoryBroker(options);
  brokers.push(b);
  return b;
}

async function node(b: MemoryBroker, handler?: (payload: string) => void): Promise<Node> {
  const t = b.transport();
  const n: Node = { t, got: [], statuses: [] };
  await t.connect({
    message: (_topic, payload) => {
      n.got.push(payload);
      handler?.(payload);
    },
    status: (up) => void n.statuses.push(up),
  });
  return n;
}

/** Publishes `count` numbered messages from one node to another and returns what arrived. */
async function run(options: MemoryBrokerOptions, count = 200): Promise<{ got: string[]; b: MemoryBroker }> {
  const b = broker(options);
  const [from, to] = [await node(b), await node(b)];
  await to.t.subscribe(['t']);
  for (let i = 0; i < count; i++) from.t.publish('t', String(i));
  await b.settle();
  return { got: to.got, b };
}

afterEach(() => {
  for (const b of brokers.splice(0)) b.close();
});

describe('memory broker', () => {
  it('never delivers inside publish', async () => {
    const b = broker();
    const n = await node(b);
    await n.t.subscribe(['t']);
    n.t.publish('t', 'self');
    assert.deepEqual(n.got, []);
    await b.settle();
    assert.deepEqual(n.got, ['self']);
  });

  it('loss is seeded: the same seed drops the same messages, another seed others', async () => {
    const first = await run({ seed: 42, faults: { loss: 0.3 } });
    const again = await run({ seed: 42, faults: { loss: 0.3 } });
    const other = await run({ seed: 43, faults: { loss: 0.3 } });
    assert.deepEqual(first.got, again.got);
    assert.notDeepEqual(first.got, other.got);
    assert.ok(first.got.length > 100 && first.got.length < 170, `${first.got.length} of 200 arrived`);
    assert.equal(first.b.stats.dropped, 200 - first.got.length);
  });

  it('duplicates arrive twice and are counted', async () => {
    const { got, b } = await run({ seed: 5, faults: { duplicate: 0.25 } });
    assert.equal(got.length, 200 + b.stats.duplicated);
    assert.ok(b.stats.duplicated > 20 && b.stats.duplicated < 80);
    assert.deepEqual([...new Set(got)].length, 200);
  });

  it('delays keep one stream in order unless reordering is on', async () => {
    const ordered = await run({ seed: 9, faults: { delayMs: [0, 15] } }, 100);
    assert.deepEqual(
      ordered.got,
      Array.from({ length: 100 }, (_, i) => String(i)),
    );
    const shuffled = await run({ seed: 9, faults: { delayMs: [0, 15], reorder: true } }, 100);
    assert.equal(shuffled.got.length, 100);
    assert.notDeepEqual(shuffled.got, ordered.got, 'with reorder, messages overtake each other');
  });

  it('per-connection faults apply to deliveries to that connection only', async () => {
    const b = broker({ seed: 3 });
    const [from, lossy, clean] = [await node(b), await node(b), await node(b)];
    b.setFaults({ loss: 1 }, lossy.t);
    await Promise.all([lossy.t.subscribe(['t']), clean.t.subscribe(['t'])]);
    for (let i = 0; i < 20; i++) from.t.publish('t', String(i));
    await b.settle();
    assert.equal(lossy.got.length, 0);
    assert.equal(clean.got.length, 20);
    assert.equal(b.delivered(clean.t, 't'), 20);
    assert.equal(b.delivered(lossy.t), 0);
    assert.equal(b.publishedOn('t'), 20);
  });

  it('a paused connection neither sends nor receives until it resumes, then both go on in order', async () => {
    const b = broker();
    const [x, y] = [await node(b), await node(b)];
    await Promise.all([x.t.subscribe(['to-x']), y.t.subscribe(['to-y'])]);
    b.pause(x.t);
    y.t.publish('to-x', '1');
    y.t.publish('to-x', '2');
    x.t.publish('to-y', 'from paused');
    let claimed: boolean | null = null;
    void x.t.claim('k', 5000).then((v) => (claimed = v));
    await sleep(50);
    assert.deepEqual(x.got, []);
    assert.deepEqual(y.got, []);
    assert.equal(claimed, null, 'an operation waits while paused');
    assert.equal(await y.t.claim('k', 5000), true, 'the paused claim has not reached the broker');
    b.resume(x.t);
    await until(() => x.got.length === 2 && y.got.length === 1 && claimed !== null, 2000, 'held traffic');
    assert.deepEqual(x.got, ['1', '2']);
    assert.deepEqual(y.got, ['from paused']);
    assert.equal(claimed, false);
  });

  it('disconnect: status(false), subscriptions and in-flight work lost; reconnect restores them, then status(true)', async () => {
    const b = broker();
    const [x, y] = [await node(b), await node(b)];
    await x.t.subscribe(['a']);
    b.disconnect(x.t);
    assert.deepEqual(x.statuses, [], 'status arrives asynchronously');
    await until(() => x.statuses.length === 1, 1000, 'status(false)');
    assert.deepEqual(x.statuses, [false]);
    y.t.publish('a', 'lost');
    x.t.publish('a', 'dropped at the sender');
    await assert.rejects(x.t.get('k'), /down/);
    await assert.rejects(x.t.ping(), /down/);
    const later = x.t.subscribe(['b']);
    await b.settle();
    assert.deepEqual(x.got, []);
    b.reconnect(x.t);
    await later;
    await until(() => x.statuses.length === 2, 1000, 'status(true)');
    assert.deepEqual(x.statuses, [false, true]);
    y.t.publish('a', 'back');
    y.t.publish('b', 'new');
    await until(() => x.got.length === 2, 1000, 'messages after reconnect');
    assert.deepEqual(x.got, ['back', 'new']);
  });

  it('flushState loses claims, values and quotas', async () => {
    const b = broker();
    const x = await node(b);
    assert.equal(await x.t.claim('c', 60_000), true);
    await x.t.put('v', 'value', 60_000);
    assert.equal(await x.t.quotaTake('q', 'm', 1, null), true);
    b.flushState();
    assert.equal(await x.t.claim('c', 60_000), true);
    assert.equal(await x.t.get('v'), null);
    assert.equal(await x.t.quotaTake('q', 'm', 1, null), true);
    assert.deepEqual(b.kv.quotaCounts('q'), { m: 1 });
  });

  it('a throwing handler is counted and does not stop deliveries', async () => {
    const b = broker();
    const x = await node(b, (p) => {
      if (p === 'boom') throw new Error('handler bug');
    });
    await x.t.subscribe(['t']);
    x.t.publish('t', 'boom');
    x.t.publish('t', 'fine');
    await b.settle();
    assert.deepEqual(x.got, ['boom', 'fine']);
    assert.equal(b.stats.handlerErrors, 1);
  });

  it("operation delays spread operations in time; the TTL clock can be the test's own", async () => {
    let now = 1_000_000;
    const b = broker({ now: () => now, faults: { opDelayMs: [30, 30] } });
    const x = await node(b);
    const started = Date.now();
    assert.equal(await x.t.claim('k', 100), true);
    assert.ok(Date.now() - started >= 25);
    now += 101;
    assert.equal(await x.t.claim('k', 100), true, 'expired on the given clock, without waiting');
  });

  it('without shared state, key-value operations reject', async () => {
    const b = broker({ sharedState: false });
    const x = await node(b);
    assert.equal(x.t.sharedState, false);
    await assert.rejects(x.t.claim('k', 1000), SharedStateUnavailable);
    await assert.rejects(x.t.quotaRelease('q', 'm'), SharedStateUnavailable);
  });
});
