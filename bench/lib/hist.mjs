// A latency histogram in microseconds that merges across processes by adding
// arrays: 1 us buckets to 10 ms, 100 us buckets to 1 s, then one overflow bucket.
const FINE = 10_000;
const COARSE = 9_900;
export const BUCKETS = FINE + COARSE + 1;

export function newHist() {
  return { counts: new Float64Array(BUCKETS), max: 0, n: 0 };
}

export function record(h, us) {
  if (us < 0) us = 0;
  let i;
  if (us < FINE) i = us | 0;
  else if (us < 1_000_000) i = FINE + (((us - FINE) / 100) | 0);
  else i = BUCKETS - 1;
  h.counts[i]++;
  h.n++;
  if (us > h.max) h.max = us;
}

/** Adds `n` samples of the same value (one chunk's worth of messages). */
export function recordN(h, us, n) {
  if (n <= 0) return;
  if (us < 0) us = 0;
  let i;
  if (us < FINE) i = us | 0;
  else if (us < 1_000_000) i = FINE + (((us - FINE) / 100) | 0);
  else i = BUCKETS - 1;
  h.counts[i] += n;
  h.n += n;
  if (us > h.max) h.max = us;
}

/** Sparse form for IPC: [[index, count], ...]. */
export function toWire(h) {
  const pairs = [];
  for (let i = 0; i < BUCKETS; i++) if (h.counts[i]) pairs.push([i, h.counts[i]]);
  return { pairs, max: h.max, n: h.n };
}

export function mergeWire(h, w) {
  for (const [i, c] of w.pairs) h.counts[i] += c;
  h.n += w.n;
  if (w.max > h.max) h.max = w.max;
}

const bucketValue = (i) => (i < FINE ? i : i < BUCKETS - 1 ? FINE + (i - FINE) * 100 : 1_000_000);

export function percentile(h, p) {
  if (h.n === 0) return null;
  const target = Math.ceil((p / 100) * h.n);
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += h.counts[i];
    if (seen >= target) return Math.min(bucketValue(i), h.max);
  }
  return h.max;
}

/** p50/p99/max in milliseconds (3 decimals). */
export function summary(h) {
  const ms = (us) => (us === null ? null : Math.round(us) / 1000);
  return { n: h.n, p50_ms: ms(percentile(h, 50)), p99_ms: ms(percentile(h, 99)), max_ms: ms(h.n ? h.max : null) };
}
