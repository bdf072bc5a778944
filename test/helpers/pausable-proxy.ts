// A TCP proxy (node:net) in front of a port that can cut the network under the connections it
// carries without closing them: `pause()` stops forwarding both ways on every connection open
// now (no byte moves, no FIN, no RST: what a dead Wi-Fi or a stalled NAT looks like to both
// ends), while new connections are still accepted and forwarded. Stopped by `stop()`.
import { createServer, connect, type Socket } from 'node:net';

export interface PausableProxy {
  port: number;
  /** connections accepted so far */
  accepted(): number;
  /** connections forwarded and not paused, open now */
  open(): number;
  /** stops forwarding on every connection open now (kept open); returns how many were paused */
  pause(): number;
  /** connections paused so far and still open */
  paused(): number;
  /** destroys the paused connections (both ends see the TCP connection go) */
  dropPaused(): void;
  stop(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  paused: boolean;
}

export async function startPausableProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<PausableProxy> {
  const pairs = new Set<Pair>();
  let accepted = 0;
  const server = createServer((client) => {
    accepted++;
    const upstream = connect(targetPort, targetHost);
    const pair: Pair = { client, upstream, paused: false };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const gone = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', gone);
    upstream.on('error', gone);
    client.once('close', gone);
    upstream.once('close', gone);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const destroy = (p: Pair) => {
    pairs.delete(p);
    p.client.destroy();
    p.upstream.destroy();
  };
  return {
    port,
    accepted: () => accepted,
    open: () => [...pairs].filter((p) => !p.paused).length,
    pause() {
      let n = 0;
      for (const p of pairs) {
        if (p.paused) continue;
        // Unpiped and paused: nothing is read from either socket any more, so nothing is
        // forwarded; what the ends send stays in the kernel's buffers, as on a cut link.
        p.client.unpipe(p.upstream);
        p.upstream.unpipe(p.client);
        p.client.pause();
        p.upstream.pause();
        p.paused = true;
        n++;
      }
      return n;
    },
    paused: () => [...pairs].filter((p) => p.paused).length,
    dropPaused() {
      for (const p of [...pairs]) if (p.paused) destroy(p);
    },
    stop: () =>
      new Promise<void>((r) => {
        for (const p of [...pairs]) destroy(p);
        server.close(() => r());
      }),
  };
}
