// The event-loop lag gauges: fed by the ticks of a timer the node runs anyway, reported under
// prom-client's names as how late each tick came (not the interval), one scrape's seven
// figures from the same samples, the console's mean apart from them, and prom-client's own
// sampler replaced, not doubled.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { LoopLag } from '../src/metrics/loop-lag.js';
import { Metrics } from '../src/metrics/metrics.js';

const sample = (text: string, name: string): number | null => {
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
};

describe('event-loop lag from the ticks of a timer', () => {
  it('reports how late each tick came, in seconds, and starts afresh after each scrape', async () => {
    const registry = new Registry();
    const lag = new LoopLag(registry, 'x_');
    lag.ticked(1000, 5_000); // the first tick only starts the clock
    lag.ticked(1000, 6_000.5); // 0.5 ms late
    lag.ticked(1000, 7_300.5); // 300 ms late
    lag.ticked(1000, 8_300.2); // a fraction early (the loop's clock is in whole ms): on time
    const text = await registry.metrics();
    const max = sample(text, 'x_nodejs_eventloop_lag_max_seconds')!;
    const min = sample(text, 'x_nodejs_eventloop_lag_min_seconds')!;
    assert.ok(Math.abs(max - 0.3) < 0.001, `max ${max}`);
    assert.ok(min >= 0 && min < 0.000001, `min ${min}`);
    const p50 = sample(text, 'x_nodejs_eventloop_lag_p50_seconds')!;
    assert.ok(Math.abs(p50 - 0.0005) < 0.0001, `p50 ${p50}`);
    const mean = sample(text, 'x_nodejs_eventloop_lag_mean_seconds')!;
    assert.ok(Math.abs(mean - 0.10017) < 0.001, `mean ${mean}`);
    // No tick since: the next scrape shows no lag rather than the last one's again.
    const next = await registry.metrics();
    assert.equal(sample(next, 'x_nodejs_eventloop_lag_max_seconds'), 0);
    assert.equal(sample(next, 'x_nodejs_eventloop_lag_p99_seconds'), 0);
    lag.ticked(250, 8_550 + 40); // 40 ms late on a 250 ms timer
    assert.ok(Math.abs(sample(await registry.metrics(), 'x_nodejs_eventloop_lag_p99_seconds')! - 0.04) < 0.001);
  });

  it('one scrape reads every figure from the same samples', async () => {
    const registry = new Registry();
    const lag = new LoopLag(registry, '');
    lag.ticked(1000, 1_000);
    lag.ticked(1000, 2_010); // 10 ms late
    const json = await registry.getMetricsAsJSON();
    const value = (name: string) => json.find((m) => m.name === name)?.values[0]?.value;
    for (const name of ['min', 'max', 'mean', 'p50', 'p90', 'p99']) {
      const v = value(`nodejs_eventloop_lag_${name}_seconds`)!;
      assert.ok(Math.abs(v - 0.01) < 0.0001, `${name} ${v}`);
    }
    assert.equal(value('nodejs_eventloop_lag_stddev_seconds'), 0);
  });

  it("gives the operator console its own mean, apart from the scrapes'", async () => {
    const registry = new Registry();
    const lag = new LoopLag(registry, '');
    assert.equal(lag.meanSinceLastReportMs(), 0);
    lag.ticked(1000, 1_000);
    lag.ticked(1000, 2_004); // 4 ms late
    lag.ticked(1000, 3_010); // 6 ms late
    await registry.metrics(); // a scrape takes nothing from the console's reading
    assert.ok(Math.abs(lag.meanSinceLastReportMs() - 5) < 0.001);
    // No tick since: the last mean again, not 0 (the console may ask more often than once a second).
    assert.ok(Math.abs(lag.meanSinceLastReportMs() - 5) < 0.001);
    lag.ticked(1000, 4_009.5); // a fraction early: on time
    assert.equal(lag.meanSinceLastReportMs(), 0);
  });

  it("replaces prom-client's gauges in a node's metrics: each name once, and idle lag is not the sampling interval", async () => {
    const m = new Metrics('chorus_');
    m.loopLag.ticked(1000, 10_000);
    m.loopLag.ticked(1000, 11_000.2);
    const text = await m.render();
    for (const name of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
      const series = `chorus_nodejs_eventloop_lag_${name}_seconds`;
      assert.equal(text.split('\n').filter((l) => l.startsWith(`# TYPE ${series} `)).length, 1, series);
    }
    assert.ok(sample(text, 'chorus_nodejs_eventloop_lag_p99_seconds')! < 0.001);
    // prom-client's scrape-time measure stays as it was.
    assert.notEqual(sample(text, 'chorus_nodejs_eventloop_lag_seconds'), null);
    // The box adds its workers' series with prom-client's aggregators.
    const json = await m.registry.getMetricsAsJSON();
    const agg = (name: string) => (json.find((x) => x.name === name) as { aggregator?: string } | undefined)?.aggregator;
    assert.equal(agg('chorus_nodejs_eventloop_lag_max_seconds'), 'max');
    assert.equal(agg('chorus_nodejs_eventloop_lag_min_seconds'), 'min');
    assert.equal(agg('chorus_nodejs_eventloop_lag_p99_seconds'), 'average');
  });
});
