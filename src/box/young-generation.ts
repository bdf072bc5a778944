// Holds V8's young generation at a size of our choosing. V8 grows the young generation
// (two semi-spaces) whenever many objects survive its scavenges, up to 16 MB per semi-space
// on a large machine, and never gives the touched pages back while the process is idle. A
// burst of connections is exactly that pattern (each socket's state outlives its first
// scavenges), so 19 500 idle connections cost ~0.6 KB of RSS each more than their state
// (bench/README.md, "The young generation held"). Past 8 MB a bigger young generation buys the
// HTTP and fan-out paths nothing measurable (GC per API call within 0.2 µs).
//
// `--max-semi-space-size` is read only when the heap is made, so it cannot be set from
// here; V8 reads `--semi-space-growth-factor` at each growth, so the growth is switched
// off (factor 1) while the young generation is at the size held and on again (V8's factor 2)
// if V8 has shrunk it. An operator who sets either flag (command line or NODE_OPTIONS) has
// chosen: nothing is changed then.
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/** The semi-space size held: V8's default max is twice this on a large machine. */
export const HELD_SEMI_SPACE_BYTES = 8 * 2 ** 20;

const V8_GROWTH_FACTOR = 2;

/** Bytes of the young generation committed now (both semi-spaces). */
export function youngGenerationBytes(): number {
  for (const space of v8.getHeapSpaceStatistics()) if (space.space_name === 'new_space') return space.space_size;
  return 0;
}

/** True when the process was started with a semi-space flag of the operator's own. */
export function operatorChoseSemiSpace(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): boolean {
  // V8 takes `_` and `-` alike in its flags' names.
  const chose = (arg: string) => /^--(max-semi-space-size|semi-space-growth-factor)(=|$)/.test(arg.replace(/_/g, '-'));
  return execArgv.some(chose) || nodeOptions.split(/\s+/).some(chose);
}

/**
 * Stops the young generation's growth at `semiSpaceBytes` per semi-space, checked after every
 * GC (growth happens only in one). Returns the function that lets it grow again, or null when
 * the operator chose the size.
 */
export function holdYoungGeneration(semiSpaceBytes = HELD_SEMI_SPACE_BYTES): (() => void) | null {
  if (operatorChoseSemiSpace()) return null;
  let factor = V8_GROWTH_FACTOR;
  const setFactor = (next: number) => {
    if (next === factor) return;
    factor = next;
    v8.setFlagsFromString(`--semi-space-growth-factor=${next}`);
  };
  const check = () => setFactor(youngGenerationBytes() >= 2 * semiSpaceBytes ? 1 : V8_GROWTH_FACTOR);
  const observer = new PerformanceObserver(check);
  observer.observe({ entryTypes: ['gc'] });
  check();
  return () => {
    observer.disconnect();
    setFactor(V8_GROWTH_FACTOR);
  };
}
