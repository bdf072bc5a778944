// Event-loop lag, sampled by a timer the node runs anyway (the liveness sweep) instead of
// one of its own. prom-client samples with monitorEventLoopDelay, a timer that wakes the
// loop every `resolution` ms; a node that wakes 20 times a second between publishes is
// preempted far more often by the processes it sends to while it fans out (on a 2-core box,
// 10x the involuntary switches of one that sleeps: bench/README.md, "wake-ups between
// publishes"), and every subscriber gets the publish later. Reported under prom-client's
// names, as how late the timer came: prom-client's figures include the sampling interval
// itself (an idle node showed 50 ms of "lag").
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

type Aggregator = 'min' | 'max' | 'average';
type Read = (h: RecordableHistogram) => number;

/** prom-client's histogram-based lag gauges: name, help, how a box adds its workers' values, the reading. */
const GAUGES: ReadonlyArray<readonly [string, string, Aggregator, Read]> = [
  ['nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay.', 'min', (h) => h.min],
  ['nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.', 'max', (h) => h.max],
  ['nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.', 'average', (h) => h.mean],
  ['nodejs_eventloop_lag_stddev_seconds', 'The standard deviation of the recorded event loop delays.', 'average', (h) => h.stddev],
  ['nodejs_eventloop_lag_p50_seconds', 'The 50th percentile of the recorded event loop delays.', 'average', (h) => h.percentile(50)],
  ['nodejs_eventloop_lag_p90_seconds', 'The 90th percentile of the recorded event loop delays.', 'average', (h) => h.percentile(90)],
  ['nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays.', 'average', (h) => h.percentile(99)],
];

/**
 * prom-client's own sampler is started by collectDefaultMetrics whatever its options: with this
 * period its timer never comes due (12 days, unref'd), and its gauges are replaced by LoopLag's.
 */
export const PROM_LAG_SAMPLER_OFF_MS = 2 ** 30;

/** What a repeating timer tells about the loop at each of its ticks. */
export interface TickObserver {
  ticked(intervalMs: number, nowMs?: number): void;
}

export class LoopLag implements TickObserver {
  private readonly histogram = createHistogram();
  private lastTickMs = 0;
  /** the operator console's reading, apart from the scrapes' (each reader resets its own) */
  private reportSumMs = 0;
  private reportCount = 0;
  private reportMeanMs = 0;

  /** Replaces prom-client's lag gauges in `registry` (registered by collectDefaultMetrics under `prefix`). */
  constructor(registry: Registry, prefix: string) {
    // A scrape reads every gauge once: the first read of a scrape takes the histogram's values
    // (and resets it), so the seven figures of one scrape describe the same samples.
    let values: number[] = [];
    const read = new Set<number>();
    const valueOf = (i: number): number => {
      if (values.length === 0 || read.has(i)) {
        const h = this.histogram;
        values = GAUGES.map(([, , , of]) => (h.count === 0 ? 0 : of(h) / 1e9));
        h.reset();
        read.clear();
      }
      read.add(i);
      return values[i];
    };
    GAUGES.forEach(([name, help, aggregator], i) => {
      registry.removeSingleMetric(prefix + name);
      new Gauge({
        name: prefix + name,
        help,
        aggregator,
        registers: [registry],
        collect() {
          this.set(valueOf(i));
        },
      });
    });
  }

  /** A tick of a timer repeating every `intervalMs`: how late it came is one sample (the first only starts). */
  ticked(intervalMs: number, nowMs = performance.now()): void {
    if (this.lastTickMs !== 0) {
      const lateNs = Math.round((nowMs - this.lastTickMs - intervalMs) * 1e6);
      // The loop's clock is in whole ms, so a tick can seem a fraction early; histograms take >= 1.
      this.histogram.record(lateNs >= 1 ? lateNs : 1);
      this.reportSumMs += lateNs > 0 ? lateNs / 1e6 : 0;
      this.reportCount++;
    }
    this.lastTickMs = nowMs;
  }

  /** The mean lag (ms) since the previous call; the previous mean when no tick came in between. */
  meanSinceLastReportMs(): number {
    if (this.reportCount > 0) {
      this.reportMeanMs = this.reportSumMs / this.reportCount;
      this.reportSumMs = 0;
      this.reportCount = 0;
    }
    return this.reportMeanMs;
  }
}
