// Reads what the kernel knows about a process and the machine: CPU ticks,
// resident memory, I/O bytes. Linux /proc only.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let tck = 100;
try {
  tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100 */
}
export const CLK_TCK = tck;

/** utime+stime of every thread of `pid`, in seconds. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

/** VmRSS of `pid` in bytes. */
export function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** rchar/wchar of `pid` (every read/write syscall, sockets included). */
export function ioBytes(pid) {
  const out = {};
  for (const line of readFileSync(`/proc/${pid}/io`, 'utf8').split('\n')) {
    const [k, v] = line.split(':');
    if (k) out[k.trim()] = Number(v);
  }
  return { rchar: out.rchar, wchar: out.wchar };
}

/** Machine-wide busy and total jiffies (first line of /proc/stat). */
export function machineTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] || 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

export const loadavg1 = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

/** A meter over a window: node CPU, machine busy fraction. */
export function cpuMeter(pids) {
  const t0 = process.hrtime.bigint();
  const c0 = pids.map(cpuSeconds);
  const m0 = machineTicks();
  return () => {
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = pids.map((p, i) => cpuSeconds(p) - c0[i]);
    const m1 = machineTicks();
    const machineBusy = (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total);
    return { wall, cpu, machineBusy };
  };
}

export function machineInfo() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown';
  const mhz = /cpu MHz\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown';
  const nproc = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  let kernel = '';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    /* ignore */
  }
  return { nproc, model, mhz, memGb: Math.round(memKb / 1024 / 1024), kernel, node: process.version };
}
