// Shared scenario plumbing: resources stopped in reverse order (by handle,
// never by name), bounded waits, and the numbers every scenario reports.
import { collect } from './pool.mjs';
import { summary } from './hist.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Resources {
  constructor() {
    this.stack = [];
  }
  add(what, stop) {
    this.stack.push({ what, stop });
    return what;
  }
  async stopAll() {
    while (this.stack.length) {
      const { stop } = this.stack.pop();
      try {
        await stop();
      } catch (err) {
        process.stderr.write(`cleanup: ${err.message}\n`);
      }
    }
  }
}

/** Runs `fn(res)` and always stops what it started. */
export async function scoped(fn) {
  const res = new Resources();
  active.add(res);
  try {
    return await fn(res);
  } finally {
    await res.stopAll();
    active.delete(res);
  }
}
export const active = new Set();

/**
 * Waits until receivers stop receiving (or reach `expected`), polling every 100 ms
 * for at most `maxMs`. Returns merged stats.
 */
export async function settle(workers, expected, maxMs = 5000) {
  let last = -1;
  let stats;
  const deadline = Date.now() + maxMs;
  for (;;) {
    stats = await collect(workers);
    if (stats.received >= expected) break;
    if (stats.received === last || Date.now() > deadline) break;
    last = stats.received;
    await sleep(150);
  }
  return stats;
}

export const round = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

/** The generator is suspected of being the bottleneck when one of its processes used ~a whole core. */
export function saturation(genFractions, machineBusy) {
  const maxGen = Math.max(0, ...genFractions);
  return {
    generator_cpu_max: round(maxGen),
    machine_busy: round(machineBusy),
    generator_saturated: maxGen >= 0.9,
    machine_saturated: machineBusy >= 0.95,
  };
}

export const latency = (hist) => summary(hist);
