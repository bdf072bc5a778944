// Idempotent publish (README "Idempotent publish"): POST /events and /batch_events with Sockudo's
// idempotency keys. Real nodes — one alone, three over a real redis-server — checked from outside
// with hand-signed requests and raw sockets that count deliveries; the config, the two ledgers and
// the edge's failure paths (a ledger that fails on purpose) as units.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { rowToApp } from '../src/apps/mysql-store.js';
import { brokerState } from '../src/cluster/horizontal/shared-state.js';
import type { PublishLedger } from '../src/cluster/ports.js';
import { MemoryLedger } from '../src/cluster/publish-ledger.js';
import { httpSettings } from '../src/compose/settings.js';
import { IDEMPOTENCY_IN_FLIGHT_MS, IDEMPOTENCY_WAIT_MS } from '../src/config/limits.js';
import { loadConfig } from '../src/config/load.js';
import { appSchema } from '../src/config/schema.js';
import { idempotencyOf, idempotentBatch, idempotentEvent } from '../src/edge/http/idempotency.js';
import type { Reply } from '../src/edge/http/respond.js';
import type { HttpDeps } from '../src/edge/http/settings.js';
import { MemoryBroker } from '../src/transports/memory.js';
import { startRedis, type Broker } from './helpers/brokers.js';
import { rawSocket, sleep, until, type RawSocket } from './helpers/clients.js';
import { DEMO_APP, startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { signedFetch, type ApiResponse } from './helpers/signing.js';

// ---- helpers ----

const silent = pino({ level: 'silent' });

let seq = 0;
const fresh = (base: string) => `${base}-${++seq}-${Date.now().toString(36)}`;

function post(
  node: { port: number },
  endpoint: 'events' | 'batch_events',
  body: unknown,
  opts: { app?: TestApp; headers?: Record<string, string> } = {},
): Promise<ApiResponse> {
  const app = opts.app ?? DEMO_APP;
  return signedFetch(node, {
    app,
    method: 'POST',
    path: `/apps/${app.id}/${endpoint}`,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: opts.headers,
  });
}

const event = (channel: string, name: string, extra: Record<string, unknown> = {}) => ({ name, channel, data: 'payload', ...extra });

function assertStatus(res: ApiResponse, status: number): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
}

/** A 400 whose JSON error matches. */
function assertRefused(res: ApiResponse, error: RegExp): void {
  assertStatus(res, 400);
  assert.match(String(res.json?.error), error);
}

const sockets: RawSocket[] = [];

async function subscriber(node: ChorusNode, channel: string, app: TestApp = DEMO_APP): Promise<RawSocket> {
  const sock = await rawSocket(node, `/app/${app.key}?protocol=7&client=js&version=8.4.0`);
  sockets.push(sock);
  await sock.next((f) => f.event === 'pusher:connection_established');
  sock.send({ event: 'pusher:subscribe', data: { channel } });
  await sock.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
  return sock;
}

const deliveries = (sock: RawSocket, channel: string, name: string) =>
  sock.frames.filter((f) => f.channel === channel && f.event === name).length;

/**
 * A control event (no key) from each node, waited for on every socket: a node delivers in order,
 * and a publish reaches the broker before its answer, so what came before it has arrived by then.
 */
async function settle(socks: RawSocket[], channel: string, via: ChorusNode[], app: TestApp = DEMO_APP): Promise<void> {
  const marks: string[] = [];
  for (const node of via) {
    const mark = fresh('mark');
    marks.push(mark);
    assertStatus(await post(node, 'events', event(channel, 'control', { data: mark }), { app }), 200);
  }
  await until(
    () => socks.every((s) => marks.every((m) => s.frames.some((f) => f.channel === channel && f.event === 'control' && f.data === m))),
    5000,
    'the control events',
  );
}

/** Waits for the start of the next wall-clock second (the backend rate limit's windows). */
const nextSecond = () => sleep(1000 - (Date.now() % 1000) + 20);

after(() => {
  for (const s of sockets.splice(0)) s.close();
});

// ---- config ----

describe('idempotency: config', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'chorus-idem-config-'));
  after(() => rmSync(cwd, { recursive: true, force: true }));
  let n = 0;
  const file = (content: unknown) => {
    const path = join(cwd, `config-${++n}.json`);
    writeFileSync(path, JSON.stringify(content));
    return path;
  };
  const load = (content: unknown, env: Record<string, string> = {}) => loadConfig({ file: file(content), env, cwd });
  const app = (extra: Record<string, unknown> = {}) => ({ id: fresh('a'), key: fresh('k'), secret: 's', ...extra });
  const configError = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it("defaults to Sockudo's: on, a 120 s window, keys up to 128 characters; an app's own values are unset", () => {
    const { config, unknownKeys } = load({ app_manager: { array: { apps: [app()] } } });
    assert.deepEqual(config.idempotency, { enabled: true, ttl_seconds: 120, max_key_length: 128 });
    assert.deepEqual(config.app_manager.array.apps![0].idempotency, { enabled: null, ttl_seconds: null });
    assert.deepEqual(unknownKeys, []);
    assert.deepEqual(httpSettings(config).idempotency, { enabled: true, ttlSeconds: 120, maxKeyLength: 128 });
  });

  it("reads Sockudo's IDEMPOTENCY_* variables and no longer names them as unread", () => {
    const { config, unreadEnv } = load(
      { app_manager: { array: { apps: [app()] } } },
      { IDEMPOTENCY_ENABLED: 'false', IDEMPOTENCY_TTL_SECONDS: '30', IDEMPOTENCY_MAX_KEY_LENGTH: '64', IDEMPOTENCY_SOMETHING_NEW: '1' },
    );
    assert.deepEqual(config.idempotency, { enabled: false, ttl_seconds: 30, max_key_length: 64 });
    assert.deepEqual(unreadEnv, [
      'environment variable IDEMPOTENCY_SOMETHING_NEW is not read by Chorus: Chorus reads IDEMPOTENCY_ENABLED, IDEMPOTENCY_TTL_SECONDS and IDEMPOTENCY_MAX_KEY_LENGTH',
    ]);
  });

  it("per app: `idempotency` and Sockudo 5's `policy.idempotency` (which wins) override the server-wide section", () => {
    const { config, unknownKeys } = load({
      idempotency: { enabled: true, ttl_seconds: '60', max_key_length: 40 },
      app_manager: {
        array: {
          apps: [
            app({ id: 'plain' }),
            app({ id: 'flat', idempotency: { ttl_seconds: 5 } }),
            app({
              id: 'policy',
              idempotency: { enabled: true, ttl_seconds: 7 },
              policy: { idempotency: { enabled: false, max_key_length: 10 } },
            }),
          ],
        },
      },
    });
    const [plain, flat, policy] = config.app_manager.array.apps!;
    assert.deepEqual(flat.idempotency, { enabled: null, ttl_seconds: 5 });
    assert.deepEqual(policy.idempotency, { enabled: false, ttl_seconds: 7 });
    assert.deepEqual(unknownKeys, ['app_manager.array.apps[2].policy.idempotency.max_key_length'], 'max_key_length is server-wide only');
    const server = httpSettings(config).idempotency;
    assert.deepEqual(idempotencyOf(plain, server), { windowMs: 60_000, maxKeyLength: 40 });
    assert.deepEqual(idempotencyOf(flat, server), { windowMs: 5000, maxKeyLength: 40 });
    assert.equal(idempotencyOf(policy, server), null);
    // An app may turn it on where the server has it off.
    const off = load({
      idempotency: { enabled: false },
      app_manager: { array: { apps: [app({ idempotency: { enabled: true } })] } },
    }).config;
    assert.deepEqual(idempotencyOf(off.app_manager.array.apps![0], httpSettings(off).idempotency), {
      windowMs: 120_000,
      maxKeyLength: 128,
    });
  });

  it("apps from MySQL: an `idempotency` JSON column, and the Sockudo 5 `policy` column's (which wins)", () => {
    const row = { id: 'm', key: 'm-key', secret: 's' };
    assert.deepEqual(rowToApp({ ...row, idempotency: '{"ttl_seconds": 9}' }).idempotency, { enabled: null, ttl_seconds: 9 });
    assert.deepEqual(
      rowToApp({ ...row, idempotency: '{"ttl_seconds": 9, "enabled": true}', policy: '{"idempotency": {"enabled": false}}' }).idempotency,
      { enabled: false, ttl_seconds: 9 },
    );
    assert.deepEqual(rowToApp({ ...row, idempotency: null }).idempotency, { enabled: null, ttl_seconds: null });
  });

  it('refuses bad values naming the key', () => {
    const apps = { app_manager: { array: { apps: [app()] } } };
    assert.match(
      configError(() => load({ ...apps, idempotency: { ttl_seconds: 0 } })),
      /idempotency\.ttl_seconds/,
    );
    assert.match(
      configError(() => load({ ...apps, idempotency: { max_key_length: 0 } })),
      /idempotency\.max_key_length/,
    );
    assert.match(
      configError(() => load({ ...apps, idempotency: { enabled: 'yes' } })),
      /idempotency\.enabled/,
    );
    assert.match(
      configError(() => load({ app_manager: { array: { apps: [app({ idempotency: { ttl_seconds: -1 } })] } } })),
      /apps\[0\]\.idempotency\.ttl_seconds/,
    );
    assert.match(
      configError(() => load({ app_manager: { array: { apps: [app({ policy: { idempotency: 5 } })] } } })),
      /apps\[0\]\.policy\.idempotency must be an object/,
    );
  });
});

// ---- the ledgers ----

/** The same promises from the in-process ledger and the broker's (over the in-memory broker). */
function ledgerContract(name: string, make: () => Promise<{ ledgers: PublishLedger[]; close(): void }>) {
  describe(`idempotency: ${name} ledger`, () => {
    let made: Awaited<ReturnType<typeof make>>;
    let a: PublishLedger;
    let b: PublishLedger;
    before(async () => {
      made = await make();
      [a, b] = [made.ledgers[0], made.ledgers[made.ledgers.length - 1]];
    });
    after(() => made.close());
    const answer = { status: 200, body: '{"ok":1}' };

    it('first, busy while in flight, done with the answer once completed; apps and scopes are apart', async () => {
      const key = fresh('k');
      assert.deepEqual(await a.begin('app', 'event', key, 60_000), { kind: 'first' });
      assert.deepEqual(await b.begin('app', 'event', key, 60_000), { kind: 'busy' });
      assert.deepEqual(await b.begin('other-app', 'event', key, 60_000), { kind: 'first' });
      assert.deepEqual(await b.begin('app', 'batch', key, 60_000), { kind: 'first' });
      await a.complete('app', 'event', key, answer, 60_000);
      assert.deepEqual(await b.begin('app', 'event', key, 60_000), { kind: 'done', answer });
      assert.deepEqual(await a.begin('app', 'event', key, 60_000), { kind: 'done', answer });
    });

    it('abandon frees a claim: the next caller is first', async () => {
      const key = fresh('k');
      assert.equal((await a.begin('app', 'event', key, 60_000)).kind, 'first');
      await a.abandon('app', 'event', key);
      assert.equal((await b.begin('app', 'event', key, 60_000)).kind, 'first');
    });

    it('an answer is kept for its window only', async () => {
      const key = fresh('k');
      assert.equal((await a.begin('app', 'event', key, 150)).kind, 'first');
      await a.complete('app', 'event', key, answer, 150);
      assert.equal((await b.begin('app', 'event', key, 150)).kind, 'done');
      await sleep(250);
      assert.equal((await b.begin('app', 'event', key, 150)).kind, 'first');
    });

    it('exactly one of 30 concurrent callers is first', async () => {
      const key = fresh('k');
      const got = await Promise.all(
        Array.from({ length: 30 }, (_, i) => made.ledgers[i % made.ledgers.length].begin('app', 'event', key, 60_000)),
      );
      assert.equal(got.filter((g) => g.kind === 'first').length, 1);
      assert.equal(got.filter((g) => g.kind === 'busy').length, 29);
    });
  });
}

ledgerContract('in-process', async () => {
  const ledger = new MemoryLedger();
  return { ledgers: [ledger], close: () => ledger.clear() };
});

async function brokerLedgers(broker: MemoryBroker, count: number): Promise<PublishLedger[]> {
  const ledgers: PublishLedger[] = [];
  for (let i = 0; i < count; i++) {
    const transport = broker.transport();
    await transport.connect({ message: () => undefined, status: () => undefined });
    ledgers.push(brokerState({ transport, keyPrefix: 'test:', nodeId: `n${i}`, liveNodes: () => null, log: silent }).ledger);
  }
  return ledgers;
}

ledgerContract('broker (three nodes, one in-memory broker)', async () => {
  const broker = new MemoryBroker();
  return { ledgers: await brokerLedgers(broker, 3), close: () => broker.close() };
});

describe('idempotency: broker ledger edges', () => {
  it('a claim whose node died mid-publish frees the key after its own in-flight bound, not the window', async () => {
    let now = 1_000_000;
    const broker = new MemoryBroker({ now: () => now });
    try {
      const [a, b] = await brokerLedgers(broker, 2);
      assert.equal((await a.begin('app', 'event', 'k', 3_600_000)).kind, 'first');
      now += IDEMPOTENCY_IN_FLIGHT_MS - 1;
      assert.equal((await b.begin('app', 'event', 'k', 3_600_000)).kind, 'busy');
      now += 2;
      assert.equal((await b.begin('app', 'event', 'k', 3_600_000)).kind, 'first');
    } finally {
      broker.close();
    }
  });

  it('rejects when the broker has no shared state (the edge then fails closed)', async () => {
    const broker = new MemoryBroker({ sharedState: false });
    try {
      const [a] = await brokerLedgers(broker, 1);
      await assert.rejects(a.begin('app', 'event', 'k', 1000));
    } finally {
      broker.close();
    }
  });
});

// ---- the edge against ledgers that fail on purpose ----

describe('idempotency: the edge when the ledger is slow or fails', () => {
  const app = appSchema.parse({ id: 'unit', key: 'unit-key', secret: 's' });

  /** HttpDeps whose core records every call that is not the ledger's (a publish), with a real in-process ledger. */
  function deps(ledger: PublishLedger) {
    const calls: string[] = [];
    const warnings: string[] = [];
    const ledgerCalls = {
      idempotencyBegin: (...a: Parameters<PublishLedger['begin']>) => ledger.begin(...a),
      idempotencyComplete: (...a: Parameters<PublishLedger['complete']>) => ledger.complete(...a),
      idempotencyAbandon: (...a: Parameters<PublishLedger['abandon']>) => ledger.abandon(...a),
    };
    const recorder = <T extends object>(target: T, label: string) =>
      new Proxy(target, {
        get: (t, prop) =>
          prop in t
            ? (t as Record<string | symbol, unknown>)[prop]
            : (...args: unknown[]) => {
                calls.push(`${label}.${String(prop)}:${JSON.stringify(args.slice(1, 3))}`);
                return undefined;
              },
      });
    const d = {
      settings: { idempotency: { enabled: true, ttlSeconds: 120, maxKeyLength: 128 } },
      core: recorder(ledgerCalls, 'core'),
      metrics: recorder({}, 'metrics'),
      rateLimiter: recorder({}, 'rateLimiter'),
      log: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) }),
    } as unknown as HttpDeps;
    return { d, calls, warnings, published: () => calls.filter((c) => c.startsWith('core.')).length };
  }

  const failing = (inner: PublishLedger, fail: Partial<Record<keyof PublishLedger, boolean>>): PublishLedger => ({
    begin: (...a) => (fail.begin ? Promise.reject(new Error('broker away')) : inner.begin(...a)),
    complete: (...a) => (fail.complete ? Promise.reject(new Error('broker away')) : inner.complete(...a)),
    abandon: (...a) => (fail.abandon ? Promise.reject(new Error('broker away')) : inner.abandon(...a)),
  });

  const body = (key: string, extra: Record<string, unknown> = {}) => ({ ...event('ch', 'e'), idempotency_key: key, ...extra });
  const json = (reply: Reply) => JSON.parse(reply.body) as Record<string, unknown>;

  it(`a repeat while the first is in flight waits ${IDEMPOTENCY_WAIT_MS} ms, then gets 503 with Retry-After: 1; after completion it gets the answer`, async () => {
    const ledger = new MemoryLedger();
    const { d, published } = deps(ledger);
    assert.equal((await ledger.begin(app.id, 'event', 'slow', 120_000)).kind, 'first', 'another node holds it');
    const t0 = Date.now();
    const busy = await idempotentEvent(d, app, body('slow'), '');
    const waited = Date.now() - t0;
    assert.equal(busy.status, 503);
    assert.deepEqual(busy.headers, { 'Retry-After': '1' });
    assert.deepEqual(json(busy), { error: 'Idempotent publish is still in progress', code: 'backpressure' });
    assert.ok(waited >= IDEMPOTENCY_WAIT_MS - 100 && waited < IDEMPOTENCY_WAIT_MS + 1000, `waited ${waited} ms`);
    assert.equal(published(), 0);
    // The first completes while a repeat is waiting: the repeat gets its answer.
    const waiting = idempotentEvent(d, app, body('slow'), '');
    await sleep(120);
    await ledger.complete(app.id, 'event', 'slow', { status: 200, body: '{"first":true}' }, 120_000);
    const replay = await waiting;
    assert.deepEqual([replay.status, replay.body], [200, '{"first":true}']);
    assert.equal(published(), 0);
  });

  it('a ledger that cannot answer: 503 "coordination unavailable", nothing published (fail closed)', async () => {
    const { d, published, warnings } = deps(failing(new MemoryLedger(), { begin: true }));
    for (const reply of [
      await idempotentEvent(d, app, body('k'), ''),
      await idempotentEvent(d, app, event('ch', 'e'), 'header-key'),
      await idempotentBatch(d, app, { batch: [event('ch', 'e')] }, 'header-key'),
      await idempotentBatch(d, app, { batch: [body('k1'), body('k2')] }, ''),
    ]) {
      assert.equal(reply.status, 503);
      assert.deepEqual(reply.headers, { 'Retry-After': '1' });
      assert.deepEqual(json(reply), { error: 'Idempotency coordination is temporarily unavailable', code: 'service_unavailable' });
    }
    assert.equal(published(), 0);
    assert.ok(warnings.some((w) => w.includes('idempotency ledger unavailable')));
    // Without a key the ledger is not asked: publishes go on.
    assert.equal((await idempotentEvent(d, app, event('ch', 'e'), '')).status, 200);
    assert.equal(published(), 1);
  });

  it('a batch whose item claims partly fail releases the ones it took', async () => {
    const inner = new MemoryLedger();
    let calls = 0;
    const ledger: PublishLedger = {
      ...failing(inner, {}),
      begin: (...a) => (++calls === 2 ? Promise.reject(new Error('blip')) : inner.begin(...a)),
    };
    const { d, published } = deps(ledger);
    const reply = await idempotentBatch(d, app, { batch: [body('p1'), body('p2')] }, '');
    assert.equal(reply.status, 503);
    assert.equal(published(), 0);
    assert.equal((await inner.begin(app.id, 'event', 'p1', 1000)).kind, 'first', 'p1 was released');
  });

  it('a batch with one item in flight elsewhere is refused whole (503) and releases the others', async () => {
    const ledger = new MemoryLedger();
    const { d, published } = deps(ledger);
    await ledger.begin(app.id, 'event', 'held', 120_000);
    const reply = await idempotentBatch(d, app, { batch: [body('free'), body('held')] }, '');
    assert.equal(reply.status, 503);
    assert.deepEqual(reply.headers, { 'Retry-After': '1' });
    assert.equal(published(), 0);
    assert.equal((await ledger.begin(app.id, 'event', 'free', 1000)).kind, 'first');
  });

  it('two nodes claiming the same batch keys, each first to a different one, do not wait each other out', async () => {
    // One ledger, seen from two nodes whose round trips differ per key (as over two broker
    // connections): claimed together, node A would get k1 and node B k2, and each would wait for
    // the other's until the deadline (both 503, nothing published).
    const ledger = new MemoryLedger();
    const slowFor = (slowKey: string): PublishLedger => ({
      ...failing(ledger, {}),
      begin: async (...a) => {
        if (a[2] === slowKey) await sleep(40);
        return ledger.begin(...a);
      },
    });
    const [a, b] = [deps(slowFor('k2')), deps(slowFor('k1'))];
    const replies = await Promise.all([
      idempotentBatch(a.d, app, { batch: [body('k1'), body('k2')] }, ''),
      idempotentBatch(b.d, app, { batch: [body('k2'), body('k1')] }, ''),
    ]);
    // Waited out, both would be 503.
    assert.deepEqual(
      replies.map((r) => r.status),
      [200, 200],
      replies.map((r) => r.body).join(' '),
    );
    // Each item is one core publish: one node published both, the other replayed them.
    assert.deepEqual([a.published(), b.published()].sort(), [0, 2]);
  });

  it('a batch header in flight: 503 "Idempotent batch publish is still in progress"', async () => {
    const ledger = new MemoryLedger();
    const { d } = deps(ledger);
    await ledger.begin(app.id, 'batch', 'hb', 120_000);
    const reply = await idempotentBatch(d, app, { batch: [event('ch', 'e')] }, 'hb');
    assert.equal(reply.status, 503);
    assert.equal(json(reply).error, 'Idempotent batch publish is still in progress');
  });

  it('a publish that throws releases the key (the router answers 500), so a retry publishes', async () => {
    const ledger = new MemoryLedger();
    const { d, published } = deps(ledger);
    const throwing = {
      ...d,
      core: new Proxy(d.core, {
        get: (t, p) =>
          p === 'publish'
            ? () => {
                throw new Error('boom');
              }
            : Reflect.get(t, p),
      }),
    };
    await assert.rejects(Promise.resolve(idempotentEvent(throwing, app, body('t'), '')), /boom/);
    await assert.rejects(Promise.resolve(idempotentBatch(throwing, app, { batch: [body('tb')] }, '')), /boom/);
    await assert.rejects(Promise.resolve(idempotentBatch(throwing, app, { batch: [event('ch', 'e')] }, 'th')), /boom/);
    assert.equal((await ledger.begin(app.id, 'event', 't', 1000)).kind, 'first');
    assert.equal((await ledger.begin(app.id, 'event', 'tb', 1000)).kind, 'first');
    assert.equal((await ledger.begin(app.id, 'batch', 'th', 1000)).kind, 'first');
    assert.equal(published(), 0);
  });

  it('an answer that cannot be stored, or a claim that cannot be released, does not change the reply (logged)', async () => {
    const { d, published, warnings } = deps(failing(new MemoryLedger(), { complete: true, abandon: true }));
    const ok = await idempotentEvent(d, app, body('c'), '');
    assert.deepEqual([ok.status, ok.body], [200, '{}']);
    assert.equal(published(), 1);
    const refused = await idempotentEvent(d, app, body('c2', { name: '' }), '');
    assert.equal(refused.status, 400);
    assert.ok(warnings.some((w) => w.includes('idempotent publish answer not stored')));
    assert.ok(warnings.some((w) => w.includes('idempotency key not released')));
  });
});

// ---- one real node ----

const OFF_APP: TestApp = { id: 'idem-off', key: 'idem-off-key', secret: 'idem-off-secret', idempotency: { enabled: false } };
const POLICY_OFF_APP: TestApp = {
  id: 'idem-policy',
  key: 'idem-policy-key',
  secret: 'idem-policy-secret',
  policy: { idempotency: { enabled: false } },
};
const SHORT_APP: TestApp = { id: 'idem-short', key: 'idem-short-key', secret: 'idem-short-secret', idempotency: { ttl_seconds: 1 } };
const SMALL_APP: TestApp = { id: 'idem-small', key: 'idem-small-key', secret: 'idem-small-secret', max_event_payload_in_kb: 1 };
const RATE_APP: TestApp = { id: 'idem-rate', key: 'idem-rate-key', secret: 'idem-rate-secret', max_backend_events_per_second: 2 };

describe('idempotency: one node', () => {
  let node: ChorusNode;
  before(async () => {
    node = await startNode({
      config: { app_manager: { array: { apps: [DEMO_APP, OFF_APP, POLICY_OFF_APP, SHORT_APP, SMALL_APP, RATE_APP] } } },
    });
  });
  after(async () => {
    await node?.stop();
  });

  it('/events: a repeat of a body key is answered like the first (the same body) and not published again', async () => {
    const channel = fresh('once');
    const sock = await subscriber(node, channel);
    const first = await post(node, 'events', event(channel, 'e', { idempotency_key: 'k-1', info: 'subscription_count' }));
    assertStatus(first, 200);
    assert.deepEqual(first.json, { channels: { [channel]: { subscription_count: 1 } } });
    // The count changes, the payload differs: the repeat still gets the first answer, verbatim.
    const other = await subscriber(node, channel);
    const again = await post(
      node,
      'events',
      event(channel, 'e', { idempotency_key: 'k-1', info: 'subscription_count', data: 'different' }),
    );
    assertStatus(again, 200);
    assert.equal(again.text, first.text);
    const parallel = await Promise.all(
      Array.from({ length: 5 }, () => post(node, 'events', event(channel, 'e', { idempotency_key: 'k-1' }))),
    );
    for (const r of parallel) assert.equal(r.text, first.text);
    await settle([sock, other], channel, [node]);
    assert.equal(deliveries(sock, channel, 'e'), 1);
    assert.equal(deliveries(other, channel, 'e'), 0);
    // A key is the app's, not the channel's: the same key on another channel is a repeat too.
    const elsewhere = await post(node, 'events', event(fresh('elsewhere'), 'e', { idempotency_key: 'k-1' }));
    assert.equal(elsewhere.text, first.text);
  });

  it('/events: the X-Idempotency-Key header; the body key wins over it', async () => {
    const channel = fresh('header');
    const sock = await subscriber(node, channel);
    const h = { 'X-Idempotency-Key': 'h-1' };
    assertStatus(await post(node, 'events', event(channel, 'by-header'), { headers: h }), 200);
    assertStatus(await post(node, 'events', event(channel, 'by-header'), { headers: h }), 200);
    // Body key b-1 wins: h-2 is not used by this call ...
    assertStatus(
      await post(node, 'events', event(channel, 'both', { idempotency_key: 'b-1' }), { headers: { 'X-Idempotency-Key': 'h-2' } }),
      200,
    );
    // ... so h-2 alone publishes, and b-1 (with any header) does not.
    assertStatus(await post(node, 'events', event(channel, 'h2'), { headers: { 'X-Idempotency-Key': 'h-2' } }), 200);
    assertStatus(
      await post(node, 'events', event(channel, 'both', { idempotency_key: 'b-1' }), { headers: { 'X-Idempotency-Key': 'h-3' } }),
      200,
    );
    await settle([sock], channel, [node]);
    assert.deepEqual(
      ['by-header', 'both', 'h2'].map((n) => deliveries(sock, channel, n)),
      [1, 1, 1],
    );
  });

  it('refuses bad keys with 400 and a clear error, publishing nothing', async () => {
    const channel = fresh('bad-keys');
    const sock = await subscriber(node, channel);
    const cases: Array<[unknown, RegExp]> = [
      ['', /^Idempotency key must not be empty$/],
      ['x'.repeat(129), /^Idempotency key exceeds maximum length of 128 characters$/],
      [42, /^"idempotency_key" must be a string$/],
      [{ nested: true }, /^"idempotency_key" must be a string$/],
      ['tab\there', /printable ASCII/],
      ['caf\u00e9', /printable ASCII/],
    ];
    for (const [key, error] of cases) {
      assertRefused(await post(node, 'events', event(channel, 'bad', { idempotency_key: key })), error);
    }
    assertRefused(
      await post(node, 'events', event(channel, 'bad'), { headers: { 'X-Idempotency-Key': 'y'.repeat(129) } }),
      /exceeds maximum length of 128/,
    );
    assertRefused(
      await post(node, 'batch_events', { batch: [event(channel, 'bad')] }, { headers: { 'X-Idempotency-Key': 'y'.repeat(129) } }),
      /exceeds maximum length of 128/,
    );
    // Every item's key is checked before anything is published.
    assertRefused(
      await post(node, 'batch_events', {
        batch: [event(channel, 'bad', { idempotency_key: 'fine' }), event(channel, 'bad', { idempotency_key: '' })],
      }),
      /^Batch event 1: Idempotency key must not be empty$/,
    );
    assertRefused(
      await post(node, 'batch_events', { batch: [event(channel, 'bad', { idempotency_key: 7 })] }),
      /^Batch event 0: .* must be a string$/,
    );
    // A key of exactly max_key_length, and a null key (no key), are accepted.
    assertStatus(await post(node, 'events', event(channel, 'ok', { idempotency_key: 'z'.repeat(128) })), 200);
    assertStatus(await post(node, 'events', event(channel, 'ok', { idempotency_key: null })), 200);
    await settle([sock], channel, [node]);
    assert.equal(deliveries(sock, channel, 'bad'), 0);
    assert.equal(deliveries(sock, channel, 'ok'), 2);
    // 'fine' was not used by the refused batch.
    assertStatus(await post(node, 'events', event(channel, 'ok', { idempotency_key: 'fine' })), 200);
    await settle([sock], channel, [node]);
    assert.equal(deliveries(sock, channel, 'ok'), 3);
  });

  it('/batch_events: each item key covers its item (a used one is skipped, its result {}), shared with /events keys', async () => {
    const channel = fresh('items');
    const sock = await subscriber(node, channel);
    const first = await post(node, 'batch_events', {
      batch: [event(channel, 'a', { idempotency_key: 'i-a' }), event(channel, 'b', { idempotency_key: 'i-b' }), event(channel, 'plain')],
    });
    assertStatus(first, 200);
    assert.deepEqual(first.json, {});
    const second = await post(node, 'batch_events', {
      batch: [
        event(channel, 'a', { idempotency_key: 'i-a', info: 'subscription_count' }),
        event(channel, 'c', { idempotency_key: 'i-c', info: 'subscription_count' }),
        event(channel, 'c', { idempotency_key: 'i-c' }),
        event(channel, 'plain'),
      ],
    });
    assertStatus(second, 200);
    assert.deepEqual(second.json, { batch: [{}, { subscription_count: 1 }, {}, {}] }, 'skipped items answer {} in their place');
    // A batch item's key used by a single publish (and the other way round).
    const single = await post(node, 'events', event(channel, 'b', { idempotency_key: 'i-b' }));
    assertStatus(single, 200);
    assert.deepEqual(single.json, {});
    assertStatus(await post(node, 'events', event(channel, 'd', { idempotency_key: 'i-d' })), 200);
    const allUsed = await post(node, 'batch_events', {
      batch: [event(channel, 'd', { idempotency_key: 'i-d', info: 'subscription_count' }), event(channel, 'a', { idempotency_key: 'i-a' })],
    });
    assert.deepEqual(allUsed.json, { batch: [{}, {}] });
    await settle([sock], channel, [node]);
    assert.deepEqual(
      ['a', 'b', 'c', 'd', 'plain'].map((n) => deliveries(sock, channel, n)),
      [1, 1, 1, 1, 2],
    );
  });

  it('/batch_events: the header covers the whole batch (replayed verbatim), apart from /events keys', async () => {
    const channel = fresh('batch-header');
    const sock = await subscriber(node, channel);
    const h = { 'X-Idempotency-Key': 'bh-1' };
    const batch = { batch: [event(channel, 'x', { info: 'subscription_count' }), event(channel, 'y')] };
    const first = await post(node, 'batch_events', batch, { headers: h });
    assertStatus(first, 200);
    assert.deepEqual(first.json, { batch: [{ subscription_count: 1 }, {}] });
    await subscriber(node, channel);
    const again = await post(node, 'batch_events', batch, { headers: h });
    assert.equal(again.text, first.text);
    // The same key on /events is another namespace (as in Sockudo): it publishes.
    assertStatus(await post(node, 'events', event(channel, 'z'), { headers: h }), 200);
    await settle([sock], channel, [node]);
    assert.deepEqual(
      ['x', 'y', 'z'].map((n) => deliveries(sock, channel, n)),
      [1, 1, 1],
    );
  });

  it('a failed first call (413) does not use the key up: the retry publishes, once', async () => {
    const channel = fresh('failed');
    const sock = await subscriber(node, channel, SMALL_APP);
    const big = 'x'.repeat(2048);
    assertStatus(await post(node, 'events', event(channel, 'e', { idempotency_key: 'f-1', data: big }), { app: SMALL_APP }), 413);
    assertStatus(await post(node, 'events', event(channel, 'e', { idempotency_key: 'f-1', data: big }), { app: SMALL_APP }), 413);
    const ok = await post(node, 'events', event(channel, 'e', { idempotency_key: 'f-1' }), { app: SMALL_APP });
    assertStatus(ok, 200);
    assert.equal((await post(node, 'events', event(channel, 'e', { idempotency_key: 'f-1' }), { app: SMALL_APP })).text, ok.text);
    // The same for a batch item and a batch header.
    const tooBig = { batch: [event(channel, 'item', { idempotency_key: 'f-2', data: big })] };
    assertStatus(await post(node, 'batch_events', tooBig, { app: SMALL_APP }), 413);
    assertStatus(await post(node, 'batch_events', tooBig, { app: SMALL_APP, headers: { 'X-Idempotency-Key': 'f-3' } }), 413);
    const fixed = { batch: [event(channel, 'item', { idempotency_key: 'f-2' })] };
    assertStatus(await post(node, 'batch_events', fixed, { app: SMALL_APP, headers: { 'X-Idempotency-Key': 'f-3' } }), 200);
    assertStatus(await post(node, 'batch_events', fixed, { app: SMALL_APP }), 200);
    await settle([sock], channel, [node], SMALL_APP);
    assert.equal(deliveries(sock, channel, 'e'), 1);
    assert.equal(deliveries(sock, channel, 'item'), 1);
  });

  it('a first call refused by the rate limit (429) does not use the key up', async () => {
    const channel = fresh('limited');
    const sock = await subscriber(node, channel, RATE_APP);
    let key = '';
    for (let attempt = 0; attempt < 4 && !key; attempt++) {
      await nextSecond();
      const second = Math.floor(Date.now() / 1000);
      for (let i = 0; i < 2; i++) await post(node, 'events', event(channel, 'filler'), { app: RATE_APP });
      const candidate = fresh('rl');
      const res = await post(node, 'events', event(channel, 'keyed', { idempotency_key: candidate }), { app: RATE_APP });
      if (res.status === 429 && Math.floor(Date.now() / 1000) === second) key = candidate;
      else assert.ok(res.status === 200 || res.status === 429, res.text);
    }
    assert.ok(key, 'no 429 inside one second in 4 attempts');
    const before429 = deliveries(sock, channel, 'keyed');
    await nextSecond();
    assertStatus(await post(node, 'events', event(channel, 'keyed', { idempotency_key: key }), { app: RATE_APP }), 200);
    assertStatus(await post(node, 'events', event(channel, 'keyed', { idempotency_key: key }), { app: RATE_APP }), 200);
    await nextSecond();
    await settle([sock], channel, [node], RATE_APP);
    assert.equal(deliveries(sock, channel, 'keyed') - before429, 1);
  });

  it('an app with idempotency off (its own block, or Sockudo 5 policy) publishes every repeat and ignores the key', async () => {
    for (const app of [OFF_APP, POLICY_OFF_APP]) {
      const channel = fresh('off');
      const sock = await subscriber(node, channel, app);
      for (let i = 0; i < 2; i++) assertStatus(await post(node, 'events', event(channel, 'e', { idempotency_key: 'same' }), { app }), 200);
      assertStatus(await post(node, 'events', event(channel, 'e', { idempotency_key: 42 }), { app }), 200);
      assertStatus(await post(node, 'batch_events', { batch: [event(channel, 'e', { idempotency_key: 'same' })] }, { app }), 200);
      await settle([sock], channel, [node], app);
      assert.equal(deliveries(sock, channel, 'e'), 4, app.id);
    }
  });

  it('the window: a key is used for ttl_seconds (1 s here), then publishes again', async () => {
    const channel = fresh('window');
    const sock = await subscriber(node, channel, SHORT_APP);
    const key = fresh('w');
    assertStatus(await post(node, 'events', event(channel, 'e', { idempotency_key: key }), { app: SHORT_APP }), 200);
    assertStatus(await post(node, 'events', event(channel, 'e', { idempotency_key: key }), { app: SHORT_APP }), 200);
    await settle([sock], channel, [node], SHORT_APP);
    assert.equal(deliveries(sock, channel, 'e'), 1);
    await sleep(1100);
    assertStatus(await post(node, 'events', event(channel, 'e', { idempotency_key: key }), { app: SHORT_APP }), 200);
    await settle([sock], channel, [node], SHORT_APP);
    assert.equal(deliveries(sock, channel, 'e'), 2);
  });
});

// ---- three real nodes over redis ----

const HEALTH_ENV = {
  ADAPTER_CLUSTER_HEALTH_HEARTBEAT_INTERVAL_MS: '500',
  ADAPTER_CLUSTER_HEALTH_NODE_TIMEOUT_MS: '3000',
  ADAPTER_CLUSTER_HEALTH_CLEANUP_INTERVAL_MS: '500',
};

describe('idempotency: across nodes on redis', () => {
  let redis: Broker;
  let n1: ChorusNode;
  let n2: ChorusNode;
  /** only ever paused, to hold a publish in flight (its channel count waits for it) */
  let n3: ChorusNode;

  before(async () => {
    redis = await startRedis();
    const env = { ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(redis.port), ...HEALTH_ENV };
    [n1, n2, n3] = await Promise.all([startNode({ env }), startNode({ env }), startNode({ env })]);
    const nodes = [n1, n2, n3];
    await until(
      () =>
        nodes.every((n) => nodes.every((m) => m === n || n.logs.some((l) => l.includes('cluster peer joined') && l.includes(m.nodeId)))),
      10_000,
      'cluster formation',
    );
  });
  after(async () => {
    for (const s of sockets.splice(0)) s.close();
    n3?.proc.kill('SIGCONT');
    await Promise.all([n1, n2, n3].map((n) => n?.stop()));
    await redis?.stop();
  });

  it('10 concurrent requests of one key, split over two nodes, publish exactly once (5 keys in a row)', async () => {
    const channel = fresh('concurrent');
    const [s1, s2] = [await subscriber(n1, channel), await subscriber(n2, channel)];
    for (let round = 0; round < 5; round++) {
      const key = fresh('c');
      const name = `e${round}`;
      const replies = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          post(i % 2 ? n2 : n1, 'events', event(channel, name, { idempotency_key: key, info: 'subscription_count' })),
        ),
      );
      for (const r of replies) assertStatus(r, 200);
      assert.equal(new Set(replies.map((r) => r.text)).size, 1, 'every repeat got the first answer');
      assert.deepEqual(replies[0].json, { channels: { [channel]: { subscription_count: 2 } } });
    }
    await settle([s1, s2], channel, [n1, n2]);
    for (let round = 0; round < 5; round++) {
      assert.equal(deliveries(s1, channel, `e${round}`), 1);
      assert.equal(deliveries(s2, channel, `e${round}`), 1);
    }
  });

  it('concurrent batches with item keys and batch headers over two nodes: every item once', async () => {
    const channel = fresh('concurrent-batch');
    const [s1, s2] = [await subscriber(n1, channel), await subscriber(n2, channel)];
    const [k1, k2, h] = [fresh('i1'), fresh('i2'), fresh('h')];
    const items = { batch: [event(channel, 'i1', { idempotency_key: k1 }), event(channel, 'i2', { idempotency_key: k2 })] };
    const replies = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => post(i % 2 ? n2 : n1, 'batch_events', items)),
      ...Array.from({ length: 6 }, (_, i) =>
        post(i % 2 ? n1 : n2, 'batch_events', { batch: [event(channel, 'hb')] }, { headers: { 'X-Idempotency-Key': h } }),
      ),
    ]);
    for (const r of replies) assertStatus(r, 200);
    await settle([s1, s2], channel, [n1, n2]);
    for (const s of [s1, s2]) {
      assert.deepEqual(
        ['i1', 'i2', 'hb'].map((n) => deliveries(s, channel, n)),
        [1, 1, 1],
      );
    }
  });

  it('a first call that failed on one node (413) leaves the key free for a retry on the other', async () => {
    const channel = fresh('retry-elsewhere');
    const sock = await subscriber(n2, channel);
    const key = fresh('r');
    assertStatus(await post(n1, 'events', event(channel, 'e', { idempotency_key: key, data: 'x'.repeat(11 * 1024) })), 413);
    assertStatus(await post(n2, 'events', event(channel, 'e', { idempotency_key: key })), 200);
    assertStatus(await post(n1, 'events', event(channel, 'e', { idempotency_key: key })), 200);
    await settle([sock], channel, [n1, n2]);
    assert.equal(deliveries(sock, channel, 'e'), 1);
  });

  it('a repeat on another node while the first is in flight gets 503 + Retry-After: 1, then the answer', async () => {
    const channel = fresh('in-flight');
    const sock = await subscriber(n1, channel);
    const key = fresh('slow');
    // The first publish asks every live node for the channel's count; a frozen one holds it in flight.
    n3.proc.kill('SIGSTOP');
    try {
      const t0 = Date.now();
      const first = post(n1, 'events', event(channel, 'e', { idempotency_key: key, info: 'subscription_count' }), {});
      await sleep(100);
      const busy = await post(n2, 'events', event(channel, 'e', { idempotency_key: key, info: 'subscription_count' }));
      assertStatus(busy, 503);
      assert.equal(busy.headers.get('retry-after'), '1');
      assert.deepEqual(busy.json, { error: 'Idempotent publish is still in progress', code: 'backpressure' });
      const done = await first;
      assertStatus(done, 200);
      assert.ok(Date.now() - t0 > IDEMPOTENCY_WAIT_MS, 'the first was in flight past the wait');
      const replay = await post(n2, 'events', event(channel, 'e', { idempotency_key: key, info: 'subscription_count' }));
      assert.equal(replay.text, done.text);
    } finally {
      n3.proc.kill('SIGCONT');
    }
    await settle([sock], channel, [n1, n2]);
    assert.equal(deliveries(sock, channel, 'e'), 1);
  });

  it('without its broker the ledger cannot answer: a keyed publish gets 503 (fail closed), an unkeyed one goes on', async () => {
    await redis.stop('SIGKILL');
    let refused: ApiResponse | null = null;
    await until(
      async () => {
        const res = await post(n1, 'events', event(fresh('down'), 'e', { idempotency_key: fresh('d') }));
        if (res.status === 503) refused = res;
        return refused !== null;
      },
      5000,
      'a 503 from the ledger',
      100,
    );
    const res = refused as unknown as ApiResponse;
    assert.equal(res.headers.get('retry-after'), '1');
    assert.deepEqual(res.json, { error: 'Idempotency coordination is temporarily unavailable', code: 'service_unavailable' });
    assertStatus(await post(n1, 'events', event(fresh('down'), 'e')), 200);
  });
});
