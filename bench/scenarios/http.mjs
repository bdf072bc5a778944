// 4. HTTP API: signed publishes to a channel nobody is subscribed to, over
// keep-alive connections, as fast as the node answers.
import { startNode } from '../lib/node.mjs';
import { spawnWorkers, stopAll } from '../lib/pool.mjs';
import { cpuMeter } from '../lib/proc.mjs';
import { perfWindow } from '../lib/perf.mjs';
import { round, saturation, scoped, sleep } from '../lib/harness.mjs';

export async function http(cfg, emit) {
  await scoped(async (res) => {
    const node = await startNode({ name: 'http' });
    res.add(node, () => node.stop());
    const publisher = spawnWorkers(1, 'pub')[0];
    res.add(publisher, () => publisher.stop());
    await sleep(500);
    const spec = { port: node.port, mode: 'max', channel: { name: 'nobody-here' }, connections: cfg.http.connections };
    await publisher.call('publish', { ...spec, durationMs: Math.min(2000, cfg.durationMs) }, 60_000);
    // As fast as the node answers (new body, then the same body), then at a fixed rate: at
    // saturation a slower server also batches fewer requests per wake-up (more kernel time per
    // request), so the fixed rate compares the servers' own work per request.
    const runs = [
      { staticBody: false, label: 'new body per request (generator signs each)' },
      { staticBody: true, label: 'same body (generator signs once a second)' },
      { staticBody: false, rate: cfg.http.fixedRate, label: `new body per request, fixed ${cfg.http.fixedRate} requests/s` },
    ];
    for (const { staticBody, rate, label } of runs) {
      const meter = cpuMeter([node.pid]);
      const perf = perfWindow(node.pid, `http-${staticBody ? 'static' : rate ? 'rate' : 'signed'}`, Math.max(1, cfg.durationMs / 1000 - 2));
      const load = rate ? { mode: 'rate', rate } : {};
      const r = await publisher.call('publish', { ...spec, ...load, staticBody, durationMs: cfg.durationMs }, cfg.durationMs + 60_000);
      const m = meter();
      const perfSummary = await perf;
      emit({
        scenario: 'http',
        body: label,
        connections: cfg.http.connections,
        requests: r.ok,
        errors: r.bad,
        error_sample: r.badSample || undefined,
        requests_per_s: round(r.ok / r.elapsed, 0),
        node_cpu_s: round(m.cpu[0], 3),
        node_cpu_fraction: round(m.cpu[0] / m.wall),
        node_cpu_ms_per_1k_requests: round((m.cpu[0] * 1000) / (r.ok / 1000), 2),
        ...saturation([r.cpuFraction], m.machineBusy),
        ...(perfSummary ? { perf: perfSummary } : {}),
      });
    }
  });
}
