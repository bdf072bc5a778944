// 6. Cross-node: subscribers on node A, publishes through node B's HTTP API, node
// C holds subscribers of an unrelated channel (it must receive none of this traffic).
import { BROKERS } from '../lib/brokers.mjs';
import { startNode, metricValue } from '../lib/node.mjs';
import { openSockets, spawnWorkers, stopAll } from '../lib/pool.mjs';
import { ioBytes } from '../lib/proc.mjs';
import { round, scoped, sleep } from '../lib/harness.mjs';
import { measureDelivery } from './delivery.mjs';

async function busBytes(node) {
  return {
    channel: (await metricValue(node, 'chorus_bus_bytes_received_total', 'kind="channel"')) ?? 0,
    control: (await metricValue(node, 'chorus_bus_bytes_received_total', 'kind="control"')) ?? 0,
  };
}

async function uninterested(nodeC, fn) {
  const b0 = await busBytes(nodeC);
  const io0 = ioBytes(nodeC.pid);
  const r = await fn();
  const b1 = await busBytes(nodeC);
  const io1 = ioBytes(nodeC.pid);
  return {
    ...r,
    uninterested_node: {
      bus_channel_bytes: b1.channel - b0.channel,
      bus_control_bytes: b1.control - b0.control,
      rchar_bytes: io1.rchar - io0.rchar,
    },
  };
}

export async function crossnode(cfg, emit) {
  const subs = cfg.cross.subs;
  for (const brokerName of cfg.cross.brokers) {
    await scoped(async (res) => {
      const broker = await BROKERS[brokerName]();
      res.add(broker, () => broker.stop());
      const nodes = [];
      for (const id of ['a', 'b', 'c']) {
        const node = await startNode({ name: `cross-${brokerName}-${id}`, env: { ...broker.env, INSTANCE_PROCESS_ID: `bench-${id}` } });
        res.add(node, () => node.stop());
        nodes.push(node);
      }
      const [a, b, c] = nodes;
      const receivers = spawnWorkers(cfg.receivers, 'recv');
      const publisher = spawnWorkers(1, 'pub')[0];
      const bystanders = spawnWorkers(1, 'by')[0];
      res.add(receivers, () => stopAll([...receivers, publisher, bystanders]));
      const opened = await openSockets(receivers, a.port, subs, { kind: 'public', shared: true, name: 'xnode' }, { concurrency: 200 });
      if (opened.failed) throw new Error(`cross-node: ${opened.failed} sockets failed: ${JSON.stringify(opened.failures)}`);
      await openSockets([bystanders], c.port, 10, { kind: 'public', shared: true, name: 'elsewhere' });
      await sleep(2500); // heartbeats: every node knows the others
      const common = { nodePids: [a.pid, b.pid], receivers, publisher, port: b.port, channel: { name: 'xnode' }, deliveriesPerEvent: subs };
      await measureDelivery({ ...common, mode: 'credit', window: cfg.fanout.window(subs), durationMs: Math.min(2000, cfg.durationMs) });
      const rate = cfg.fixedDeliveriesPerS / subs;
      const fixed = await uninterested(c, () =>
        measureDelivery({ ...common, mode: 'rate', rate, idleMs: 3000, durationMs: cfg.durationMs }),
      );
      emit({
        scenario: 'cross-node',
        broker: brokerName,
        nodes: 3,
        subscribers: subs,
        load: `fixed ${cfg.fixedDeliveriesPerS} deliveries/s (${rate} publishes/s)`,
        ...fixed,
      });
      const max = await uninterested(c, () =>
        measureDelivery({ ...common, mode: 'credit', window: cfg.fanout.window(subs), durationMs: cfg.durationMs }),
      );
      emit({ scenario: 'cross-node', broker: brokerName, nodes: 3, subscribers: subs, load: 'max (credit)', ...max });
      void round;
    });
  }
}
