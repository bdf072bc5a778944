// The "bare uWS" ceiling on this machine: the same uWebSockets.js build Chorus
// uses, speaking just enough of the Pusher protocol for the benchmark clients
// (connection_established, subscribe, client events, ping) and POST /apps/:id/events
// with the request's signature checked (HMAC-SHA256 of the sorted query, MD5 of the body:
// what issue 16 compares against) but no validation, metrics or cluster.
// BENCH_UWS_UNSIGNED=1 skips the signature too (the earlier baseline). Started instead of
// Chorus with `npm run bench -- --server uws`. Not a server to use.
import uWS from 'uWebSockets.js';
import { createHash, createHmac, randomInt } from 'node:crypto';

const SECRET = 'app-secret';
const CHECK_SIGNATURE = process.env.BENCH_UWS_UNSIGNED !== '1';

/** The Pusher HTTP signature over method, path and the sorted query (without auth_signature). */
function signedOk(path, query, body) {
  const params = query.split('&').map((p) => p.split('='));
  const signature = params.find(([k]) => k === 'auth_signature')?.[1];
  const bodyMd5 = params.find(([k]) => k === 'body_md5')?.[1];
  const rest = params
    .filter(([k]) => k !== 'auth_signature')
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const expected = createHmac('sha256', SECRET).update(`POST\n${path}\n${rest}`).digest('hex');
  return signature === expected && bodyMd5 === createHash('md5').update(body).digest('hex');
}

const app = uWS.App();
let ids = 0;
const established = (id) =>
  JSON.stringify({ event: 'pusher:connection_established', data: JSON.stringify({ socket_id: id, activity_timeout: 120 }) });

app.ws('/app/:key', {
  compression: 0,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 0,
  maxBackpressure: 1024 * 1024,
  upgrade: (res, req, context) => {
    res.upgrade(
      { id: `${randomInt(1, 2 ** 47)}.${++ids}` },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => ws.send(established(ws.getUserData().id), false, false),
  message: (ws, message) => {
    const frame = JSON.parse(Buffer.from(message).toString('utf8'));
    const { event } = frame;
    if (event === 'pusher:subscribe') {
      const channel = frame.data.channel;
      ws.subscribe(channel);
      ws.send(JSON.stringify({ event: 'pusher_internal:subscription_succeeded', channel, data: '{}' }), false, false);
    } else if (event === 'pusher:unsubscribe') ws.unsubscribe(frame.data.channel);
    else if (event === 'pusher:ping') ws.send('{"event":"pusher:pong","data":{}}', false, false);
    else if (event.startsWith('client-')) ws.publish(frame.channel, JSON.stringify(frame), false, false);
  },
});

app.post('/apps/:appId/events', (res, req) => {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  const path = req.getUrl();
  const query = req.getQuery() ?? '';
  const chunks = [];
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast) return;
    const body = Buffer.concat(chunks);
    if (CHECK_SIGNATURE && !signedOk(path, query, body)) {
      if (!aborted) res.cork(() => res.writeStatus('401 Unauthorized').end('{"error":"Invalid signature"}'));
      return;
    }
    const e = JSON.parse(body.toString('utf8'));
    const frame =
      '{"event":' + JSON.stringify(e.name) + ',"channel":' + JSON.stringify(e.channel) + ',"data":' + JSON.stringify(e.data) + '}';
    app.publish(e.channel, frame, false, false);
    if (!aborted) res.cork(() => res.writeHeader('Content-Type', 'application/json').end('{}'));
  });
});

app.listen('127.0.0.1', 0, (token) => {
  if (!token) process.exit(1);
  const port = uWS.us_socket_local_port(token);
  console.log(JSON.stringify({ msg: 'chorus listening', port, metrics_port: null, node_id: 'bare-uws' }));
  const stop = () => {
    uWS.us_listen_socket_close(token);
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
});
