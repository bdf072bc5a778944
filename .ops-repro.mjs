import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';
const start = (port) => new Promise((res, rej) => {
  writeFileSync('/tmp/ops-r.json', JSON.stringify({ port, host: '127.0.0.1', metrics: { enabled: false } }));
  const p = spawn(process.execPath, ['dist/cli.js', 'start', '--config', '/tmp/ops-r.json']);
  let out = '';
  p.stdout.on('data', (d) => { out += d; const m = /"port":(\d+)/.exec(out); if (out.includes('chorus listening')) res({ p, port: Number(m[1]) }); });
  p.stderr.on('data', (d) => (out += d));
  p.on('exit', (c) => rej(new Error('exit ' + c + ' ' + out)));
});
const a = await start(0);
const ws = new WebSocket(`ws://127.0.0.1:${a.port}/app/app-key?protocol=7`);
await new Promise((r) => ws.once('message', r));
const closed = new Promise((r) => ws.once('close', (c) => r(c)));
a.p.kill('SIGTERM');
console.log('close code', await closed);
await new Promise((r) => a.p.once('exit', r));
try { const b = await start(a.port); console.log('restarted on same port OK'); b.p.kill(); } catch (e) { console.log('RESTART FAILED', e.message.slice(0, 300)); }
