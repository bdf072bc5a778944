// The metrics port: Prometheus text at /metrics, the cluster's members at /cluster
// and, when enabled, the operator console at /console, kept off the public port.
import uWS from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { Core } from '../../core/core.js';
import type { Metrics } from '../../metrics/metrics.js';
import { registerConsoleRoutes, type ConsoleSettings } from './console/routes.js';
import type { AppStore } from '../../apps/store.js';

export interface AdminDeps {
  core: Core;
  metrics: Metrics;
  log: Logger;
  /** the adapter driver, shown by /cluster */
  driver: string;
  /** open connections on this node (the soak tests' heap endpoint) */
  connections(): number;
  apps: AppStore;
  /** the operator console's settings, or null when it is off */
  console: ConsoleSettings | null;
}

export interface MetricsServer {
  port: number;
  close(): void;
}

export function startMetricsServer(d: AdminDeps, host: string, port: number): Promise<MetricsServer> {
  const app = uWS.App();
  app.get('/metrics', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    d.metrics
      .render()
      .then((text) => {
        if (aborted) return;
        res.cork(() => {
          res.writeStatus('200 OK').writeHeader('Content-Type', d.metrics.contentType).end(text);
        });
      })
      .catch((err) => {
        d.log.error({ err }, 'metrics render failed');
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end());
      });
  });
  // Read-only view of the cluster's live members.
  app.get('/cluster', (res) => {
    const members = d.core.clusterMembers();
    res
      .writeStatus('200 OK')
      .writeHeader('Content-Type', 'application/json')
      .end(JSON.stringify({ node_id: d.core.nodeId, driver: d.driver, members }));
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
        sockets: d.connections(),
      };
      res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(JSON.stringify(body));
    });
  }
  const closeConsole = d.console
    ? registerConsoleRoutes({ core: d.core, apps: d.apps, driver: d.driver, settings: d.console, log: d.log }, app)
    : null;
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
        port: uWS.us_socket_local_port(socket),
        close: () => {
          closeConsole?.();
          uWS.us_listen_socket_close(socket);
        },
      });
    });
  });
}
