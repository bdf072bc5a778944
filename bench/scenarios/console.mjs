// 11. The operator console (issue 18) must not slow the data path: fan-out to S
// subscribers of one app at the credit limit, on a node with the console enabled,
// first with no viewer, then with V viewers streaming that app's live events (every
// publish is an api_message event: sampled at console.max_events_per_second, the rest
// counted as skipped). Node CPU per delivery side by side; what the viewers received.
import { request } from 'node:http';
import { BENCH_APP, startNode } from '../lib/node.mjs';
import { openSockets, spawnWorkers, stopAll } from '../lib/pool.mjs';
import { round, scoped, sleep } from '../lib/harness.mjs';
import { measureDelivery } from './delivery.mjs';

const TOKEN = 'bench-console-token';

/** An SSE viewer of the app's stream: counts the events and the skipped ones it is told of. */
function openViewer(metricsPort, appId) {
  const seen = { events: 0, skipped: 0, bytes: 0 };
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: metricsPort, path: `/console/api/apps/${appId}/events`, headers: { authorization: `Bearer ${TOKEN}` } },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`viewer: HTTP ${res.statusCode}`));
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          seen.bytes += chunk.length;
          buf += chunk;
          let at;
          while ((at = buf.indexOf('\n\n')) >= 0) {
            const message = buf.slice(0, at);
            buf = buf.slice(at + 2);
            const data = message.split('\n').find((l) => l.startsWith('data: '));
            if (!message.startsWith('event: batch') || !data) continue;
            const batch = JSON.parse(data.slice(6));
            seen.events += batch.events.length;
            seen.skipped += batch.skipped;
          }
        });
        resolve({ seen, close: () => req.destroy() });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export async function consoleScenario(cfg, emit) {
  const { subs, viewers } = cfg.console;
  for (const open of [0, viewers]) {
    await scoped(async (res) => {
      const node = await startNode({ name: `console-${open}`, config: { console: { enabled: true, token: TOKEN } } });
      res.add(node, () => node.stop());
      const receivers = spawnWorkers(cfg.receivers, 'recv');
      const publisher = spawnWorkers(1, 'pub')[0];
      res.add(receivers, () => stopAll([...receivers, publisher]));
      const watching = [];
      for (let i = 0; i < open; i++) watching.push(await openViewer(node.metricsPort, BENCH_APP.id));
      res.add(watching, () => watching.forEach((v) => v.close()));
      const opened = await openSockets(receivers, node.port, subs, { kind: 'public', shared: true, name: 'console' }, { concurrency: 200 });
      if (opened.failed) throw new Error(`console: ${opened.failed} sockets failed`);
      await sleep(500);
      const common = {
        nodePids: [node.pid],
        receivers,
        publisher,
        port: node.port,
        channel: { name: 'console' },
        deliveriesPerEvent: subs,
      };
      await measureDelivery({ ...common, mode: 'credit', window: cfg.fanout.window(subs), durationMs: Math.min(2000, cfg.durationMs) });
      const before = watching.map((v) => ({ ...v.seen }));
      const max = await measureDelivery({ ...common, mode: 'credit', window: cfg.fanout.window(subs), durationMs: cfg.durationMs });
      const got = watching.map((v, i) => ({ events: v.seen.events - before[i].events, skipped: v.seen.skipped - before[i].skipped }));
      emit({
        scenario: 'console',
        subscribers: subs,
        viewers: open,
        viewer_events: got.map((g) => g.events),
        viewer_skipped: got.map((g) => g.skipped),
        cpu_s_per_million_deliveries: round((max.node_cpu_s / Math.max(1, max.deliveries)) * 1e6, 3),
        ...max,
      });
    });
  }
}
