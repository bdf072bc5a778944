// The cluster algorithms in one process over the memory transport: membership,
// loss and revival, replication and anti-entropy, exactly-once edges under seeded
// random interleavings, quotas, requests and the wire's defences. Real brokers are
// the business of cluster.test.ts and cluster-health.test.ts; this file proves the
// algorithms in milliseconds.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterEdge, WebhookEvent } from '../src/cluster/ports.js';
import { Fences } from '../src/cluster/horizontal/fences.js';
import { DueList } from '../src/cluster/due-list.js';
import { EdgeEmitter } from '../src/cluster/edges.js';
import { SimCluster, type SimNode } from './helpers/sim-cluster.js';
import { mulberry32 as rng } from '../src/transports/rng.js';
import { sleep, until } from './helpers/wait.js';

const channelEdges = (edges: ClusterEdge[], channel: string) =>
  edges.filter((e) => e.kind === 'channel' && e.channel === channel).map((e) => e.present);
const memberEdges = (edges: ClusterEdge[], channel: string, userId: string) =>
  edges.filter((e) => e.kind === 'member' && e.channel === channel && e.userId === userId).map((e) => e.present);

/** Occupied, vacated, occupied, ... and vacated last: what exactly-once per lifetime looks like. */
function assertAlternates(flags: boolean[], what: string, endsAbsent = true): void {
  for (let i = 0; i < flags.length; i++) assert.equal(flags[i], i % 2 === 0, `${what}: edge ${i} of ${JSON.stringify(flags)}`);
  if (endsAbsent) assert.equal(flags.length % 2, 0, `${what}: ends present: ${JSON.stringify(flags)}`);
}

let sim: SimCluster | null = null;
afterEach(async () => {
  await sim?.close();
  sim = null;
});

describe('cluster core: membership', () => {
  it('nodes find each other, a graceful leaver goes at once, a silent one after the timeout', async () => {
    sim = await SimCluster.of(3);
    const [a, b, c] = sim.nodes;
    assert.deepEqual(
      a.cluster.membership
        .members()
        .map((m) => m.processId)
        .sort(),
      ['n0', 'n1', 'n2'],
    );
    await c.stop();
    await until(() => a.cluster.membership.members().length === 2 && b.cluster.membership.members().length === 2, 1000, 'bye');
    assert.equal(a.lostPeers.length + b.lostPeers.length, 0, 'a graceful leave is not a loss');
    sim.broker.pause(b.transport);
    await until(() => a.cluster.membership.members().length === 1, 1000, 'timeout');
    assert.deepEqual(a.lostPeers, [{ nodeId: b.cluster.nodeId, mine: true }]);
  });

  it('exactly one survivor owns the cleanup of a lost node', async () => {
    sim = await SimCluster.of(4);
    const dead = sim.nodes[3];
    sim.broker.pause(dead.transport);
    const survivors = sim.nodes.slice(0, 3);
    await until(() => survivors.every((n) => n.lostPeers.length === 1), 1500, 'loss seen by all');
    assert.equal(survivors.filter((n) => n.lostPeers[0].mine).length, 1);
  });

  it('a node that restarts under the same process id replaces its old self', async () => {
    sim = await SimCluster.of(2);
    const [a, b] = sim.nodes;
    sim.broker.pause(b.transport);
    const again = await sim.add('n1');
    await until(() => a.cluster.membership.members().some((m) => m.nodeId === again.cluster.nodeId), 1000, 'new incarnation');
    assert.ok(!a.cluster.membership.members().some((m) => m.nodeId === b.cluster.nodeId), 'old incarnation dropped');
    b.stopped = true; // never resumed: closing it would wait on the paused link
  });
});

describe('cluster core: replication', () => {
  it('presence joins, infos and leaves reach every node', async () => {
    sim = await SimCluster.of(3);
    const [a, b, c] = sim.nodes;
    assert.equal(a.cluster.presence.join('app', 'presence-x', 'u1', { name: 'one' }), true);
    await until(() => b.cluster.presence.memberCount('app', 'presence-x') === 1, 1000, 'replicated to b');
    assert.equal(b.cluster.presence.join('app', 'presence-x', 'u1', { name: 'one' }), false, 'not new: a holds it');
    await until(() => c.cluster.presence.memberCount('app', 'presence-x') === 1, 1000, 'replicated');
    assert.deepEqual(c.cluster.presence.members('app', 'presence-x').get('u1')?.info, { name: 'one' });
    await sleep(50); // b's join reaches a
    assert.equal(a.cluster.presence.leave('app', 'presence-x', 'u1'), false, 'b still holds u1');
    await sleep(50); // a's leave reaches b
    assert.equal(b.cluster.presence.leave('app', 'presence-x', 'u1'), true);
    await until(() => c.cluster.presence.memberCount('app', 'presence-x') === 0, 1000, 'left everywhere');
  });

  it('ids with newlines and "__proto__" stay exactly what they are', async () => {
    sim = await SimCluster.of(2);
    const [a, b] = sim.nodes;
    a.cluster.presence.join('app', 'presence-x', 'alice\nevil', null);
    a.cluster.presence.join('app', 'presence-x', '__proto__', null);
    assert.equal(a.cluster.users.online('app', 'alice\nevil'), true);
    await until(() => b.cluster.presence.memberCount('app', 'presence-x') === 2, 1000, 'replicated');
    assert.deepEqual([...b.cluster.presence.members('app', 'presence-x').keys()].sort(), ['__proto__', 'alice\nevil']);
    await until(() => b.cluster.users.isOnline('app', 'alice\nevil'), 1000, 'online replicated');
    assert.equal(b.cluster.users.isOnline('app', 'alice'), false);
    sim.broker.pause(a.transport);
    await until(() => b.watchlist.some((w) => w.userId === 'alice\nevil' && !w.online), 1500, 'offline with its node');
    assert.ok(!b.watchlist.some((w) => w.userId === 'alice'), 'no other user affected');
  });

  it('anti-entropy repairs what the bus lost', async () => {
    sim = await SimCluster.of(3, { seed: 7 });
    const [a, b, c] = sim.nodes;
    sim.broker.setFaults({ loss: 0.4 });
    for (let i = 0; i < 30; i++) a.cluster.presence.join('app', 'presence-y', `u${i}`, { i });
    for (let i = 0; i < 10; i++) a.cluster.presence.leave('app', 'presence-y', `u${i}`);
    await a.subscribe('app', 'c1');
    await sleep(100);
    sim.broker.setFaults({ loss: 0 });
    await until(
      () => b.cluster.presence.memberCount('app', 'presence-y') === 20 && c.cluster.presence.memberCount('app', 'presence-y') === 20,
      3000,
      'books repaired',
    );
  });

  it('duplicated and reordered deliveries apply once, in order', async () => {
    sim = await SimCluster.of(2, { seed: 11 });
    const [a, b] = sim.nodes;
    sim.broker.setFaults({ duplicate: 0.5, delayMs: [0, 8], reorder: true });
    for (let i = 0; i < 20; i++) {
      a.cluster.presence.join('app', 'presence-z', 'u', null);
      await sleep(6);
    }
    for (let i = 0; i < 20; i++) {
      a.cluster.presence.leave('app', 'presence-z', 'u');
      await sleep(6);
    }
    sim.broker.setFaults({ duplicate: 0, delayMs: [0, 0], reorder: false });
    await until(() => b.cluster.presence.memberCount('app', 'presence-z') === 0, 2000, 'converged');
    a.cluster.presence.join('app', 'presence-z', 'v', null);
    await until(() => b.cluster.presence.memberCount('app', 'presence-z') === 1, 2000, 'next join');
  });
});

/** Seeded concurrent subscribe/unsubscribe on three nodes, then everyone leaves. */
async function churn(nodes: SimNode[], seed: number, channels: string[], rounds: number): Promise<void> {
  const random = rng(seed);
  const held = nodes.map(() => new Map<string, number>());
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      nodes.map(async (node, i) => {
        for (let k = 0; k < 3; k++) {
          const channel = channels[Math.floor(random() * channels.length)];
          const n = held[i].get(channel) ?? 0;
          if (n > 0 && random() < 0.5) {
            held[i].set(channel, n - 1);
            node.unsubscribe('app', channel);
          } else {
            held[i].set(channel, n + 1);
            void node.subscribe('app', channel);
          }
          if (random() < 0.5) await sleep(Math.floor(random() * 4));
        }
      }),
    );
  }
  nodes.forEach((node, i) => {
    for (const [channel, n] of held[i]) for (let k = 0; k < n; k++) node.unsubscribe('app', channel);
  });
}

describe('cluster core: exactly-once edges', () => {
  for (const delay of [0, 40]) {
    it(`occupancy: 50 seeded rounds of concurrent joins and leaves on 3 nodes (removal delay ${delay} ms)`, async () => {
      sim = await SimCluster.of(3, { seed: 3, faults: { delayMs: [0, 3] } }, { removalDelayMs: delay });
      const channels = ['c0', 'c1', 'c2', 'c3'];
      await churn(sim.nodes, 1000 + delay, channels, 50);
      await sleep(delay + 200);
      const edges = sim.allEdges();
      for (const c of channels) assertAlternates(channelEdges(edges, c), c);
    });
  }

  it('a channel held throughout by one node is never reported vacated while others churn', async () => {
    sim = await SimCluster.of(3, { seed: 5, faults: { delayMs: [0, 3] } });
    const [a, b, c] = sim.nodes;
    await a.subscribe('app', 'pinned');
    await churn([b, c], 99, ['pinned'], 50);
    await sleep(150);
    assert.deepEqual(channelEdges(sim.allEdges(), 'pinned'), [true]);
  });

  it('members: seeded concurrent joins of the same users on 3 nodes report each lifetime once', async () => {
    sim = await SimCluster.of(3, { seed: 9, faults: { delayMs: [0, 3] } });
    const random = rng(4242);
    const users = ['u0', 'u1', 'u2'];
    const held = sim.nodes.map(() => new Map<string, number>());
    for (let round = 0; round < 50; round++) {
      await Promise.all(
        sim.nodes.map(async (node, i) => {
          const u = users[Math.floor(random() * users.length)];
          const n = held[i].get(u) ?? 0;
          if (n > 0 && random() < 0.5) {
            held[i].set(u, n - 1);
            node.cluster.presence.leave('app', 'presence-m', u);
          } else {
            held[i].set(u, n + 1);
            node.cluster.presence.join('app', 'presence-m', u, null);
          }
          await sleep(Math.floor(random() * 4));
        }),
      );
    }
    sim.nodes.forEach((node, i) => {
      for (const [u, n] of held[i]) for (let k = 0; k < n; k++) node.cluster.presence.leave('app', 'presence-m', u);
    });
    await sleep(200);
    for (const u of users) assertAlternates(memberEdges(sim.allEdges(), 'presence-m', u), u);
  });

  it("a hand-over between nodes is one lifetime even when the joiner's messages reach the broker late", async () => {
    // b holds the channel; c joins (its topic still lingers from before, so nothing else waits);
    // the client told so leaves b. c's announcement is stuck in its connection's send buffer
    // meanwhile (a broker that reads it late): unless c's join waits for its announcement to be
    // routed, the owner sees b leave before c joins, a vacated/occupied pair that never was.
    sim = await SimCluster.of(3);
    const [, b, c] = sim.nodes;
    for (const n of [b, c]) await n.subscribe('app', 'handover');
    for (const n of [b, c]) n.unsubscribe('app', 'handover');
    await until(() => channelEdges(sim!.allEdges(), 'handover').length === 2, 1000, 'the first lifetime');
    await b.subscribe('app', 'handover');
    sim.broker.setFaults({ sendDelayMs: [60, 60] }, c.transport);
    const joined = Date.now();
    await c.subscribe('app', 'handover');
    assert.ok(Date.now() - joined >= 50, 'the join waited for its announcement to reach the broker');
    sim.broker.setFaults({ sendDelayMs: [0, 0] }, c.transport);
    b.unsubscribe('app', 'handover');
    await sleep(150);
    c.unsubscribe('app', 'handover');
    await sleep(150);
    assert.deepEqual(channelEdges(sim.allEdges(), 'handover'), [true, false, true, false]);
  });

  it("a member moving between nodes is one membership even when the joiner's messages reach the broker late", async () => {
    // The user is on b; a second tab joins on c, and the client told so closes the tab on b.
    // c's join is stuck in its connection's send buffer meanwhile: unless the join waits for
    // it to be routed (presence.routed), the owner — a, on neither side — applies b's leave
    // first and reports member_removed, then member_added, for a user who never left.
    sim = await SimCluster.of(3);
    const [a, b, c] = sim.nodes;
    let channel = '';
    for (let i = 0; i < 500 && !channel; i++)
      if (a.cluster.membership.owns(JSON.stringify(['app', `presence-move-${i}`]))) channel = `presence-move-${i}`;
    assert.ok(channel, 'a channel a owns');
    b.cluster.presence.join('app', channel, 'mover', { tab: 1 });
    await until(() => memberEdges(sim!.allEdges(), channel, 'mover').length === 1, 1000, 'the member added');
    sim.broker.setFaults({ sendDelayMs: [60, 60] }, c.transport);
    const joined = Date.now();
    c.cluster.presence.join('app', channel, 'mover', { tab: 2 });
    await c.cluster.presence.routed();
    assert.ok(Date.now() - joined >= 50, 'the join waited for its own message to reach the broker');
    sim.broker.setFaults({ sendDelayMs: [0, 0] }, c.transport);
    assert.equal(b.cluster.presence.leave('app', channel, 'mover'), false, 'b knows the user is still on c');
    await sleep(150);
    assert.deepEqual(memberEdges(sim.allEdges(), channel, 'mover'), [true], 'no removal while the user is on c');
    assert.equal(c.cluster.presence.leave('app', channel, 'mover'), true);
    await until(() => memberEdges(sim!.allEdges(), channel, 'mover').length === 2, 1000, 'the member removed');
    assert.deepEqual(memberEdges(sim.allEdges(), channel, 'mover'), [true, false]);
    assert.equal(a.cluster.presence.routed() instanceof Promise, true, 'a node with peers waits');
  });

  it('a removal followed by the addition within the delay reports neither', async () => {
    sim = await SimCluster.of(2, {}, { removalDelayMs: 150 });
    const [a, b] = sim.nodes;
    await a.subscribe('app', 'blink');
    await until(() => channelEdges(sim!.allEdges(), 'blink').length === 1, 1000, 'occupied');
    a.unsubscribe('app', 'blink');
    await sleep(30);
    await b.subscribe('app', 'blink');
    await sleep(250);
    assert.deepEqual(channelEdges(sim.allEdges(), 'blink'), [true]);
  });

  it('a lost node: its channels vacated and its members removed once; its return reported once', async () => {
    sim = await SimCluster.of(3);
    const dead = sim.nodes[2];
    await dead.subscribe('app', 'only-on-dead');
    dead.cluster.presence.join('app', 'presence-d', 'ghost', { g: 1 });
    await until(() => sim!.nodes[0].cluster.presence.memberCount('app', 'presence-d') === 1, 1000, 'replicated');
    await until(() => channelEdges(sim!.allEdges(), 'only-on-dead').length === 1, 1000, 'occupied');
    sim.broker.pause(dead.transport);
    // The cut-off node still runs here (a frozen process would not); it holds the only subscriber,
    // so its own view never changes and whatever it reports belongs in the sequence.
    const seen = () => sim!.allEdges();
    await until(() => channelEdges(seen(), 'only-on-dead').length === 2, 1500, 'vacated after the loss');
    await until(() => memberEdges(seen(), 'presence-d', 'ghost').length === 2, 1500, 'member removed');
    sim.broker.resume(dead.transport);
    await until(() => channelEdges(seen(), 'only-on-dead').length === 3, 2000, 'back after the false alarm');
    await until(() => memberEdges(seen(), 'presence-d', 'ghost').length === 3, 2000, 'member back');
    await sleep(100);
    assert.deepEqual(channelEdges(seen(), 'only-on-dead'), [true, false, true]);
    assert.deepEqual(memberEdges(seen(), 'presence-d', 'ghost'), [true, false, true]);
  });

  it('a removal falls due on time even while an overdue one is kept for the node timeout', async () => {
    // node_timeout_ms long: an overdue removal is kept that long, and its timer must not hold back newer ones.
    sim = await SimCluster.of(3, {}, { removalDelayMs: 100, nodeTimeoutMs: 4000, heartbeatIntervalMs: 200, cleanupIntervalMs: 200 });
    const [a, b, c] = sim.nodes;
    const ownedBy = (node: typeof a, not: typeof a) => {
      for (let i = 0; i < 500; i++) {
        const key = JSON.stringify(['app', `t${i}`]);
        if (node.cluster.membership.owns(key) && !not.cluster.membership.owns(key)) return `t${i}`;
      }
      return '';
    };
    // First: a removal b does not own (b keeps it overdue). Then one b owns.
    const first = ownedBy(c, b);
    const second = ownedBy(b, c);
    assert.ok(first && second, 'channels owned by c and by b');
    await a.subscribe('app', first);
    await a.subscribe('app', second);
    await until(() => channelEdges(sim!.allEdges(), second).length === 1, 2000, 'occupied');
    a.unsubscribe('app', first);
    await until(() => channelEdges(sim!.allEdges(), first).length === 2, 2000, 'first vacated');
    await sleep(50);
    const started = Date.now();
    a.unsubscribe('app', second);
    await until(() => channelEdges(sim!.allEdges(), second).length === 2, 3000, 'second vacated');
    assert.ok(Date.now() - started < 1000, `reported after ${Date.now() - started} ms (delay 100 ms)`);
  });

  it('a removal waiting out its delay survives the death of the node that would have reported it', async () => {
    sim = await SimCluster.of(3, {}, { removalDelayMs: 200 });
    const [a] = sim.nodes;
    // Find a channel the third node owns, then let it vacate and kill the owner within the delay.
    const owner = sim.nodes[2];
    let channel = '';
    for (let i = 0; i < 200 && !channel; i++) {
      if (owner.cluster.membership.owns(JSON.stringify(['app', `k${i}`]))) channel = `k${i}`;
    }
    assert.ok(channel, 'some channel is owned by the third node');
    await a.subscribe('app', channel);
    await until(() => channelEdges(sim!.allEdges(), channel).length === 1, 1000, 'occupied');
    a.unsubscribe('app', channel);
    await sleep(40);
    sim.broker.pause(owner.transport);
    const survivors = () => sim!.allEdges(owner).filter((e) => e.present === false);
    await until(() => channelEdges(survivors(), channel).length === 1, 2000, 'vacated by the next owner');
    await sleep(100);
    assert.deepEqual(channelEdges(survivors(), channel), [false]);
    owner.stopped = true;
  });
});

describe('cluster core: removals waiting out their delay (DueList)', () => {
  it('a sweep takes the due entries in order and reads only one entry past them while in order', () => {
    let reads = 0;
    const list = new DueList<{ due: number }>((e) => (reads++, e.due));
    for (let i = 0; i < 10_000; i++) list.set(`k${i}`, { due: i });
    list.set('k3', { due: 10_000 }); // set again: moved to the end, due last
    reads = 0;
    const taken: string[] = [];
    assert.equal(
      list.sweep(4, (k) => taken.push(k)),
      5,
    );
    assert.deepEqual(taken, ['k0', 'k1', 'k2', 'k4']);
    assert.equal(reads, 5, 'four due entries and the first one not due: not the whole list');
    assert.equal(list.earliest(), 5);
    assert.equal(list.size, 9_996);
  });

  it('an entry due before the ones already waiting is still taken on time (the whole list read until it empties)', () => {
    const list = new DueList<{ due: number }>((e) => e.due);
    list.set('late', { due: 100 });
    list.set('early', { due: 10 });
    assert.equal(list.earliest(), 10);
    const taken: string[] = [];
    assert.equal(
      list.sweep(10, (k) => taken.push(k)),
      100,
    );
    assert.deepEqual(taken, ['early']);
    assert.equal(
      list.sweep(100, (k) => taken.push(k)),
      Infinity,
    );
    assert.deepEqual(taken, ['early', 'late']);
    // Empty again: in order, so a sweep stops early once more.
    let reads = 0;
    const again = new DueList<{ due: number }>((e) => (reads++, e.due));
    again.set('x', { due: 5 });
    again.set('y', { due: 1 });
    again.sweep(10, () => undefined);
    again.set('a', { due: 20 });
    again.set('b', { due: 30 });
    reads = 0;
    again.sweep(0, () => undefined);
    assert.equal(reads, 1);
  });

  it("the emitter reports an adopted removal due before its own on the adopted one's time", async () => {
    const reported: string[] = [];
    const emitter = new EdgeEmitter({ removalDelayMs: 400 }, { ownerOf: () => 'me', selfId: 'me' }, (e) =>
      reported.push(`${e.kind === 'channel' ? e.channel : ''}:${e.present}`),
    );
    try {
      emitter.changed({ kind: 'channel', appId: 'a', channel: 'own', present: false });
      emitter.adoptPending([{ edge: { kind: 'channel', appId: 'a', channel: 'adopted', present: false }, remainingMs: 30 }]);
      // Reported in due order, not in the order they were learned (own first, then adopted).
      await until(() => reported.length === 2, 2000, 'both removals');
      assert.deepEqual(reported, ['adopted:false', 'own:false']);
    } finally {
      emitter.close();
    }
  });
});

describe('cluster core: settling before a decision on the count (fences)', () => {
  it("after settled(), a peer's earlier joins and leaves are counted here, however slow the bus", async () => {
    sim = await SimCluster.of(3, { seed: 11, faults: { delayMs: [5, 25] } });
    const [a, b, c] = sim.nodes;
    for (let round = 0; round < 10; round++) {
      const channel = `presence-f${round}`;
      a.cluster.presence.join('app', channel, 'u1', null);
      c.cluster.presence.join('app', channel, 'u2', null);
      assert.equal(b.cluster.presence.memberCount('app', channel), 0, 'not there yet: the bus is slow');
      const hold = await b.cluster.presence.holdCount('app', channel);
      assert.equal(b.cluster.presence.memberCount('app', channel), 2, `round ${round}: both joins counted`);
      hold?.release();
      a.cluster.presence.leave('app', channel, 'u1');
      (await b.cluster.presence.holdCount('app', channel))?.release();
      assert.equal(b.cluster.presence.has('app', channel, 'u1'), false, `round ${round}: the leave counted`);
    }
  });

  it('decisions under a hold go one after the other: 12 joiners on 3 nodes for 3 seats, 5 rounds', async () => {
    sim = await SimCluster.of(3, { seed: 5, faults: { delayMs: [2, 15], opDelayMs: [1, 5] } });
    const nodes = sim.nodes;
    for (let round = 0; round < 5; round++) {
      const channel = `presence-seats-${round}`;
      const attempt = async (node: SimNode, userId: string): Promise<boolean> => {
        const hold = await node.cluster.presence.holdCount('app', channel);
        try {
          if (node.cluster.presence.memberCount('app', channel) >= 3) return false;
          node.cluster.presence.join('app', channel, userId, null);
          return true;
        } finally {
          hold?.release();
        }
      };
      const seated = await Promise.all(Array.from({ length: 12 }, (_, i) => attempt(nodes[i % 3], `u${i}`)));
      assert.equal(seated.filter(Boolean).length, 3, `round ${round}: ${JSON.stringify(seated)}`);
      await until(() => nodes.every((n) => n.cluster.presence.memberCount('app', channel) === 3), 2000, 'three members everywhere');
    }
  });

  it('nothing to settle without peers; callers of one turn share one fence', async () => {
    sim = await SimCluster.of(1);
    assert.equal(sim.nodes[0].cluster.presence.holdCount('app', 'presence-x'), undefined);
    const sent: number[] = [];
    const fences = new Fences({ hasPeers: () => true, brokerUp: () => true, send: (id) => sent.push(id) }, 60_000);
    const done: string[] = [];
    const one = fences.settle()!.then(() => done.push('one'));
    const two = fences.settle()!.then(() => done.push('two'));
    await sleep(5);
    assert.deepEqual(sent, [1], 'one fence for the turn');
    const three = fences.settle()!.then(() => done.push('three'));
    await sleep(5);
    assert.deepEqual(sent, [1, 2], 'a caller after the send waits for a fence of its own');
    fences.echoed(2);
    await Promise.all([one, two, three]);
    assert.deepEqual(done.sort(), ['one', 'three', 'two'], 'a later echo releases an earlier fence the broker dropped');
    assert.equal(fences.waiting, 0);
  });

  it('a fence the broker never returns lets its callers decide after its bound; a broker down waits for nothing', async () => {
    let up = true;
    const fences = new Fences({ hasPeers: () => true, brokerUp: () => up, send: () => undefined }, 30);
    const started = Date.now();
    await fences.settle();
    assert.ok(Date.now() - started >= 25, 'waited for the bound');
    assert.equal(fences.waiting, 0);
    up = false;
    assert.equal(fences.settle(), undefined);
    up = true;
    const pending = fences.settle()!;
    fences.releaseAll();
    await pending;
  });
});

describe('cluster core: webhook batches formed on one node', () => {
  it("one node forms an app's batches; the others' events reach it gathered per turn, in order; bad relays are dropped", async () => {
    sim = await SimCluster.of(3);
    const nodes = sim.nodes;
    await until(() => nodes.filter((n) => n.cluster.webhooks.batchesHere('app')).length === 1, 2000, 'one batch owner');
    const owner = nodes.find((n) => n.cluster.webhooks.batchesHere('app'))!;
    const others = nodes.filter((n) => n !== owner);
    const ev = (i: number): WebhookEvent => ({ name: 'channel_occupied', channel: `c${i}` });
    for (let i = 0; i < 5; i++) others[0].cluster.webhooks.forward('app', [ev(i)]);
    others[1].cluster.webhooks.forward('app', [
      { name: 'client_event', channel: 'private-x', event: 'client-a', data: '{}', socket_id: '1.2', user_id: 'u' },
    ]);
    await until(() => owner.relayedWebhooks.length === 2, 1000, 'two relayed messages (one per sender and turn)');
    const fromFirst = owner.relayedWebhooks.find((r) => r.events.length === 5)!;
    assert.deepEqual(
      fromFirst.events.map((e) => e.channel),
      ['c0', 'c1', 'c2', 'c3', 'c4'],
    );
    assert.equal(others[0].relayedWebhooks.length + others[1].relayedWebhooks.length, 0, 'only the owner gets them');
    // A relay with an event the wire does not know is dropped whole; the next good one arrives.
    const evil = sim.broker.transport('evil');
    await evil.connect({ message: () => undefined, status: () => undefined });
    const ownTopic = evil.topic('sim', 'node', owner.cluster.nodeId);
    evil.publish(evil.topic('sim', 'cluster'), JSON.stringify({ v: 1, t: 'hb', n: 'evil~1', p: 'evil', s: 0, d: 0 }));
    await sleep(20);
    evil.publish(ownTopic, JSON.stringify({ v: 1, t: 'wh', n: 'evil~1', a: 'app', ev: [{ name: 'rm -rf', channel: 'x' }] }));
    evil.publish(ownTopic, JSON.stringify({ v: 1, t: 'wh', n: 'evil~1', a: 'app', ev: [] }));
    others[0].cluster.webhooks.forward('app', [ev(9)]);
    await until(() => owner.relayedWebhooks.length === 3, 1000, 'the good relay after the bad ones');
    assert.deepEqual(owner.relayedWebhooks[2].events, [ev(9)]);
  });
});

describe('cluster core: queries and quotas', () => {
  it('counts sum over nodes; a frozen node does not hang the question past its deadline', async () => {
    sim = await SimCluster.of(3);
    const [a, b, c] = sim.nodes;
    await a.subscribe('app', 'q');
    await b.subscribe('app', 'q');
    await b.subscribe('app', 'q');
    await c.subscribe('app', 'other');
    assert.equal((await a.cluster.queries.channelCounts('app', 'q')).subscriptionCount, 3);
    assert.deepEqual([...(await c.cluster.queries.occupiedChannels('app'))].sort(), [
      ['other', 1],
      ['q', 3],
    ]);
    sim.broker.pause(c.transport);
    const started = Date.now();
    assert.equal((await a.cluster.queries.channelCounts('app', 'q')).subscriptionCount, 3);
    assert.ok(Date.now() - started < 1000, 'bounded by the request timeout');
    c.stopped = true;
  });

  it('a connection quota holds exactly across nodes under concurrency', async () => {
    sim = await SimCluster.of(3, { faults: { opDelayMs: [0, 5] } });
    await sleep(80); // past the settle time: counts of live nodes only
    const results = await Promise.all(sim.nodes.flatMap((n) => Array.from({ length: 10 }, () => n.cluster.quotas.reserve('app', 12))));
    assert.equal(results.filter(Boolean).length, 12);
  });

  it('a cache write settles once the broker holds it: a read on another node afterwards sees it', async () => {
    sim = await SimCluster.of(2, { faults: { opDelayMs: [30, 30] } });
    const [a, b] = sim.nodes;
    const stored = a.cluster.cache.set('app', 'cache-x', 'frame', 60);
    assert.ok(stored instanceof Promise, 'a broker write is awaited by the publish');
    let settled = false;
    void stored.then(() => (settled = true));
    await sleep(5);
    assert.equal(settled, false, 'not before the broker answers');
    await stored;
    assert.equal((await b.cluster.cache.get('app', 'cache-x'))?.frame, 'frame');
    sim.broker.disconnect(a.transport);
    await a.cluster.cache.set('app', 'cache-y', 'frame', 60); // a failed write settles too (logged), never rejects
  });

  it('without shared state, quotas come from counts and the cache is per node', async () => {
    sim = await SimCluster.of(2, { sharedState: false });
    const [a, b] = sim.nodes;
    assert.equal(a.cluster.sharedState, false);
    b.connect('app');
    b.connect('app');
    assert.equal(await a.cluster.quotas.reserve('app', 3), true);
    a.connect('app');
    assert.equal(await a.cluster.quotas.reserve('app', 3), false);
    assert.equal(a.cluster.cache.set('app', 'cache-x', 'frame', 60), undefined, 'a node-local write is synchronous');
    assert.deepEqual((await a.cluster.cache.get('app', 'cache-x'))?.frame, 'frame');
    assert.equal(await b.cluster.cache.get('app', 'cache-x'), null);
  });
});

describe('cluster core: the wire', () => {
  it('malformed control messages are dropped and counted; nothing throws into the transport', async () => {
    sim = await SimCluster.of(2);
    const [a, b] = sim.nodes;
    const evil = sim.broker.transport('evil');
    await evil.connect({ message: () => undefined, status: () => undefined });
    const topic = evil.topic('sim', 'cluster');
    evil.publish(topic, JSON.stringify({ v: 1, t: 'hb', n: 'evil~1', p: 'evil', s: 0, d: 0 }));
    await sleep(20);
    for (const bad of [
      '{"v":1,"t":"snap","n":"evil~1","s":1}',
      '{"v":1,"t":"d","n":"evil~1","s":"x","ops":[]}',
      '{"v":1,"t":"d","n":"evil~1","s":1,"ops":[["pj",1,2]]}',
      'not json',
      '[]',
      '{"t":5}',
    ])
      evil.publish(topic, bad);
    await sleep(60);
    await a.subscribe('app', 'still-works');
    await until(() => channelEdges(sim!.allEdges(), 'still-works').length === 1, 1000, 'the cluster still works');
    assert.ok(b.cluster.membership.members().length >= 2);
  });

  it('a node one wire version ahead (new fields, new message types) is understood', async () => {
    sim = await SimCluster.of(1);
    const [a] = sim.nodes;
    const next = sim.broker.transport('next');
    await next.connect({ message: () => undefined, status: () => undefined });
    const topic = next.topic('sim', 'cluster');
    // Not ready: the old node owns every key, so the new node's delta must surface as its edge.
    const hb = () => next.publish(topic, JSON.stringify({ v: 2, t: 'hb', n: 'next~1', p: 'next', s: 1, d: 0, r: false, load: 0.5 }));
    hb();
    next.publish(topic, JSON.stringify({ v: 2, t: 'gossip', n: 'next~1', anything: [1, 2] }));
    next.publish(topic, JSON.stringify({ v: 2, t: 'd', n: 'next~1', s: 1, ops: [['ci', 'app', 'from-v2']], trace: 'abc' }));
    await until(() => a.cluster.membership.members().length === 2, 1000, 'v2 peer seen');
    await until(() => channelEdges(a.edges, 'from-v2').length === 1, 1000, 'v2 delta applied');
    hb();
    await sleep(50);
    assert.equal(a.cluster.membership.members().length, 2, 'still a member');
  });
});
