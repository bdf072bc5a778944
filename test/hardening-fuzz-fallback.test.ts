// Hardening: the seeded fuzz, through the HTTP fallbacks (issue 19). Raw fallback
// sessions post the WebSocket fuzz's frames (and broken bodies) over xhr_send and poll
// for the answers, and hostile paths, ids and queries hit the fallback routes, while two
// pusher-js clients on xhr_streaming and xhr_polling must receive every control event
// exactly once and in order. Every answer must be a definite status, every body valid
// line framing with protocol frames only, and the node must log no error.
//
// FUZZ_SEED=<n> replays a sequence; FUZZ_FALLBACK_FRAMES changes the count.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startNode, type ChorusNode } from './helpers/node.js';
import { connected, dataOf, serverSdk, sleep, waitFor, type PusherClient } from './helpers/clients.js';
import { call, fallbackClient, parseLines, Q, sessionBase } from './helpers/fallback.js';
import { ALLOWED_EVENTS, randomFrame, randomString } from './helpers/fuzz-frames.js';
import { seededRng as prng, type Rng } from './helpers/rng.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0xfa11bac);
const FRAMES = Number(process.env.FUZZ_FALLBACK_FRAMES ?? 4000);
const SESSIONS = 6;
const PATHS = 600;

/** Bodies no pusher-js sends. */
function brokenBody(rng: Rng): string | Buffer {
  switch (rng.int(9)) {
    case 0:
      return '[';
    case 1:
      return rng.pick(['{}', 'null', '"x"', '1', '']);
    case 2:
      return rng.pick(['[1,2]', '[null]', '[{}]', '[[]]', '["a",3]']);
    case 3:
      return Buffer.from([0x5b, 0x22, 0xc3, 0x28, 0x22, 0x5d]); // ["\xc3("] : invalid UTF-8
    case 4:
      return '['.repeat(50_000) + ']'.repeat(50_000);
    case 5:
      return JSON.stringify(['x'.repeat(rng.int(600_000))]);
    case 6:
      return JSON.stringify([JSON.stringify({ event: 'pusher:ping', data: '\u0000'.repeat(rng.int(2000)) })]);
    case 7:
      return JSON.stringify(Array.from({ length: rng.int(300) }, () => '{"event":"pusher:ping","data":{}}'));
    default:
      return randomString(rng, 400);
  }
}

/** Bytes outside the URL's safe set percent-encoded; a `%` stays raw, so broken escapes reach the node as written. */
function rawPath(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8'))
    out += /[A-Za-z0-9\-._~%/?&=]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).padStart(2, '0');
  return out;
}

/** A hostile request head for the fallback routes: odd methods, segments, ids and queries. */
function hostileHead(rng: Rng): string {
  const seg = () =>
    rng.pick(['1', '999', 'a.b', '%zz', '%00', '..', '', 'x'.repeat(rng.int(300)), '\u00e9', '%2F', 'abcdefgh', randomString(rng, 12)]);
  const key = rng.pick(['app-key', 'no-such-key', '', '%E0%A4%A', 'app-key%00']);
  const kind = rng.pick(['xhr', 'xhr_streaming', 'xhr_send', 'xhr_stream', '', 'xhr/extra']);
  const prefix = rng.pick(['/pusher', '', '/pusher/pusher']);
  const query = rng.pick(['?protocol=7', '', '?protocol=%zz', `?protocol=7&t=${rng.int(1e9)}&n=1`, '?protocol=' + 'x'.repeat(200)]);
  const method = rng.pick(['POST', 'POST', 'POST', 'GET', 'OPTIONS', 'PUT', 'DELETE']);
  const path = rawPath(`${prefix}/app/${key}/${seg()}/${seg()}/${kind}`) + rawPath(query);
  const body = method === 'POST' && rng.chance(0.5) ? (rng.chance(0.5) ? '[]' : '["{\\"event\\":\\"pusher:ping\\"}"]') : '';
  const headers = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', `Content-Length: ${Buffer.byteLength(body)}`];
  if (rng.chance(0.3)) headers.push(`Origin: ${rng.pick(['https://a.example', 'null', '%zz', 'x'.repeat(500)])}`);
  return headers.join('\r\n') + '\r\n\r\n' + body;
}

/** Status of one raw request (0: closed unanswered) and its body, bounded in time. */
function exchange(port: number, head: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    const finish = () => {
      clearTimeout(timer);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0);
      const at = out.indexOf('\r\n\r\n');
      resolve({ status, body: at === -1 ? '' : out.slice(at + 4) });
    };
    // Long polls are held to the heartbeat: an answered head is enough.
    const timer = setTimeout(() => s.destroy(), 3000);
    s.on('data', (d) => (out += d.toString('utf8')));
    s.on('error', () => undefined);
    s.on('close', finish);
    s.write(head);
  });
}

function checkBody(body: string, where: string): ReturnType<typeof parseLines> {
  const lines = parseLines(body);
  for (const k of lines.kinds) assert.ok('oahc'.includes(k), `${where}: line kind ${k}`);
  for (const f of lines.frames) {
    assert.ok(ALLOWED_EVENTS.has(f.event) || f.event.startsWith('client-'), `${where}: frame ${JSON.stringify(f).slice(0, 200)}`);
  }
  return lines;
}

describe(`hardening: seeded fuzz of the HTTP fallbacks (seed ${SEED}, ${FRAMES} frames)`, () => {
  let node: ChorusNode;
  const good: PusherClient[] = [];
  const CONTROL = ['fuzz-control', 'presence-fuzz-control'];
  const received = new Map<PusherClient, Record<string, number[]>>();
  let published = 0;

  before(async () => {
    console.log(`# fallback fuzz seed ${SEED} (rerun with FUZZ_SEED=${SEED})`);
    node = await startNode({ config: { http_fallback: { disconnect_delay_seconds: 2 } } });
    for (const transport of ['xhr_streaming', 'xhr_polling'] as const) {
      const client = fallbackClient(node.port, transport, { user: { user_id: `good-${transport}` } });
      good.push(client);
      await connected(client, 8000);
      const seen: Record<string, number[]> = {};
      received.set(client, seen);
      for (const name of CONTROL) {
        seen[name] = [];
        const ch = client.subscribe(name);
        await waitFor(ch, 'pusher:subscription_succeeded', 8000);
        ch.bind('control', (d: { seq: number }) => seen[name].push(d.seq));
      }
    }
  });
  after(async () => {
    for (const c of good) c.disconnect();
    await node?.stop();
  });

  async function control(): Promise<void> {
    const seq = published++;
    const res = await serverSdk(node).triggerBatch(CONTROL.map((channel) => ({ channel, name: 'control', data: JSON.stringify({ seq }) })));
    assert.equal(res.status, 200);
  }

  async function assertGoodClientsWhole(): Promise<void> {
    await control();
    const expected = Array.from({ length: published }, (_, i) => i);
    const deadline = Date.now() + 5000;
    for (const [client, seen] of received) {
      for (const name of CONTROL) {
        while (seen[name].length < published && Date.now() < deadline) await sleep(50);
        assert.deepEqual(seen[name], expected, `control events on ${name} (${client.connection.state})`);
      }
    }
    assert.equal(node.proc.exitCode, null, 'node alive');
    assert.deepEqual(
      node.logs.filter((l) => /"level":(50|60)/.test(l)),
      [],
      'no error-level log lines',
    );
  }

  it('answers fuzzed frames and bodies over xhr_send with errors, never a crash, and keeps good fallback clients whole', async () => {
    const rng = prng(SEED);
    const statuses: Record<string, number> = {};
    const bump = (k: string) => (statuses[k] = (statuses[k] ?? 0) + 1);
    let generation = 0;
    const open = async (i: number) => {
      const base = sessionBase(`${i}/g${generation++}`);
      const first = checkBody((await call(node.port, `${base}/xhr${Q}`)).body, 'open');
      return { base, id: dataOf<{ socket_id: string }>(first.frames[0]).socket_id };
    };
    const sessions = await Promise.all(Array.from({ length: SESSIONS }, (_, i) => open(i)));
    let sent = 0;
    while (sent < FRAMES) {
      for (let k = 0; k < sessions.length; k++) {
        const s = sessions[k];
        let body: string | Buffer;
        if (rng.chance(0.1)) body = brokenBody(rng);
        else {
          const frames: string[] = [];
          for (let j = 1 + rng.int(20); j > 0 && sent < FRAMES; j--, sent++) {
            const { payload } = randomFrame(rng, s.id);
            // No binary frames over HTTP: their bytes arrive as text.
            frames.push(typeof payload === 'string' ? payload : payload.toString('latin1'));
          }
          body = JSON.stringify(frames);
        }
        const answer = await call(node.port, `${s.base}/xhr_send`, body);
        bump(`send ${answer.status}`);
        assert.ok([204, 400, 404, 413].includes(answer.status), `send got ${answer.status}: ${answer.body.slice(0, 200)}`);
        // A ping, then polls until its pong (the session was served up to there) or a close.
        await call(node.port, `${s.base}/xhr_send`, JSON.stringify(['{"event":"pusher:ping","data":{}}']));
        let outcome: 'pong' | number | null = null;
        for (let polls = 0; polls < 20 && outcome === null; polls++) {
          const poll = await call(node.port, `${s.base}/xhr${Q}`);
          const lines = checkBody(poll.body, 'poll');
          if (lines.close) outcome = lines.close[0];
          else if (lines.kinds[0] === 'o')
            outcome = -1; // the session was gone: a new one opened
          else if (lines.frames.some((f) => f.event === 'pusher:pong')) outcome = 'pong';
        }
        assert.notEqual(outcome, null, 'every session answers its ping or closes');
        if (outcome !== 'pong') {
          bump(`close ${outcome}`);
          assert.ok([1009, 4100, -1].includes(outcome as number), `fuzz session closed with ${outcome}`);
          sessions[k] = await open(k);
        }
      }
      await control();
    }
    console.log(`# fuzz fallback: ${sent} frames over ${SESSIONS} sessions; ${JSON.stringify(statuses)}`);
    await assertGoodClientsWhole();
  });

  it('answers hostile paths, ids, methods and queries on the fallback routes with definite statuses', async () => {
    const rng = prng(SEED ^ 0x70617468);
    const statuses: Record<number, number> = {};
    for (let i = 0; i < PATHS; i++) {
      const head = hostileHead(rng);
      const { status, body } = await exchange(node.port, head);
      statuses[status] = (statuses[status] ?? 0) + 1;
      assert.ok([200, 204, 400, 404, 405, 413].includes(status), `request ${i} got ${status}: ${head.slice(0, 300)}`);
      if (status === 200 && body.length > 0 && !head.startsWith('GET')) {
        // Chunked stream bodies: only complete lines of the line framing are checked.
        const text = body.replace(/^[0-9a-f]+\r\n|\r\n[0-9a-f]+\r\n|\r\n$/gim, '');
        for (const line of text.split('\n')) if (line) assert.ok('oahc'.includes(line[0]), `request ${i}: line ${line.slice(0, 80)}`);
      }
      if (i % 50 === 0) await control();
    }
    console.log(`# fuzz fallback paths: ${PATHS} requests; statuses ${JSON.stringify(statuses)}`);
    await assertGoodClientsWhole();
  });
});
