// One circuit breaker per webhook endpoint (app + origin + path). After
// `failureThreshold` failures in a row the endpoint is open: nothing is sent
// to it for a cool-down, which doubles (up to `maxCooldownMs`) each time the
// probe sent after a cool-down fails. A success closes it. An endpoint that
// keeps failing then costs one request per cool-down instead of one per batch.
import type { Endpoint } from './endpoint.js';

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
  /** how long others wait while the probe is out (it answers within the request timeout) */
  probeWaitMs: number;
}

export interface BreakerObserver {
  opened(endpoint: Endpoint, failures: number, cooldownMs: number): void;
  /** the probe failed: open again, for longer */
  reopened(endpoint: Endpoint, cooldownMs: number): void;
  closed(endpoint: Endpoint): void;
}

export type BreakerCheck = { ok: true } | { ok: false; retryInMs: number };

interface State {
  failures: number;
  open: boolean;
  openUntil: number;
  cooldownMs: number;
  /** a probe (the first attempt after the cool-down) is out */
  probing: boolean;
}

export class CircuitBreakers {
  /** endpoints with failures or open; a healthy endpoint has no entry */
  private readonly states = new Map<string, State>();

  constructor(
    private readonly options: BreakerOptions,
    private readonly observer: BreakerObserver,
    private readonly now: () => number = Date.now,
  ) {}

  /** May a request go to the endpoint now? After the cool-down, the one caller let through is the probe. */
  check(endpoint: Endpoint): BreakerCheck {
    const s = this.states.get(endpoint.key);
    if (!s || !s.open) return { ok: true };
    if (s.probing) return { ok: false, retryInMs: this.options.probeWaitMs };
    const wait = s.openUntil - this.now();
    if (wait > 0) return { ok: false, retryInMs: wait };
    s.probing = true;
    return { ok: true };
  }

  succeeded(endpoint: Endpoint): void {
    const s = this.states.get(endpoint.key);
    if (!s) return;
    this.states.delete(endpoint.key);
    if (s.open) this.observer.closed(endpoint);
  }

  failed(endpoint: Endpoint): void {
    let s = this.states.get(endpoint.key);
    if (!s) {
      s = { failures: 0, open: false, openUntil: 0, cooldownMs: this.options.cooldownMs, probing: false };
      this.states.set(endpoint.key, s);
    }
    s.failures++;
    if (s.open) {
      // A request sent before the breaker opened says nothing new; only the probe's answer counts.
      if (!s.probing) return;
      s.probing = false;
      s.cooldownMs = Math.min(this.options.maxCooldownMs, s.cooldownMs * 2);
      s.openUntil = this.now() + s.cooldownMs;
      this.observer.reopened(endpoint, s.cooldownMs);
      return;
    }
    if (s.failures < this.options.failureThreshold) return;
    s.open = true;
    s.openUntil = this.now() + s.cooldownMs;
    this.observer.opened(endpoint, s.failures, s.cooldownMs);
  }

  /** An admitted request that was never sent: if it was the probe, the next caller probes. */
  released(endpoint: Endpoint): void {
    const s = this.states.get(endpoint.key);
    if (s?.probing) s.probing = false;
  }

  /** Open (or half-open) breakers, for tests. */
  openCount(): number {
    let n = 0;
    for (const s of this.states.values()) if (s.open) n++;
    return n;
  }
}
