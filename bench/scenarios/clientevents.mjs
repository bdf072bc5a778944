// 5. Client events: N sockets on one presence channel sending client-* events
// to each other (each event reaches the N-1 others), as fast as they are delivered.
import { startNode } from '../lib/node.mjs';
import { creditLoop, openSockets, spawnWorkers, stopAll } from '../lib/pool.mjs';
import { cpuMeter } from '../lib/proc.mjs';
import { latency, round, saturation, scoped, settle, sleep } from '../lib/harness.mjs';

/** One measured window of client events; CPU of `pids` (the node, or a box's processes). */
export async function clientEventsWindow(cfg, pids, workers, n, durationMs) {
  const per = n - 1;
  await Promise.all(workers.map((w) => w.call('reset')));
  const meter = cpuMeter(pids);
  await Promise.all(workers.map((w) => w.call('clientEvents', { start: true })));
  const loop = creditLoop(workers, workers, per, cfg.clientEvents.window(n));
  await loop.start(10);
  const t0 = Date.now();
  await sleep(durationMs);
  const stopped = await Promise.all(workers.map((w) => w.call('clientEvents', { start: false })));
  const elapsed = (Date.now() - t0) / 1000;
  await loop.stop();
  const sent = stopped.reduce((a, s) => a + s.sent, 0);
  const stats = await settle(workers, sent * per, 5000);
  const m = meter();
  return { sent, elapsed, stats, m, per };
}

export async function clientevents(cfg, emit) {
  const n = cfg.clientEvents.sockets;
  await scoped(async (res) => {
    const node = await startNode({ name: 'client-events' });
    res.add(node, () => node.stop());
    const workers = spawnWorkers(cfg.receivers, 'ce');
    res.add(workers, () => stopAll(workers));
    const opened = await openSockets(workers, node.port, n, { kind: 'presence', shared: true, name: 'presence-ce' }, { concurrency: 100 });
    if (opened.failed) throw new Error(`client events: ${opened.failed} sockets failed: ${JSON.stringify(opened.failures)}`);
    await sleep(1000); // member_added storm of the joins
    await clientEventsWindow(cfg, [node.pid], workers, n, Math.min(2000, cfg.durationMs));
    const { sent, elapsed, stats, m, per } = await clientEventsWindow(cfg, [node.pid], workers, n, cfg.durationMs);
    const expected = sent * per;
    emit({
      scenario: 'client-events',
      sockets: n,
      channel: 'one presence channel',
      events_sent: sent,
      events_per_s: round(sent / elapsed, 1),
      deliveries: stats.received,
      deliveries_per_s: round(stats.received / elapsed, 0),
      expected_deliveries: expected,
      lost: expected - stats.received,
      latency: latency(stats.hist),
      node_cpu_s: round(m.cpu[0], 3),
      node_cpu_fraction: round(m.cpu[0] / m.wall),
      node_cpu_s_per_million: stats.received ? round(m.cpu[0] / (stats.received / 1e6)) : null,
      client_errors: stats.errors || undefined,
      client_error_sample: stats.lastError || undefined,
      ...saturation(stats.cpuFractions, m.machineBusy),
    });
  });
}
