// A minimal WebSocket client over node:net for load generation: handshake, an
// unmasked-frame parser that hands out (buffer, start, end) without copying or
// decoding, and masked text frames that can be encoded once and written to many
// sockets. Deliberately not a general client (no fragmentation, no extensions).
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';

const MASK = randomBytes(4);
const CRLF2 = Buffer.from('\r\n\r\n');

/** One masked text frame (the same mask for the whole process, so frames are shareable). */
export function textFrame(str) {
  const payload = Buffer.from(str);
  const len = payload.length;
  const hdr = len < 126 ? 6 : len < 65536 ? 8 : 14;
  const out = Buffer.allocUnsafe(hdr + len);
  out[0] = 0x81;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(len, 6);
  }
  MASK.copy(out, hdr - 4);
  for (let i = 0; i < len; i++) out[hdr + i] = payload[i] ^ MASK[i & 3];
  return out;
}

function controlFrame(opcode, payload) {
  const out = Buffer.allocUnsafe(6 + payload.length);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | payload.length;
  MASK.copy(out, 2);
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i] ^ MASK[i & 3];
  return out;
}

const CLOSE_1000 = controlFrame(8, Buffer.from([0x03, 0xe8]));

/**
 * Opens a connection. `handlers.text(conn, buf, start, end)` gets every text frame;
 * `handlers.open(conn)` after the 101; `handlers.close(conn, why)` once.
 */
export function openWs(opts, handlers) {
  const { host = '127.0.0.1', port, path, localAddress } = opts;
  const sock = connect({ host, port, localAddress, noDelay: true });
  const conn = { sock, upgraded: false, closed: false, pending: null, user: null };
  const key = randomBytes(16).toString('base64');
  sock.on('connect', () => {
    sock.write(
      `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  const finish = (why) => {
    if (conn.closed) return;
    conn.closed = true;
    handlers.close?.(conn, why);
  };
  sock.on('error', (err) => finish(err.code ?? 'error'));
  sock.on('close', () => finish('closed'));
  sock.on('end', () => sock.end());
  sock.on('data', (chunk) => {
    if (conn.pending) {
      chunk = Buffer.concat([conn.pending, chunk]);
      conn.pending = null;
    }
    let off = 0;
    if (!conn.upgraded) {
      const at = chunk.indexOf(CRLF2);
      if (at < 0) {
        conn.pending = chunk;
        return;
      }
      if (chunk.latin1Slice(0, 12) !== 'HTTP/1.1 101') {
        finish('http ' + chunk.latin1Slice(9, 12));
        sock.destroy();
        return;
      }
      conn.upgraded = true;
      off = at + 4;
      handlers.open?.(conn);
    }
    const n = chunk.length;
    while (off + 2 <= n) {
      const b0 = chunk[off];
      let len = chunk[off + 1] & 127;
      let hdr = 2;
      if (len === 126) {
        if (off + 4 > n) break;
        len = chunk.readUInt16BE(off + 2);
        hdr = 4;
      } else if (len === 127) {
        if (off + 10 > n) break;
        len = chunk.readUInt32BE(off + 6);
        hdr = 10;
      }
      const end = off + hdr + len;
      if (end > n) break;
      const opcode = b0 & 15;
      if (opcode === 1 || opcode === 0) handlers.text(conn, chunk, off + hdr, end);
      else if (opcode === 9) sock.write(controlFrame(10, chunk.subarray(off + hdr, end)));
      else if (opcode === 8) {
        if (!sock.destroyed) sock.end();
      }
      off = end;
    }
    if (off < n) conn.pending = Buffer.from(chunk.subarray(off));
  });
  return conn;
}

export function sendText(conn, strOrFrame) {
  if (conn.closed) return;
  conn.sock.write(typeof strOrFrame === 'string' ? textFrame(strOrFrame) : strOrFrame);
}

/** WebSocket close (1000), then the server closes TCP. */
export function closeWs(conn) {
  if (conn.closed) return;
  conn.sock.write(CLOSE_1000);
}

export function destroyWs(conn) {
  conn.sock.destroy();
}
