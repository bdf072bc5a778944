// `workers` (issue 16): one node against one box of N workers (`workers: N`, local adapter, the
// primary's hub between them) on the same three loads: fan-out to S subscribers of one channel
// (credit loop, as fast as delivered), signed HTTP publishes over keep-alive connections, and
// client events on one presence channel. CPU is summed over the primary and its workers.
// On a 2-core machine the load generators compete with the workers for the same cores: the
// throughput at saturation says what the box does with what the generators leave it.
import { startNode, workerPids } from '../lib/node.mjs';
import { clientEventsWindow } from './clientevents.mjs';
import { openSockets, spawnWorkers, stopAll } from '../lib/pool.mjs';
import { cpuMeter } from '../lib/proc.mjs';
import { round, saturation, scoped, sleep } from '../lib/harness.mjs';
import { measureDelivery } from './delivery.mjs';

async function fanoutLoad(cfg, node, pids, emit, label) {
  const subs = cfg.workers.subs;
  const receivers = spawnWorkers(cfg.receivers, 'recv');
  const publisher = spawnWorkers(1, 'pub')[0];
  try {
    const opened = await openSockets(receivers, node.port, subs, { kind: 'public', shared: true, name: 'wfan' }, { concurrency: 200 });
    if (opened.failed) throw new Error(`workers fan-out: ${opened.failed} sockets failed: ${JSON.stringify(opened.failures)}`);
    await sleep(1000);
    const common = { nodePids: pids, receivers, publisher, port: node.port, channel: { name: 'wfan' }, deliveriesPerEvent: subs };
    const window = cfg.fanout.window(subs);
    await measureDelivery({ ...common, mode: 'credit', window, durationMs: Math.min(2000, cfg.durationMs) });
    const r = await measureDelivery({ ...common, mode: 'credit', window, durationMs: cfg.durationMs });
    emit({
      scenario: 'workers',
      box: label,
      load: `fan-out to ${subs} subscribers (credit)`,
      deliveries_per_s: r.deliveries_per_s,
      lost: r.lost,
      latency: r.latency,
      node_cpu_s: r.node_cpu_s,
      node_cpu_per_process_s: r.node_cpu_per_node_s,
      node_cpu_s_per_million: r.node_cpu_s_per_million,
      generator_saturated: r.generator_saturated,
      machine_busy: r.machine_busy,
      machine_saturated: r.machine_saturated,
    });
  } finally {
    await stopAll([...receivers, publisher]);
  }
}

async function httpLoad(cfg, node, pids, emit, label) {
  const publisher = spawnWorkers(1, 'pub')[0];
  try {
    const spec = { port: node.port, mode: 'max', channel: { name: 'nobody-here' }, connections: cfg.http.connections, staticBody: true };
    await publisher.call('publish', { ...spec, durationMs: Math.min(2000, cfg.durationMs) }, 60_000);
    const meter = cpuMeter(pids);
    const r = await publisher.call('publish', { ...spec, durationMs: cfg.durationMs }, cfg.durationMs + 60_000);
    const m = meter();
    const cpu = m.cpu.reduce((a, b) => a + b, 0);
    emit({
      scenario: 'workers',
      box: label,
      load: `HTTP publish, ${cfg.http.connections} keep-alive connections, same signed body`,
      requests: r.ok,
      errors: r.bad,
      requests_per_s: round(r.ok / r.elapsed, 0),
      node_cpu_s: round(cpu, 3),
      node_cpu_per_process_s: m.cpu.map((c) => round(c, 3)),
      node_cpu_ms_per_1k_requests: round((cpu * 1000) / (r.ok / 1000), 2),
      ...saturation([r.cpuFraction], m.machineBusy),
    });
  } finally {
    await stopAll([publisher]);
  }
}

async function clientEventsLoad(cfg, node, pids, emit, label) {
  const n = cfg.workers.clientSockets;
  const per = n - 1;
  const workers = spawnWorkers(cfg.receivers, 'ce');
  try {
    const opened = await openSockets(workers, node.port, n, { kind: 'presence', shared: true, name: 'presence-wce' }, { concurrency: 100 });
    if (opened.failed) throw new Error(`workers client events: ${opened.failed} sockets failed`);
    await sleep(1500);
    await clientEventsWindow(cfg, pids, workers, n, Math.min(2000, cfg.durationMs));
    const { sent, elapsed, stats, m } = await clientEventsWindow(cfg, pids, workers, n, cfg.durationMs);
    const cpu = m.cpu.reduce((a, b) => a + b, 0);
    emit({
      scenario: 'workers',
      box: label,
      load: `client events, ${n} sockets on one presence channel`,
      events_per_s: round(sent / elapsed, 1),
      deliveries_per_s: round(stats.received / elapsed, 0),
      lost: sent * per - stats.received,
      node_cpu_s: round(cpu, 3),
      node_cpu_per_process_s: m.cpu.map((c) => round(c, 3)),
      node_cpu_s_per_million: stats.received ? round(cpu / (stats.received / 1e6)) : null,
      ...saturation(stats.cpuFractions, m.machineBusy),
    });
  } finally {
    await stopAll(workers);
  }
}

export async function workers(cfg, emit) {
  for (const count of cfg.workers.counts) {
    const label = count === 1 ? '1 node (workers: 1)' : `box of ${count} workers`;
    for (const load of [fanoutLoad, httpLoad, clientEventsLoad]) {
      await scoped(async (res) => {
        const node = await startNode({ name: `workers-${count}`, config: { workers: count }, timeoutMs: 30_000 });
        res.add(node, () => node.stop());
        const pids = [node.pid, ...workerPids(node)];
        if (pids.length !== (count === 1 ? 1 : count + 1)) throw new Error(`workers: expected ${count} workers, saw pids ${pids}`);
        await load(cfg, node, pids, emit, label);
      });
    }
  }
}
