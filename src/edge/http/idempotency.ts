// Idempotent publish, with Sockudo's names: POST /events and /batch_events carry an idempotency
// key — `idempotency_key` in the body (it wins over the header for /events) or per batch item,
// the `X-Idempotency-Key` header (for /batch_events: the whole batch) — and a repeat of a key
// within the app's window is answered like the first call and not published again, on whichever
// node it arrives (the core's ledger: cluster-wide where the broker has shared state).
//
// Only a key whose first publish completed (2xx) counts as used: a failed first call (any other
// status, or a throw) releases its claim, so a retry publishes (Sockudo keeps it locked until its
// TTL). A repeat while the first is in flight waits up to IDEMPOTENCY_WAIT_MS for its answer, then
// gets 503 with Retry-After: 1 (Sockudo's backpressure answer; its SDKs retry a 5xx). A ledger
// that cannot answer gives 503 too: nothing is published without it (fail closed).
import type { App } from '../../apps/app.js';
import { IDEMPOTENCY_POLL_MS, IDEMPOTENCY_WAIT_MS } from '../../config/limits.js';
import type { LedgerAnswer, LedgerBegin, LedgerScope } from '../../core/core.js';
import { checkEvent, triggerBatch, triggerEvent } from './publish.js';
import { errorReply, jsonReply, type Reply } from './respond.js';
import type { HttpDeps, IdempotencySettings } from './settings.js';

export interface IdempotencyPolicy {
  windowMs: number;
  maxKeyLength: number;
}

/** The app's own values over the server-wide ones; null when idempotency is off for the app. */
export function idempotencyOf(app: App, server: IdempotencySettings): IdempotencyPolicy | null {
  if (!(app.idempotency.enabled ?? server.enabled)) return null;
  return { windowMs: (app.idempotency.ttl_seconds ?? server.ttlSeconds) * 1000, maxKeyLength: server.maxKeyLength };
}

const PRINTABLE = /^[\x20-\x7e]+$/;

/** Why a key is refused (400), or null. */
export function keyProblem(key: unknown, maxLength: number, name: string): string | null {
  if (typeof key !== 'string') return `${name} must be a string`;
  if (key.length === 0) return 'Idempotency key must not be empty';
  if (key.length > maxLength) return `Idempotency key exceeds maximum length of ${maxLength} characters`;
  if (!PRINTABLE.test(key)) return 'Idempotency key must consist of printable ASCII characters';
  return null;
}

const retryLater = (error: string, code: string): Reply => ({ ...jsonReply(503, { error, code }), headers: { 'Retry-After': '1' } });
const UNAVAILABLE = retryLater('Idempotency coordination is temporarily unavailable', 'service_unavailable');
const EVENT_IN_PROGRESS = retryLater('Idempotent publish is still in progress', 'backpressure');
const BATCH_IN_PROGRESS = retryLater('Idempotent batch publish is still in progress', 'backpressure');

/** What a batch item's key replays when a single publish repeats it: the event was published. */
const ITEM_ANSWER: LedgerAnswer = { status: 200, body: '{}' };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const succeeded = (reply: Reply): boolean => reply.status >= 200 && reply.status < 300;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Claims the key, or finds its answer; while another caller has it in flight, looks again until the deadline. */
async function begin(
  d: HttpDeps,
  appId: string,
  scope: LedgerScope,
  key: string,
  windowMs: number,
  deadline = Date.now() + IDEMPOTENCY_WAIT_MS,
): Promise<LedgerBegin> {
  for (;;) {
    const found = await d.core.idempotencyBegin(appId, scope, key, windowMs);
    if (found.kind !== 'busy' || Date.now() + IDEMPOTENCY_POLL_MS > deadline) return found;
    await sleep(IDEMPOTENCY_POLL_MS);
  }
}

/** Frees a claim whose publish failed; if the ledger cannot, the claim's own TTL frees it. */
async function release(d: HttpDeps, appId: string, scope: LedgerScope, key: string): Promise<void> {
  try {
    await d.core.idempotencyAbandon(appId, scope, key);
  } catch (err) {
    d.log.warn({ app_id: appId, err: (err as Error).message }, 'idempotency key not released (it frees itself in 30 s)');
  }
}

/** Keeps the answer for the window; the caller's answer stands even when that fails (logged). */
async function store(d: HttpDeps, appId: string, scope: LedgerScope, key: string, answer: LedgerAnswer, windowMs: number): Promise<void> {
  try {
    await d.core.idempotencyComplete(appId, scope, key, answer, windowMs);
  } catch (err) {
    d.log.warn({ app_id: appId, err: (err as Error).message }, 'idempotent publish answer not stored');
  }
}

function unavailable(d: HttpDeps, appId: string, err: unknown): Reply {
  d.log.warn({ app_id: appId, err: (err as Error).message }, 'idempotency ledger unavailable');
  return UNAVAILABLE;
}

/** Runs `publish` once per key and window: a completed first call's answer is replayed. */
async function once(
  d: HttpDeps,
  app: App,
  scope: LedgerScope,
  key: string,
  policy: IdempotencyPolicy,
  publish: () => Promise<Reply> | Reply,
): Promise<Reply> {
  let found: LedgerBegin;
  try {
    found = await begin(d, app.id, scope, key, policy.windowMs);
  } catch (err) {
    return unavailable(d, app.id, err);
  }
  if (found.kind === 'done') return { status: found.answer.status, body: found.answer.body };
  if (found.kind === 'busy') return scope === 'batch' ? BATCH_IN_PROGRESS : EVENT_IN_PROGRESS;
  let reply: Reply;
  try {
    reply = await publish();
  } catch (err) {
    await release(d, app.id, scope, key);
    throw err;
  }
  if (succeeded(reply)) await store(d, app.id, scope, key, { status: reply.status, body: reply.body }, policy.windowMs);
  else await release(d, app.id, scope, key);
  return reply;
}

/** POST /events: the body's `idempotency_key`, else the X-Idempotency-Key header. */
export function idempotentEvent(d: HttpDeps, app: App, body: unknown, header: string): Promise<Reply> | Reply {
  const policy = idempotencyOf(app, d.settings.idempotency);
  if (!policy) return triggerEvent(d, app, body);
  const inBody = isRecord(body) ? body.idempotency_key : undefined;
  const fromBody = inBody !== undefined && inBody !== null;
  // An absent header reads as '' (uWS); an empty one cannot be told from it.
  if (!fromBody && header === '') return triggerEvent(d, app, body);
  const key = fromBody ? inBody : header;
  const problem = keyProblem(key, policy.maxKeyLength, fromBody ? '"idempotency_key"' : 'X-Idempotency-Key');
  if (problem) return errorReply(400, problem);
  return once(d, app, 'event', key as string, policy, () => triggerEvent(d, app, body));
}

/** POST /batch_events: the header covers the whole batch, each item's `idempotency_key` that item. */
export function idempotentBatch(d: HttpDeps, app: App, body: unknown, header: string): Promise<Reply> | Reply {
  const policy = idempotencyOf(app, d.settings.idempotency);
  if (!policy) return triggerBatch(d, app, body);
  if (header !== '') {
    const problem = keyProblem(header, policy.maxKeyLength, 'X-Idempotency-Key');
    if (problem) return errorReply(400, problem);
  }
  const items = isRecord(body) && Array.isArray(body.batch) ? (body.batch as unknown[]) : [];
  // Every item's key is checked before anything is claimed.
  const keys: Array<string | null> = [];
  for (let i = 0; i < items.length; i++) {
    const key = isRecord(items[i]) ? (items[i] as Record<string, unknown>).idempotency_key : undefined;
    if (key === undefined || key === null) {
      keys.push(null);
      continue;
    }
    const problem = keyProblem(key, policy.maxKeyLength, '"idempotency_key"');
    if (problem) return errorReply(400, `Batch event ${i}: ${problem}`);
    keys.push(key as string);
  }
  const publish = keys.some((k) => k !== null)
    ? () => itemsOnce(d, app, body as Record<string, unknown>, items, keys, policy)
    : () => triggerBatch(d, app, body);
  return header === '' ? publish() : once(d, app, 'batch', header, policy, publish);
}

/**
 * A batch with item keys: items whose key was used (or that repeat an earlier item's key in this
 * batch) are skipped — their result is `{}` — and the rest go through triggerBatch as one batch.
 * The items' keys are claimed one at a time in sorted order, under one deadline: a caller waiting
 * for a key holds only keys that sort before it, so two batches sharing keys cannot each hold one
 * the other waits for (claimed together, two nodes' batches of the same keys could, and both
 * waited out the deadline). If a key is still in flight elsewhere at the deadline, the whole batch
 * is refused (503) and nothing is published.
 */
async function itemsOnce(
  d: HttpDeps,
  app: App,
  body: Record<string, unknown>,
  items: unknown[],
  keys: Array<string | null>,
  policy: IdempotencyPolicy,
): Promise<Reply> {
  // An invalid batch gets triggerBatch's own answer, before anything is claimed.
  if (app.max_event_batch_size !== null && items.length > app.max_event_batch_size) return triggerBatch(d, app, body);
  const checked = items.map((raw) => checkEvent(app, raw, true));
  if (checked.some((c) => !c.ok)) return triggerBatch(d, app, body);
  const withInfo = checked.some((c) => c.ok && c.event.info.length > 0);

  const claimed = await claimInOrder(d, app.id, keys, policy.windowMs);
  const mine = [...claimed.found].flatMap(([key, found]) => (found.kind === 'first' ? [key] : []));
  const releaseMine = () => Promise.all(mine.map((key) => release(d, app.id, 'event', key)));
  if (claimed.failure !== null) {
    await releaseMine();
    return claimed.failure === 'busy' ? EVENT_IN_PROGRESS : unavailable(d, app.id, claimed.failure.error);
  }
  // An item is published when it has no key, or when this call claimed its key (its first item only).
  const seen = new Set<string>();
  const fresh = keys.flatMap((key, i) => {
    if (key === null) return [i];
    if (seen.has(key) || claimed.found.get(key)?.kind !== 'first') return [];
    seen.add(key);
    return [i];
  });

  let reply: Reply;
  if (fresh.length === 0) {
    reply = jsonReply(200, {});
  } else {
    try {
      reply = await triggerBatch(d, app, { ...body, batch: fresh.map((i) => items[i]) });
    } catch (err) {
      await releaseMine();
      throw err;
    }
    if (!succeeded(reply)) {
      await releaseMine();
      return reply;
    }
    await Promise.all(mine.map((key) => store(d, app.id, 'event', key, ITEM_ANSWER, policy.windowMs)));
  }
  if (fresh.length === items.length) return reply;
  // Skipped items answer `{}` in their place; the shape is the one the whole batch would have had.
  const published = (JSON.parse(reply.body) as { batch?: unknown[] }).batch;
  if (!withInfo && !published) return reply;
  const results: unknown[] = items.map(() => ({}));
  fresh.forEach((index, j) => (results[index] = published?.[j] ?? {}));
  return { ...reply, body: JSON.stringify({ batch: results }) };
}

interface Claimed {
  /** Each key asked so far, and what the ledger said of it. */
  found: Map<string, LedgerBegin>;
  /** Why claiming stopped early: a key still in flight at the deadline, or a ledger that could not answer. */
  failure: null | 'busy' | { error: unknown };
}

/** Claims a batch's distinct item keys one at a time in sorted order (see itemsOnce), under one deadline. */
async function claimInOrder(d: HttpDeps, appId: string, keys: Array<string | null>, windowMs: number): Promise<Claimed> {
  const distinct = [...new Set(keys.filter((k): k is string => k !== null))].sort();
  const found = new Map<string, LedgerBegin>();
  const deadline = Date.now() + IDEMPOTENCY_WAIT_MS;
  for (const key of distinct) {
    let outcome: LedgerBegin;
    try {
      outcome = await begin(d, appId, 'event', key, windowMs, deadline);
    } catch (error) {
      return { found, failure: { error } };
    }
    found.set(key, outcome);
    if (outcome.kind === 'busy') return { found, failure: 'busy' };
  }
  return { found, failure: null };
}
