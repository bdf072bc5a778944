// A worker's side of its box: where it sits (from its primary, through the environment of
// the fork), the config it serves with (the box's shared port, a private metrics port), and
// the IPC it answers: "ready" once listening, its metrics when the primary scrapes. A worker
// whose primary is gone (its IPC channel closed) drains and exits: nothing would restart it,
// and it must not hold the port alone.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { BoxSeat } from '../compose/cluster.js';
import type { RunningServer } from '../server.js';

export const ENV_HUB = 'CHORUS_BOX_HUB';
export const ENV_INDEX = 'CHORUS_WORKER_INDEX';
export const ENV_PORT = 'CHORUS_BOX_PORT';
export const ENV_COUNT = 'CHORUS_BOX_WORKERS';

export interface WorkerPlace extends BoxSeat {
  port: number;
  /** how many workers the box runs */
  count: number;
}

/** worker → primary */
export type FromWorker = { t: 'ready'; nodeId: string; metricsPort: number | null } | { t: 'metrics'; id: number; json: unknown[] };
/** primary → worker */
export type ToWorker = { t: 'metrics'; id: number };

/** This process's place in a box, or null when it is a node on its own (no IPC, or no seat given). */
export function workerPlace(env: NodeJS.ProcessEnv = process.env): WorkerPlace | null {
  if (typeof process.send !== 'function' || env[ENV_INDEX] === undefined) return null;
  const index = Number(env[ENV_INDEX]);
  const port = Number(env[ENV_PORT]);
  const count = Number(env[ENV_COUNT] ?? 1);
  if (!Number.isInteger(index) || index < 0 || !Number.isInteger(port) || port <= 0) return null;
  return { index, port, count: Number.isInteger(count) && count > 0 ? count : 1, hubPath: env[ENV_HUB] ?? '' };
}

/**
 * The box's config as this worker serves it: the shared port and metrics only on loopback for
 * the primary (the caps, max_connections among them, are counted for the box in its hub).
 */
export function workerConfig(config: Config, place: WorkerPlace): Config {
  const processId = config.instance.process_id;
  return {
    ...config,
    port: place.port,
    workers: 1,
    metrics: { ...config.metrics, host: '127.0.0.1', port: 0 },
    instance: { ...config.instance, process_id: processId ? `${processId}-w${place.index}` : undefined },
  };
}

const isToWorker = (m: unknown): m is ToWorker =>
  typeof m === 'object' && m !== null && (m as ToWorker).t === 'metrics' && Number.isSafeInteger((m as ToWorker).id);

export function answerPrimary(server: RunningServer, log: Logger, stop: (why: string) => void): void {
  const send = (m: FromWorker) => {
    if (process.connected) process.send?.(m);
  };
  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return;
    server.metrics.json().then(
      (json) => send({ t: 'metrics', id: m.id, json }),
      (err: Error) => log.error({ err: err.message }, 'metrics for the primary failed'),
    );
  });
  process.once('disconnect', () => stop('primary gone'));
  server.ready.then(
    () => send({ t: 'ready', nodeId: server.core.nodeId, metricsPort: server.metricsPort }),
    () => undefined, // the start-up failure ends this process, and the primary sees it exit
  );
}
