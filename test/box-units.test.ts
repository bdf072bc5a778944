// The box hub in one process (the Transport contract runs it beside the real brokers in
// transport-contract.test.ts): its numbered logs (channel history for workers without a
// broker), its shared rate-limit windows, and its defences against bad frames on the socket.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoxHub } from '../src/transports/box-hub.js';
import { BoxTransport } from '../src/transports/box.js';
import { BoxCounts } from '../src/compose/box-counts.js';
import { BoxRateLimiter } from '../src/compose/box-limiter.js';
import { LocalRateLimiter } from '../src/rate-limit/limiter.js';
import { helloFrame, opFrame, BOX_WIRE_VERSION } from '../src/transports/box-wire.js';
import { until } from './helpers/wait.js';

const path = join(tmpdir(), `chorus-box-units-${process.pid}.sock`);
let hub: BoxHub;
const limiter = new LocalRateLimiter();

before(async () => {
  hub = await BoxHub.listen({ path, rate: (k, p, l, w) => limiter.consume(k, p, l, w) });
});
after(async () => {
  await hub.close();
});

const append = (body: string, seen = 0, seenEpoch = '') => ({
  body,
  tag: 't',
  maxEntries: 3,
  ttlMs: 60_000,
  newEpoch: 'e1',
  seen,
  seenEpoch,
  head: 'H',
  tail: 'T',
});

describe('box hub: numbered logs', () => {
  it('numbers, stores and publishes in order; reads ranges both ways and says when entries were trimmed', async () => {
    const a = new BoxTransport(path, 'a');
    const got: string[] = [];
    await a.connect({ message: (_t, p) => got.push(p), status: () => undefined });
    const topic = a.topic('log', 'one');
    await a.subscribe([topic]);
    const positions = [];
    for (let i = 1; i <= 5; i++) positions.push(await a.numbered.append(topic, append(`b${i}`)));
    assert.deepEqual(
      positions.map((p) => [p.serial, p.epoch]),
      [1, 2, 3, 4, 5].map((n) => [n, 'e1']),
    );
    await until(() => got.length === 5, 2000, 'five numbered payloads');
    assert.match(got[0], /^H1\ne1\n\d+T$/);
    const all = await a.numbered.range(topic, {
      fromSerial: 1,
      toSerial: Infinity,
      limit: 10,
      newestFirst: false,
      maxEntries: 3,
      ttlMs: 60_000,
    });
    assert.deepEqual(
      all.entries.map((e) => e.body),
      ['b3', 'b4', 'b5'],
    );
    assert.equal(all.continuous, false, 'serials 1 and 2 were trimmed');
    assert.equal(all.lastSerial, 5);
    const newest = await a.numbered.range(topic, { fromSerial: 4, toSerial: 5, limit: 1, newestFirst: true, maxEntries: 3, ttlMs: 60_000 });
    assert.deepEqual(
      newest.entries.map((e) => e.serial),
      [5],
    );
    const absent = await a.numbered.range(a.topic('log', 'none'), {
      fromSerial: 1,
      toSerial: 9,
      limit: 5,
      newestFirst: false,
      maxEntries: 3,
      ttlMs: 1000,
    });
    assert.equal(absent.epoch, null);
    // A writer that saw serial 9 of this epoch: writes were lost, a new epoch starts.
    const renewed = await a.numbered.append(topic, { ...append('fresh', 9, 'e1'), newEpoch: 'e2' });
    assert.deepEqual([renewed.serial, renewed.epoch], [1, 'e2']);
    await a.close();
  });
});

describe('box hub: shared limits and bad frames', () => {
  it('two workers draw on one rate-limit window', async () => {
    const one = new BoxRateLimiter(path, 'w0', false);
    const two = new BoxRateLimiter(path, 'w1', false);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await one.consume('k', 1, 5, 60_000), await two.consume('k', 1, 5, 60_000));
    assert.equal(results.filter(Boolean).length, 5);
    await one.close();
    await two.close();
  });

  it('an address cap is one count for the box; a worker gives back only its own holds, and all of them when it dies', async () => {
    const w0 = new BoxCounts(path, 'w0');
    const w1 = new BoxCounts(path, 'w1');
    const [one, two] = [w0.addressCap(), w1.addressCap()];
    assert.equal(await one.take('10.0.0.1', 2), true);
    assert.equal(await two.take('10.0.0.1', 2), true);
    assert.equal(await one.take('10.0.0.1', 2), false, 'the box holds two');
    assert.equal(await two.take('10.0.0.2', 2), true, 'another address has its own count');
    assert.equal(await w0.sessionCap().take('10.0.0.1', 1), true, 'sessions of an address are a count of their own');
    two.release('10.0.0.9'); // never held here: nothing given back
    one.release('10.0.0.1');
    assert.equal(await two.take('10.0.0.1', 2), true, "one's hold came back");
    assert.equal(await one.take('10.0.0.1', 2), false);
    one.release('10.0.0.1'); // one holds none now: the box still holds two (both two's)
    assert.equal(await one.take('10.0.0.1', 2), false);
    // two dies: its holds go with its link.
    w1.close();
    const w2 = new BoxCounts(path, 'w2');
    const three = w2.addressCap();
    await until(async () => (await three.take('10.0.0.1', 2)) && (await three.take('10.0.0.1', 2)), 2000, 'two holds free again');
    assert.equal(await three.take('10.0.0.1', 2), false);
    w0.close();
    w2.close();
  });

  it("the node-wide cap is one count of the box's connections, whichever worker holds them", async () => {
    const w0 = new BoxCounts(path, 'w0');
    const w1 = new BoxCounts(path, 'w1');
    const [a, b] = [w0.seats(), w1.seats()];
    const taken = [await a.take(3), await b.take(3), await b.take(3), await a.take(3), await b.take(3)];
    assert.deepEqual(taken, [true, true, true, false, false]);
    a.release();
    a.release(); // a held one: the second gives back nothing of b's
    assert.equal(await b.take(3), true);
    assert.equal(await a.take(3), false);
    w1.close();
    await until(async () => (await a.take(3)) && (await a.take(3)) && (await a.take(3)), 2000, "b's seats free once it is gone");
    assert.equal(await a.take(3), false);
    w0.close();
  });

  it('garbage, unknown ops and bad arguments are refused or dropped; the link and the hub go on', async () => {
    const socket = createConnection(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(helloFrame('raw'));
    socket.write('not json\n[1,2,3]\n{"a":1}\n["o",-1,"claim",[]]\n["o",1,"nope",[]]\n\n');
    socket.write(opFrame(2, 'claim', ['k', -5]));
    socket.write(opFrame(3, 'put', [5, 'v', 100]));
    socket.write(opFrame(4, 'claim', ['k', 1000]));
    await until(() => text.split('\n').filter(Boolean).length === 3, 2000, 'three replies');
    const replies = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as unknown[]);
    assert.deepEqual(
      replies.map((r) => [r[1], r[2]]),
      [
        [2, 0],
        [3, 0],
        [4, 1],
      ],
    );
    assert.match(String(replies[0][3]), /ttlMs/);
    assert.ok(hub.stats.invalidFrames >= 4);
    socket.destroy();
  });

  it('a worker of another wire version is turned away', async () => {
    const socket = createConnection(path);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write(`${JSON.stringify(['h', BOX_WIRE_VERSION + 1, 'future'])}\n`);
    await closed;
  });
});
