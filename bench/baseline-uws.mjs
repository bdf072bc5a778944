// The "bare uWS" ceiling on this machine: the same uWebSockets.js build Chorus
// uses, speaking just enough of the Pusher protocol for the benchmark clients
// (connection_established, subscribe, client events, ping) and POST /apps/:id/events
// with NO signature check, validation, metrics or cluster. Started instead of
// Chorus with `npm run bench -- --server uws`. Not a server to use.
import uWS from 'uWebSockets.js';
import { randomInt } from 'node:crypto';

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

app.post('/apps/:appId/events', (res) => {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  const chunks = [];
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast) return;
    const e = JSON.parse(Buffer.concat(chunks).toString('utf8'));
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
