// Optional `perf record` of a node during a measured window (BENCH_PERF_DIR set by
// `--profile`): the JS profile (--cpu-prof) cannot see uWS's C++ or the kernel,
// where most fan-out time goes. Summaries: share per binary (dso) and top symbols.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export function perfAvailable() {
  return spawnSync('perf', ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Starts sampling `pid` for `seconds`; resolves the summary when done (null without perf). */
export function perfWindow(pid, name, seconds) {
  const dir = process.env.BENCH_PERF_DIR;
  if (!dir || !perfAvailable()) return Promise.resolve(null);
  const file = join(dir, `${name}.perf.data`);
  const proc = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '999', '-p', String(pid), '-o', file, '--', 'sleep', String(seconds)], {
    stdio: 'ignore',
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), (seconds + 30) * 1000);
    proc.on('exit', () => {
      clearTimeout(timer);
      resolve(summarize(file));
    });
  });
}

function report(file, sort, limit) {
  const r = spawnSync('perf', ['report', '-i', file, '--stdio', '--no-children', '--sort', sort, '--percent-limit', String(limit)], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
  });
  const rows = [];
  for (const line of (r.stdout ?? '').split('\n')) {
    const m = /^\s+([\d.]+)%\s+(.*)$/.exec(line);
    if (m) rows.push({ pct: Number(m[1]), what: m[2].replace(/\s+/g, ' ').trim().slice(0, 140) });
  }
  return rows;
}

export function summarize(file) {
  return { file, by_binary: report(file, 'dso', 0.5).slice(0, 10), top_symbols: report(file, 'dso,sym', 0.5).slice(0, 25) };
}
