// The connections' clock: milliseconds since shortly before this process started. A
// connection keeps several timestamps (last seen, ping sent, budgets, deadlines); as
// Date.now() values they are past the small-integer range and each is a 16-byte heap
// number, as these they stay small integers inside the connection for ~24 days of
// uptime (then they are heap numbers again: still correct, only larger).

/** 1 s before the first reading, so no reading is 0 (0 means "none" in those fields). */
const ORIGIN = Date.now() - 1000;

/** A small integer while it fits 31 bits (`| 0`: an integral double would still be a heap number). */
export function clockMs(): number {
  const t = Date.now() - ORIGIN;
  return t < 0x7fffffff ? t | 0 : t;
}
