// Time-to-live arguments, checked the same way by every transport: Redis refuses a
// zero, negative or fractional PX, and the others must not quietly accept what Redis
// would refuse (a caller's bug would then show on one broker only).

/** A TTL in whole milliseconds (at least 1), or a RangeError for anything else. */
export function validTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be a positive number of milliseconds, got ${ttlMs}`);
  return Math.ceil(ttlMs);
}
