// Prometheus metrics with the names soketi's and Sockudo's dashboards know,
// under a configurable prefix. Labels are bounded: app ids, endpoints, statuses.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';
import { LoopLag, PROM_LAG_SAMPLER_OFF_MS } from './loop-lag.js';
import { Tallies, type Tally } from './tally.js';

type AppCounter = Counter<'app_id'>;

export class Metrics {
  readonly registry = new Registry();
  /** the event-loop lag gauges, fed by a timer the node runs anyway (loop-lag.ts) */
  readonly loopLag: LoopLag;
  private readonly connected: Gauge<'app_id'>;
  private readonly newConnections: AppCounter;
  private readonly disconnections: AppCounter;
  private readonly bytesIn: AppCounter;
  private readonly bytesOut: AppCounter;
  private readonly messagesIn: AppCounter;
  private readonly messagesOut: AppCounter;
  private readonly httpBytesIn: AppCounter;
  private readonly httpBytesOut: AppCounter;
  private readonly httpCalls: Counter<'app_id' | 'endpoint' | 'status'>;
  private readonly publishes: AppCounter;
  private readonly clientEvents: AppCounter;
  private readonly rateLimited: Counter<'app_id' | 'kind'>;
  private readonly connectionErrors: Counter<'app_id' | 'code'>;
  private readonly subscriptions: AppCounter;
  private readonly unsubscriptions: AppCounter;
  private readonly handlerErrors: Counter<'where'>;
  private readonly byTransport: Gauge<'app_id' | 'transport'>;
  private readonly byTransportChildren = new Map<string, { inc(): void; dec(): void }>();
  /** The webhook counters the console reads back (set once webhooks() made them). */
  private webhookCounters: { sent: AppCounter; failed: AppCounter; dead: AppCounter; dropped: AppCounter; enqueued: AppCounter } | null =
    null;
  /** Bound children per app, so the hot path skips label hashing. */
  private readonly perApp = new Map<string, PerApp>();
  /** The hot paths' counters, folded into prom-client before every read. */
  private readonly tallies = new Tallies();
  /** http_calls_received_total by app, endpoint and status (bounded like the counter's own children; no key string per call). */
  private readonly httpCallTallies = new Map<string, Map<string, Map<number, Tally>>>();

  constructor(readonly prefix: string) {
    const r = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name: prefix + name, help, labelNames, registers: r });
    this.connected = new Gauge({ name: prefix + 'connected', help: 'Current WebSocket connections', labelNames: ['app_id'], registers: r });
    this.newConnections = counter('new_connections_total', 'WebSocket connections opened', ['app_id']);
    this.disconnections = counter('new_disconnections_total', 'WebSocket connections closed', ['app_id']);
    this.bytesIn = counter('socket_received_bytes', 'Bytes received over WebSockets', ['app_id']);
    this.bytesOut = counter('socket_transmitted_bytes', 'Bytes sent over WebSockets', ['app_id']);
    this.messagesIn = counter('ws_messages_received_total', 'WebSocket frames received', ['app_id']);
    this.messagesOut = counter('ws_messages_sent_total', 'WebSocket frames sent (fan-out deliveries included)', ['app_id']);
    this.httpBytesIn = counter('http_received_bytes', 'HTTP API request bytes', ['app_id']);
    this.httpBytesOut = counter('http_transmitted_bytes', 'HTTP API response bytes', ['app_id']);
    this.httpCalls = counter('http_calls_received_total', 'HTTP API calls', ['app_id', 'endpoint', 'status']);
    this.publishes = counter('publishes_total', 'Events published through the HTTP API (per channel)', ['app_id']);
    this.clientEvents = counter('client_events_total', 'Client events relayed', ['app_id']);
    this.rateLimited = counter('rate_limit_triggered_total', 'Requests or frames refused by a rate limit', ['app_id', 'kind']);
    this.connectionErrors = counter('connection_errors_total', 'Connections refused or closed with a protocol error', ['app_id', 'code']);
    this.subscriptions = counter('channel_subscriptions_total', 'Channel subscriptions', ['app_id']);
    this.unsubscriptions = counter('channel_unsubscriptions_total', 'Channel unsubscriptions', ['app_id']);
    this.handlerErrors = counter('handler_errors_total', 'Handlers that threw (the connection or request was closed; a bug to report)', [
      'where',
    ]);
    this.byTransport = new Gauge({
      name: prefix + 'connections_by_transport',
      help: 'Current connections by transport (ws, xhr_streaming, xhr_polling)',
      labelNames: ['app_id', 'transport'],
      registers: r,
    });
    collectDefaultMetrics({ register: this.registry, prefix, eventLoopMonitoringPrecision: PROM_LAG_SAMPLER_OFF_MS });
    this.loopLag = new LoopLag(this.registry, prefix);
  }

  /** The cluster bus: payloads and bytes received by kind, dropped messages, broker reconnects and round-trip time. */
  bus(): {
    message(kind: 'channel' | 'control', bytes: number): void;
    invalid(type: string, reason: string): void;
    reconnected(): void;
    rtt(seconds: number): void;
  } {
    const r = [this.registry];
    const labelNames = ['kind'] as const;
    const messages = new Counter({
      name: this.prefix + 'bus_messages_received_total',
      help: 'Payloads received from the cluster bus',
      labelNames,
      registers: r,
    });
    const bytes = new Counter({
      name: this.prefix + 'bus_bytes_received_total',
      help: 'Bytes received from the cluster bus',
      labelNames,
      registers: r,
    });
    const invalid = new Counter({
      name: this.prefix + 'bus_messages_invalid_total',
      help: 'Messages from the cluster bus dropped because they do not decode (by message type and reason)',
      labelNames: ['type', 'reason'] as const,
      registers: r,
    });
    const reconnects = new Counter({
      name: this.prefix + 'broker_reconnects_total',
      help: 'Times the broker connection came back after an outage',
      registers: r,
    });
    const rtt = new Histogram({
      name: this.prefix + 'broker_rtt_seconds',
      help: 'Round trip to the broker, measured once per heartbeat',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: r,
    });
    const bound = {
      channel: [messages.labels({ kind: 'channel' }), bytes.labels({ kind: 'channel' })],
      control: [messages.labels({ kind: 'control' }), bytes.labels({ kind: 'control' })],
    } as const;
    return {
      message: (kind, n) => {
        bound[kind][0].inc();
        bound[kind][1].inc(n);
      },
      // Types and reasons come from a fixed set (decodeControl), never from the payload.
      invalid: (type, reason) => invalid.inc({ type, reason }),
      reconnected: () => reconnects.inc(),
      rtt: (seconds) => rtt.observe(seconds),
    };
  }

  /** Cluster membership as a gauge, read at scrape time. */
  watchCluster(liveNodes: () => number): void {
    new Gauge({
      name: this.prefix + 'cluster_nodes',
      help: 'Live nodes in the cluster, this one included',
      registers: [this.registry],
      collect() {
        this.set(liveNodes());
      },
    });
  }

  /**
   * Webhook outcomes per app, delivery latency, batches dropped by a full queue, circuit
   * breakers, and the queue depth and requests in flight read at scrape time. Labels: app_id
   * only (never URLs), so the series stay bounded by the apps.
   */
  webhooks(queueDepth: () => Promise<number>, inFlight: () => number = () => 0): WebhookMetrics {
    const r = [this.registry];
    const counter = (name: string, help: string) => new Counter({ name: this.prefix + name, help, labelNames: ['app_id'], registers: r });
    const sent = counter('webhooks_sent_total', 'Webhook requests answered with 2xx');
    const failed = counter('webhooks_failed_total', 'Webhook attempts that failed (network error or non-2xx)');
    const retried = counter('webhooks_retried_total', 'Webhook batches scheduled for another attempt');
    const dead = counter('webhooks_dead_lettered_total', 'Webhook batches given up after the last attempt');
    const dropped = counter('webhooks_dropped_total', "Webhook batches refused because the app's queue (or the whole queue) was full");
    const shortCircuited = counter('webhooks_short_circuited_total', 'Webhook attempts not made because the endpoint circuit was open');
    const enqueued = counter('webhooks_enqueued_total', 'Webhook batches put on the queue');
    this.webhookCounters = { sent, failed, dead, dropped, enqueued };
    const breakersOpen = new Gauge({
      name: this.prefix + 'webhook_breakers_open',
      help: 'Webhook endpoints whose circuit is open (failing, not attempted until a probe succeeds)',
      labelNames: ['app_id'],
      registers: r,
    });
    const latency = new Histogram({
      name: this.prefix + 'webhook_delivery_seconds',
      help: 'Time from the event to the 2xx answer, retries included',
      labelNames: ['app_id'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers: r,
    });
    new Gauge({
      name: this.prefix + 'webhook_queue_depth',
      help: 'Webhook batches waiting or retrying',
      registers: r,
      async collect() {
        this.set(await queueDepth());
      },
    });
    new Gauge({
      name: this.prefix + 'webhook_requests_in_flight',
      help: 'Webhook requests this node has in flight',
      registers: r,
      collect() {
        this.set(inFlight());
      },
    });
    return {
      sent: (appId, seconds) => {
        sent.inc({ app_id: appId });
        latency.observe({ app_id: appId }, seconds);
      },
      failed: (appId) => failed.inc({ app_id: appId }),
      retried: (appId) => retried.inc({ app_id: appId }),
      dead: (appId) => dead.inc({ app_id: appId }),
      dropped: (appId) => dropped.inc({ app_id: appId }),
      enqueued: (appId) => enqueued.inc({ app_id: appId }),
      shortCircuited: (appId) => shortCircuited.inc({ app_id: appId }),
      breakerOpened: (appId) => breakersOpen.inc({ app_id: appId }),
      breakerClosed: (appId) => breakersOpen.dec({ app_id: appId }),
    };
  }

  app(appId: string): PerApp {
    let m = this.perApp.get(appId);
    if (!m) {
      const l: LabelValues<'app_id'> = { app_id: appId };
      m = {
        connected: this.tallies.ofGauge(this.connected.labels(l)),
        newConnections: this.tallies.of(this.newConnections.labels(l)),
        disconnections: this.tallies.of(this.disconnections.labels(l)),
        bytesIn: this.tallies.of(this.bytesIn.labels(l)),
        bytesOut: this.tallies.of(this.bytesOut.labels(l)),
        messagesIn: this.tallies.of(this.messagesIn.labels(l)),
        messagesOut: this.tallies.of(this.messagesOut.labels(l)),
        httpBytesIn: this.tallies.of(this.httpBytesIn.labels(l)),
        httpBytesOut: this.tallies.of(this.httpBytesOut.labels(l)),
        publishes: this.tallies.of(this.publishes.labels(l)),
        clientEvents: this.tallies.of(this.clientEvents.labels(l)),
        subscriptions: this.tallies.of(this.subscriptions.labels(l)),
        unsubscriptions: this.tallies.of(this.unsubscriptions.labels(l)),
      };
      this.perApp.set(appId, m);
    }
    return m;
  }

  /** The app's open connections on one transport (ws, xhr_streaming, xhr_polling). */
  connectedVia(appId: string, transport: string): { inc(): void; dec(): void } {
    const key = appId + '\n' + transport;
    let g = this.byTransportChildren.get(key);
    if (!g) this.byTransportChildren.set(key, (g = this.tallies.ofGauge(this.byTransport.labels({ app_id: appId, transport }))));
    return g;
  }

  httpCall(appId: string, endpoint: string, status: number): void {
    let byEndpoint = this.httpCallTallies.get(appId);
    if (!byEndpoint) this.httpCallTallies.set(appId, (byEndpoint = new Map<string, Map<number, Tally>>()));
    let byStatus = byEndpoint.get(endpoint);
    if (!byStatus) byEndpoint.set(endpoint, (byStatus = new Map<number, Tally>()));
    let t = byStatus.get(status);
    if (!t) byStatus.set(status, (t = this.tallies.of(this.httpCalls.labels({ app_id: appId, endpoint, status: String(status) }))));
    t.inc();
  }

  rateLimit(
    appId: string,
    kind: 'backend_events' | 'read_requests' | 'client_events' | 'control_frames' | 'api_ip' | 'websocket_ip',
  ): void {
    this.rateLimited.inc({ app_id: appId, kind });
  }

  handlerError(where: 'upgrade' | 'open' | 'message' | 'close' | 'http'): void {
    this.handlerErrors.inc({ where });
  }

  connectionError(appId: string, code: number): void {
    this.connectionErrors.inc({ app_id: appId, code: String(code) });
  }

  /** This node's running totals per app, read back from the counters (the operator console's app view). */
  async appTotals(): Promise<Map<string, AppTotals>> {
    this.tallies.fold();
    const out = new Map<string, AppTotals>();
    const add = async (metric: Counter<string> | Gauge<string> | undefined, field: keyof AppTotals) => {
      if (!metric) return;
      for (const { labels, value } of (await metric.get()).values) {
        const appId = labels.app_id;
        if (typeof appId !== 'string') continue;
        let t = out.get(appId);
        if (!t) out.set(appId, (t = { ...ZERO_TOTALS }));
        t[field] += value;
      }
    };
    const w = this.webhookCounters;
    await Promise.all([
      add(this.connected, 'connections'),
      add(this.messagesIn, 'messagesIn'),
      add(this.messagesOut, 'messagesOut'),
      add(this.publishes, 'apiMessages'),
      add(this.clientEvents, 'clientEvents'),
      add(this.rateLimited, 'rateLimited'),
      add(w?.sent, 'webhooksSent'),
      add(w?.failed, 'webhooksFailed'),
      add(w?.dead, 'webhooksDead'),
      add(w?.dropped, 'webhooksDropped'),
      add(w?.enqueued, 'webhooksEnqueued'),
    ]);
    return out;
  }

  /** Every metric as prom-client's JSON (a box's primary adds its workers' together). */
  async json(): Promise<unknown[]> {
    this.tallies.fold();
    return this.registry.getMetricsAsJSON();
  }

  async render(): Promise<string> {
    this.tallies.fold();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

export interface AppTotals {
  connections: number;
  messagesIn: number;
  messagesOut: number;
  apiMessages: number;
  clientEvents: number;
  rateLimited: number;
  webhooksSent: number;
  webhooksFailed: number;
  webhooksDead: number;
  webhooksDropped: number;
  webhooksEnqueued: number;
}

const ZERO_TOTALS: AppTotals = {
  connections: 0,
  messagesIn: 0,
  messagesOut: 0,
  apiMessages: 0,
  clientEvents: 0,
  rateLimited: 0,
  webhooksSent: 0,
  webhooksFailed: 0,
  webhooksDead: 0,
  webhooksDropped: 0,
  webhooksEnqueued: 0,
};

interface Inc {
  inc(value?: number): void;
}

export interface WebhookMetrics {
  sent(appId: string, latencySeconds: number): void;
  failed(appId: string): void;
  retried(appId: string): void;
  dead(appId: string): void;
  dropped(appId: string): void;
  enqueued(appId: string): void;
  shortCircuited(appId: string): void;
  breakerOpened(appId: string): void;
  breakerClosed(appId: string): void;
}

export interface PerApp {
  connected: { inc(v?: number): void; dec(v?: number): void };
  newConnections: Inc;
  disconnections: Inc;
  bytesIn: Inc;
  bytesOut: Inc;
  messagesIn: Inc;
  messagesOut: Inc;
  httpBytesIn: Inc;
  httpBytesOut: Inc;
  publishes: Inc;
  clientEvents: Inc;
  subscriptions: Inc;
  unsubscriptions: Inc;
}
