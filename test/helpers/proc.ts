// What a node process costs the machine, read from /proc (Linux): open file
// descriptors and resident memory.
import { readFileSync, readdirSync } from 'node:fs';

/** Open file descriptors of a process (sockets, pipes, files). */
export const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** Resident set size in MiB. */
export function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.replace(/\D+/g, '')) / 1024;
}
