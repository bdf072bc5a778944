// Hardening: a soak. Rounds of connect / subscribe (public, private, presence) / publish /
// client events / disconnect (half clean, half abrupt) against one node, then memory after
// a full GC, RSS and the node's live handles must be where they were after the warm-up:
// nothing kept per connection, channel or user once they are gone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DEMO_APP, startNode, type ChorusNode } from './helpers/node.js';
import { dataOf, rawSocket, serverSdk, sleep, type RawSocket, until } from './helpers/clients.js';

const ROUNDS = Number(process.env.SOAK_ROUNDS ?? 40);
const SOCKETS = Number(process.env.SOAK_SOCKETS ?? 200);
/** Rounds before the baseline: JIT, pools and caches settle first. */
const WARMUP = 3;

interface DebugHeap {
  memory: NodeJS.MemoryUsage;
  resources: string[];
  sockets: number;
}

async function debugHeap(node: ChorusNode): Promise<DebugHeap> {
  const res = await fetch(`http://127.0.0.1:${node.metricsPort}/debug/heap`);
  assert.equal(res.status, 200, 'the node runs with CHORUS_DEBUG_GC=1 and --expose-gc');
  return (await res.json()) as DebugHeap;
}

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.replace(/\D+/g, '')) / 1024;
}

const mib = (bytes: number) => bytes / 1024 / 1024;
const tally = (list: string[]) => list.reduce<Record<string, number>>((m, k) => ((m[k] = (m[k] ?? 0) + 1), m), {});

describe(`hardening: soak, ${ROUNDS} rounds x ${SOCKETS} sockets`, () => {
  let node: ChorusNode;
  before(async () => {
    node = await startNode({ env: { CHORUS_DEBUG_GC: '1' }, nodeArgs: ['--expose-gc'] });
  });
  after(async () => {
    await node?.stop();
  });

  /** One round; returns after every socket of the round is gone from the node. */
  async function round(r: number): Promise<void> {
    const sdk = serverSdk(node);
    const socks: RawSocket[] = await Promise.all(Array.from({ length: SOCKETS }, () => rawSocket(node)));
    const ids = await Promise.all(
      socks.map(async (s) => dataOf<{ socket_id: string }>(await s.next((f) => f.event === 'pusher:connection_established')).socket_id),
    );
    // A third public, a third private, a third presence; fresh names every round so channel
    // and member bookkeeping has to be created and dropped again.
    const channelOf = (i: number) =>
      i % 3 === 0 ? `soak-${r}-${i % 10}` : i % 3 === 1 ? `private-soak-${r}-${i % 10}` : `presence-soak-${r}-${i % 10}`;
    // The presence third also signs in, with a watchlist: user and watcher bookkeeping too.
    socks.forEach((s, i) => {
      if (i % 3 !== 2) return;
      const user = { id: `u-${r}-${i}`, watchlist: [`u-${r}-${(i + 3) % SOCKETS}`] };
      s.send({ event: 'pusher:signin', data: sdk.authenticateUser(ids[i], user) });
    });
    await Promise.all(
      socks.map((s, i) => (i % 3 === 2 ? s.next((f) => f.event === 'pusher:signin_success', 10_000) : Promise.resolve(null))),
    );
    socks.forEach((s, i) => {
      const channel = channelOf(i);
      const data: Record<string, unknown> = { channel };
      if (i % 3 === 1) Object.assign(data, sdk.authorizeChannel(ids[i], channel));
      if (i % 3 === 2) Object.assign(data, sdk.authorizeChannel(ids[i], channel, { user_id: `u-${r}-${i}`, user_info: { n: i } }));
      s.send({ event: 'pusher:subscribe', data });
    });
    await Promise.all(
      socks.map((s, i) => s.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channelOf(i), 10_000)),
    );
    // Publish one event to every channel of the round; every socket must get its own.
    const channels = [...new Set(socks.map((_, i) => channelOf(i)))];
    for (let k = 0; k < channels.length; k += 10) {
      const res = await sdk.triggerBatch(
        channels.slice(k, k + 10).map((channel) => ({ channel, name: 'soak', data: JSON.stringify({ r }) })),
      );
      assert.equal(res.status, 200);
    }
    await Promise.all(socks.map((s) => s.next((f) => f.event === 'soak', 10_000)));
    // Client events on private channels: relayed to the channel's other subscribers.
    socks.forEach((s, i) => {
      if (i % 3 === 1 && i < 60) s.send({ event: 'client-soak', channel: channelOf(i), data: { i } });
    });
    await sleep(50);
    // Leave: half close cleanly, half drop the TCP connection.
    socks.forEach((s, i) => (i % 2 ? s.close() : s.ws.terminate()));
    await until(async () => (await debugHeap(node)).sockets === 0, 10_000, `round ${r}: every socket gone from the node`);
  }

  it('keeps memory, handles and bookkeeping flat across rounds', async () => {
    for (let r = 0; r < WARMUP; r++) await round(r);
    const base = await debugHeap(node);
    const baseRss = rssMiB(node.proc.pid!);
    const samples: string[] = [];
    for (let r = WARMUP; r < ROUNDS; r++) {
      await round(r);
      if ((r + 1) % 5 === 0 || r === ROUNDS - 1) {
        const h = await debugHeap(node);
        samples.push(`round ${r + 1}: heap ${mib(h.memory.heapUsed).toFixed(1)} MiB, rss ${rssMiB(node.proc.pid!).toFixed(0)} MiB`);
      }
    }
    await sleep(500);
    const end = await debugHeap(node);
    const endRss = rssMiB(node.proc.pid!);
    const heapGrowth = mib(end.memory.heapUsed - base.memory.heapUsed);
    const externalGrowth = mib(end.memory.external - base.memory.external);
    console.log(
      `# soak ${ROUNDS} rounds x ${SOCKETS} sockets (${ROUNDS * SOCKETS} connections): after warm-up heap ${mib(base.memory.heapUsed).toFixed(1)} MiB, ` +
        `rss ${baseRss.toFixed(0)} MiB; at the end heap ${mib(end.memory.heapUsed).toFixed(1)} MiB (${heapGrowth >= 0 ? '+' : ''}${heapGrowth.toFixed(2)}), ` +
        `external ${externalGrowth >= 0 ? '+' : ''}${externalGrowth.toFixed(2)} MiB, rss ${endRss.toFixed(0)} MiB; resources ${JSON.stringify(tally(end.resources))}`,
    );
    for (const s of samples) console.log(`#   ${s}`);

    // Per connection the node holds a socket record, channel entries, presence members, a
    // signed-in user and a watchlist: 200 x 37 rounds = 7400 connections after the warm-up,
    // so even 200 bytes kept per connection would show as 1.4 MiB.
    assert.ok(heapGrowth < 1.25, `heap after GC grew ${heapGrowth.toFixed(2)} MiB`);
    assert.ok(externalGrowth < 1, `external memory after GC grew ${externalGrowth.toFixed(2)} MiB`);
    assert.ok(endRss - baseRss < 40, `RSS grew ${(endRss - baseRss).toFixed(0)} MiB`);
    // No timer, socket or other handle left behind by the rounds.
    assert.deepEqual(tally(end.resources), tally(base.resources), 'active resources after the soak');
    assert.equal(end.sockets, 0);
    // The cluster view agrees: no channel is left occupied, no presence member left over.
    const res = await serverSdk(node).get({ path: '/channels' });
    assert.deepEqual(await res.json(), { channels: {} });
    const users = await serverSdk(node).get({ path: `/channels/presence-soak-${ROUNDS - 1}-2/users` });
    assert.deepEqual(await users.json(), { users: [] });
    const metrics = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
    assert.match(metrics, new RegExp(`chorus_connected\\{app_id="${DEMO_APP.id}"\\} 0\\n`));
  });
});
