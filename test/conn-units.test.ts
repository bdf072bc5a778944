// A connection's compact parts, checked in one process: the channels it holds (inline
// slots, a Map past two) behave like a Map in every order of adds, replaces and deletes,
// and the connections' clock never reads 0 and is Date.now() less one fixed origin.
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
  /** Where the clock's 0 lies in Date.now() terms, bounded by wall readings either side of it. */
  const originBounds = (): [number, number] => {
    const before = Date.now();
    const c = clockMs();
    const after = Date.now();
    assert.ok(c >= 1000, `clock read ${c}`);
    assert.ok(Number.isInteger(c), `clock read ${c}`);
    return [before - c, after - c];
  };

  it('is never 0, whole, and Date.now() less one fixed origin', async () => {
    const [lo1, hi1] = originBounds();
    await new Promise((r) => setTimeout(r, 30));
    const [lo2, hi2] = originBounds();
    // One origin for both readings: the two ranges it may lie in overlap.
    assert.ok(lo1 <= hi2 && lo2 <= hi1, `origin in [${lo1}, ${hi1}] then [${lo2}, ${hi2}]`);
  });
});
