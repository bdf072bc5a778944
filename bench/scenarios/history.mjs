// 9. Channel history (issue 15, docs/RECOVERY.md), on the local adapter and on Redis
// (one node, one redis-server):
//  - publish: signed keep-alive HTTP publishes to a channel that keeps history and to one
//    that does not, in the same node and app (prefix `hist-` is covered, `plain-` is not),
//    each channel with one plain and one opted-in subscriber; max rate (node CPU per 1k
//    requests) in alternating rounds, then a fixed rate (latency). Bare uWS as the floor.
//  - replay: N events stored, then a client resumes from serial 0 of the channel's epoch:
//    time from its pusher:subscribe to pusher_internal:chorus_position, counting the
//    pusher_internal:chorus_event frames; one client at a time, then C at once.
//  - memory (Redis): INFO used_memory before/after K channels x M events, MEMORY USAGE of
//    one stream key and its meta hash, once filled to max_messages and once trimmed.
import { Redis } from 'ioredis';
import { BENCH_APP, startNode } from '../lib/node.mjs';
import { startRedis } from '../lib/brokers.mjs';
import { openSockets, spawnWorkers, stopAll } from '../lib/pool.mjs';
import { cpuMeter, cpuSeconds } from '../lib/proc.mjs';
import { round, saturation, scoped, settle, sleep } from '../lib/harness.mjs';
import { mergeWire, newHist, summary } from '../lib/hist.mjs';
import { openWs, sendText } from '../lib/wsclient.mjs';
import { httpConn, request } from '../lib/httpclient.mjs';
import { signedPost } from '../lib/sign.mjs';

const WS_PATH = `/app/${BENCH_APP.key}?protocol=7&client=chorus-bench&version=1.0`;
const HIST_CH = 'hist-bench';
const PLAIN_CH = 'plain-bench';

const historyApp = (h) => ({
  ...BENCH_APP,
  history: {
    enabled: true,
    channels: ['hist-'],
    max_messages: h.maxMessages,
    ttl_seconds: 3600,
    max_replay_messages: h.maxReplay,
  },
});

const nowUs = () => {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
};

const histOf = (wire) => {
  const h = newHist();
  if (wire) mergeWire(h, wire);
  return summary(h);
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
};

/**
 * `count` signed publishes from this process over `connections` keep-alive connections,
 * channels taken in turn; resolves when all are answered (bounded by `timeoutMs`).
 */
export function publishCount(port, channels, count, data, { connections = 8, timeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const path = `/apps/${BENCH_APP.id}/events`;
    let sent = 0;
    let answered = 0;
    let bad = 0;
    let badSample = '';
    const pool = [];
    const timer = setTimeout(() => finish(new Error(`publishCount: ${answered}/${count} answered in ${timeoutMs} ms`)), timeoutMs);
    let done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const c of pool) c.sock.destroy();
      if (err) reject(err);
      else resolve({ ok: answered - bad, bad, badSample });
    };
    const fire = (c) => {
      if (sent >= count || c.busy || c.closed) return;
      const ch = channels[sent % channels.length];
      sent++;
      const body = JSON.stringify({ name: 'bench', channel: ch, data });
      const target = signedPost(BENCH_APP, path, body);
      request(
        c,
        `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
        body,
      );
    };
    const onResponse = (c, status, buf, s, e) => {
      answered++;
      if (status !== 200) {
        bad++;
        if (!badSample) badSample = `${status} ${buf.toString('utf8', s, Math.min(e, s + 200))}`;
      }
      if (answered === count) finish();
      else fire(c);
    };
    for (let i = 0; i < Math.min(connections, count); i++)
      pool.push(httpConn(port, onResponse, () => finish(new Error('connection closed'))));
    Promise.all(pool.map((c) => c.ready)).then(
      () => pool.forEach(fire),
      (err) => finish(err),
    );
  });
}

const has = (buf, needle, start, end) => {
  const at = buf.indexOf(needle, start);
  return at >= 0 && at < end;
};
const ACK = Buffer.from('"pusher_internal:chorus_recovery"');
const EVENT = Buffer.from('"pusher_internal:chorus_event"');
const POSITION = Buffer.from('"pusher_internal:chorus_position"');
const FAILED = Buffer.from('"pusher_internal:chorus_recovery_failed"');
const ERROR = Buffer.from('"pusher:error"');
const ESTABLISHED = Buffer.from('connection_established');
const PING = Buffer.from('pusher:ping');

/**
 * A raw client that opts in with `positions` right after connection_established.
 * `ready` resolves on the server's acknowledgement; `subscribe(channel)` then resolves
 * with the replay: microseconds from the subscribe's write to the first chorus_event
 * and to chorus_position, the chorus_event frames counted, the position frame's data.
 */
export function recoveryClient(port, positions, timeoutMs = 30_000) {
  let onAck;
  let onFail;
  const ready = new Promise((res, rej) => {
    onAck = res;
    onFail = rej;
  });
  const st = { events: 0, firstEventUs: null, firstEventFrame: null, t0: 0, wait: null, acked: false, lastFrames: [] };
  const handlers = {
    text: (conn, buf, start, end) => {
      const t = nowUs();
      if (has(buf, EVENT, start, end)) {
        st.events++;
        if (st.firstEventUs === null) {
          st.firstEventUs = t;
          st.firstEventFrame = buf.toString('utf8', start, end);
        }
        return;
      }
      const text = buf.toString('utf8', start, end);
      if (st.lastFrames.length < 20) st.lastFrames.push(text.slice(0, 200));
      if (!st.acked && has(buf, ESTABLISHED, start, end)) {
        sendText(conn, JSON.stringify({ event: 'chorus:recovery', data: { v: 1, positions } }));
      } else if (has(buf, ACK, start, end)) {
        st.acked = true;
        onAck();
      } else if (has(buf, POSITION, start, end)) {
        st.wait?.res({
          ok: true,
          to_position_us: t - st.t0,
          to_first_event_us: st.firstEventUs === null ? null : st.firstEventUs - st.t0,
          events: st.events,
          position: JSON.parse(text).data,
          first_event: st.firstEventFrame ? JSON.parse(st.firstEventFrame).data : null,
        });
      } else if (has(buf, FAILED, start, end) || has(buf, ERROR, start, end)) {
        const err = new Error(`recovery refused: ${text.slice(0, 300)}`);
        if (!st.acked) onFail(err);
        st.wait?.rej(err);
      } else if (has(buf, PING, start, end)) sendText(conn, '{"event":"pusher:pong","data":{}}');
    },
    close: (_c, why) => {
      const err = new Error(`closed: ${why}; frames: ${st.lastFrames.join(' | ')}`);
      if (!st.acked) onFail(err);
      st.wait?.rej(err);
    },
  };
  const conn = openWs({ port, path: WS_PATH }, handlers);
  const t = setTimeout(() => onFail(new Error('no chorus_recovery acknowledgement in time')), timeoutMs);
  ready.finally(() => clearTimeout(t)).catch(() => {});
  return {
    conn,
    ready,
    st,
    subscribe(channel) {
      return new Promise((res, rej) => {
        const timer = setTimeout(
          () => rej(new Error(`no chorus_position on ${channel} in ${timeoutMs} ms (${st.events} events)`)),
          timeoutMs,
        );
        st.wait = {
          res: (v) => {
            clearTimeout(timer);
            st.wait = null;
            res(v);
          },
          rej: (e) => {
            clearTimeout(timer);
            st.wait = null;
            rej(e);
          },
        };
        st.events = 0;
        st.firstEventUs = null;
        st.t0 = nowUs();
        sendText(conn, JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
      });
    },
    close() {
      conn.sock.destroy();
    },
  };
}

/** One measured publishing window: node (and broker) CPU per 1k requests, response and delivery latency. */
async function publishWindow(o) {
  await Promise.all(o.receivers.map((w) => w.call('reset')));
  const pids = [o.node.pid, ...(o.brokerPids ?? [])];
  const meter = cpuMeter(pids);
  const pub = await o.publisher.call(
    'publish',
    {
      port: o.node.port,
      mode: o.mode,
      rate: o.rate,
      durationMs: o.durationMs,
      channel: { name: o.channel },
      connections: o.connections,
      pad: o.pad,
    },
    o.durationMs + 60_000,
  );
  const expected = pub.ok * o.deliveriesPerEvent;
  const stats = await settle(o.receivers, expected, 5000);
  const m = meter();
  const perK = (cpu) => round((cpu * 1000) / (pub.ok / 1000), 2);
  return {
    requests: pub.ok,
    errors: pub.bad,
    error_sample: pub.badSample || undefined,
    requests_per_s: round(pub.ok / pub.elapsed, 0),
    node_cpu_s: round(m.cpu[0], 3),
    node_cpu_fraction: round(m.cpu[0] / m.wall),
    node_cpu_ms_per_1k_requests: perK(m.cpu[0]),
    ...(o.idleFraction !== undefined
      ? { node_cpu_ms_per_1k_requests_net: perK(Math.max(0, m.cpu[0] - o.idleFraction * m.wall)), node_idle_cpu_fraction: o.idleFraction }
      : {}),
    ...(o.brokerPids?.length ? { broker_cpu_s: round(m.cpu[1], 3), broker_cpu_ms_per_1k_requests: perK(m.cpu[1]) } : {}),
    response_latency: histOf(pub.responseHist),
    delivery_latency: summary(stats.hist),
    deliveries: stats.received,
    expected_deliveries: expected,
    lost: expected - stats.received,
    client_errors: stats.errors || undefined,
    client_error_sample: stats.lastError || undefined,
    window_s: round(m.wall),
    ...saturation([...stats.cpuFractions, pub.cpuFraction], m.machineBusy),
    generator_cpu: { receivers: stats.cpuFractions, publisher: round(pub.cpuFraction) },
  };
}

/** The publish part against one node: `channels` [{name, history}], alternating rounds at max rate, then a fixed rate. */
async function publishCost(cfg, emit, res, { node, adapter, brokerPids, channels }) {
  const h = cfg.history;
  const receivers = spawnWorkers(2, `hist-${adapter}-recv`);
  const publisher = spawnWorkers(1, `hist-${adapter}-pub`)[0];
  res.add(receivers, () => stopAll([...receivers, publisher]));
  // per channel: one plain subscriber (worker 0) and one opted-in one (worker 1)
  for (const ch of channels) {
    for (const [w, optIn] of [
      [receivers[0], false],
      [receivers[1], true],
    ]) {
      const opened = await openSockets([w], node.port, 1, { kind: 'public', shared: true, name: ch.name, optIn });
      if (opened.failed) throw new Error(`history: subscriber on ${ch.name} failed: ${JSON.stringify(opened.failures)}`);
    }
  }
  await sleep(300);
  const idle = cpuMeter([node.pid]);
  await sleep(2000);
  const im = idle();
  const idleFraction = round(im.cpu[0] / im.wall, 4);
  const common = { node, brokerPids, receivers, publisher, connections: h.connections, pad: h.pad, deliveriesPerEvent: 2, idleFraction };
  const base = {
    scenario: 'history',
    part: 'publish',
    adapter,
    subscribers: '1 plain + 1 opted-in',
    connections: h.connections,
    data_bytes: 24 + h.pad,
  };
  for (const ch of channels) await publishWindow({ ...common, channel: ch.name, mode: 'max', durationMs: Math.min(2000, cfg.durationMs) });
  for (let r = 0; r < h.rounds; r++) {
    const order = r % 2 === 0 ? channels : [...channels].reverse();
    for (const ch of order) {
      const w = await publishWindow({ ...common, channel: ch.name, mode: 'max', durationMs: cfg.durationMs });
      emit({ ...base, history: ch.history, channel: ch.name, load: 'max', round: r + 1, ...w });
    }
  }
  for (const ch of channels) {
    const w = await publishWindow({ ...common, channel: ch.name, mode: 'rate', rate: h.fixedRate, durationMs: cfg.durationMs });
    emit({ ...base, history: ch.history, channel: ch.name, load: `fixed ${h.fixedRate} req/s`, ...w });
  }
}

/** The replay part: N events on a fresh history channel, then resumes from its start. */
async function replayRate(cfg, emit, { node, adapter }) {
  const h = cfg.history;
  const channel = `hist-replay-${adapter}`;
  const n = h.replay.events;
  const data = 'r'.repeat(h.payloadBytes);
  // the channel's position before any event (serial 0; the epoch once the first event exists)
  const probe = recoveryClient(node.port, {});
  await probe.ready;
  const before = await probe.subscribe(channel);
  const pub = await publishCount(node.port, [channel], n, data);
  if (pub.bad) throw new Error(`replay: ${pub.bad} publishes refused: ${pub.badSample}`);
  for (let i = 0; i < 100 && probe.st.events < n; i++) await sleep(50);
  if (probe.st.events < n) throw new Error(`replay: the probe saw ${probe.st.events} of ${n} live events`);
  const epoch = JSON.parse(probe.st.firstEventFrame).data.epoch;
  probe.close();
  const position = { [channel]: { serial: 0, epoch } };
  const check = (r) => {
    if (r.events !== n || r.position.replayed !== n)
      throw new Error(`replay: ${r.events} events, replayed ${r.position.replayed}, expected ${n}`);
  };
  // warm-up resume, not measured
  {
    const c = recoveryClient(node.port, position);
    await c.ready;
    check(await c.subscribe(channel));
    c.close();
  }
  // one client at a time
  const single = [];
  let cpu = 0;
  for (let i = 0; i < h.replay.repeats; i++) {
    const c = recoveryClient(node.port, position);
    await c.ready;
    const c0 = cpuSeconds(node.pid);
    const r = await c.subscribe(channel);
    cpu += cpuSeconds(node.pid) - c0;
    check(r);
    single.push(r);
    c.close();
    await sleep(50);
  }
  const rates = single.map((r) => n / (r.to_position_us / 1e6));
  emit({
    scenario: 'history',
    part: 'replay',
    adapter,
    clients: 1,
    events_per_resume: n,
    data_bytes: h.payloadBytes,
    position_before_publishing: before.position,
    resumes: single.length,
    events_per_s_median: round(median(rates), 0),
    events_per_s_min: round(Math.min(...rates), 0),
    events_per_s_max: round(Math.max(...rates), 0),
    ms_to_position_median: round(median(single.map((r) => r.to_position_us)) / 1000, 3),
    ms_to_first_event_median: round(median(single.map((r) => r.to_first_event_us)) / 1000, 3),
    node_cpu_ms_per_1k_replayed: round((cpu * 1000) / ((n * single.length) / 1000), 2),
    first_event: single[0].first_event ? { serial: single[0].first_event.serial, epoch: single[0].first_event.epoch } : null,
    position: single[0].position,
  });
  // C clients resuming at once (a reconnect wave)
  const C = h.replay.concurrent;
  const waves = [];
  for (let k = 0; k < h.replay.concurrentRepeats; k++) {
    const clients = Array.from({ length: C }, () => recoveryClient(node.port, position));
    try {
      await Promise.all(clients.map((c) => c.ready));
      const c0 = cpuSeconds(node.pid);
      const t0 = nowUs();
      const results = await Promise.all(clients.map((c) => c.subscribe(channel)));
      const wallUs = nowUs() - t0;
      const cpuS = cpuSeconds(node.pid) - c0;
      results.forEach(check);
      waves.push({ wallUs, cpuS, slowestUs: Math.max(...results.map((r) => r.to_position_us)) });
    } finally {
      for (const c of clients) c.close();
    }
    await sleep(200);
  }
  const total = C * n;
  emit({
    scenario: 'history',
    part: 'replay',
    adapter,
    clients: C,
    events_per_resume: n,
    data_bytes: h.payloadBytes,
    waves: waves.length,
    events_per_s_median: round(median(waves.map((w) => total / (w.wallUs / 1e6))), 0),
    events_per_s_all: waves.map((w) => round(total / (w.wallUs / 1e6), 0)),
    ms_wave_median: round(median(waves.map((w) => w.wallUs)) / 1000, 1),
    node_cpu_ms_per_1k_replayed: round((waves.reduce((a, w) => a + w.cpuS, 0) * 1000) / ((total * waves.length) / 1000), 2),
  });
}

/** Redis memory per stored event: used_memory around K channels x M events, and one stream key. */
async function redisMemory(cfg, emit, res, { node, broker }) {
  const h = cfg.history;
  const client = new Redis({ host: '127.0.0.1', port: broker.port, lazyConnect: true, maxRetriesPerRequest: 2 });
  res.add(client, () => client.quit());
  await client.connect();
  const used = async () => Number(/used_memory:(\d+)/.exec(await client.info('memory'))[1]);
  const data = 'm'.repeat(h.payloadBytes);
  const chans = Array.from({ length: h.memory.channels }, (_, i) => `hist-mem-${i}`);
  // script loaded and the connection's buffers in place before the first reading
  await publishCount(node.port, ['hist-mem-warm'], 10, data);
  await sleep(300);
  const findKeys = async (channel) => {
    const found = [];
    let cursor = '0';
    for (let i = 0; i < 1000; i++) {
      const [next, keys] = await client.scan(cursor, 'MATCH', `*${channel}}*`, 'COUNT', 1000);
      found.push(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
    return { stream: found.find((k) => k.endsWith(':log')), meta: found.find((k) => k.endsWith(':log-meta')) };
  };
  const usage = async (key) => (key ? Number(await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) : null);
  const xinfo = async (key) => {
    const flat = await client.call('XINFO', 'STREAM', key);
    const o = {};
    for (let i = 0; i + 1 < flat.length; i += 2) if (typeof flat[i + 1] !== 'object') o[flat[i]] = flat[i + 1];
    return { length: o.length, radix_tree_keys: o['radix-tree-keys'], radix_tree_nodes: o['radix-tree-nodes'] };
  };
  const nodeMax = await client.config('GET', 'stream-node-max-*');
  const rounds = [];
  let keysBefore = await client.dbsize();
  let before = await used();
  const u0 = before;
  for (const [label, perChannel] of [
    ['filled to max_messages', h.memory.events],
    ['again as many (trimmed to max_messages)', h.memory.events],
  ]) {
    const t0 = Date.now();
    const pub = await publishCount(node.port, chans, chans.length * perChannel, data);
    if (pub.bad) throw new Error(`memory: ${pub.bad} publishes refused: ${pub.badSample}`);
    const seconds = (Date.now() - t0) / 1000;
    await sleep(500);
    const after = await used();
    const keys = await findKeys(chans[0]);
    const [first] = await client.xrange(keys.stream, '-', '+', 'COUNT', 1);
    const fields = first ? Object.fromEntries(first[1].reduce((a, v, i, arr) => (i % 2 ? a : [...a, [v, arr[i + 1]]]), [])) : {};
    rounds.push({
      label,
      events: chans.length * perChannel,
      publish_s: round(seconds, 2),
      used_memory_delta_bytes: after - before,
      bytes_per_event: round((after - before) / (chans.length * perChannel), 1),
      used_memory_since_start_per_kept_event: round(
        (after - u0) / (chans.length * Math.min(h.maxMessages, perChannel * (rounds.length + 1))),
        1,
      ),
      keys_added: (await client.dbsize()) - keysBefore,
      stream_key: keys.stream,
      stream_memory_usage_bytes: await usage(keys.stream),
      meta_memory_usage_bytes: await usage(keys.meta),
      stream_per_entry_bytes: round((await usage(keys.stream)) / h.maxMessages, 1),
      stream: await xinfo(keys.stream),
      stored_fields_bytes: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, Buffer.byteLength(v)])),
    });
    before = after;
    keysBefore = await client.dbsize();
  }
  emit({
    scenario: 'history',
    part: 'redis-memory',
    adapter: 'redis',
    channels: chans.length,
    max_messages: h.maxMessages,
    data_bytes: h.payloadBytes,
    stream_node_limits: Object.fromEntries(nodeMax.reduce((a, v, i, arr) => (i % 2 ? a : [...a, [v, arr[i + 1]]]), [])),
    rounds,
  });
}

export async function history(cfg, emit) {
  const h = cfg.history;
  const channels = [
    { name: PLAIN_CH, history: false },
    { name: HIST_CH, history: true },
  ];
  const config = { app_manager: { array: { apps: [historyApp(h)] } } };
  for (const adapter of h.adapters) {
    await scoped(async (res) => {
      let broker = null;
      if (adapter === 'redis') {
        broker = await startRedis();
        res.add(broker, () => broker.stop());
      }
      const node = await startNode({ name: `history-${adapter}`, config, env: broker?.env ?? {} });
      res.add(node, () => node.stop());
      if (broker) await redisMemory(cfg, emit, res, { node, broker });
      await replayRate(cfg, emit, { node, adapter });
      await publishCost(cfg, emit, res, { node, adapter, brokerPids: broker?.pids ?? [], channels });
    });
  }
  if (h.baseline) {
    // the floor: bare uWS (no signature check, no metrics, no history), the same clients
    await scoped(async (res) => {
      const node = await startNode({ name: 'history-uws', server: 'uws' });
      res.add(node, () => node.stop());
      await publishCost({ ...cfg, history: { ...h, rounds: 1 } }, emit, res, {
        node,
        adapter: 'bare uWS',
        brokerPids: [],
        channels: [{ name: PLAIN_CH, history: false }],
      });
    });
  }
}
