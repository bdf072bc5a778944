// The metrics port of a box: the primary holds it, so a scrape sees the whole box. /metrics
// adds every worker's counters and gauges together (prom-client's aggregation); anything
// else on the port (/cluster, the operator console and its event stream) is passed through
// to one live worker, whose answers are cluster-wide already.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AggregatorRegistry } from 'prom-client';

export interface WorkerMetrics {
  index: number;
  /** prom-client JSON of the worker's registry */
  json: object[];
}

export interface WorkerEndpoints {
  /** the metrics prefix (the box's own series are named with it) */
  prefix: string;
  workers: number;
  /** each live worker's metrics (workers that do not answer in time left out) */
  metricsOfWorkers(): Promise<WorkerMetrics[]>;
  /** workers restarted after they died, since the box started */
  restarts(): number;
  /** the private metrics port of a worker that serves, or null while none does */
  anyWorkerPort(): number | null;
}

export interface MetricsFront {
  port: number;
  close(): Promise<void>;
}

/** A worker's open connections, from its `connected` gauge. */
function connectionsOf(w: WorkerMetrics, name: string): number {
  const m = w.json.find((x) => (x as { name?: unknown }).name === name) as { values?: Array<{ value: number }> } | undefined;
  return (m?.values ?? []).reduce((sum, v) => sum + (Number.isFinite(v.value) ? v.value : 0), 0);
}

/** The box's own series: how its workers stand (which worker holds how many sockets, who restarted). */
function boxSeries(workers: WorkerEndpoints, all: WorkerMetrics[]): string {
  const p = workers.prefix;
  const lines = [
    `# HELP ${p}box_workers Workers the box runs`,
    `# TYPE ${p}box_workers gauge`,
    `${p}box_workers ${workers.workers}`,
    `# HELP ${p}box_workers_serving Workers that answered this scrape`,
    `# TYPE ${p}box_workers_serving gauge`,
    `${p}box_workers_serving ${all.length}`,
    `# HELP ${p}box_worker_restarts_total Workers restarted by the primary after they died`,
    `# TYPE ${p}box_worker_restarts_total counter`,
    `${p}box_worker_restarts_total ${workers.restarts()}`,
    `# HELP ${p}box_worker_connections Open WebSocket connections per worker`,
    `# TYPE ${p}box_worker_connections gauge`,
    ...all.map((w) => `${p}box_worker_connections{worker="${w.index}"} ${connectionsOf(w, `${p}connected`)}`),
  ];
  return `${lines.join('\n')}\n`;
}

async function scrape(workers: WorkerEndpoints, res: ServerResponse): Promise<void> {
  const all = await workers.metricsOfWorkers();
  const registry = AggregatorRegistry.aggregate(all.map((w) => w.json));
  const text = await registry.metrics();
  res.writeHead(200, { 'Content-Type': registry.contentType });
  res.end(text + boxSeries(workers, all));
}

function passThrough(port: number, req: IncomingMessage, res: ServerResponse): void {
  const upstream = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end('worker unavailable');
  });
  // A viewer that leaves (the console's event stream) ends the worker's side too.
  res.on('close', () => upstream.destroy());
  req.pipe(upstream);
}

export function startMetricsFront(workers: WorkerEndpoints, host: string, port: number): Promise<MetricsFront> {
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      scrape(workers, res).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`metrics aggregation failed: ${err.message}`);
      });
      return;
    }
    const target = workers.anyWorkerPort();
    if (target === null) {
      res.writeHead(503, { 'Content-Type': 'text/plain', 'Retry-After': '1' });
      res.end('no worker is serving yet');
      return;
    }
    passThrough(target, req, res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen for metrics on ${host}:${port}: ${err.message}`)));
    server.listen(port, host, () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : port,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
