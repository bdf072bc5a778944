// A DNS server on loopback that answers A queries for the names it is given (and nothing for
// any other name or type), so a balancer's re-resolution can be watched without Docker's
// embedded DNS: change the addresses, and the balancer must follow.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

export interface FakeDns {
  port: number;
  /** the A records of a name from now on (empty: the name exists, with no address) */
  set(name: string, addresses: string[]): void;
  /** queries answered so far */
  queries: number;
  close(): Promise<void>;
}

/** The question's name and where the question ends, or null when the packet is not one. */
function readQuestion(msg: Buffer): { name: string; end: number; type: number } | null {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return null;
  const labels: string[] = [];
  let at = 12;
  while (at < msg.length) {
    const len = msg[at];
    if (len === 0) break;
    if (len > 63 || at + 1 + len > msg.length) return null;
    labels.push(msg.toString('ascii', at + 1, at + 1 + len));
    at += 1 + len;
  }
  if (at + 5 > msg.length) return null;
  return { name: labels.join('.').toLowerCase(), end: at + 5, type: msg.readUInt16BE(at + 1) };
}

function answer(query: Buffer, q: { end: number; type: number }, addresses: string[] | undefined): Buffer {
  const records = q.type === 1 && addresses ? addresses : [];
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // the id
  // QR, the query's RD, RA; NXDOMAIN (3) for names this server does not know.
  header.writeUInt16BE(0x8180 | (query.readUInt16BE(2) & 0x0100) | (addresses ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(records.length, 6);
  const question = query.subarray(12, q.end);
  const rrs = records.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(1, 6); // TTL 1 s
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((octet, i) => rr.writeUInt8(Number(octet), 12 + i));
    return rr;
  });
  return Buffer.concat([header, question, ...rrs]);
}

export async function startFakeDns(): Promise<FakeDns> {
  const names = new Map<string, string[]>();
  const socket: Socket = createSocket('udp4');
  const dns: FakeDns = {
    port: 0,
    queries: 0,
    set: (name, addresses) => void names.set(name.toLowerCase(), [...addresses]),
    close: () => new Promise((r) => socket.close(() => r())),
  };
  socket.on('message', (msg: Buffer, from: RemoteInfo) => {
    const q = readQuestion(msg);
    if (!q) return;
    dns.queries++;
    socket.send(answer(msg, q, names.get(q.name)), from.port, from.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  dns.port = socket.address().port;
  return dns;
}
