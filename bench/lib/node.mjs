// Starts real Chorus nodes from dist/cli.js (the same way test/helpers/node.ts
// does, in plain JS) and stops them by pid. BENCH_CPU_PROF=<dir> starts them
// under `node --cpu-prof` so a profile lands in <dir> when they exit.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);
/** BENCH_CLI runs another build (e.g. a before/after comparison compiled with tsc --outDir). */
export const CLI = process.env.BENCH_CLI ? resolve(process.env.BENCH_CLI) : join(ROOT, 'dist/cli.js');

/** Client events unlimited and presence large enough for the benchmarks. */
export const BENCH_APP = {
  id: 'app-id',
  key: 'app-key',
  secret: 'app-secret',
  enable_client_messages: true,
  max_client_events_per_second: 0,
  max_presence_members_per_channel: -1,
  max_connections: 0,
  max_backend_events_per_second: 0,
};

/**
 * @param {{config?: object, env?: object, name?: string, profileDir?: string|null, timeoutMs?: number, server?: 'chorus'|'uws'}} options
 */
export async function startNode(options = {}) {
  const config = {
    port: 0,
    host: '127.0.0.1',
    activity_timeout: 120,
    shutdown_grace_period: 2,
    metrics: { port: 0, host: '127.0.0.1' },
    app_manager: { array: { apps: [BENCH_APP] } },
    ...options.config,
  };
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  const profileDir = options.profileDir ?? process.env.BENCH_CPU_PROF ?? null;
  const nodeArgs = [];
  if (profileDir) {
    mkdirSync(profileDir, { recursive: true });
    nodeArgs.push(
      '--cpu-prof',
      `--cpu-prof-dir=${resolve(profileDir)}`,
      `--cpu-prof-name=${options.name ?? 'node'}-${Date.now()}.cpuprofile`,
    );
  }
  // BENCH_NODE_ARGS: extra node flags for the server only (e.g. --trace-gc)
  if (process.env.BENCH_NODE_ARGS) nodeArgs.push(...process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean));
  // perf can then name JIT-compiled JS functions (perf-<pid>.map in /tmp)
  if (process.env.BENCH_PERF_DIR) nodeArgs.push('--perf-basic-prof');
  // BENCH_SERVER=uws: the bare-uWS baseline instead of Chorus (no config, no metrics)
  // options.server: 'uws' | 'chorus' for this node only (default BENCH_SERVER)
  const server = options.server ?? process.env.BENCH_SERVER ?? 'chorus';
  const entry = server === 'uws' ? [join(ROOT, 'bench/baseline-uws.mjs')] : [CLI, 'start', '--config', file];
  const proc = spawn(process.execPath, [...nodeArgs, ...entry], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = [];
  const exited = new Promise((res) => proc.once('exit', (code, signal) => res(code ?? signal)));
  const ready = new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`node did not start in time:\n${logs.join('\n')}`)), options.timeoutMs ?? 15_000);
    const onLine = (line) => {
      if (process.env.BENCH_NODE_LOG) appendFileSync(process.env.BENCH_NODE_LOG, `${Date.now()} ${line}\n`);
      if (logs.length < 2000) logs.push(line);
      if (!line.includes('chorus listening')) return;
      try {
        const entry = JSON.parse(line);
        clearTimeout(timer);
        res({ port: entry.port, metricsPort: entry.metrics_port, nodeId: entry.node_id });
      } catch {
        /* not JSON */
      }
    };
    const buffers = { out: '', err: '' };
    const feed = (which) => (chunk) => {
      buffers[which] += chunk.toString();
      let i;
      while ((i = buffers[which].indexOf('\n')) >= 0) {
        onLine(buffers[which].slice(0, i));
        buffers[which] = buffers[which].slice(i + 1);
      }
    };
    proc.stdout.on('data', feed('out'));
    proc.stderr.on('data', feed('err'));
    exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`node exited with ${code} before listening:\n${logs.join('\n')}`));
    });
  });
  const { port, metricsPort, nodeId } = await ready;
  return {
    proc,
    pid: proc.pid,
    port,
    metricsPort,
    nodeId,
    logs,
    exited,
    /** SIGTERM, wait (bounded), then SIGKILL. */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timeout = new Promise((r) => setTimeout(() => r('timeout'), 20_000).unref());
      const code = await Promise.race([exited, timeout]);
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
      return code;
    },
  };
}

/** One Prometheus sample summed over label sets matching `labelFilter` (substring), or null. */
export async function metricValue(node, name, labelFilter = '') {
  if (!node.metricsPort) return null;
  const res = await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`);
  const text = await res.text();
  let sum = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (labelFilter && !rest.includes(labelFilter)) continue;
    sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** The pids of a box's workers (`workers: N`), from their "chorus worker listening" lines. */
export function workerPids(node) {
  const pids = node.logs
    .filter((l) => l.includes('chorus worker listening'))
    .map((l) => {
      try {
        return JSON.parse(l).pid;
      } catch {
        return null;
      }
    })
    .filter((p) => Number.isInteger(p));
  return [...new Set(pids)];
}
