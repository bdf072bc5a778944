// Admission of one webhook request: a slot for its origin (at most
// `perEndpoint` at once) and in total (`total`), and its endpoint's breaker
// closed. A refused job is not attempted: the queue puts it back for later
// without counting an attempt. So a receiver that never answers holds at most
// `perEndpoint` sockets, and the node at most `total`.
import type { CircuitBreakers } from './circuit-breaker.js';
import type { Endpoint } from './endpoint.js';

export interface ConcurrencyLimits {
  perEndpoint: number;
  total: number;
}

/** How an admitted request ended, for the breaker: answered 2xx, failed, or never sent. */
export type Verdict = 'ok' | 'failed' | 'unused';

export interface Ticket {
  /** Frees the slot; call exactly once. */
  finish(verdict: Verdict): void;
}

export type Admission = { ok: true; ticket: Ticket } | { ok: false; reason: 'saturated' | 'open'; retryInMs: number };

/** What a queue asks before it takes a job: could a request to this origin start now? */
export interface Capacity {
  available(): boolean;
  canStart(origin: string): boolean;
}

/** A saturated endpoint frees a slot within a request timeout; a short, jittered wait spreads the retakes. */
const SATURATED_RETRY_MS = 500;

export class EndpointGate implements Capacity {
  private readonly perOrigin = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly limits: ConcurrencyLimits,
    private readonly breakers: CircuitBreakers,
  ) {}

  available(): boolean {
    return this.total < this.limits.total;
  }

  canStart(origin: string): boolean {
    return this.available() && (this.perOrigin.get(origin) ?? 0) < this.limits.perEndpoint;
  }

  /** Requests in flight on this node. */
  inFlight(): number {
    return this.total;
  }

  /** Synchronous: the slot is taken before this returns, so a caller can admit several in a row. */
  admit(endpoint: Endpoint): Admission {
    if (!this.canStart(endpoint.origin)) {
      return { ok: false, reason: 'saturated', retryInMs: SATURATED_RETRY_MS + Math.floor(Math.random() * SATURATED_RETRY_MS) };
    }
    const breaker = this.breakers.check(endpoint);
    if (!breaker.ok) return { ok: false, reason: 'open', retryInMs: breaker.retryInMs };
    this.perOrigin.set(endpoint.origin, (this.perOrigin.get(endpoint.origin) ?? 0) + 1);
    this.total++;
    let finished = false;
    return {
      ok: true,
      ticket: {
        finish: (verdict) => {
          if (finished) return;
          finished = true;
          this.release(endpoint.origin);
          if (verdict === 'ok') this.breakers.succeeded(endpoint);
          else if (verdict === 'failed') this.breakers.failed(endpoint);
          else this.breakers.released(endpoint);
        },
      },
    };
  }

  private release(origin: string): void {
    this.total--;
    const n = (this.perOrigin.get(origin) ?? 1) - 1;
    if (n <= 0) this.perOrigin.delete(origin);
    else this.perOrigin.set(origin, n);
  }
}
