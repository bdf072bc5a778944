// Hardening: slow consumers. Clients that stop reading (their TCP socket paused) while
// events flood their channel are disconnected with 4100 once their send buffer passes
// the bound (1 MiB, checked every second), a normal subscriber on the same channel gets
// every event in order, and the node's memory stays bounded: the flood is many times
// what the paused readers could hold if the node buffered for them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { startNode, type ChorusNode } from './helpers/node.js';
import {
  cleanup,
  connected,
  pusherClient,
  rawSocket,
  serverSdk,
  sleep,
  waitFor,
  type PusherClient,
  type RawSocket,
} from './helpers/clients.js';

/** Resolves `fallback` after ms without keeping the process alive. */
const within = <T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> =>
  Promise.race([p, new Promise<F>((r) => setTimeout(() => r(fallback), ms).unref())]);

/** The node's side of a loopback TCP connection, from /proc/net/tcp: its state ("01" established), or null once gone. */
function serverSideState(nodePort: number, clientPort: number): string | null {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    if (cols[1].endsWith(':' + hex(nodePort)) && cols[2].endsWith(':' + hex(clientPort))) return cols[3];
  }
  return null;
}

/** The value of a gauge line in Prometheus text. */
async function gauge(node: ChorusNode, line: string): Promise<number | null> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found ? Number(found.slice(line.length + 1)) : null;
}

/** Resident memory of a process in MiB, from /proc. */
function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.replace(/\D+/g, '')) / 1024;
}

const SLOW = 12;
const EVENTS = 3000;
const PAD = 'p'.repeat(9000);
const CHANNEL = 'flood';

describe('hardening: slow consumers', () => {
  let node: ChorusNode;
  let normal: PusherClient;
  const slow: RawSocket[] = [];
  before(async () => {
    node = await startNode();
    normal = pusherClient(node);
    await connected(normal);
  });
  after(async () => {
    await cleanup(normal);
    // Paused sockets would wait out ws's 30 s closing handshake: drop them.
    for (const s of slow) s.ws.terminate();
    await cleanup(node);
  });

  it(`drops ${SLOW} paused readers with 4100 while a normal subscriber gets all ${EVENTS} events, memory bounded`, async () => {
    const channel = normal.subscribe(CHANNEL);
    await waitFor(channel, 'pusher:subscription_succeeded');
    const seen: number[] = [];
    const all = new Promise<void>((resolve) =>
      channel.bind('ev', (d: { i: number }) => {
        seen.push(d.i);
        if (seen.length === EVENTS) resolve();
      }),
    );
    for (let i = 0; i < SLOW; i++) {
      const s = await rawSocket(node);
      slow.push(s);
      s.send({ event: 'pusher:subscribe', data: { channel: CHANNEL } });
      await s.next((f) => f.event === 'pusher_internal:subscription_succeeded');
      // Stop reading at the TCP level: the kernel buffers fill, then the node's.
      (s.ws as unknown as { _socket: Socket })._socket.pause();
    }
    await sleep(200);
    const rssBefore = rssMiB(node.proc.pid!);

    // The flood: EVENTS x 9 KB, in batches of 10, one request at a time (so the order is known).
    const sdk = serverSdk(node);
    let next = 0;
    const worker = async () => {
      while (next < EVENTS) {
        const start = next;
        next += 10;
        const batch = Array.from({ length: Math.min(10, EVENTS - start) }, (_, k) => ({
          channel: CHANNEL,
          name: 'ev',
          data: JSON.stringify({ i: start + k, pad: PAD }),
        }));
        const res = await sdk.triggerBatch(batch);
        assert.equal(res.status, 200);
      }
    };
    await worker();
    const delivered = await within(
      all.then(() => true),
      60_000,
      false,
    );
    assert.ok(delivered, `normal subscriber got ${seen.length} of ${EVENTS}`);
    assert.deepEqual(
      seen,
      Array.from({ length: EVENTS }, (_, i) => i),
      'every event once, in order',
    );

    // Give the liveness sweep (every second) time to act on the last over-limit sockets.
    await sleep(1500);
    const rssAfter = rssMiB(node.proc.pid!);
    const floodMiB = (EVENTS * PAD.length) / 1024 / 1024;
    console.log(
      `# slow consumers: flood ${floodMiB.toFixed(0)} MiB x ${SLOW} paused readers; node RSS ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MiB`,
    );
    // Buffering for every paused reader would take SLOW x flood (300+ MiB); the bound is 1 MiB each.
    assert.ok(rssAfter - rssBefore < 96, `RSS grew by ${(rssAfter - rssBefore).toFixed(0)} MiB`);

    // The node forgot the paused readers (only the normal subscriber is counted) ...
    assert.equal(await gauge(node, 'chorus_connected{app_id="app-id"}'), 1);
    // ... and closes its end of their TCP connections while they are still paused: no
    // user-space buffer outlives the socket (uWS ends a closing socket after its timeout).
    const ports = slow.map((s) => (s.ws as unknown as { _socket: Socket })._socket.localPort!);
    const deadline = Date.now() + 15_000;
    let open = ports;
    while (Date.now() < deadline) {
      open = ports.filter((p) => serverSideState(node.port, p) === '01');
      if (open.length === 0) break;
      await sleep(250);
    }
    assert.deepEqual(open, [], 'server-side connections still ESTABLISHED');

    // Each paused reader, once it reads again, finds a prefix of the flood and then the close.
    for (const s of slow) (s.ws as unknown as { _socket: Socket })._socket.resume();
    for (const [n, s] of slow.entries()) {
      const closed = await within(s.closed, 10_000, null);
      assert.ok(closed, `slow reader ${n} was not closed`);
      // 4100 when the close frame fit; uWS drops it (like any frame) while the buffer is over
      // maxBackpressure, and the reader then sees the TCP close alone (1006).
      assert.ok(closed.code === 4100 || closed.code === 1006, `slow reader ${n}: close ${closed.code}`);
      const got = s.frames.filter((f) => f.event === 'ev').length;
      assert.ok(got < EVENTS, `slow reader ${n} got ${got} events: it was not cut off`);
    }
    // The node still serves: a publish after all this reaches the normal subscriber.
    const again = waitFor<{ i: number }>(channel, 'after');
    await sdk.trigger(CHANNEL, 'after', { i: -1 });
    assert.deepEqual(await again, { i: -1 });
  });
});
