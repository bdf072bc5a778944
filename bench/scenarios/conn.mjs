// 1. Idle connections: N sockets, each subscribed to a public channel; time to
// connect+subscribe them all and the node's resident memory per connection.
import { startNode, metricValue } from '../lib/node.mjs';
import { openSockets, spawnWorkers, stopAll } from '../lib/pool.mjs';
import { cpuMeter, rssBytes } from '../lib/proc.mjs';
import { round, saturation, scoped, sleep } from '../lib/harness.mjs';

/** Past ~28k source ports per address, further 127.x source addresses. */
export function sourceAddresses(n, perAddress = 25_000) {
  const k = Math.ceil(n / perAddress);
  return k <= 1 ? undefined : Array.from({ length: k }, (_, i) => `127.0.0.${i + 1}`);
}

export async function conn(cfg, emit) {
  for (const n of cfg.conn.sizes) {
    for (const channels of cfg.conn.channelModes) {
      await scoped(async (res) => {
        const node = await startNode({ name: `conn-${n}` });
        res.add(node, () => node.stop());
        const workers = spawnWorkers(cfg.conn.workers, 'conn');
        res.add(workers, () => stopAll(workers));
        await sleep(1500); // let the node finish starting (JIT, GC) before the baseline
        const rss0 = rssBytes(node.pid);
        const heap0 = await metricValue(node, 'chorus_nodejs_heap_size_used_bytes');
        await Promise.all(workers.map((w) => w.call('reset')));
        const meter = cpuMeter([node.pid]);
        const channel = channels === 'shared' ? { kind: 'public', shared: true, name: 'idle' } : { kind: 'public', prefix: 'idle-' };
        const opened = await openSockets(workers, node.port, n, channel, {
          concurrency: cfg.conn.concurrencyPerWorker,
          localAddresses: sourceAddresses(n),
        });
        const m = meter();
        const stats = await Promise.all(workers.map((w) => w.call('stats')));
        await sleep(cfg.conn.idleMs);
        const rss1 = rssBytes(node.pid);
        const heap1 = await metricValue(node, 'chorus_nodejs_heap_size_used_bytes');
        const connected = await metricValue(node, 'chorus_connected');
        emit({
          scenario: 'conn',
          connections: n,
          channels: channels === 'shared' ? 'one shared public channel' : 'one public channel per connection',
          subscribed: opened.ok,
          failed: opened.failed,
          failures: opened.failed ? opened.failures : undefined,
          node_reports_connected: connected,
          connect_subscribe_s: round(opened.ms / 1000, 2),
          connects_per_s: round(opened.ok / (opened.ms / 1000), 0),
          node_cpu_s: round(m.cpu[0], 2),
          node_cpu_ms_per_1k_connects: round((m.cpu[0] * 1000) / (opened.ok / 1000), 1),
          rss_before_mb: round(rss0 / 2 ** 20, 1),
          rss_after_mb: round(rss1 / 2 ** 20, 1),
          rss_per_conn_kb: round((rss1 - rss0) / opened.ok / 1024, 2),
          heap_used_per_conn_kb: heap0 && heap1 ? round((heap1 - heap0) / opened.ok / 1024, 2) : null,
          ...saturation(
            stats.map((s) => s.cpuFraction),
            m.machineBusy,
          ),
        });
        // A mass disconnect: every socket closes at once; the node's CPU until its channels'
        // vacated delay (webhooks.vacated_delay_ms, 3 s by default) has run out and been swept.
        const closing = cpuMeter([node.pid]);
        await Promise.all(workers.map((w) => w.call('closeAll')));
        const t0 = Date.now();
        while ((await metricValue(node, 'chorus_connected')) > 0 && Date.now() - t0 < 20_000) await sleep(100);
        await sleep(Math.max(0, 4000 - (Date.now() - t0)));
        const closed = closing();
        emit({
          scenario: 'conn-close',
          connections: n,
          channels: channels === 'shared' ? 'one shared public channel' : 'one public channel per connection',
          node_cpu_s: round(closed.cpu[0], 2),
          node_cpu_ms_per_1k_disconnects: round((closed.cpu[0] * 1000) / (opened.ok / 1000), 1),
          window_s: round((Date.now() - t0) / 1000, 1),
        });
      });
    }
  }
}
