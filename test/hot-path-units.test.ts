// The HTTP path's cheap stand-ins, checked in one process: counters that tally on the hot
// path and fold into prom-client at the scrape (exact at every read), and body deadlines
// on one shared timer (each fires once, late by at most a tick, never after a cancel).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../src/metrics/metrics.js';
import { Tallies } from '../src/metrics/tally.js';
import { bodyDeadlines } from '../src/edge/http/deadlines.js';
import { sleep } from './helpers/wait.js';

const sample = (text: string, name: string): number | null => {
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
};

describe('metrics: tallies folded at the read', () => {
  it('every increment since the last read shows at the next scrape, and none twice', async () => {
    const m = new Metrics('t_');
    for (let i = 0; i < 5; i++) m.httpCall('app1', 'events', 200);
    m.httpCall('app1', 'events', 413);
    m.app('app1').publishes.inc(3);
    const first = await m.render();
    assert.equal(sample(first, 't_http_calls_received_total{app_id="app1",endpoint="events",status="200"}'), 5);
    assert.equal(sample(first, 't_http_calls_received_total{app_id="app1",endpoint="events",status="413"}'), 1);
    m.httpCall('app1', 'events', 200);
    const second = await m.render();
    assert.equal(sample(second, 't_http_calls_received_total{app_id="app1",endpoint="events",status="200"}'), 6);
    assert.equal(sample(second, 't_http_calls_received_total{app_id="app1",endpoint="events",status="413"}'), 1);
  });

  it('a negative or infinite amount is dropped instead of breaking the scrape', () => {
    const seen: number[] = [];
    const tallies = new Tallies();
    const t = tallies.of({ inc: (v = 1) => seen.push(v) });
    t.inc(-4);
    t.inc(Infinity);
    t.inc(NaN);
    t.inc(2);
    t.inc();
    tallies.fold();
    tallies.fold();
    assert.deepEqual(seen, [3]);
  });

  it('gauges moved up and down show their net value at every read', async () => {
    const m = new Metrics('g_');
    const per = m.app('app1');
    for (let i = 0; i < 4; i++) per.connected.inc();
    per.connected.dec();
    m.connectedVia('app1', 'ws').inc();
    m.connectedVia('app1', 'ws').inc();
    assert.equal(sample(await m.render(), 'g_connected{app_id="app1"}'), 3);
    assert.equal(sample(await m.render(), 'g_connections_by_transport{app_id="app1",transport="ws"}'), 2);
    for (let i = 0; i < 3; i++) per.connected.dec();
    m.connectedVia('app1', 'ws').dec();
    const text = await m.render();
    assert.equal(sample(text, 'g_connected{app_id="app1"}'), 0);
    assert.equal(sample(text, 'g_connections_by_transport{app_id="app1",transport="ws"}'), 1);
    assert.equal((await m.appTotals()).get('app1')?.connections, 0);
  });

  it('a gauge moved up and back before any read still shows, at 0', async () => {
    const m = new Metrics('z_');
    m.app('app2').connected.inc();
    m.app('app2').connected.dec();
    assert.equal(sample(await m.render(), 'z_connected{app_id="app2"}'), 0);
  });
});

describe('body deadlines: one shared timer', () => {
  it('fires each once after its time, never a cancelled one, and goes on past a throwing one', async () => {
    const fired: string[] = [];
    const started = Date.now();
    let firedAt = 0;
    bodyDeadlines.add(100, () => {
      fired.push('a');
      firedAt = Date.now();
    });
    const cancelled = bodyDeadlines.add(100, () => fired.push('cancelled'));
    bodyDeadlines.add(50, () => {
      throw new Error('a handler that fails');
    });
    bodyDeadlines.add(100, () => fired.push('c'));
    bodyDeadlines.cancel(cancelled);
    // The wheel's timer is unref'd: keep this test's process busy until it has ticked.
    for (let i = 0; i < 40 && fired.length < 2; i++) await sleep(50);
    await sleep(300);
    assert.deepEqual(fired.sort(), ['a', 'c']);
    assert.ok(firedAt - started >= 100, `fired after ${firedAt - started} ms`);
    assert.equal(bodyDeadlines.pending, 0);
  });

  it('lets a firing deadline cancel or add others, and a cancel twice is harmless', async () => {
    const fired: string[] = [];
    // Both fall due in the same tick: the first's fire cancels the second before it fires.
    bodyDeadlines.add(10, () => {
      fired.push('first');
      bodyDeadlines.cancel(later);
      bodyDeadlines.cancel(later);
      bodyDeadlines.add(10, () => fired.push('added'));
    });
    const later = bodyDeadlines.add(20, () => fired.push('later'));
    for (let i = 0; i < 40 && fired.length < 2; i++) await sleep(50);
    await sleep(300);
    assert.deepEqual(fired, ['first', 'added']);
    assert.equal(bodyDeadlines.pending, 0);
  });

  it('starts no timer for a body done within the turn that began it, and one for a body still arriving', async () => {
    const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
    // The earlier tests' timer stops at its next tick with nothing pending (bounded wait, not a fixed one).
    for (let i = 0; i < 40 && bodyDeadlines.ticking; i++) await sleep(50);
    assert.equal(bodyDeadlines.ticking, false);
    const whole = bodyDeadlines.add(5000, () => assert.fail('a cancelled deadline fired'));
    bodyDeadlines.cancel(whole);
    await turn();
    assert.equal(bodyDeadlines.ticking, false, 'a timer for a body that came whole');
    const fired: string[] = [];
    bodyDeadlines.add(10, () => fired.push('slow'));
    await turn();
    assert.equal(bodyDeadlines.ticking, true, 'no timer for a pending body');
    for (let i = 0; i < 40 && fired.length < 1; i++) await sleep(50);
    assert.deepEqual(fired, ['slow']);
    for (let i = 0; i < 20 && bodyDeadlines.ticking; i++) await sleep(50);
    assert.equal(bodyDeadlines.ticking, false, 'the timer outlived the last deadline');
  });
});
