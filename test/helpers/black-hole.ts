// A webhook endpoint that accepts TCP connections, reads what it is sent and
// never answers: the receiver an attacker points an app's webhooks at. It counts
// the connections it was opened, so a test can see how many sockets a node spent.
import { createServer, type Socket } from 'node:net';

export interface BlackHole {
  url: string;
  port: number;
  /** connections accepted so far */
  accepted(): number;
  /** connections open right now */
  open(): number;
  stop(): Promise<void>;
}

export async function startBlackHole(): Promise<BlackHole> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    accepted: () => accepted,
    open: () => sockets.size,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
