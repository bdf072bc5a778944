// 10. HTTP fallbacks (issue 19): node CPU per delivery for pusher-js's xhr_streaming and
// xhr_polling sessions next to WebSocket connections. For each transport a fresh node
// holds N clients of that kind on one shared channel; E events are published over
// keep-alive HTTP with at most W events' deliveries outstanding; the window ends when
// every delivery arrived (bounded in time). The clients live in this process on raw
// sockets (node:net for WebSockets and streams, node:http keep-alive for polls and sends):
// a delivery is counted by finding the event name in the bytes, nothing is parsed.
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { BENCH_APP, startNode } from '../lib/node.mjs';
import { cpuMeter } from '../lib/proc.mjs';
import { round, scoped, sleep } from '../lib/harness.mjs';
import { openWs, sendText } from '../lib/wsclient.mjs';
import { signedPost } from '../lib/sign.mjs';

const CHANNEL = 'fallback-bench';
const EVENT = 'fb-bench-ev';
const MARK = Buffer.from(EVENT);
const Q = '?protocol=7&client=chorus-bench&version=1.0';
const SUBSCRIBE = JSON.stringify({ event: 'pusher:subscribe', data: { channel: CHANNEL } });

/** Counts MARK in a byte stream cut at arbitrary places (a tail of the last chunk is kept). */
function markCounter(onCount) {
  let tail = Buffer.alloc(0);
  return (chunk) => {
    const buf = tail.length ? Buffer.concat([tail, chunk]) : chunk;
    let n = 0;
    for (let at = buf.indexOf(MARK); at !== -1; at = buf.indexOf(MARK, at + MARK.length)) n++;
    tail = Buffer.from(buf.subarray(Math.max(0, buf.length - MARK.length + 1)));
    if (n) onCount(n);
  };
}

function post(agent, port, path, body) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'Content-Type': 'application/json' } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const base = (i) => `/pusher/app/${BENCH_APP.key}/${i % 1000}/s${i}`;

async function openWsClients(port, n, counted) {
  const subscribed = [];
  const clients = [];
  for (let i = 0; i < n; i++) {
    subscribed.push(
      new Promise((resolve, reject) => {
        let subscribedOnce = false;
        clients.push(
          openWs(
            { port, path: `/app/${BENCH_APP.key}${Q}` },
            {
              open: (c) => sendText(c, SUBSCRIBE),
              text: (_c, chunk, start, end) => {
                const frame = chunk.subarray(start, end);
                if (!subscribedOnce && frame.indexOf('subscription_succeeded') !== -1) {
                  subscribedOnce = true;
                  resolve();
                }
                let k = 0;
                for (let at = frame.indexOf(MARK); at !== -1; at = frame.indexOf(MARK, at + MARK.length)) k++;
                if (k) counted(k);
              },
              close: (_c, why) => reject(new Error(`ws closed: ${why}`)),
            },
          ),
        );
      }),
    );
  }
  await Promise.all(subscribed);
  return () => clients.forEach((c) => c.sock.destroy());
}

async function openStreams(port, n, counted, agent) {
  const sockets = [];
  const ready = [];
  for (let i = 0; i < n; i++) {
    ready.push(
      new Promise((resolve, reject) => {
        const sock = connect({ host: '127.0.0.1', port, noDelay: true });
        sockets.push(sock);
        const count = markCounter(counted);
        let opened = false;
        sock.on('connect', () => sock.write(`POST ${base(i)}/xhr_streaming${Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`));
        sock.on('data', (chunk) => {
          if (!opened && chunk.indexOf('connection_established') !== -1) {
            opened = true;
            post(agent, port, `${base(i)}/xhr_send`, JSON.stringify([SUBSCRIBE])).then(() => resolve(), reject);
          }
          count(chunk);
        });
        sock.on('error', reject);
      }),
    );
  }
  await Promise.all(ready);
  return () => sockets.forEach((s) => s.destroy());
}

async function openPolls(port, n, counted, agent) {
  let stopped = false;
  const ready = [];
  for (let i = 0; i < n; i++) {
    ready.push(
      (async () => {
        await post(agent, port, `${base(i)}/xhr${Q}`, '');
        await post(agent, port, `${base(i)}/xhr_send`, JSON.stringify([SUBSCRIBE]));
        const count = markCounter(counted);
        void (async () => {
          while (!stopped) {
            const r = await post(agent, port, `${base(i)}/xhr${Q}`, '').catch(() => null);
            if (!r || r.status !== 200) break;
            count(r.body);
          }
        })();
      })(),
    );
  }
  await Promise.all(ready);
  await sleep(500); // every session's first poll is held again
  return () => {
    stopped = true;
  };
}

async function measure(cfg, transport, emit) {
  const { clients: n, events, window } = cfg.fallback;
  await scoped(async (res) => {
    const node = await startNode({ name: `fallback-${transport}`, config: { http_fallback: { max_sessions_per_ip: 0 } } });
    res.add(node, () => node.stop());
    const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
    res.add(agent, () => agent.destroy());
    let delivered = 0;
    const counted = (k) => (delivered += k);
    const open = transport === 'ws' ? openWsClients : transport === 'xhr_streaming' ? openStreams : openPolls;
    const close = await open(node.port, n, counted, agent);
    res.add(close, () => close());
    await sleep(500);
    const pubAgent = new Agent({ keepAlive: true, maxSockets: 4 });
    res.add(pubAgent, () => pubAgent.destroy());
    const path = `/apps/${BENCH_APP.id}/events`;
    const meter = cpuMeter([node.pid]);
    const t0 = Date.now();
    const deadline = t0 + cfg.durationMs * 6;
    const inFlight = new Set();
    for (let i = 0; i < events && Date.now() < deadline; i++) {
      // At most `window` events' deliveries outstanding: the node is measured, not its queues.
      while ((i - window) * n > delivered && Date.now() < deadline) await sleep(1);
      while (inFlight.size >= 4) await Promise.race(inFlight);
      const body = JSON.stringify({ name: EVENT, channel: CHANNEL, data: `{"i":${i}}` });
      const p = post(pubAgent, node.port, signedPost(BENCH_APP, path, body), body).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    while (delivered < events * n && Date.now() < deadline) await sleep(5);
    const elapsed = (Date.now() - t0) / 1000;
    const m = meter();
    emit({
      scenario: 'fallback',
      transport,
      clients: n,
      events,
      deliveries: delivered,
      lost: events * n - delivered,
      elapsed_s: round(elapsed, 2),
      deliveries_per_s: round(delivered / elapsed, 0),
      node_cpu_s: round(m.cpu[0], 3),
      node_cpu_us_per_delivery: delivered ? round((m.cpu[0] * 1e6) / delivered, 2) : null,
      machine_busy: round(m.machineBusy),
      note: 'generator in the bench process, competing for the same 2 cores',
    });
  });
}

export async function fallback(cfg, emit) {
  for (const transport of ['ws', 'xhr_streaming', 'xhr_polling']) await measure(cfg, transport, emit);
}
