// Hardening, HTTP API side: wrong methods, missing or garbled signatures, replays past
// the timestamp window, bodies over the limit (refused without being buffered whole),
// slowloris requests, invalid JSON and content types, and path tricks. Every request gets
// a definite answer (never a 500), and the node keeps publishing to a real subscriber.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startNode, type ChorusNode } from './helpers/node.js';
import { cleanup, connected, pusherClient, serverSdk, sleep, waitFor, type PusherClient } from './helpers/clients.js';
import { md5, signedFetch, signedQuery } from './helpers/signing.js';

interface RawReply {
  /** status from the first response line; 0 when the server answered nothing */
  status: number;
  head: string;
  body: string;
  /** the server closed the connection */
  closed: boolean;
  /** bytes of request body we managed to hand to the kernel before the close */
  written: number;
  ms: number;
}

/**
 * Sends raw bytes over TCP (no URL normalisation, any method, any framing) and collects the
 * answer until the server closes or `waitMs` passes. `stream` keeps writing body bytes.
 */
function rawHttp(
  port: number,
  head: string,
  opts: { waitMs?: number; stream?: number; trickle?: { every: number; text: string } } = {},
): Promise<RawReply> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = connect(port, '127.0.0.1');
    let out = '';
    let written = 0;
    let done = false;
    let trickleTimer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(waitTimer);
      clearInterval(trickleTimer);
      s.destroy();
      const [h, ...rest] = out.split('\r\n\r\n');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(h)?.[1];
      resolve({ status: status ? Number(status) : 0, head: h, body: rest.join('\r\n\r\n'), closed, written, ms: Date.now() - t0 });
    };
    const waitTimer = setTimeout(() => finish(false), opts.waitMs ?? 3000);
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => finish(true));
    s.write(head);
    if (opts.stream) {
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = () => {
        while (written < opts.stream! && !s.destroyed && s.writable) {
          written += chunk.length;
          if (!s.write(chunk)) {
            s.once('drain', pump);
            return;
          }
        }
      };
      pump();
    }
    if (opts.trickle) {
      trickleTimer = setInterval(() => {
        if (s.writable) s.write(opts.trickle!.text);
      }, opts.trickle.every);
    }
  });
}

const req = (method: string, path: string, headers: string[] = []) =>
  [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...headers, '', ''].join('\r\n');

/** A publish the subscriber must receive: proves the node still serves after each abuse. */
async function stillDelivers(node: ChorusNode, client: PusherClient, n: number): Promise<void> {
  const channel = client.channel('watch') ?? client.subscribe('watch');
  if (!channel.subscribed) await waitFor(channel, 'pusher:subscription_succeeded');
  const got = waitFor<{ n: number }>(channel, 'tick');
  const res = await serverSdk(node).trigger('watch', 'tick', { n });
  assert.equal(res.status, 200);
  assert.deepEqual(await got, { n });
}

const EVENTS = '/apps/app-id/events';
const eventBody = JSON.stringify({ name: 'e', channel: 'watch-other', data: '{}' });

describe('hardening: hostile HTTP requests', () => {
  let node: ChorusNode;
  let client: PusherClient;
  let tick = 0;
  before(async () => {
    node = await startNode();
    client = pusherClient(node);
    await connected(client);
  });
  after(async () => {
    await cleanup(client);
    await cleanup(node);
  });

  it('answers wrong methods with 405 and an Allow header', async () => {
    const routes: Array<[string, string]> = [
      [EVENTS, 'POST'],
      ['/apps/app-id/batch_events', 'POST'],
      ['/apps/app-id/channels', 'GET'],
      ['/apps/app-id/channels/c', 'GET'],
      ['/apps/app-id/channels/presence-c/users', 'GET'],
      ['/apps/app-id/users/u/terminate_connections', 'POST'],
    ];
    for (const [path, allowed] of routes) {
      for (const method of ['PUT', 'DELETE', 'PATCH', 'TRACE', allowed === 'GET' ? 'POST' : 'GET']) {
        const r = await rawHttp(node.port, req(method, path, ['Content-Length: 0']));
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.match(r.head, new RegExp(`\\r\\nAllow: ${allowed}(\\r|$)`, 'i'), `${method} ${path}`);
        assert.deepEqual(JSON.parse(r.body), { error: `Method not allowed; use ${allowed}` });
      }
    }
    await stillDelivers(node, client, ++tick);
  });

  it('refuses missing, garbled and wrong signatures with 401 and the reason', async () => {
    const unsigned = await fetch(`${node.url}${EVENTS}`, { method: 'POST', body: eventBody });
    assert.equal(unsigned.status, 401);
    assert.deepEqual(await unsigned.json(), { error: 'Missing auth_key, auth_timestamp or auth_signature' });

    const good = new URLSearchParams(signedQuery({ method: 'POST', path: EVENTS, body: eventBody }));
    const sig = good.get('auth_signature')!;
    const variants: Array<[string, (q: URLSearchParams) => void, string]> = [
      ['no signature', (q) => q.delete('auth_signature'), 'Missing auth_key, auth_timestamp or auth_signature'],
      ['no key', (q) => q.delete('auth_key'), 'Missing auth_key, auth_timestamp or auth_signature'],
      ['no timestamp', (q) => q.delete('auth_timestamp'), 'Missing auth_key, auth_timestamp or auth_signature'],
      ['empty signature', (q) => q.set('auth_signature', ''), 'Missing auth_key, auth_timestamp or auth_signature'],
      ['upper-case hex', (q) => q.set('auth_signature', sig.toUpperCase()), 'Invalid signature'],
      ['truncated', (q) => q.set('auth_signature', sig.slice(0, 63)), 'Invalid signature'],
      ['extended', (q) => q.set('auth_signature', sig + '0'), 'Invalid signature'],
      ['not hex', (q) => q.set('auth_signature', 'z'.repeat(64)), 'Invalid signature'],
      ['very long', (q) => q.set('auth_signature', 'a'.repeat(4000)), 'Invalid signature'],
      ['unicode', (q) => q.set('auth_signature', '\u00e9'.repeat(32)), 'Invalid signature'],
      ['wrong key', (q) => q.set('auth_key', 'other-key'), 'Unknown auth_key'],
      ['auth_version 2', (q) => q.set('auth_version', '2.0'), 'Unsupported auth_version'],
      ['param added after signing', (q) => q.set('extra', '1'), 'Invalid signature'],
      // body_md5 is part of what is signed: the signature no longer holds (checked before the body is read).
      ['body_md5 changed', (q) => q.set('body_md5', md5('other')), 'Invalid signature'],
      ['body_md5 removed', (q) => q.delete('body_md5'), 'body_md5 is required with a body'],
    ];
    for (const [what, change, error] of variants) {
      const q = new URLSearchParams(good);
      change(q);
      const res = await fetch(`${node.url}${EVENTS}?${q}`, { method: 'POST', body: eventBody });
      assert.equal(res.status, 401, what);
      assert.deepEqual(await res.json(), { error }, what);
    }
    // Signed with the wrong secret.
    const wrong = await signedFetch(node, { method: 'POST', path: EVENTS, body: eventBody, secret: 'not-the-secret' });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.json, { error: 'Invalid signature' });
    // Positive control: the untouched query is accepted.
    const ok = await fetch(`${node.url}${EVENTS}?${good}`, { method: 'POST', body: eventBody });
    assert.equal(ok.status, 200);
    await stillDelivers(node, client, ++tick);
  });

  it('refuses requests replayed past the 600 s timestamp window, either way', async () => {
    const now = Math.floor(Date.now() / 1000);
    const window = 'auth_timestamp is more than 600 seconds from the server time';
    for (const ts of [now - 700, now + 700, now - 86_400, 0, 1]) {
      const r = await signedFetch(node, { method: 'POST', path: EVENTS, body: eventBody, timestamp: ts });
      assert.equal(r.status, 401, `timestamp ${ts - now}`);
      assert.deepEqual(r.json, { error: window });
    }
    // Inside the window (with a margin for the clock turning) is accepted, and so is the same request again.
    for (const ts of [now - 590, now + 590]) {
      const r = await signedFetch(node, { method: 'POST', path: EVENTS, body: eventBody, timestamp: ts });
      assert.equal(r.status, 200, `timestamp ${ts - now}`);
    }
    // A timestamp that is not plain digits.
    for (const bad of ['1e9', '-5', `${now}.5`, ' ' + now, 'now']) {
      const q = new URLSearchParams(signedQuery({ method: 'POST', path: EVENTS, body: eventBody, params: {} }));
      q.set('auth_timestamp', bad);
      const res = await fetch(`${node.url}${EVENTS}?${q}`, { method: 'POST', body: eventBody });
      assert.equal(res.status, 401, `timestamp ${bad}`);
    }
  });

  it('refuses a declared body over the limit at once, before any of it is sent', async () => {
    // The demo app's limit is 1 MiB (a full batch of full events, rounded up). Signed: an unsigned one gets 401 first.
    for (const length of [2 * 1024 * 1024, 100 * 1024 * 1024]) {
      const signed = `${EVENTS}?${signedQuery({ method: 'POST', path: EVENTS, body: 'x' })}`;
      const r = await rawHttp(node.port, req('POST', signed, [`Content-Length: ${length}`, 'Content-Type: application/json']));
      assert.equal(r.status, 413, `Content-Length ${length}`);
      assert.deepEqual(JSON.parse(r.body), { error: 'Request body is too large' });
      assert.ok(r.closed, 'the connection is closed after a 413');
    }
    // Unsigned, the same request is refused without a byte of its body.
    const unsigned = await rawHttp(node.port, req('POST', EVENTS, ['Content-Length: 500000', 'Content-Type: application/json']));
    assert.equal(unsigned.status, 401);
    assert.ok(unsigned.closed, 'the connection is closed: its body is never read');
    // Lengths past what the HTTP parser takes are refused by closing.
    for (const length of ['99999999999999999999', '-1', 'abc']) {
      const r = await rawHttp(node.port, req('POST', EVENTS, [`Content-Length: ${length}`]));
      assert.ok(r.closed, `Content-Length ${length} closed`);
      assert.ok(r.status === 0 || r.status === 400 || r.status === 413, `Content-Length ${length}: status ${r.status}`);
    }
    await stillDelivers(node, client, ++tick);
  });

  it('refuses a streamed (chunked) body once it passes the limit, and closes before 64 MB are taken', async () => {
    const chunk = (n: number) => `${n.toString(16)}\r\n${'a'.repeat(n)}\r\n`;
    const signed = `${EVENTS}?${signedQuery({ method: 'POST', path: EVENTS, body: 'x' })}`;
    // Chunked framing: the server cannot know the size up front.
    const r = await rawHttp(node.port, req('POST', signed, ['Transfer-Encoding: chunked']) + chunk(65536).repeat(40), { waitMs: 5000 });
    // The server answers 413 and closes with the client's bytes still unread, so the kernel may
    // reset the connection before the client reads the answer (status 0): either way, refused.
    assert.ok(r.status === 413 || r.status === 0, `status ${r.status}`);
    assert.ok(r.closed);
    // One declared 64 MB chunk, streamed: cut off after the limit, not read to the end.
    const total = 64 * 1024 * 1024;
    const s = await rawHttp(node.port, req('POST', signed, ['Transfer-Encoding: chunked']) + `${total.toString(16)}\r\n`, {
      stream: total,
      waitMs: 15_000,
    });
    assert.ok(s.status === 413 || s.status === 0, `status ${s.status}`);
    assert.ok(s.closed, 'server closed the connection');
    assert.ok(s.written < total, `wrote ${s.written} of ${total} bytes before the close`);
    await stillDelivers(node, client, ++tick);
  });

  it('answers invalid JSON with 400 and ignores the declared content type', async () => {
    const cases: Array<[string, number, unknown]> = [
      ['{', 400, { error: 'Body is not valid JSON' }],
      ['name=e&channel=c&data=x', 400, { error: 'Body is not valid JSON' }],
      ['\u00ff\u00fe', 400, { error: 'Body is not valid JSON' }],
      ['[]', 400, { error: 'Event must be a JSON object' }],
      ['null', 400, { error: 'Event must be a JSON object' }],
      ['{"name":5,"channel":"c","data":"x"}', 400, { error: 'Event "name" must be a non-empty string' }],
      ['{"name":"e","channel":"c"}', 400, { error: 'Event "data" is required' }],
      ['{"name":"e","channels":"c","data":"x"}', 400, { error: 'Event needs "channel" or a non-empty "channels" array' }],
      ['{"name":"e","channel":{"a":1},"data":"x"}', 400, { error: 'channel name must be a non-empty string: object' }],
      ['{"name":"e","channel":"c","data":"x","socket_id":"1.2.3"}', 400, { error: 'Invalid socket_id' }],
      ['{"name":"e","channel":"c","data":"x","info":5}', 400, { error: '"info" must be a comma-separated string' }],
      // Deep nesting inside a body under the size limit: JSON.stringify and String() recurse.
      [
        `{"name":"e","channel":"c","data":${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
        400,
        { error: 'Event "data" is nested too deeply' },
      ],
      [
        `{"name":"e","channels":[${'['.repeat(200_000)}${']'.repeat(200_000)}],"data":"x"}`,
        400,
        { error: 'channel name must be a non-empty string: object' },
      ],
    ];
    for (const [body, status, json] of cases) {
      for (const contentType of ['application/json', 'text/plain', 'application/x-www-form-urlencoded']) {
        const q = signedQuery({ method: 'POST', path: EVENTS, body });
        const res = await fetch(`${node.url}${EVENTS}?${q}`, { method: 'POST', body, headers: { 'content-type': contentType } });
        assert.equal(res.status, status, `${body.slice(0, 40)} as ${contentType}`);
        assert.deepEqual(await res.json(), json, `${body.slice(0, 40)} as ${contentType}`);
      }
    }
    const batch = `{"batch":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const rb = await signedFetch(node, { method: 'POST', path: '/apps/app-id/batch_events', body: batch });
    assert.equal(rb.status, 400);
    // Valid JSON under any content type is published (the SDKs always send application/json).
    const ok = await signedFetch(node, { method: 'POST', path: EVENTS, body: eventBody });
    assert.equal(ok.status, 200);
    assert.equal(node.logs.filter((l) => l.includes('"level":50')).length, 0, 'no error-level log lines');
    await stillDelivers(node, client, ++tick);
  });

  it('does not normalise path tricks: ../, %2e%2e, double slashes, bad escapes and very long paths', async () => {
    const cases: Array<[string, number, unknown]> = [
      ['/apps/app-id/../app-id/channels', 404, { error: 'Not found' }],
      ['/apps/app-id/./channels', 404, { error: 'Not found' }],
      ['/apps/%2e%2e/channels', 404, { error: 'Unknown app ..' }],
      ['/apps/..%2fapp-id/channels', 404, { error: 'Unknown app ../app-id' }],
      ['//apps/app-id/channels', 404, { error: 'Not found' }],
      ['/apps//channels', 404, { error: 'Not found' }],
      ['/apps/app-id//channels', 404, { error: 'Not found' }],
      ['/apps/app-id/channels/', 404, { error: 'Not found' }],
      ['/apps/%/channels', 400, { error: 'Malformed percent-encoding in path' }],
      ['/apps/app-id/channels/%ZZ', 400, { error: 'Malformed percent-encoding in path' }],
      ['/apps/app-id/channels/%E0%A4%A', 400, { error: 'Malformed percent-encoding in path' }],
      ['/apps/app-id/channels/%C0%AF', 400, { error: 'Malformed percent-encoding in path' }],
      ['/apps/app-id/channels/..%2f..%2fetc%2fpasswd', 401, { error: 'Missing auth_key, auth_timestamp or auth_signature' }],
      ['/apps/app-id/channels/a%00b', 401, { error: 'Missing auth_key, auth_timestamp or auth_signature' }],
      ['/' + 'a'.repeat(8000), 404, { error: 'Not found' }],
      ['/apps/' + 'x'.repeat(8000) + '/channels', 404, { error: `Unknown app ${'x'.repeat(64)}` }],
      ['/apps/app-id/channels?' + 'x=1&'.repeat(2000), 401, { error: 'Missing auth_key, auth_timestamp or auth_signature' }],
      ['/etc/passwd', 404, { error: 'Not found' }],
      ['/apps/app-id/events%00', 404, { error: 'Not found' }],
    ];
    for (const [path, status, json] of cases) {
      const r = await rawHttp(node.port, req('GET', path));
      assert.equal(r.status, status, path.slice(0, 80));
      assert.deepEqual(JSON.parse(r.body), json, path.slice(0, 80));
    }
    // A path signed for one route is not accepted on a normalised twin.
    const q = signedQuery({ path: '/apps/app-id/channels' });
    const twin = await rawHttp(node.port, req('GET', `/apps/app-id/./channels?${q}`));
    assert.equal(twin.status, 404);
    const signedTrick = await rawHttp(
      node.port,
      req('GET', `/apps/app-id/channels/..%2fx?${signedQuery({ path: '/apps/app-id/channels/..%2fx' })}`),
    );
    assert.equal(signedTrick.status, 400, 'a decoded channel name with / is invalid');
    // Garbage request lines get no route at all.
    const garbage = await rawHttp(node.port, '\u0000\u0001\u0002 garbage\r\n\r\n', { waitMs: 1000 });
    assert.ok(garbage.status === 0 || garbage.status === 400, `garbage: ${garbage.status}`);
    await stillDelivers(node, client, ++tick);
  });

  it('times out slowloris requests (headers or body trickled or stalled) while serving everyone else', async () => {
    // Signed, so the body is read (an unsigned one would get 401 at once).
    const head = `POST ${EVENTS}?${signedQuery({ method: 'POST', path: EVENTS, body: 'x' })} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
    const slow: Array<Promise<RawReply>> = [];
    const waitMs = 25_000;
    for (let i = 0; i < 5; i++) {
      slow.push(rawHttp(node.port, '', { waitMs })); // connects, says nothing
      slow.push(rawHttp(node.port, head, { waitMs })); // headers stall
      slow.push(rawHttp(node.port, head, { waitMs, trickle: { every: 1000, text: `X-Slow-${i}: y\r\n` } })); // headers trickled
      slow.push(rawHttp(node.port, head + 'Content-Length: 100\r\n\r\n0123456789', { waitMs })); // body stalls
      slow.push(rawHttp(node.port, head + 'Content-Length: 100000\r\n\r\n', { waitMs, trickle: { every: 1000, text: 'a' } })); // body trickled
    }
    // While they hang, the node publishes and answers as usual.
    await sleep(2000);
    await stillDelivers(node, client, ++tick);
    const replies = await Promise.all(slow);
    for (const [i, r] of replies.entries()) {
      assert.ok(r.closed, `slow request ${i} was not closed by the node within ${waitMs} ms`);
      // uWS's idle timeout (10 s, checked every 4 s) or the router's 408 ends each; never a success.
      assert.ok(r.status === 0 || r.status === 408 || r.status === 400, `slow request ${i}: status ${r.status}`);
      assert.ok(r.ms >= 4000, `slow request ${i} closed after ${r.ms} ms: too soon to be a timeout`);
    }
    await stillDelivers(node, client, ++tick);
  });
});
