// The metrics port: Prometheus text at /metrics, kept off the public port.
import uWS from 'uWebSockets.js';
import type { NodeContext } from '../context.js';

export interface MetricsServer {
  port: number;
  close(): void;
}

export function startMetricsServer(ctx: NodeContext, host: string, port: number): Promise<MetricsServer> {
  const app = uWS.App();
  app.get('/metrics', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    ctx.metrics
      .render()
      .then((text) => {
        if (aborted) return;
        res.cork(() => {
          res.writeStatus('200 OK').writeHeader('Content-Type', ctx.metrics.contentType).end(text);
        });
      })
      .catch((err) => {
        ctx.log.error({ err }, 'metrics render failed');
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end());
      });
  });
  // Read-only view of the cluster's live members.
  app.get('/cluster', (res) => {
    const members = ctx.adapter.members();
    res
      .writeStatus('200 OK')
      .writeHeader('Content-Type', 'application/json')
      .end(JSON.stringify({ node_id: ctx.adapter.nodeId, driver: ctx.config.adapter.driver, members }));
  });
  // Soak tests only (CHORUS_DEBUG_GC=1 and node --expose-gc): memory after a full GC and the live
  // handles, to tell a leak from garbage not yet collected. Off otherwise: a GC stalls the node.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (process.env.CHORUS_DEBUG_GC === '1' && gc) {
    app.get('/debug/heap', (res) => {
      gc();
      const body = {
        memory: process.memoryUsage(),
        resources: process.getActiveResourcesInfo(),
        sockets: ctx.registry.sockets.size,
      };
      res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(JSON.stringify(body));
    });
  }
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end('Not found');
  });
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (!socket) {
        reject(new Error(`cannot listen for metrics on ${host}:${port}`));
        return;
      }
      resolve({
        port: uWS.us_socket_local_port(socket as unknown as uWS.us_socket),
        close: () => uWS.us_listen_socket_close(socket),
      });
    });
  });
}
