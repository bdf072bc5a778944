// 2. Fan-out: S subscribers on one public channel, events published through the
// signed HTTP API as fast as they are delivered (credit), then at a fixed
// 30k deliveries/s for latency.
import { startNode } from '../lib/node.mjs';
import { openSockets, spawnWorkers, stopAll } from '../lib/pool.mjs';
import { scoped, sleep } from '../lib/harness.mjs';
import { measureDelivery } from './delivery.mjs';

export async function fanout(cfg, emit) {
  for (const subs of cfg.fanout.subs) {
    await scoped(async (res) => {
      const node = await startNode({ name: `fanout-${subs}` });
      res.add(node, () => node.stop());
      const receivers = spawnWorkers(cfg.receivers, 'recv');
      const publisher = spawnWorkers(1, 'pub')[0];
      res.add(receivers, () => stopAll([...receivers, publisher]));
      const opened = await openSockets(receivers, node.port, subs, { kind: 'public', shared: true, name: 'fanout' }, { concurrency: 200 });
      if (opened.failed) throw new Error(`fanout: ${opened.failed} sockets failed: ${JSON.stringify(opened.failures)}`);
      await sleep(500);
      const common = { nodePids: [node.pid], receivers, publisher, port: node.port, channel: { name: 'fanout' }, deliveriesPerEvent: subs };
      // warm-up: JIT and buffers, not measured
      await measureDelivery({ ...common, mode: 'credit', window: cfg.fanout.window(subs), durationMs: Math.min(2000, cfg.durationMs) });
      const max = await measureDelivery({
        ...common,
        mode: 'credit',
        window: cfg.fanout.window(subs),
        durationMs: cfg.durationMs,
        perfName: `fanout-${subs}-max`,
      });
      emit({ scenario: 'fanout', subscribers: subs, load: 'max (credit window ' + cfg.fanout.window(subs) + ' events)', ...max });
      const rate = cfg.fixedDeliveriesPerS / subs;
      const fixed = await measureDelivery({
        ...common,
        mode: 'rate',
        rate,
        idleMs: 3000,
        durationMs: cfg.durationMs,
        connections: 4,
        perfName: `fanout-${subs}-fixed`,
      });
      emit({
        scenario: 'fanout',
        subscribers: subs,
        load: `fixed ${cfg.fixedDeliveriesPerS} deliveries/s (${rate} publishes/s)`,
        ...fixed,
      });
    });
  }
}
