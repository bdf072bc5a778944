// 7. Churn: connect -> subscribe -> disconnect cycles per second, and presence
// join/leave cycles per second on a channel with observers.
import { startNode } from '../lib/node.mjs';
import { openSockets, spawnWorkers, stopAll } from '../lib/pool.mjs';
import { cpuMeter } from '../lib/proc.mjs';
import { round, saturation, scoped, sleep } from '../lib/harness.mjs';

export async function churn(cfg, emit) {
  await scoped(async (res) => {
    const node = await startNode({ name: 'churn' });
    res.add(node, () => node.stop());
    const workers = spawnWorkers(cfg.receivers, 'churn');
    res.add(workers, () => stopAll(workers));
    await sleep(500);
    const localAddresses = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
    const spec = { port: node.port, mode: 'connect', concurrency: cfg.churn.concurrencyPerWorker, localAddresses };
    await Promise.all(workers.map((w) => w.call('churn', { ...spec, durationMs: Math.min(2000, cfg.durationMs) }, 60_000)));
    await sleep(500);
    await Promise.all(workers.map((w) => w.call('reset')));
    let meter = cpuMeter([node.pid]);
    let pending = Promise.all(workers.map((w) => w.call('churn', { ...spec, durationMs: cfg.durationMs }, cfg.durationMs + 60_000)));
    // CPU over exactly the window in which cycles are counted (cycles finishing later are not)
    await sleep(cfg.durationMs);
    let m = meter();
    let r = await pending;
    let gen = await Promise.all(workers.map((w) => w.call('stats')));
    let cycles = r.reduce((a, x) => a + x.cycles, 0);
    emit({
      scenario: 'churn',
      kind: 'connect + subscribe (public) + disconnect',
      concurrency: cfg.churn.concurrencyPerWorker * workers.length,
      cycles,
      failures: r.reduce((a, x) => a + x.failures, 0),
      failure_sample: r.map((x) => x.failSample).find(Boolean) || undefined,
      cycles_per_s: round(cycles / m.wall, 0),
      node_cpu_fraction: round(m.cpu[0] / m.wall),
      node_cpu_ms_per_1k_cycles: cycles ? round((m.cpu[0] * 1e6) / cycles, 1) : null,
      ...saturation(
        gen.map((s) => s.cpuFraction),
        m.machineBusy,
      ),
    });

    // presence join/leave with observers
    const { observers, churners } = cfg.churn.presence;
    const opened = await openSockets(
      workers,
      node.port,
      observers + churners,
      { kind: 'presence', shared: true, name: 'presence-churn' },
      { concurrency: 100 },
    );
    if (opened.failed) throw new Error(`churn: ${opened.failed} sockets failed: ${JSON.stringify(opened.failures)}`);
    const per = Math.ceil(churners / workers.length);
    await Promise.all(workers.map((w) => w.call('markChurners', { count: per })));
    await sleep(500);
    await Promise.all(workers.map((w) => w.call('reset')));
    meter = cpuMeter([node.pid]);
    pending = Promise.all(
      workers.map((w) => w.call('churn', { port: node.port, mode: 'presence', durationMs: cfg.durationMs }, cfg.durationMs + 60_000)),
    );
    await sleep(cfg.durationMs);
    m = meter();
    r = await pending;
    gen = await Promise.all(workers.map((w) => w.call('stats')));
    cycles = r.reduce((a, x) => a + x.cycles, 0);
    emit({
      scenario: 'churn',
      kind: 'presence join + leave (same socket)',
      members: observers + churners,
      churners: per * workers.length,
      cycles,
      failures: r.reduce((a, x) => a + x.failures, 0),
      failure_sample: r.map((x) => x.failSample).find(Boolean) || undefined,
      cycles_per_worker: r.map((x) => x.cycles),
      member_events_seen: gen.reduce((a, s) => a + s.otherFrames, 0),
      cycles_per_s: round(cycles / m.wall, 0),
      node_cpu_fraction: round(m.cpu[0] / m.wall),
      node_cpu_ms_per_1k_cycles: cycles ? round((m.cpu[0] * 1e6) / cycles, 1) : null,
      ...saturation(
        gen.map((s) => s.cpuFraction),
        m.machineBusy,
      ),
    });
  });
}
