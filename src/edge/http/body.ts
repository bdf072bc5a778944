// Reads a request body without ever holding more than `limit` bytes, within a
// budget of body bytes in flight shared by every request of the node (and, for
// large bodies, of one client address): past it the request is refused, so slow
// or stalled uploads cannot pile up memory.
import type { HttpResponse } from 'uWebSockets.js';
import { bodyDeadlines } from './deadlines.js';

export type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'timeout' | 'busy' | 'busy_ip' | 'aborted' };

export interface BodyBudgetSettings {
  /** body bytes in flight on the node */
  nodeBytes: number;
  /** body bytes in flight for one client address (checked for bodies over `perIpAbove`) */
  ipBytes: number;
  perIpAbove: number;
}

export class BodyBudget {
  private used = 0;
  private readonly byIp = new Map<string, number>();

  constructor(readonly settings: BodyBudgetSettings) {}

  /** Reserves room for `bytes`; the reason when there is none. */
  take(bytes: number, ip: string | null): null | 'busy' | 'busy_ip' {
    if (this.used + bytes > this.settings.nodeBytes) return 'busy';
    if (ip !== null) {
      const mine = this.byIp.get(ip) ?? 0;
      if (mine + bytes > this.settings.ipBytes) return 'busy_ip';
      this.byIp.set(ip, mine + bytes);
    }
    this.used += bytes;
    return null;
  }

  give(bytes: number, ip: string | null): void {
    this.used = Math.max(0, this.used - bytes);
    if (ip === null) return;
    const left = (this.byIp.get(ip) ?? 0) - bytes;
    if (left > 0) this.byIp.set(ip, left);
    else this.byIp.delete(ip);
  }

  get inFlight(): number {
    return this.used;
  }
}

export interface BodyReader {
  result: Promise<BodyResult>;
  /** Stops reading (the request was refused): chunks still arriving are dropped. */
  cancel(): void;
  /** Must be called when the request ends early (aborted): the budget is given back. */
  abort(): void;
}

/**
 * Must be called in the handler's synchronous part (uWS drops data otherwise). Reserves
 * the declared length up front (or the limit, when none is declared) and gives it back
 * once the body is complete or the request is over.
 */
export function readBody(
  res: HttpResponse,
  limit: number,
  declaredLength: number,
  timeoutMs: number,
  budget: BodyBudget,
  ip: () => string,
  /** false when the request declares no body at all (Content-Length 0, not chunked) */
  expectBody = true,
): BodyReader {
  let done = false;
  let settle: (r: BodyResult) => void = () => undefined;
  const result = new Promise<BodyResult>((r) => (settle = r));
  if (declaredLength > limit) {
    done = true;
    settle({ ok: false, reason: 'too_large' });
    return { result, cancel: () => undefined, abort: () => undefined };
  }
  const reserved = declaredLength > 0 ? declaredLength : expectBody ? limit : 0;
  const reservedIp = reserved > budget.settings.perIpAbove ? ip() : null;
  const refused = budget.take(reserved, reservedIp);
  if (refused) {
    done = true;
    settle({ ok: false, reason: refused });
    return { result, cancel: () => undefined, abort: () => undefined };
  }
  let given = false;
  const release = () => {
    if (given) return;
    given = true;
    budget.give(reserved, reservedIp);
  };
  const finish = (r: BodyResult) => {
    if (done) return;
    done = true;
    bodyDeadlines.cancel(timer);
    release();
    settle(r);
  };
  const chunks: Buffer[] = [];
  let size = 0;
  // A slow client gets a bounded time to send it all (slowloris).
  const timer = bodyDeadlines.add(timeoutMs, () => finish({ ok: false, reason: 'timeout' }));
  res.onData((chunk, isLast) => {
    if (done) return;
    size += chunk.byteLength;
    if (size > limit || (reserved > 0 && size > reserved) || (reserved === 0 && size > 0))
      return finish({ ok: false, reason: 'too_large' });
    // uWS reuses the chunk's memory after this callback: copy it.
    chunks.push(Buffer.from(chunk.slice(0)));
    if (isLast) finish({ ok: true, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size) });
  });
  return {
    result,
    cancel: () => finish({ ok: false, reason: 'aborted' }),
    abort: () => finish({ ok: false, reason: 'aborted' }),
  };
}

/** A request without a body: nothing to read. */
export const NO_BODY: BodyReader = {
  result: Promise.resolve({ ok: true, body: Buffer.alloc(0) }),
  cancel: () => undefined,
  abort: () => undefined,
};

/** The largest unread body a refusal drains so its connection can stay open. */
const DRAIN_LIMIT = 64 * 1024;

/**
 * Answers a request refused before its body was read. Closing a socket with unread bytes makes
 * the kernel reset the connection, and a proxy in front may lose the answer to the reset (nginx
 * then says 502): so a small declared body (up to 64 KiB) is read and dropped first, and the
 * answer may keep the connection (`drained` true). A larger, chunked or stalled body is not
 * waited for: answered at once (or at the body timeout), the connection closed. Must be called
 * in the handler's synchronous part; `answer` must check for an aborted request itself.
 */
export function refuseAfterBody(
  res: HttpResponse,
  declaredLength: number,
  chunked: boolean,
  timeoutMs: number,
  answer: (drained: boolean) => void,
): void {
  if (declaredLength === 0 && !chunked) return answer(true);
  if (chunked || declaredLength > DRAIN_LIMIT) return answer(false);
  let done = false;
  let seen = 0;
  const finish = (drained: boolean) => {
    if (done) return;
    done = true;
    bodyDeadlines.cancel(timer);
    answer(drained);
  };
  const timer = bodyDeadlines.add(timeoutMs, () => finish(false));
  res.onData((chunk, isLast) => {
    seen += chunk.byteLength;
    if (seen > declaredLength) finish(false);
    else if (isLast) finish(true);
  });
}
