// `chorus start --workers N`: the primary of a box. It holds no client: it checks the port is
// free, runs the box's hub (the cluster's broker when none is configured; always the box's rate
// limits and HTTP fallback session directory) and its metrics port, and
// forks N workers that share the WebSocket/HTTP port (SO_REUSEPORT: the kernel spreads new
// connections). Each worker is a node of one cluster; the primary restarts one that crashes
// and tells the others at once, so its sockets' presence is cleaned (webhooks exactly once,
// by the cluster's own cleanup). SIGTERM drains every worker; SIGHUP reloads apps in all.
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { encodeControl } from '../cluster/horizontal/wire.js';
import { LocalRateLimiter } from '../rate-limit/limiter.js';
import { BoxHub } from '../transports/box-hub.js';
import { startMetricsFront, type MetricsFront } from './metrics-front.js';
import { ENV_COUNT, ENV_HUB, ENV_INDEX, ENV_PORT, type FromWorker } from './worker.js';

/** A worker that crashes sooner than this after its start waits before the next try (a crash loop). */
const QUICK_CRASH_MS = 5000;
const METRICS_ANSWER_MS = 2000;

export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? Math.max(1, availableParallelism()) : setting;
}

interface Seat {
  index: number;
  proc: ChildProcess | null;
  startedAt: number;
  nodeId: string | null;
  metricsPort: number | null;
  everReady: boolean;
}

/** Binds the port once without sharing: a port another process holds stops the start here. */
function claimPort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err) =>
      reject(new Error(`cannot listen on ${host}:${port} (${(err as NodeJS.ErrnoException).code ?? err.message})`)),
    );
    probe.listen({ host, port, exclusive: true }, () => {
      const address = probe.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      probe.close(() => resolve(bound));
    });
  });
}

const isFromWorker = (m: unknown): m is FromWorker => {
  if (typeof m !== 'object' || m === null) return false;
  const f = m as Record<string, unknown>;
  if (f.t === 'ready') return typeof f.nodeId === 'string' && (f.metricsPort === null || Number.isInteger(f.metricsPort));
  return f.t === 'metrics' && Number.isSafeInteger(f.id) && Array.isArray(f.json);
};

export interface PrimaryOptions {
  config: Config;
  configFile: string | undefined;
  cliPath: string;
  log: Logger;
}

export async function runPrimary({ config, configFile, cliPath, log }: PrimaryOptions): Promise<void> {
  const count = workerCount(config.workers);
  const port = await claimPort(config.host, config.port);
  const local = config.adapter.driver === 'local';
  // Always: with a broker adapter the hub still keeps the box's rate limits and fallback sessions.
  const hubPath = join(tmpdir(), `chorus-box-${process.pid}-${randomUUID().slice(0, 8)}.sock`);
  const limiter = new LocalRateLimiter();
  const hub = await BoxHub.listen({
    path: hubPath,
    rate: (key, points, limit, windowMs) => limiter.consume(key, points, limit, windowMs),
    warn: (fields, message) => log.warn(fields, message),
  });
  const clusterTopic = JSON.stringify([config.adapter.redis.prefix, 'cluster']);
  const primaryId = `box-primary-${process.pid}`;
  const seats: Seat[] = Array.from({ length: count }, (_, index) => ({
    index,
    proc: null,
    startedAt: 0,
    nodeId: null,
    metricsPort: null,
    everReady: false,
  }));
  let stopping = false;
  let announced = false;
  let nextScrape = 1;
  const scrapes = new Map<number, (json: unknown[]) => void>();
  let restarts = 0;
  const askMetrics = (seat: Seat) =>
    new Promise<object[] | null>((resolve) => {
      const id = nextScrape++;
      const timer = setTimeout(() => {
        scrapes.delete(id);
        resolve(null);
      }, METRICS_ANSWER_MS);
      scrapes.set(id, (json) => {
        scrapes.delete(id);
        clearTimeout(timer);
        resolve(json as object[]);
      });
      const gone = () => {
        scrapes.delete(id);
        clearTimeout(timer);
        resolve(null);
      };
      if (!seat.proc?.connected) return gone();
      seat.proc.send({ t: 'metrics', id }, (err) => err && gone());
    });

  const front: MetricsFront | null = config.metrics.enabled
    ? await startMetricsFront(
        {
          prefix: config.metrics.prometheus.prefix,
          workers: count,
          restarts: () => restarts,
          metricsOfWorkers: async () => {
            const asked = seats.filter((s) => s.proc?.connected && s.nodeId !== null);
            const answers = await Promise.all(asked.map((s) => askMetrics(s)));
            return answers.flatMap((json, i) => (json ? [{ index: asked[i].index, json }] : []));
          },
          anyWorkerPort: () => seats.find((s) => s.proc?.connected && s.metricsPort !== null)?.metricsPort ?? null,
        },
        config.metrics.host,
        config.metrics.port,
      )
    : null;

  const finish = async (code: number) => {
    await front?.close().catch(() => undefined);
    await hub.close().catch(() => undefined);
    process.exit(code);
  };

  const start = (seat: Seat) => {
    const proc = fork(cliPath, ['start', ...(configFile ? ['--config', configFile] : [])], {
      env: {
        ...process.env,
        [ENV_HUB]: hubPath,
        [ENV_INDEX]: String(seat.index),
        [ENV_PORT]: String(port),
        [ENV_COUNT]: String(count),
      },
      stdio: 'inherit',
    });
    seat.proc = proc;
    seat.startedAt = Date.now();
    seat.nodeId = null;
    seat.metricsPort = null;
    proc.on('message', (m: unknown) => {
      if (!isFromWorker(m)) return;
      if (m.t === 'metrics') return scrapes.get(m.id)?.(m.json);
      seat.nodeId = m.nodeId;
      seat.metricsPort = m.metricsPort;
      seat.everReady = true;
      if (!announced && seats.every((s) => s.everReady)) {
        announced = true;
        log.info(
          {
            host: config.host,
            port,
            metrics_port: front?.port ?? null,
            adapter: config.adapter.driver,
            node_id: primaryId,
            workers: count,
          },
          'chorus listening',
        );
      }
    });
    proc.once('exit', (code, signal) => exited(seat, proc, code, signal));
  };

  const exited = (seat: Seat, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (seat.proc !== proc) return;
    const nodeId = seat.nodeId;
    seat.proc = null;
    seat.nodeId = null;
    seat.metricsPort = null;
    if (stopping) {
      if (seats.every((s) => s.proc === null)) void finish(0);
      return;
    }
    // A worker that never served failed its start (a bad config, the broker refused): every
    // worker would; the box stops with its exit code, as a single node would.
    if (!seat.everReady) {
      log.fatal({ worker: seat.index, code, signal }, 'a worker failed to start; stopping the box');
      stopping = true;
      for (const s of seats) s.proc?.kill('SIGKILL');
      void finish(code ?? 1);
      return;
    }
    log.error({ worker: seat.index, node_id: nodeId, code, signal }, 'worker died; restarting it');
    // The primary saw it die: the other workers drop it now instead of after node_timeout_ms.
    if (local && nodeId) hub.publish(clusterTopic, encodeControl(primaryId, { t: 'dead', id: nodeId }));
    const quick = Date.now() - seat.startedAt < QUICK_CRASH_MS;
    restarts++;
    setTimeout(() => !stopping && start(seat), quick ? 1000 : 50);
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers: count }, 'shutdown requested; draining every worker');
    for (const s of seats) s.proc?.kill('SIGTERM');
    if (seats.every((s) => s.proc === null)) void finish(0);
    const force = setTimeout(
      () => {
        log.warn('grace period over, stopping the workers that remain');
        for (const s of seats) s.proc?.kill('SIGKILL');
        void finish(0);
      },
      config.shutdown_grace_period * 1000 + 1500,
    );
    force.unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    log.info({ workers: count }, 'SIGHUP: reloading apps in every worker');
    for (const s of seats) s.proc?.kill('SIGHUP');
  });
  for (const seat of seats) start(seat);
}
