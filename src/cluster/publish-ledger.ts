// Idempotency keys of publishes (the PublishLedger port) kept in this process: the local
// cluster's, and a node's own when the broker has no shared state (NATS without JetStream:
// a key is then de-duplicated per node only). Also the encoding of a completed answer as
// the broker ledger stores it (shared-state.ts).
import { IDEMPOTENCY_IN_FLIGHT_MS } from '../config/limits.js';
import type { LedgerAnswer, LedgerBegin, LedgerScope, PublishLedger } from './ports.js';
import { TtlCache } from './ttl-cache.js';

export const FIRST: LedgerBegin = { kind: 'first' };
export const BUSY: LedgerBegin = { kind: 'busy' };

/** A completed answer as stored in the broker; a claim holds the transport's own marker ("1"). */
const ANSWER_TAG = 'a1|';

export const encodeAnswer = (answer: LedgerAnswer): string => ANSWER_TAG + JSON.stringify([answer.status, answer.body]);

/** The stored answer, or null when the value is not one (a claim in flight, or unknown). */
export function decodeAnswer(value: string): LedgerAnswer | null {
  if (!value.startsWith(ANSWER_TAG)) return null;
  try {
    const parsed: unknown = JSON.parse(value.slice(ANSWER_TAG.length));
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'number' || typeof parsed[1] !== 'string') return null;
    return { status: parsed[0], body: parsed[1] };
  } catch {
    return null;
  }
}

/** Every call is one synchronous step of this process, which makes begin's claim atomic. */
export class MemoryLedger implements PublishLedger {
  /** null: claimed, in flight */
  private readonly entries = new TtlCache<LedgerAnswer | null>();

  private static id(appId: string, scope: LedgerScope, key: string): string {
    return JSON.stringify([appId, scope, key]);
  }

  /** The window applies from completion on; a claim holds for IDEMPOTENCY_IN_FLIGHT_MS. */
  async begin(appId: string, scope: LedgerScope, key: string, _windowMs?: number): Promise<LedgerBegin> {
    const id = MemoryLedger.id(appId, scope, key);
    const hit = this.entries.get(id);
    if (!hit) {
      this.entries.set(id, null, IDEMPOTENCY_IN_FLIGHT_MS);
      return FIRST;
    }
    return hit.value ? { kind: 'done', answer: hit.value } : BUSY;
  }

  async complete(appId: string, scope: LedgerScope, key: string, answer: LedgerAnswer, windowMs: number): Promise<void> {
    this.entries.set(MemoryLedger.id(appId, scope, key), answer, windowMs);
  }

  async abandon(appId: string, scope: LedgerScope, key: string): Promise<void> {
    const id = MemoryLedger.id(appId, scope, key);
    // Only a claim is released: a completed answer stays for its window.
    if (this.entries.get(id)?.value === null) this.entries.delete(id);
  }

  clear(): void {
    this.entries.clear();
  }
}
