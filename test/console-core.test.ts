// The operator console's algorithms in one process: reports asked of every live peer,
// live events sent only to the nodes that watch an app (a lease that lapses), the
// wire's defences against bad console messages, the tap's sampling, and the session
// cookie's checks. The browser, the real nodes and Redis are console.test.ts's.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ConsoleBatch, OperatorLink } from '../src/cluster/ports.js';
import { encodeControl } from '../src/cluster/horizontal/wire.js';
import { ConsoleTap, CONSOLE_DATA_MAX, clipData, type ConsoleViewers } from '../src/core/console-tap.js';
import { ConsoleAuth, cookieValue } from '../src/edge/admin/console/auth.js';
import { SimCluster } from './helpers/sim-cluster.js';
import { sleep, until } from './helpers/wait.js';

let sim: SimCluster | null = null;
afterEach(async () => {
  await sim?.close();
  sim = null;
});

const event = (node: string) => ({ ts: 1, node, type: 'api_message' as const, channel: 'c', event: 'e', data: '{}' });

describe('console: the operator link over the bus', () => {
  it('reports come from every live peer and stop waiting for a dead one', async () => {
    sim = await SimCluster.of(3);
    const [a, b, c] = sim.nodes;
    const reports = await a.cluster.operator.reports('node');
    assert.deepEqual(
      [...reports.entries()].sort(),
      [
        [b.cluster.nodeId, { kind: 'node', name: 'n1' }],
        [c.cluster.nodeId, { kind: 'node', name: 'n2' }],
      ].sort(),
    );
    sim.broker.pause(c.transport);
    const started = Date.now();
    const partial = await a.cluster.operator.reports('apps');
    assert.ok(Date.now() - started < 1000, 'bounded by the request deadline');
    assert.deepEqual([...partial.keys()], [b.cluster.nodeId]);
  });

  it('events go only to the nodes that watch the app, and the watch lapses with its watcher', async () => {
    sim = await SimCluster.of(3);
    const [a, b, c] = sim.nodes;
    assert.equal(a.cluster.operator.wanted('app-1'), false);
    b.cluster.operator.watch('app-1');
    await until(() => a.cluster.operator.wanted('app-1') && c.cluster.operator.wanted('app-1'), 1000, 'watch seen');
    assert.equal(a.cluster.operator.wanted('app-2'), false, 'per app');
    a.cluster.operator.send('app-1', { events: [event(a.cluster.nodeId)], skipped: 3 });
    await until(() => b.consoleBatches.length === 1, 1000, 'batch delivered');
    assert.equal(b.consoleBatches[0].appId, 'app-1');
    assert.equal(b.consoleBatches[0].batch.skipped, 3);
    assert.equal(b.consoleBatches[0].batch.events[0].channel, 'c');
    await sleep(50);
    assert.equal(c.consoleBatches.length, 0, 'a node that does not watch gets nothing');
    // The watcher dies: its lease goes with it, not only after the lease time.
    sim.broker.pause(b.transport);
    await until(() => !a.cluster.operator.wanted('app-1'), 1500, 'watch dropped with the node');
  });

  it('bad console messages are dropped and counted, never delivered', async () => {
    sim = await SimCluster.of(2);
    const [a, b] = sim.nodes;
    b.cluster.operator.watch('app-1');
    await until(() => a.cluster.operator.wanted('app-1'), 1000, 'watch seen');
    const topic = b.transport.topic('sim', 'node', b.cluster.nodeId);
    const bad = [
      { t: 'cev', a: 'app-1', ev: [{ ...event('x'), type: 'no_such_type' }], sk: 0 },
      { t: 'cev', a: 'app-1', ev: [{ ...event('x'), data: 'x'.repeat(9000) }], sk: 0 },
      { t: 'cev', a: 'app-1', ev: Array.from({ length: 501 }, () => event('x')), sk: 0 },
      { t: 'cev', a: 'app-1', ev: [], sk: -1 },
    ];
    for (const m of bad) a.transport.publish(topic, encodeControl(a.cluster.nodeId, m as never));
    a.transport.publish(topic, encodeControl(a.cluster.nodeId, { t: 'cev', a: 'app-1', ev: [event('ok')], sk: 0 }));
    await until(() => b.consoleBatches.length === 1, 1000, 'the good one arrives');
    assert.equal(b.consoleBatches[0].batch.events[0].node, 'ok');
  });
});

class FakeViewers implements ConsoleViewers {
  readonly batches: ConsoleBatch[] = [];
  constructor(private readonly apps: Set<string>) {}
  watching(appId: string): boolean {
    return this.apps.has(appId);
  }
  deliver(_appId: string, batch: ConsoleBatch): void {
    this.batches.push(batch);
  }
}

const quietLink = (sent: ConsoleBatch[] = [], wanted = false): OperatorLink => ({
  reports: async () => new Map(),
  watch: () => undefined,
  wanted: () => wanted,
  send: (_a, b) => void sent.push(b),
  broker: () => ({ state: 'none', rttMs: null }),
});

describe('console: the tap', () => {
  it('wants nothing while nobody watches', () => {
    const tap = new ConsoleTap('n', quietLink(), { maxEventsPerSecond: 10 });
    assert.equal(tap.wants('app-1'), false);
    tap.attach(new FakeViewers(new Set(['app-2'])));
    assert.equal(tap.wants('app-1'), false);
    assert.equal(tap.wants('app-2'), true);
    tap.stop();
  });

  it('samples at the per-second cap and says how many it skipped', () => {
    const sent: ConsoleBatch[] = [];
    const tap = new ConsoleTap('n', quietLink(sent, true), { maxEventsPerSecond: 10 });
    const viewers = new FakeViewers(new Set(['app-1']));
    tap.attach(viewers);
    for (let i = 0; i < 25; i++) tap.record('app-1', { type: 'client_event', channel: 'private-x', event: `e${i}` });
    tap.flush();
    assert.equal(viewers.batches.length, 1);
    assert.equal(viewers.batches[0].events.length, 10);
    assert.equal(viewers.batches[0].skipped, 15);
    assert.deepEqual(sent, viewers.batches, 'the same batch goes to the watching peers');
    assert.equal(viewers.batches[0].events[0].node, 'n');
    tap.stop();
  });

  it('clips payloads and says so', () => {
    assert.deepEqual(clipData('abc'), { data: 'abc' });
    const clipped = clipData('x'.repeat(CONSOLE_DATA_MAX + 5));
    assert.equal(clipped.data.length, CONSOLE_DATA_MAX);
    assert.equal(clipped.truncated, true);
  });
});

describe('console: credentials', () => {
  it('accepts the token and its own sessions only', () => {
    const auth = new ConsoleAuth('the-right-token');
    assert.equal(auth.tokenMatches('the-right-token'), true);
    assert.equal(auth.tokenMatches('the-right-tokeN'), false);
    assert.equal(auth.tokenMatches(''), false);
    assert.equal(auth.allowed({ cookie: '', authorization: 'Bearer the-right-token' }), true);
    assert.equal(auth.allowed({ cookie: '', authorization: 'Bearer nope' }), false);
    assert.equal(auth.allowed({ cookie: '', authorization: '' }), false);
    const session = auth.newSession();
    assert.ok(!session.includes('the-right-token'), 'the cookie is not the token');
    assert.equal(auth.allowed({ cookie: `a=b; chorus_console=${session}`, authorization: '' }), true);
    assert.equal(new ConsoleAuth('another-token').sessionValid(session), false, 'another token, another key');
    const [v, exp, mac] = session.split('.');
    assert.equal(auth.sessionValid(`${v}.${Number(exp) + 1}.${mac}`), false, 'the expiry is signed');
    assert.equal(auth.sessionValid(session, (Number(exp) + 1) * 1000), false, 'expired');
    assert.equal(auth.sessionValid('garbage'), false);
    assert.equal(cookieValue('x=1; chorus_console=abc', 'chorus_console'), 'abc');
    assert.equal(cookieValue('x=1', 'chorus_console'), null);
  });
});
