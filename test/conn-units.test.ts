// A connection's compact parts, checked in one process: the channels it holds (inline
// slots, a Map past two) behave like a Map in every order of adds, replaces and deletes,
// and the connections' clock never reads 0 and keeps to Date.now()'s pace.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HeldChannels } from '../src/conn/held-channels.js';
import { clockMs } from '../src/conn/clock.js';
import type { Subscription } from '../src/conn/connection.js';

/** A small deterministic generator, so a failure repeats. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

describe('held channels: like a Map, inline for one or two', () => {
  it('agrees with a Map on get, has, size and key order over 20 000 random operations', () => {
    const next = rng(7);
    const held = new HeldChannels();
    const model = new Map<string, Subscription>();
    const names = ['a', 'b', 'c', 'd', 'e', 'private-f', 'presence-g'];
    for (let i = 0; i < 20_000; i++) {
      const name = names[Math.floor(next() * names.length)];
      const roll = next();
      if (roll < 0.5) {
        const sub: Subscription = { userId: next() < 0.5 ? null : `u${i}`, ready: next() < 0.5 };
        held.set(name, sub);
        model.set(name, sub);
      } else {
        assert.equal(held.delete(name), model.delete(name), `delete ${name} at step ${i}`);
      }
      assert.equal(held.size, model.size, `size at step ${i}`);
      assert.deepEqual(held.keys(), [...model.keys()], `order at step ${i}`);
      for (const n of names) {
        assert.equal(held.get(n), model.get(n), `get ${n} at step ${i}`);
        assert.equal(held.has(n), model.has(n));
      }
    }
  });

  it('keeps a replaced subscription in its place and gives a copy of the keys', () => {
    const held = new HeldChannels();
    const first: Subscription = { userId: null, ready: false };
    const second: Subscription = { userId: null, ready: true };
    held.set('one', first);
    held.set('two', first);
    held.set('three', first);
    held.set('one', second);
    const keys = held.keys();
    assert.deepEqual(keys, ['one', 'two', 'three']);
    assert.equal(held.get('one'), second);
    for (const k of keys) held.delete(k);
    assert.equal(held.size, 0);
    assert.deepEqual(keys, ['one', 'two', 'three']);
    assert.equal(held.delete('one'), false);
  });
});

describe('the connections clock', () => {
  it('is never 0 and moves with Date.now()', async () => {
    const a = clockMs();
    const wallA = Date.now();
    assert.ok(a >= 1000, `clock read ${a}`);
    await new Promise((r) => setTimeout(r, 50));
    const moved = clockMs() - a;
    const wallMoved = Date.now() - wallA;
    assert.ok(Math.abs(moved - wallMoved) <= 2, `clock moved ${moved} ms, the wall ${wallMoved} ms`);
  });
});
