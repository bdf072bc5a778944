// Prints the top self-time functions of a V8 .cpuprofile (node --cpu-prof).
// usage: node bench/profile-top.mjs FILE.cpuprofile [N]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { ROOT } from './lib/node.mjs';

export function topSelf(file, n = 15) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((x) => [x.id, x]));
  const self = new Map();
  // time per sample: timeDeltas are per sample, attribute each delta to its sample's node
  const deltas = prof.timeDeltas;
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = deltas[i + 1] ?? 0;
    const node = byId.get(prof.samples[i]);
    const cf = node.callFrame;
    const url = cf.url ? relative(ROOT, cf.url.replace('file://', '')) : '';
    const key = `${cf.functionName || '(anonymous)'} ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  const idle = [...self.entries()].filter(([k]) => k === '(idle)').reduce((a, [, v]) => a + v, 0);
  const busy = total - idle;
  const rows = [...self.entries()]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => ({ fn: k, self_ms: Math.round(v / 1000), pct_of_busy: Math.round((v / busy) * 1000) / 10 }));
  return { busy_ms: Math.round(busy / 1000), idle_ms: Math.round(idle / 1000), rows };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const [file, n] = process.argv.slice(2);
  const r = topSelf(file, Number(n ?? 15));
  console.log(`busy ${r.busy_ms} ms, idle ${r.idle_ms} ms`);
  for (const row of r.rows) console.log(`${String(row.pct_of_busy).padStart(5)}%  ${String(row.self_ms).padStart(6)} ms  ${row.fn}`);
}
