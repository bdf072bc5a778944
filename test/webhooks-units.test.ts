// The pure parts of webhook delivery, with a fake clock where time matters:
// the circuit breaker's states and cool-downs, the fair lanes' round-robin,
// the endpoint gate's limits, and URL redaction.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreakers, type BreakerObserver } from '../src/webhooks/circuit-breaker.js';
import { endpointOf } from '../src/webhooks/endpoint.js';
import { EndpointGate } from '../src/webhooks/endpoint-gate.js';
import { FairLanes } from '../src/webhooks/fair-lanes.js';
import { redactUrl, scrubReason } from '../src/webhooks/redact.js';

const endpoint = (appId: string, url: string) => endpointOf({ appId, url })!;

function breakers(now: { t: number }) {
  const events: string[] = [];
  const observer: BreakerObserver = {
    opened: (e, failures, cooldownMs) => events.push(`opened ${e.appId} ${failures} ${cooldownMs}`),
    reopened: (e, cooldownMs) => events.push(`reopened ${e.appId} ${cooldownMs}`),
    closed: (e) => events.push(`closed ${e.appId}`),
  };
  const b = new CircuitBreakers({ failureThreshold: 3, cooldownMs: 1000, maxCooldownMs: 3000, probeWaitMs: 500 }, observer, () => now.t);
  return { b, events };
}

describe('webhooks units: circuit breaker', () => {
  it('opens after the threshold of failures in a row; a success in between starts the count again', () => {
    const now = { t: 0 };
    const { b, events } = breakers(now);
    const e = endpoint('a', 'http://h/x');
    b.failed(e);
    b.failed(e);
    b.succeeded(e);
    b.failed(e);
    b.failed(e);
    assert.deepEqual(b.check(e), { ok: true });
    b.failed(e);
    assert.deepEqual(events, ['opened a 3 1000']);
    assert.deepEqual(b.check(e), { ok: false, retryInMs: 1000 });
  });

  it('lets one probe through after the cool-down; its failure doubles the cool-down up to the cap', () => {
    const now = { t: 0 };
    const { b, events } = breakers(now);
    const e = endpoint('a', 'http://h/x');
    for (let i = 0; i < 3; i++) b.failed(e);
    now.t = 1000;
    assert.deepEqual(b.check(e), { ok: true }, 'the probe');
    assert.deepEqual(b.check(e), { ok: false, retryInMs: 500 }, 'others wait while it is out');
    b.failed(e);
    assert.deepEqual(b.check(e), { ok: false, retryInMs: 2000 });
    now.t = 3000;
    assert.deepEqual(b.check(e), { ok: true });
    b.failed(e);
    now.t = 6000;
    assert.deepEqual(b.check(e), { ok: true });
    b.failed(e);
    assert.deepEqual(b.check(e), { ok: false, retryInMs: 3000 }, 'capped at maxCooldownMs');
    assert.deepEqual(events, ['opened a 3 1000', 'reopened a 2000', 'reopened a 3000', 'reopened a 3000']);
  });

  it('a successful probe closes it, and the next opening starts from the first cool-down again', () => {
    const now = { t: 0 };
    const { b, events } = breakers(now);
    const e = endpoint('a', 'http://h/x');
    for (let i = 0; i < 3; i++) b.failed(e);
    now.t = 1000;
    b.check(e);
    b.failed(e);
    now.t = 3000;
    b.check(e);
    b.succeeded(e);
    assert.equal(b.openCount(), 0);
    for (let i = 0; i < 3; i++) b.failed(e);
    assert.deepEqual(b.check(e), { ok: false, retryInMs: 1000 });
    assert.deepEqual(events, ['opened a 3 1000', 'reopened a 2000', 'closed a', 'opened a 3 1000']);
  });

  it('a probe admitted but never sent hands the probe to the next caller', () => {
    const now = { t: 0 };
    const { b } = breakers(now);
    const e = endpoint('a', 'http://h/x');
    for (let i = 0; i < 3; i++) b.failed(e);
    now.t = 1000;
    assert.deepEqual(b.check(e), { ok: true });
    b.released(e);
    assert.deepEqual(b.check(e), { ok: true });
  });

  it("is per app and path: one app's failing endpoint leaves another app's (same origin) closed", () => {
    const { b } = breakers({ t: 0 });
    for (let i = 0; i < 3; i++) b.failed(endpoint('a', 'http://h/x'));
    assert.equal(b.check(endpoint('a', 'http://h/x?other=query')).ok, false, 'the query string is not part of the endpoint');
    assert.equal(b.check(endpoint('b', 'http://h/x')).ok, true);
    assert.equal(b.check(endpoint('a', 'http://h/y')).ok, true);
  });
});

describe('webhooks units: endpoint gate', () => {
  it('caps requests per origin and in total; a finished ticket frees its slot once', () => {
    const { b } = breakers({ t: 0 });
    const gate = new EndpointGate({ perEndpoint: 2, total: 3 }, b);
    const x = endpoint('a', 'http://x/1');
    const y = endpoint('a', 'http://y/1');
    const t1 = gate.admit(x);
    const t2 = gate.admit(x);
    assert.ok(t1.ok && t2.ok);
    const refused = gate.admit(x);
    assert.ok(!refused.ok && refused.reason === 'saturated' && refused.retryInMs > 0);
    assert.ok(gate.admit(y).ok);
    assert.equal(gate.available(), false);
    assert.equal(gate.admit(endpoint('b', 'http://z/1')).ok, false, 'the total is reached');
    if (t1.ok) {
      t1.ticket.finish('ok');
      t1.ticket.finish('ok');
    }
    assert.equal(gate.inFlight(), 2);
    assert.equal(gate.canStart('http://x'), true);
  });

  it('an open breaker refuses without taking a slot', () => {
    const { b } = breakers({ t: 0 });
    const gate = new EndpointGate({ perEndpoint: 8, total: 8 }, b);
    const x = endpoint('a', 'http://x/1');
    for (let i = 0; i < 3; i++) {
      const t = gate.admit(x);
      if (t.ok) t.ticket.finish('failed');
    }
    const refused = gate.admit(x);
    assert.ok(!refused.ok && refused.reason === 'open');
    assert.equal(gate.inFlight(), 0);
  });
});

describe('webhooks units: fair lanes', () => {
  it('serves apps round-robin, origins round-robin within an app, skipping lanes that cannot start', () => {
    const lanes = new FairLanes<string>();
    for (let i = 0; i < 3; i++) lanes.push('a', 'dead', `a-dead-${i}`);
    for (let i = 0; i < 2; i++) lanes.push('a', 'ok', `a-ok-${i}`);
    for (let i = 0; i < 2; i++) lanes.push('b', 'ok', `b-ok-${i}`);
    const taken: string[] = [];
    for (let item; (item = lanes.take((lane) => lane !== 'dead'));) taken.push(item);
    assert.deepEqual(taken, ['a-ok-0', 'b-ok-0', 'a-ok-1', 'b-ok-1']);
    assert.equal(lanes.size, 3);
    assert.equal(
      lanes.take(() => true),
      'a-dead-0',
    );
  });

  it('keeps FIFO order within a lane across many items', () => {
    const lanes = new FairLanes<number>();
    for (let i = 0; i < 1000; i++) lanes.push('a', 'o', i);
    const out: number[] = [];
    for (let i = 0; i < 1000; i++) out.push(lanes.take(() => true)!);
    assert.deepEqual(
      out,
      Array.from({ length: 1000 }, (_, i) => i),
    );
    assert.equal(
      lanes.take(() => true),
      null,
    );
  });
});

describe('webhooks units: redaction', () => {
  it('logs origin and path only', () => {
    assert.equal(redactUrl('https://u:p@hooks.example.com:8443/a/b?token=S#frag'), 'https://hooks.example.com:8443/a/b');
    assert.equal(redactUrl('not a url'), '[invalid url]');
  });

  it('scrubs the query string and credentials out of an error message that echoes the URL', () => {
    const url = 'http://user:hunter2@h.example/x?token=SECRET123';
    const reason = scrubReason(`failed to reach ${url} (token=SECRET123, pw hunter2)`, url);
    assert.ok(!reason.includes('SECRET123') && !reason.includes('hunter2'), reason);
    assert.ok(reason.includes('http://h.example/x'), reason);
  });

  it('endpointOf refuses URLs that must not be sent (credentials, other schemes, garbage)', () => {
    assert.equal(endpointOf({ appId: 'a', url: 'http://u:p@h/x' }), null);
    assert.equal(endpointOf({ appId: 'a', url: 'ftp://h/x' }), null);
    assert.equal(endpointOf({ appId: 'a', url: '::' }), null);
    assert.equal(endpointOf({ appId: 'a', url: 'https://h:8443/x?q=1' })!.origin, 'https://h:8443');
  });
});
