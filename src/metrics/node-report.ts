// What a node tells the operator console about itself, whichever node serves the
// page: its process, its broker link and its per-app totals. Plain JSON, read by
// the console's views (edge/admin/console/views.ts), which check it where it enters.
import { hostname } from 'node:os';
import type { AppTotals, Metrics } from './metrics.js';

/** The broker link as the cluster sees it (the cluster's BrokerLink has this shape). */
export interface BrokerFigures {
  state: 'up' | 'down' | 'none';
  rttMs: number | null;
}

export interface NodeReport {
  address: string;
  pid: number;
  version: string;
  uptime_s: number;
  connections: number;
  /** mean event-loop delay since the previous report (ms): how late the liveness ticks came */
  event_loop_lag_ms: number;
  rss_bytes: number;
  heap_used_bytes: number;
  broker: { state: BrokerFigures['state']; rtt_ms: number | null };
}

export interface AppsReport {
  apps: Array<[string, AppTotals]>;
}

export interface ReporterDeps {
  metrics: Metrics;
  /** the port clients connect to (the host is this machine's name: 0.0.0.0 says nothing) */
  port: () => number;
  connections(): number;
  broker(): BrokerFigures;
  version: string;
}

export class NodeReporter {
  private readonly startedAt = Date.now();

  constructor(private readonly d: ReporterDeps) {}

  report(kind: 'node' | 'apps'): Promise<NodeReport | AppsReport> {
    return kind === 'node' ? Promise.resolve(this.node()) : this.apps();
  }

  node(): NodeReport {
    // From the liveness ticks (loop-lag.ts): a sampler of its own would wake the loop between
    // publishes for as long as the node runs, and its figures would include its own interval.
    const lagMs = this.d.metrics.loopLag.meanSinceLastReportMs();
    const memory = process.memoryUsage();
    const broker = this.d.broker();
    return {
      address: `${hostname()}:${this.d.port()}`,
      pid: process.pid,
      version: this.d.version,
      uptime_s: (Date.now() - this.startedAt) / 1000,
      connections: this.d.connections(),
      event_loop_lag_ms: Math.round(lagMs * 100) / 100,
      rss_bytes: memory.rss,
      heap_used_bytes: memory.heapUsed,
      broker: { state: broker.state, rtt_ms: broker.rttMs === null ? null : Math.round(broker.rttMs * 1000) / 1000 },
    };
  }

  async apps(): Promise<AppsReport> {
    return { apps: [...(await this.d.metrics.appTotals())] };
  }
}
