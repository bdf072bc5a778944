// One measured publishing window: the publisher (HTTP API) runs at a fixed rate
// or on credit (as fast as the subscribers keep up), then the receivers settle
// and the node CPU of the window is divided by the deliveries.
import { cpuMeter } from '../lib/proc.mjs';
import { perfWindow } from '../lib/perf.mjs';
import { creditLoop } from '../lib/pool.mjs';
import { latency, round, saturation, settle, sleep } from '../lib/harness.mjs';

/**
 * @param {object} o
 * @param {number[]} o.nodePids   nodes whose CPU counts (e.g. both sides of cross-node)
 * @param {any[]} o.receivers     workers holding the subscribers
 * @param {any} o.publisher       the publishing worker
 * @param {number} o.port         node port the publisher talks to
 * @param {object} o.channel      {name} or {random, prefix, count}
 * @param {number} o.deliveriesPerEvent
 * @param {'credit'|'rate'} o.mode
 * @param {number} [o.rate]       events/s for mode rate
 * @param {number} [o.window]     events in flight for mode credit
 * @param {number} o.durationMs
 * @param {number} [o.connections] HTTP keep-alive connections
 * @param {string} [o.perfName]   with BENCH_PERF_DIR: perf-sample the nodes during the window
 * @param {number} [o.idleMs]     first measure the nodes' idle CPU for this long (timers, heartbeats)
 */
export async function measureDelivery(o) {
  let idle = null;
  if (o.idleMs) {
    const im = cpuMeter(o.nodePids);
    await sleep(o.idleMs);
    const r = im();
    idle = r.cpu.map((c) => c / r.wall);
  }
  await Promise.all(o.receivers.map((w) => w.call('reset')));
  const loop = o.mode === 'credit' ? creditLoop(o.receivers, [o.publisher], o.deliveriesPerEvent, o.window) : null;
  if (loop) await loop.start(10);
  const meter = cpuMeter(o.nodePids);
  const perf = o.perfName ? o.nodePids.map((pid, i) => perfWindow(pid, `${o.perfName}-${i}`, Math.max(1, o.durationMs / 1000 - 2))) : [];
  const pub = await o.publisher.call(
    'publish',
    {
      port: o.port,
      mode: o.mode,
      rate: o.rate,
      window: o.window,
      durationMs: o.durationMs,
      channel: o.channel,
      connections: o.connections ?? 4,
    },
    o.durationMs + 60_000,
  );
  if (loop) await loop.stop();
  const expected = pub.ok * o.deliveriesPerEvent;
  const stats = await settle(o.receivers, expected, 5000);
  const m = meter();
  const nodeCpu = m.cpu.reduce((a, b) => a + b, 0);
  const perMillion = stats.received > 0 ? nodeCpu / (stats.received / 1e6) : null;
  return {
    publishes: pub.ok,
    publish_errors: pub.bad,
    publish_error_sample: pub.badSample || undefined,
    publishes_per_s: round(pub.ok / pub.elapsed, 1),
    deliveries: stats.received,
    deliveries_per_s: round(stats.received / pub.elapsed, 0),
    expected_deliveries: expected,
    lost: expected - stats.received,
    latency: latency(stats.hist),
    node_cpu_s: round(nodeCpu, 3),
    node_cpu_per_node_s: m.cpu.map((c) => round(c, 3)),
    node_cpu_fraction: m.cpu.map((c) => round(c / m.wall)),
    node_cpu_s_per_million: round(perMillion),
    ...(idle && stats.received > 0
      ? {
          node_idle_cpu_fraction: idle.map((f) => round(f, 3)),
          // what is left after the CPU the nodes burn when nobody publishes
          node_cpu_s_per_million_net: round(Math.max(0, nodeCpu - idle.reduce((a, b) => a + b, 0) * m.wall) / (stats.received / 1e6)),
        }
      : {}),
    window_s: round(m.wall),
    client_errors: stats.errors || undefined,
    client_error_sample: stats.lastError || undefined,
    ...saturation([...stats.cpuFractions, pub.cpuFraction], m.machineBusy),
    generator_cpu: { receivers: stats.cpuFractions, publisher: round(pub.cpuFraction) },
    ...(perf.length ? { perf: await Promise.all(perf) } : {}),
  };
}
