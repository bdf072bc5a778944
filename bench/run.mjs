#!/usr/bin/env node
// npm run bench [-- --only conn,fanout --small --duration 10 --profile]
// Runs the scenarios of issue 9 against real nodes (dist/cli.js) on loopback and
// prints one JSON line per result; lines are also appended to bench/results/.
import { mkdirSync, appendFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { conn } from './scenarios/conn.mjs';
import { fanout } from './scenarios/fanout.mjs';
import { manychannels } from './scenarios/manychannels.mjs';
import { http } from './scenarios/http.mjs';
import { clientevents } from './scenarios/clientevents.mjs';
import { crossnode } from './scenarios/crossnode.mjs';
import { churn } from './scenarios/churn.mjs';
import { ratelimit } from './scenarios/ratelimit.mjs';
import { history } from './scenarios/history.mjs';
import { fallback } from './scenarios/fallback.mjs';
import { consoleScenario } from './scenarios/console.mjs';
import { workers } from './scenarios/workers.mjs';
import { scale } from './scenarios/scale.mjs';
import { active } from './lib/harness.mjs';
import { CLI, ROOT } from './lib/node.mjs';
import { loadavg1, machineInfo } from './lib/proc.mjs';
import { topSelf } from './profile-top.mjs';

const SCENARIOS = {
  conn,
  fanout,
  many: manychannels,
  http,
  'client-events': clientevents,
  'cross-node': crossnode,
  churn,
  ratelimit,
  history,
  fallback,
  console: consoleScenario,
  workers,
  scale,
};

function parseArgs(argv) {
  const a = { only: null, small: process.env.BENCH_SMALL === '1', duration: null, profile: false, brokers: null, server: 'chorus' };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    const val = () => (x.includes('=') ? x.slice(x.indexOf('=') + 1) : argv[++i]);
    if (x.startsWith('--only')) a.only = val().split(',');
    else if (x === '--small') a.small = true;
    else if (x.startsWith('--duration')) a.duration = Number(val());
    else if (x === '--profile') a.profile = true;
    else if (x.startsWith('--brokers')) a.brokers = val().split(',');
    else if (x.startsWith('--server')) a.server = val();
    else if (x === '--help' || x === '-h') {
      console.log(
        `usage: npm run bench -- [--only ${Object.keys(SCENARIOS).join(',')}] [--small] [--duration S] [--brokers redis,redis-cluster,nats] [--profile] [--server chorus|uws]`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${x}`);
  }
  return a;
}

function config(args) {
  const small = args.small;
  const durationMs = (args.duration ?? (small ? 2 : 10)) * 1000;
  return {
    durationMs,
    receivers: 2,
    fixedDeliveriesPerS: small ? 3000 : 30_000,
    conn: {
      // BENCH_CONN_SIZES=19500 BENCH_CONN_MODES=own: one configuration, for alternating before/after runs
      sizes: process.env.BENCH_CONN_SIZES ? process.env.BENCH_CONN_SIZES.split(',').map(Number) : small ? [200, 600] : [5000, 19_500],
      channelModes: process.env.BENCH_CONN_MODES ? process.env.BENCH_CONN_MODES.split(',') : ['own', 'shared'],
      workers: 2,
      concurrencyPerWorker: 250,
      idleMs: small ? 1000 : 5000,
    },
    fanout: {
      // BENCH_FANOUT_SUBS=10000: one size, for alternating before/after runs
      subs: process.env.BENCH_FANOUT_SUBS ? process.env.BENCH_FANOUT_SUBS.split(',').map(Number) : small ? [100, 300] : [1000, 10_000],
      // events in flight: ~40k deliveries (the credit loop reacts in ~10-20 ms), a few KB queued per socket
      window: (subs) => Math.max(4, Math.min(1000, Math.ceil(40_000 / subs))),
    },
    many: { sockets: small ? 300 : 10_000, connections: 8 },
    http: { connections: 8, fixedRate: small ? 2000 : 15_000 },
    clientEvents: { sockets: small ? 100 : 1000, window: (n) => Math.max(4, Math.ceil(40_000 / (n - 1))) },
    cross: { subs: small ? 100 : 1000, brokers: args.brokers ?? ['redis', 'redis-cluster', 'nats'] },
    history: {
      adapters: ['local', 'redis'],
      maxMessages: 1000,
      maxReplay: 1000,
      connections: 8,
      rounds: small ? 1 : 2,
      fixedRate: small ? 500 : 2000,
      pad: 80,
      payloadBytes: 100,
      replay: { events: 1000, repeats: small ? 3 : 10, concurrent: small ? 5 : 20, concurrentRepeats: small ? 1 : 3 },
      memory: { channels: 10, events: 1000 },
      baseline: true,
    },
    console: { subs: small ? 300 : 1000, viewers: 2 },
    scale: {
      processes: small ? 2 : 6,
      connections: small ? 2000 : 117_000,
      generators: small ? 2 : 6,
      concurrencyPerGenerator: small ? 50 : 150,
      connectTimeoutMs: 600_000,
      broadcastS: small ? 5 : 30,
      modes: (process.env.BENCH_SCALE_MODES ?? 'box,redis').split(','),
    },
    workers: {
      counts: (process.env.BENCH_WORKER_COUNTS ?? '1,2').split(',').map(Number),
      subs: small ? 300 : 10_000,
      clientSockets: small ? 100 : 1000,
    },
    fallback: { clients: small ? 200 : 1000, events: small ? 100 : 300, window: 20 },
    churn: { concurrencyPerWorker: small ? 10 : 50, presence: { observers: small ? 20 : 100, churners: small ? 10 : 20 } },
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build first`);
  const cfg = config(args);
  if (args.server === 'uws') process.env.BENCH_SERVER = 'uws';
  else if (args.server !== 'chorus') throw new Error(`unknown server ${args.server}`);
  // the baseline has no cluster and no presence bookkeeping
  const defaults = args.server === 'uws' ? ['conn', 'fanout', 'many', 'http', 'client-events'] : Object.keys(SCENARIOS);
  const names = args.only ?? (args.profile ? ['fanout', 'http'] : defaults);
  for (const n of names) if (!SCENARIOS[n]) throw new Error(`unknown scenario ${n}`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = join(ROOT, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const outFile = join(
    outDir,
    `${stamp}${args.server === 'uws' ? '-uws' : ''}${args.small ? '-small' : ''}${args.profile ? '-profile' : ''}.jsonl`,
  );
  // BENCH_COMMIT: what BENCH_CLI was built from, when that is not the working tree
  let commit = process.env.BENCH_COMMIT ?? 'unknown';
  if (!process.env.BENCH_COMMIT)
    try {
      commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
      const dirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim();
      if (dirty) commit += '+dirty-src';
    } catch {
      /* not a checkout */
    }
  const emit = (obj) => {
    const line = JSON.stringify(obj);
    console.log(line);
    appendFileSync(outFile, line + '\n');
  };
  const profileDir = args.profile ? join(ROOT, 'bench/profiles', stamp) : null;
  if (profileDir) {
    process.env.BENCH_CPU_PROF = profileDir;
    process.env.BENCH_PERF_DIR = profileDir;
  }
  emit({
    scenario: 'machine',
    server: args.server === 'uws' ? 'bare uWS baseline (bench/baseline-uws.mjs)' : 'chorus',
    ...machineInfo(),
    commit,
    load1_at_start: loadavg1(),
    small: args.small,
    profile: args.profile,
    duration_s: cfg.durationMs / 1000,
  });
  let failed = 0;
  for (const name of names) {
    const t0 = Date.now();
    try {
      await SCENARIOS[name](cfg, emit);
    } catch (err) {
      failed++;
      emit({ scenario: name, error: String(err?.stack ?? err).slice(0, 2000) });
    }
    process.stderr.write(`# ${name} took ${((Date.now() - t0) / 1000).toFixed(1)} s (load ${loadavg1()})\n`);
  }
  if (profileDir && existsSync(profileDir)) {
    for (const f of readdirSync(profileDir)
      .filter((x) => x.endsWith('.cpuprofile'))
      .sort()) {
      emit({ scenario: 'profile', file: join('bench/profiles', stamp, f), ...topSelf(join(profileDir, f), 15) });
    }
  }
  process.stderr.write(`# results in ${outFile}\n`);
  process.exitCode = failed ? 1 : 0;
}

const interrupt = async () => {
  for (const r of active) await r.stopAll();
  process.exit(130);
};
process.once('SIGINT', interrupt);
process.once('SIGTERM', interrupt);

main().catch(async (err) => {
  console.error(err);
  for (const r of active) await r.stopAll();
  process.exit(1);
});
