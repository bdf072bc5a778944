// Load-generator processes (bench/worker.mjs) forked with an IPC channel, and
// the credit loop that keeps the publisher at most `window` events ahead of
// what the subscribers have received (so the node never drops for backpressure).
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { newHist, mergeWire } from './hist.mjs';

const WORKER = fileURLToPath(new URL('../worker.mjs', import.meta.url));

export function spawnWorker(name) {
  const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env } });
  let nextId = 1;
  const waiting = new Map();
  const w = {
    name,
    child,
    pid: child.pid,
    received: 0,
    onProgress: null,
    call(cmd, args = {}, timeoutMs = 180_000) {
      const id = nextId++;
      return new Promise((res, rej) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          rej(new Error(`${name}: ${cmd} timed out`));
        }, timeoutMs);
        waiting.set(id, { res, rej, timer });
        child.send({ id, cmd, ...args });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      try {
        child.disconnect();
      } catch {
        /* already gone */
      }
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  child.on('message', (m) => {
    if (m.type === 'progress') {
      w.received = m.received;
      w.onProgress?.(w);
      return;
    }
    const p = waiting.get(m.id);
    if (!p) return;
    waiting.delete(m.id);
    clearTimeout(p.timer);
    if (m.error) p.rej(new Error(`${name}: ${m.error}`));
    else p.res(m.result);
  });
  child.on('exit', (code, signal) => {
    for (const p of waiting.values()) {
      clearTimeout(p.timer);
      p.rej(new Error(`${name} exited (${code ?? signal})`));
    }
    waiting.clear();
  });
  return w;
}

export const spawnWorkers = (n, prefix) => Array.from({ length: n }, (_, i) => spawnWorker(`${prefix}${i}`));

export const stopAll = (workers) => Promise.all(workers.map((w) => w.stop()));

/** Splits `total` into `parts` near-equal integers. */
export function split(total, parts) {
  const base = Math.floor(total / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < total % parts ? 1 : 0));
}

/**
 * Opens `total` subscribed sockets spread over `workers`.
 * `channel`: {kind, shared, name} or {kind, prefix}.
 */
export async function openSockets(workers, port, total, channel, extra = {}) {
  const shares = split(total, workers.length);
  let base = 0;
  const t0 = Date.now();
  const results = await Promise.all(
    workers.map((w, i) => {
      const r = w.call('open', { port, count: shares[i], base, channel, ...extra }, 300_000);
      base += shares[i];
      return r;
    }),
  );
  const ok = results.reduce((n, r) => n + r.ok, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const failures = {};
  for (const r of results) for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
  return { ok, failed, failures, ms: Date.now() - t0 };
}

/** Merged stats of receiving workers: total received, latency histogram, busiest generator. */
export async function collect(workers) {
  const all = await Promise.all(workers.map((w) => w.call('stats')));
  const hist = newHist();
  let received = 0;
  let errors = 0;
  let lastError = '';
  for (const s of all) {
    received += s.received;
    errors += s.errorsSeen;
    if (s.lastError) lastError = s.lastError;
    mergeWire(hist, s.hist);
  }
  return {
    received,
    hist,
    errors,
    lastError,
    cpuFractions: all.map((s) => Math.round(s.cpuFraction * 100) / 100),
    open: all.reduce((n, s) => n + s.open, 0),
  };
}

/**
 * Feeds credit to `producers` from receivers' progress: a producer may have sent
 * (completed deliveries / deliveriesPerEvent + window) events in total.
 * Several producers split the credit evenly.
 */
export function creditLoop(receivers, producers, deliveriesPerEvent, window) {
  let last = -1;
  const update = () => {
    const total = receivers.reduce((n, w) => n + w.received, 0);
    const completed = Math.floor(total / deliveriesPerEvent);
    const credit = Math.floor((completed + window) / producers.length);
    if (credit === last) return;
    last = credit;
    for (const p of producers) p.child.send({ id: 0, cmd: 'credit', n: credit });
  };
  for (const w of receivers) w.onProgress = update;
  return {
    start: async (everyMs = 10) => {
      for (const w of receivers) w.received = 0;
      await Promise.all(receivers.map((w) => w.call('report', { everyMs })));
      update();
    },
    stop: async () => {
      for (const w of receivers) w.onProgress = null;
      await Promise.all(receivers.map((w) => w.call('report', { everyMs: 0 })));
    },
  };
}
