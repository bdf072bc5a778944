// Seeded choices for fuzz tests, on the transports' mulberry32: a failing sequence
// is replayed exactly from its printed seed.
import { mulberry32 } from '../../src/transports/rng.js';

export function seededRng(seed: number) {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)];
  const chance = (p: number) => next() < p;
  return { next, int, pick, chance };
}
export type Rng = ReturnType<typeof seededRng>;
