// `scale` (issue 16): 117 000 (6 × 19 500) pusher-protocol connections on one box, each
// subscribed to its own channel and to one shared channel, held by `workers: 6` (local adapter)
// and then by 6 nodes on Redis; client sockets spread over 127.0.0.x source addresses and over
// generator processes (each below its own 20 000 open files). Reported: time to connect all, RSS
// in total and per connection, CPU per 1k connections, then one event per second to the shared
// channel (every connection gets each) for cfg.scale.broadcastS seconds: latency, lost, CPU per
// million deliveries. Bounded in time; stops what it starts.
import { startNode, workerPids } from '../lib/node.mjs';
import { startRedis } from '../lib/brokers.mjs';
import { spawnWorkers, split, stopAll, collect } from '../lib/pool.mjs';
import { cpuMeter, rssBytes } from '../lib/proc.mjs';
import { latency, round, saturation, scoped, settle, sleep } from '../lib/harness.mjs';
import { sourceAddresses } from './conn.mjs';

const SHARED = 'scale-all';

const rss = (pid) => {
  const v = rssBytes(pid);
  return Number.isFinite(v) ? v : 0;
};
const rssOf = (pids) => pids.reduce((sum, pid) => sum + rss(pid), 0);

/** Opens `total` sockets: generator i sends its share to ports[i % ports.length]. */
async function openAll(cfg, gens, ports, total) {
  const shares = split(total, gens.length);
  const addresses = sourceAddresses(total);
  let base = 0;
  const t0 = Date.now();
  const results = await Promise.all(
    gens.map((g, i) => {
      const from = base;
      base += shares[i];
      // Each generator binds its own slice of the source addresses' port ranges.
      return g.call(
        'open',
        {
          port: ports[i % ports.length],
          count: shares[i],
          base: from,
          channel: { kind: 'public', prefix: 'scale-', also: SHARED },
          concurrency: cfg.scale.concurrencyPerGenerator,
          localAddresses: addresses,
          perAddress: 25_000,
          timeoutMs: cfg.scale.connectTimeoutMs,
        },
        cfg.scale.connectTimeoutMs + 60_000,
      );
    }),
  );
  const failures = {};
  for (const r of results) for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
  return {
    ok: results.reduce((n, r) => n + r.ok, 0),
    failed: results.reduce((n, r) => n + r.failed, 0),
    failures,
    ms: Date.now() - t0,
  };
}

async function run(cfg, emit, label, start) {
  await scoped(async (res) => {
    const { ports, pids } = await start(res);
    const total = cfg.scale.connections;
    const gens = spawnWorkers(cfg.scale.generators, 'scale');
    const publisher = spawnWorkers(1, 'pub')[0];
    res.add(gens, () => stopAll([...gens, publisher]));
    await sleep(2000);
    const rss0 = rssOf(pids);
    const meter = cpuMeter(pids);
    const opened = await openAll(cfg, gens, ports, total);
    const m = meter();
    await sleep(5000);
    const rss1 = rssOf(pids);
    emit({
      scenario: 'scale',
      server: label,
      connections: total,
      subscribed: opened.ok,
      failed: opened.failed,
      failures: opened.failed ? opened.failures : undefined,
      channels_per_connection: 'its own + one shared',
      connect_subscribe_s: round(opened.ms / 1000, 1),
      connects_per_s: round(opened.ok / (opened.ms / 1000), 0),
      node_cpu_s: round(
        m.cpu.reduce((a, b) => a + b, 0),
        2,
      ),
      node_cpu_ms_per_1k_connects: round((m.cpu.reduce((a, b) => a + b, 0) * 1000) / (opened.ok / 1000), 1),
      rss_before_mb: round(rss0 / 2 ** 20, 0),
      rss_after_mb: round(rss1 / 2 ** 20, 0),
      rss_per_conn_kb: round((rss1 - rss0) / opened.ok / 1024, 2),
      rss_by_process_mb: pids.map((p) => round(rss(p) / 2 ** 20, 0)),
    });
    // One event per second to the shared channel: each reaches every connection.
    await Promise.all(gens.map((g) => g.call('reset')));
    const bmeter = cpuMeter(pids);
    const pub = await publisher.call(
      'publish',
      { port: ports[0], mode: 'rate', rate: 1, durationMs: cfg.scale.broadcastS * 1000, channel: { name: SHARED }, connections: 1 },
      cfg.scale.broadcastS * 1000 + 60_000,
    );
    const expected = pub.ok * opened.ok;
    const stats = await settle(gens, expected, 20_000);
    const bm = bmeter();
    const cpu = bm.cpu.reduce((a, b) => a + b, 0);
    const final = await collect(gens);
    emit({
      scenario: 'scale',
      server: label,
      load: `1 event/s to the shared channel for ${cfg.scale.broadcastS} s`,
      events: pub.ok,
      publish_errors: pub.bad || undefined,
      deliveries: stats.received,
      expected_deliveries: expected,
      lost: expected - stats.received,
      still_open: final.open,
      latency: latency(stats.hist),
      node_cpu_s: round(cpu, 2),
      node_cpu_s_per_million: stats.received ? round(cpu / (stats.received / 1e6)) : null,
      ...saturation(stats.cpuFractions, bm.machineBusy),
    });
    await Promise.all(gens.map((g) => g.call('closeAll')));
  });
}

export async function scale(cfg, emit) {
  const n = cfg.scale.processes;
  if (cfg.scale.modes.includes('box'))
    await run(cfg, emit, `box of ${n} workers (local adapter)`, async (res) => {
      const node = await startNode({ name: 'scale-box', config: { workers: n }, timeoutMs: 60_000 });
      res.add(node, () => node.stop());
      return { ports: [node.port], pids: [node.pid, ...workerPids(node)] };
    });
  if (cfg.scale.modes.includes('redis'))
    await run(cfg, emit, `${n} nodes on Redis (redis-server's CPU and RSS included)`, async (res) => {
      const redis = await startRedis();
      res.add(redis, () => redis.stop());
      const nodes = [];
      for (let i = 0; i < n; i++) {
        const node = await startNode({ name: `scale-redis-${i}`, env: { ...redis.env, INSTANCE_PROCESS_ID: `scale-${i}` } });
        res.add(node, () => node.stop());
        nodes.push(node);
      }
      await sleep(3000); // membership settles before the first subscriber
      return { ports: nodes.map((x) => x.port), pids: [...nodes.map((x) => x.pid), ...redis.pids] };
    });
}
