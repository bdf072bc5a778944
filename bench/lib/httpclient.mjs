// A minimal HTTP/1.1 keep-alive client over node:net: one request in flight per
// connection, responses parsed only as far as status and Content-Length.
import { connect } from 'node:net';

const CRLF2 = Buffer.from('\r\n\r\n');

export function httpConn(port, onResponse, onClose, host = '127.0.0.1') {
  const sock = connect({ host, port, noDelay: true });
  const conn = { sock, busy: false, open: false, closed: false, ready: null };
  let pending = null;
  conn.ready = new Promise((res, rej) => {
    sock.once('connect', () => {
      conn.open = true;
      res();
    });
    sock.once('error', rej);
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    conn.closed = true;
    onClose?.(conn);
  });
  sock.on('data', (chunk) => {
    if (pending) {
      chunk = Buffer.concat([pending, chunk]);
      pending = null;
    }
    let off = 0;
    for (;;) {
      const at = chunk.indexOf(CRLF2, off);
      if (at < 0) break;
      const head = chunk.latin1Slice(off, at);
      const status = Number(head.slice(9, 12));
      const m = /content-length:\s*(\d+)/i.exec(head);
      const len = m ? Number(m[1]) : 0;
      const end = at + 4 + len;
      if (end > chunk.length) break;
      off = end;
      conn.busy = false;
      onResponse(conn, status, chunk, at + 4, end);
    }
    if (off < chunk.length) pending = Buffer.from(chunk.subarray(off));
  });
  return conn;
}

export function request(conn, head, body) {
  conn.busy = true;
  conn.sock.write(head + body);
}
