// 3. Many channels: every socket on its own private channel, events to random channels.
import { startNode } from '../lib/node.mjs';
import { openSockets, spawnWorkers, stopAll } from '../lib/pool.mjs';
import { scoped, sleep } from '../lib/harness.mjs';
import { measureDelivery } from './delivery.mjs';

export async function manychannels(cfg, emit) {
  const n = cfg.many.sockets;
  await scoped(async (res) => {
    const node = await startNode({ name: 'many' });
    res.add(node, () => node.stop());
    const receivers = spawnWorkers(cfg.receivers, 'recv');
    const publisher = spawnWorkers(1, 'pub')[0];
    res.add(receivers, () => stopAll([...receivers, publisher]));
    const opened = await openSockets(receivers, node.port, n, { kind: 'private', prefix: 'private-mc-' }, { concurrency: 200 });
    if (opened.failed) throw new Error(`many: ${opened.failed} sockets failed: ${JSON.stringify(opened.failures)}`);
    await sleep(500);
    const common = {
      nodePids: [node.pid],
      receivers,
      publisher,
      port: node.port,
      channel: { random: true, prefix: 'private-mc-', count: n },
      deliveriesPerEvent: 1,
      connections: cfg.many.connections,
    };
    await measureDelivery({ ...common, mode: 'credit', window: 2000, durationMs: Math.min(2000, cfg.durationMs) });
    const r = await measureDelivery({ ...common, mode: 'credit', window: 2000, durationMs: cfg.durationMs });
    emit({ scenario: 'many-channels', sockets: n, channels: n, http_connections: cfg.many.connections, ...r });
  });
}
