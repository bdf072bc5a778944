// Starts a real Chorus node (dist/cli.js) as a child process on ephemeral ports
// and stops it by pid. Every test talks to nodes started this way.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
export const CLI = join(ROOT, 'dist/cli.js');

export interface TestApp {
  id: string;
  key: string;
  secret: string;
  [k: string]: unknown;
}

export const DEMO_APP: TestApp = {
  id: 'app-id',
  key: 'app-key',
  secret: 'app-secret',
  enable_client_messages: true,
};

export interface StartOptions {
  /** config object written to a temp file (port and metrics port default to 0) */
  config?: Record<string, unknown>;
  /** extra environment variables */
  env?: Record<string, string>;
  /** how long to wait for "chorus listening" */
  timeoutMs?: number;
  /** extra arguments for node itself, before the script (e.g. --expose-gc) */
  nodeArgs?: string[];
}

export interface ChorusNode {
  proc: ChildProcess;
  port: number;
  metricsPort: number | null;
  nodeId: string;
  /** every stdout/stderr line so far */
  logs: string[];
  url: string;
  /** SIGTERM and wait for exit; resolves the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

export function writeConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-test-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/**
 * CHORUS_TEST_WORKERS=N runs every node this helper starts as a box of N workers (unless its
 * config or env names its own `workers`): the single-node suites then check that a box behaves
 * as one node (test/workers-behaviour.test.ts). The box's primary logs "chorus listening" once
 * every worker is ready, with the box's port and its metrics front's port.
 */
const boxWorkers = (): number | null => (process.env.CHORUS_TEST_WORKERS ? Number(process.env.CHORUS_TEST_WORKERS) : null);

/** Starts a node; apps default to the demo app. */
export async function startNode(options: StartOptions = {}): Promise<ChorusNode> {
  const workers = boxWorkers();
  const asBox = workers !== null && !(options.config && 'workers' in options.config) && !options.env?.WORKERS;
  const config = {
    port: 0,
    host: '127.0.0.1',
    metrics: { port: 0, host: '127.0.0.1' },
    app_manager: { array: { apps: [DEMO_APP] } },
    ...options.config,
    ...(asBox ? { workers } : {}),
  };
  const file = writeConfig(config);
  const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'start', '--config', file], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: process.env.CHORUS_TEST_LOG_LEVEL ?? 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  const ready = new Promise<{ port: number; metricsPort: number | null; nodeId: string }>((res, rej) => {
    const timer = setTimeout(
      () => rej(new Error(`node did not start in time:\n${logs.join('\n')}`)),
      options.timeoutMs ?? (asBox ? 20_000 : 10_000),
    );
    const onLine = (line: string) => {
      logs.push(line);
      if (!line.includes('chorus listening')) return;
      try {
        const entry = JSON.parse(line) as { port: number; metrics_port: number | null; node_id: string };
        clearTimeout(timer);
        res({ port: entry.port, metricsPort: entry.metrics_port, nodeId: entry.node_id });
      } catch {
        /* not JSON */
      }
    };
    const buffer = { out: '', err: '' };
    const feed = (which: 'out' | 'err') => (chunk: Buffer) => {
      buffer[which] += chunk.toString();
      let i;
      while ((i = buffer[which].indexOf('\n')) >= 0) {
        onLine(buffer[which].slice(0, i));
        buffer[which] = buffer[which].slice(i + 1);
      }
    };
    proc.stdout.on('data', feed('out'));
    proc.stderr.on('data', feed('err'));
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`node exited with ${code} before listening:\n${logs.join('\n')}`));
    });
  });
  const { port, metricsPort, nodeId } = await ready.catch((err: Error) => {
    // A node that never listened must not outlive the test file (it would keep it running).
    proc.kill('SIGKILL');
    throw err;
  });
  // A node that dies on its own (a crash) says why in the test output: the flake is findable.
  void exited.then((code) => {
    if (code !== null && code !== 0) console.error(`# node ${nodeId} exited with ${code}; last log lines:\n${logs.slice(-20).join('\n')}`);
  });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const timeout = new Promise<null>((r) => setTimeout(() => r(null), 15_000).unref());
    const code = await Promise.race([exited, timeout]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return code;
  };
  return {
    proc,
    port,
    metricsPort,
    nodeId,
    logs,
    url: `http://127.0.0.1:${port}`,
    stop,
    kill: async () => {
      proc.kill('SIGKILL');
      await exited;
    },
    exited,
  };
}

/** Runs the CLI to completion (for --help, --version, bad configs). */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const proc = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c) => (stdout += c));
    proc.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}
