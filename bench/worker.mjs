// A load-generator process, driven by its parent over IPC. It holds WebSocket
// clients (open, subscribe, count deliveries and their latency, send client
// events, churn) or publishes over the HTTP API. Hot paths parse by substring:
// the marker `"data":"~<seq>~<t_us>~` is all that is read from a delivery.
import { signedPost, channelAuth } from './lib/sign.mjs';
import { openWs, sendText, textFrame, closeWs, destroyWs } from './lib/wsclient.mjs';
import { httpConn, request } from './lib/httpclient.mjs';
import { newHist, record, toWire } from './lib/hist.mjs';

const APP = JSON.parse(process.env.BENCH_APP_JSON ?? '{"id":"app-id","key":"app-key","secret":"app-secret"}');
const WS_PATH = `/app/${APP.key}?protocol=7&client=chorus-bench&version=1.0`;

const MARKER = Buffer.from('"data":"~');
const ESTABLISHED = Buffer.from('connection_established');
const SUCCEEDED = Buffer.from('subscription_succeeded');
const SOCKET_ID = Buffer.from('socket_id\\":\\"');
const PUSHER_ERROR = Buffer.from('"pusher:error"');
const SUB_ERROR = Buffer.from('subscription_error');
const PING = Buffer.from('pusher:ping');
const PONG_FRAME = textFrame('{"event":"pusher:pong","data":{}}');
const RECOVERY_OPT_IN = textFrame('{"event":"chorus:recovery","data":{"v":1,"positions":{}}}');

const nowUs = () => {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
};

// ---- counters of this process (reset between phases) ----
let received = 0;
let hist = newHist();
let otherFrames = 0;
let errorsSeen = 0;
let lastError = '';
let cpuAt = process.cpuUsage();
let wallAt = process.hrtime.bigint();

function reset() {
  received = 0;
  hist = newHist();
  otherFrames = 0;
  errorsSeen = 0;
  cpuAt = process.cpuUsage();
  wallAt = process.hrtime.bigint();
}

function stats() {
  const cpu = process.cpuUsage(cpuAt);
  const wall = Number(process.hrtime.bigint() - wallAt) / 1e9;
  return {
    received,
    otherFrames,
    errorsSeen,
    lastError,
    hist: toWire(hist),
    cpuFraction: (cpu.user + cpu.system) / 1e6 / Math.max(wall, 1e-9),
    wall,
    connections: conns.length,
    open: conns.reduce((n, c) => n + (c.closed ? 0 : 1), 0),
  };
}

/** Reads the digits after the marker: seq, then the send time in microseconds. */
function onDelivery(buf, at, now) {
  let i = at + MARKER.length;
  // skip seq (only its presence matters here)
  while (buf[i] !== 126) i++;
  i++;
  let t = 0;
  for (let c = buf[i]; c >= 48 && c <= 57; c = buf[++i]) t = t * 10 + (c - 48);
  received++;
  record(hist, now - t);
}

// ---- WebSocket clients ----
/** @type {any[]} */
const conns = [];

function subscribeFrame(conn) {
  const { channel, kind, userId } = conn.user;
  if (kind === 'public') return `{"event":"pusher:subscribe","data":{"channel":${JSON.stringify(channel)}}}`;
  if (kind === 'private') {
    const auth = channelAuth(APP, conn.user.socketId, channel);
    return JSON.stringify({ event: 'pusher:subscribe', data: { channel, auth } });
  }
  const channelData = JSON.stringify({ user_id: userId, user_info: { name: userId } });
  const auth = channelAuth(APP, conn.user.socketId, channel, channelData);
  return JSON.stringify({ event: 'pusher:subscribe', data: { channel, auth, channel_data: channelData } });
}

function readSocketId(buf, start, end) {
  const at = buf.indexOf(SOCKET_ID, start);
  if (at < 0 || at > end) return null;
  const from = at + SOCKET_ID.length;
  const to = buf.indexOf(92 /* backslash */, from);
  return buf.latin1Slice(from, to);
}

/** Frame handler for every client socket: cheap checks first. */
function onText(conn, buf, start, end) {
  const st = conn.user;
  if (st.ready) {
    const at = buf.indexOf(MARKER, start);
    if (at >= 0 && at < end) {
      onDelivery(buf, at, st.now ?? nowUs());
      return;
    }
    otherFrames++;
    st.onOther?.(conn, buf, start, end);
    const ping = buf.indexOf(PING, start);
    if (ping >= 0 && ping < end) conn.sock.write(PONG_FRAME);
    return;
  }
  if (!st.socketId) {
    const at = buf.indexOf(ESTABLISHED, start);
    if (at >= 0 && at < end) {
      st.socketId = readSocketId(buf, start, end);
      st.onEstablished?.(conn);
      return;
    }
  }
  const ok = buf.indexOf(SUCCEEDED, start);
  if (ok >= 0 && ok < end) {
    if (st.awaiting > 1) {
      st.awaiting--;
      return;
    }
    st.ready = true;
    st.onReady?.(conn);
    return;
  }
  const e1 = buf.indexOf(PUSHER_ERROR, start);
  const e2 = buf.indexOf(SUB_ERROR, start);
  if ((e1 >= 0 && e1 < end) || (e2 >= 0 && e2 < end)) {
    errorsSeen++;
    lastError = buf.toString('utf8', start, Math.min(end, start + 300));
    st.onFail?.(conn, lastError);
  }
}

const handlers = {
  open: () => {},
  text: onText,
  close: (conn, why) => conn.user.onClose?.(conn, why),
};

/** The batch of frames that arrived in one read shares one clock reading. */
function stampReads(conn) {
  const st = conn.user;
  conn.sock.prependListener('data', () => {
    st.now = nowUs();
  });
}

function channelOf(spec, i) {
  return spec.shared ? spec.name : spec.prefix + i;
}

function sourceAddress(list, perAddress, i) {
  if (!list || list.length === 0) return undefined;
  return list[Math.min(list.length - 1, Math.floor(i / perAddress))];
}

/**
 * Opens `count` sockets (global indexes base..base+count-1), each subscribed to its
 * channel; at most `concurrency` handshakes in flight. Resolves with counts and time.
 */
function openMany({ port, count, base, channel, concurrency = 200, localAddresses, perAddress = 25_000, timeoutMs = 120_000 }) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let started = 0;
    let done = 0;
    let failed = 0;
    let inflight = 0;
    let finished = false;
    const failures = new Map();
    const timer = setTimeout(() => end('timeout'), timeoutMs);
    const end = (why) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve({ ok: done, failed, ms: Date.now() - t0, why, failures: Object.fromEntries(failures) });
    };
    const settle = (ok, why) => {
      inflight--;
      if (ok) done++;
      else {
        failed++;
        failures.set(why, (failures.get(why) ?? 0) + 1);
      }
      if (done + failed === count) end('done');
      else pump();
    };
    const pump = () => {
      while (!finished && inflight < concurrency && started < count) {
        const i = base + started++;
        inflight++;
        let settled = false;
        const once = (ok, why) => {
          if (settled) return;
          settled = true;
          settle(ok, why);
        };
        const user = {
          index: i,
          channel: channelOf(channel, i),
          kind: channel.kind,
          userId: `u${i}`,
          socketId: null,
          ready: false,
          now: undefined,
          // optIn: opt in to recovery (docs/RECOVERY.md) before subscribing, no positions
          // also: a second (public) channel every socket joins too, e.g. one shared beside its own
          awaiting: channel.also ? 2 : 1,
          onEstablished: (c) => {
            if (channel.optIn) sendText(c, RECOVERY_OPT_IN);
            sendText(c, subscribeFrame(c));
            if (channel.also) sendText(c, `{"event":"pusher:subscribe","data":{"channel":${JSON.stringify(channel.also)}}}`);
          },
          onReady: () => once(true),
          onFail: (_c, msg) => once(false, msg.slice(0, 120)),
          onClose: (_c, why) => once(false, `closed before ready: ${why}`),
        };
        const conn = openWs({ port, path: WS_PATH, localAddress: sourceAddress(localAddresses, perAddress, i) }, handlers);
        conn.user = user;
        stampReads(conn);
        conns.push(conn);
      }
    };
    if (count === 0) end('done');
    else pump();
  });
}

// ---- client events (credit-driven) ----
let ceCredit = 0;
let ceSent = 0;
let ceSeq = 0;
let ceIdx = 0;
let ceSpec = null;
let ceTimer = null;

function clientEventPump() {
  if (!ceSpec) return;
  const senders = ceSpec.senders;
  let budget = 64; // per tick, so IPC stays responsive
  while (ceSent < ceCredit && budget-- > 0) {
    const conn = senders[ceIdx++ % senders.length];
    if (conn.closed) continue;
    const frame = `{"event":"client-bench","channel":${JSON.stringify(conn.user.channel)},"data":"~${ceSeq++}~${Math.round(nowUs())}~"}`;
    sendText(conn, frame);
    ceSent++;
  }
}

// ---- HTTP publishing ----
async function publish(spec) {
  const { port, mode, durationMs, connections = 4, rate = 0, channel, staticBody = false, window = 0, pad = 0 } = spec;
  // pad: filler after the latency marker, so the event data is about `pad` bytes longer
  const filler = 'x'.repeat(pad);
  // request written -> response read, per request (µs)
  const responseHist = newHist();
  const path = `/apps/${APP.id}/events`;
  let seq = 0;
  let sent = 0;
  let ok = 0;
  let bad = 0;
  let badSample = '';
  let credit = mode === 'credit' ? window : Infinity;
  let nowSec = Math.floor(Date.now() / 1000);
  const secTimer = setInterval(() => (nowSec = Math.floor(Date.now() / 1000)), 200);
  const pickChannel = channel.random ? () => channel.prefix + ((Math.random() * channel.count) | 0) : () => channel.name;
  let cache = { sec: 0, ch: '', head: '', body: '' };
  const build = () => {
    const ch = pickChannel();
    if (staticBody) {
      if (cache.sec !== nowSec || cache.ch !== ch) {
        const body = JSON.stringify({ name: 'bench', channel: ch, data: 'x' });
        const target = signedPost(APP, path, body, nowSec);
        cache = {
          sec: nowSec,
          ch,
          body,
          head: `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
        };
      }
      return cache;
    }
    const body = `{"name":"bench","channel":${JSON.stringify(ch)},"data":"~${seq++}~${Math.round(nowUs())}~${filler}"}`;
    const target = signedPost(APP, path, body, nowSec);
    return {
      body,
      head: `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
    };
  };
  let running = true;
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  const due = () => (mode === 'rate' ? Math.floor(((Date.now() - t0) / 1000) * rate) : Infinity);
  const canSend = () => running && sent < credit && sent < due();
  const fire = (c) => {
    if (!canSend() || c.busy || c.closed) return;
    const r = build();
    sent++;
    c.sentAt = nowUs();
    request(c, r.head, r.body);
  };
  const pool = [];
  const kick = () => {
    for (const c of pool) fire(c);
  };
  const onResponse = (c, status, buf, s, e) => {
    record(responseHist, nowUs() - c.sentAt);
    if (status === 200) ok++;
    else {
      bad++;
      if (!badSample) badSample = `${status} ${buf.toString('utf8', s, Math.min(e, s + 200))}`;
    }
    fire(c);
  };
  for (let i = 0; i < connections; i++) pool.push(httpConn(port, onResponse));
  await Promise.all(pool.map((c) => c.ready));
  onCredit = (n) => {
    credit = n;
    kick();
  };
  const ticker = mode === 'rate' || mode === 'credit' ? setInterval(kick, 1) : null;
  kick();
  await new Promise((r) => setTimeout(r, durationMs));
  running = false;
  const elapsed = (Date.now() - t0) / 1000;
  // wait (bounded) for answers in flight
  for (let i = 0; i < 200 && pool.some((c) => c.busy && !c.closed); i++) await new Promise((r) => setTimeout(r, 10));
  if (ticker) clearInterval(ticker);
  clearInterval(secTimer);
  onCredit = null;
  const cpu = process.cpuUsage(cpu0);
  const wall = Number(process.hrtime.bigint() - w0) / 1e9;
  for (const c of pool) c.sock.destroy();
  return {
    sent,
    ok,
    bad,
    badSample,
    elapsed,
    cpuFraction: (cpu.user + cpu.system) / 1e6 / wall,
    closedConns: pool.filter((c) => c.closed).length,
    responseHist: toWire(responseHist),
  };
}
let onCredit = null;

// ---- churn ----
function churn({ port, mode, durationMs, concurrency, localAddresses, channelPrefix = 'churn-' }) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let cycles = 0;
    let failures = 0;
    let failSample = '';
    let stopping = false;
    let active = 0;
    let k = 0;
    const deadline = setTimeout(() => {
      stopping = true;
      if (active === 0) finish();
    }, durationMs);
    let done = false;
    const finish = (why = 'done') => {
      if (done) return;
      done = true;
      clearTimeout(hard);
      resolve({ cycles, failures, failSample, stuck: active, why, seconds: durationMs / 1000, elapsed: (Date.now() - t0) / 1000 });
    };
    const hard = setTimeout(() => finish('hard timeout'), durationMs + 10_000);
    const fail = (why) => {
      failures++;
      if (!failSample) failSample = String(why).slice(0, 200);
    };

    if (mode === 'connect') {
      // open -> subscribe -> succeeded -> close (WS close; the server closes TCP)
      const one = () => {
        if (stopping) {
          if (active === 0) finish();
          return;
        }
        active++;
        const i = k++;
        let subscribed = false;
        const user = {
          channel: channelPrefix + (i % 1000),
          kind: 'public',
          socketId: null,
          ready: false,
          onEstablished: (c) => sendText(c, subscribeFrame(c)),
          onReady: (c) => {
            subscribed = true;
            closeWs(c);
          },
          onFail: (c, msg) => {
            fail(msg);
            destroyWs(c);
          },
          onClose: (_c, why) => {
            active--;
            if (subscribed) cycles++;
            else fail(why);
            one();
          },
        };
        const la = localAddresses?.length ? localAddresses[i % localAddresses.length] : undefined;
        const conn = openWs({ port, path: WS_PATH, localAddress: la }, handlers);
        conn.user = user;
      };
      for (let i = 0; i < concurrency; i++) one();
      return;
    }

    // presence: long-lived sockets that join and leave the same presence channel
    const members = conns.filter((c) => !c.closed && c.user.churner);
    for (const c of members) {
      const st = c.user;
      st.onReady = () => {
        if (stopping) {
          active--;
          if (active === 0) finish();
          return;
        }
        cycles++;
        // leave, then join again: frames are handled in order, so no ack is needed
        sendText(c, `{"event":"pusher:unsubscribe","data":{"channel":"${st.channel}"}}`);
        st.ready = false;
        sendText(c, subscribeFrame(c));
      };
      st.onFail = (_c, msg) => fail(msg);
      active++;
      st.ready = false;
      sendText(c, `{"event":"pusher:unsubscribe","data":{"channel":"${st.channel}"}}`);
      sendText(c, subscribeFrame(c));
    }
    if (members.length === 0) finish();
  });
}

// ---- IPC ----
const commands = {
  async open(m) {
    return openMany(m);
  },
  async reset() {
    reset();
    return true;
  },
  async stats() {
    return stats();
  },
  async report({ everyMs }) {
    if (reportTimer) clearInterval(reportTimer);
    reportTimer = everyMs ? setInterval(() => process.send({ type: 'progress', received }), everyMs) : null;
    return true;
  },
  async credit({ n }) {
    if (onCredit) onCredit(n);
    if (ceSpec) {
      ceCredit = n;
      clientEventPump();
    }
    return true;
  },
  async clientEvents({ start, count }) {
    if (!start) {
      ceSpec = null;
      clearInterval(ceTimer);
      return { sent: ceSent };
    }
    const ready = conns.filter((c) => !c.closed && c.user.ready);
    ceSpec = { senders: ready.slice(0, count ?? ready.length) };
    ceSent = 0;
    ceCredit = 0;
    ceTimer = setInterval(clientEventPump, 1);
    return { senders: ceSpec.senders.length };
  },
  async publish(m) {
    return publish(m);
  },
  async markChurners({ count }) {
    let n = 0;
    for (const c of conns) {
      if (n >= count) break;
      if (!c.closed) {
        c.user.churner = true;
        n++;
      }
    }
    return n;
  },
  async churn(m) {
    return churn(m);
  },
  async closeAll() {
    for (const c of conns) destroyWs(c);
    const n = conns.length;
    conns.length = 0;
    return n;
  },
};
let reportTimer = null;

process.on('message', async (m) => {
  const fn = commands[m.cmd];
  try {
    if (!fn) throw new Error(`unknown command ${m.cmd}`);
    const result = await fn(m);
    process.send({ id: m.id, result });
  } catch (err) {
    process.send({ id: m.id, error: String(err?.stack ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));
