// Issue 13 item 11: memory of 5000 sockets that each join their own channel, local adapter vs
// redis, during and 5 s / 10 s after they close (heap after a full GC). Needs dist/ and the test
// build (npm run build && npx tsc -p tsconfig.test.json); run: node bench/mem-per-channel.mjs
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';
const { startNode } = await import(new URL('../.build-test/test/helpers/node.js', import.meta.url).href);
const { startRedis } = await import(new URL('../.build-test/test/helpers/brokers.js', import.meta.url).href);
const N = 5000;
const rss = (pid) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024);
const heap = async (n) => {
  const m = (await (await fetch(`http://127.0.0.1:${n.metricsPort}/debug/heap`)).json()).memory;
  return { heapMiB: +(m.heapUsed / 1048576).toFixed(1), extMiB: +((m.external + m.arrayBuffers) / 1048576).toFixed(1) };
};
async function run(label, env) {
  const node = await startNode({
    nodeArgs: ['--expose-gc'],
    env: { ...env, CHORUS_DEBUG_GC: '1', CHORUS_TEST_LOG_LEVEL: 'warn' },
    config: { max_connections_per_ip: 0 },
  });
  await new Promise((r) => setTimeout(r, 500));
  const base = { rss: rss(node.proc.pid), heap: await heap(node) };
  const socks = [];
  for (let b = 0; b < N / 250; b++) {
    await Promise.all(
      Array.from(
        { length: 250 },
        (_, i) =>
          new Promise((res, rej) => {
            const ws = new WebSocket(`ws://127.0.0.1:${node.port}/app/app-key?protocol=7`);
            ws.on('message', (m) => {
              const f = JSON.parse(m);
              if (f.event === 'pusher:connection_established')
                ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: `own-${b}-${i}` } }));
              if (f.event === 'pusher_internal:subscription_succeeded') res();
            });
            ws.on('error', rej);
            socks.push(ws);
          }),
      ),
    );
  }
  await new Promise((r) => setTimeout(r, 2500));
  const during = { rss: rss(node.proc.pid), heap: await heap(node) };
  for (const s of socks) s.terminate();
  await new Promise((r) => setTimeout(r, 5000));
  const after5 = { rss: rss(node.proc.pid), heap: await heap(node) };
  await new Promise((r) => setTimeout(r, 5000));
  const after10 = { rss: rss(node.proc.pid), heap: await heap(node) };
  console.log(label, JSON.stringify({ base, during, after5, after10 }));
  await node.stop();
}
await run('local', {});
const redis = await startRedis();
await run('redis', { ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(redis.port) });
await redis.stop();
