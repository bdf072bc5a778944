// A real HTTP endpoint for webhooks: a node:http server on a free loopback port
// that records every POST (raw body, headers, parsed events) and checks each one
// with the `pusher` SDK's webhook validation. It can be told to fail the next N
// requests with 500 to exercise retries.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import PusherServer from 'pusher';
import type { TestApp } from './node.js';
import { DEMO_APP } from './node.js';

export interface WebhookEventRecord {
  name: string;
  channel: string;
  user_id?: string;
  [k: string]: unknown;
}

export interface Delivery {
  /** request path (several webhooks can point at one receiver with different paths) */
  path: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  /** parsed body, or null when it was not JSON */
  body: { time_ms: number; events: WebhookEventRecord[] } | null;
  /** the status this receiver answered */
  status: number;
  /** true when the pusher SDK's webhook check passed for the app whose key was sent */
  valid: boolean;
  receivedAt: number;
}

export interface WebhookReceiver {
  url: string;
  port: number;
  deliveries: Delivery[];
  /** Answer 500 to the next `n` requests. */
  failNext(n: number): void;
  /** Never answer the next `n` requests (recorded with status 0), as a hung receiver. */
  holdNext(n: number): void;
  /** Events of every 2xx delivery (optionally one name only), in arrival order. */
  events(name?: string): WebhookEventRecord[];
  /** Resolves when `pred` holds (checked on each delivery and every 25 ms); rejects after timeoutMs. */
  waitFor(pred: (r: WebhookReceiver) => boolean, timeoutMs?: number): Promise<void>;
  /** Forgets everything received so far. */
  reset(): void;
  stop(): Promise<void>;
}

/** `apps` are the apps whose key/secret may sign deliveries (matched by X-Pusher-Key). */
export async function startWebhookReceiver(apps: TestApp[] = [DEMO_APP]): Promise<WebhookReceiver> {
  const sdks = new Map(apps.map((a) => [a.key, new PusherServer({ appId: a.id, key: a.key, secret: a.secret, host: '127.0.0.1' })]));
  const deliveries: Delivery[] = [];
  let failures = 0;
  let holds = 0;
  const waiters = new Set<() => void>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: Delivery['body'];
      try {
        body = JSON.parse(rawBody) as Delivery['body'];
      } catch {
        body = null;
      }
      const sdk = sdks.get(String(req.headers['x-pusher-key'] ?? ''));
      const valid = req.method === 'POST' && !!sdk && sdk.webhook({ headers: req.headers, rawBody }).isValid();
      if (holds > 0) {
        holds--;
        deliveries.push({ path: req.url ?? '/', headers: req.headers, rawBody, body, status: 0, valid, receivedAt: Date.now() });
        for (const w of [...waiters]) w();
        return;
      }
      const status = failures > 0 ? 500 : 200;
      if (failures > 0) failures--;
      deliveries.push({ path: req.url ?? '/', headers: req.headers, rawBody, body, status, valid, receivedAt: Date.now() });
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status === 200 ? 'ok' : 'fail');
      for (const w of [...waiters]) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;

  const receiver: WebhookReceiver = {
    url: `http://127.0.0.1:${port}`,
    port,
    deliveries,
    failNext(n) {
      failures = n;
    },
    holdNext(n) {
      holds = n;
    },
    events(name) {
      const all = deliveries.filter((d) => d.status === 200 && d.body).flatMap((d) => d.body!.events);
      return name ? all.filter((e) => e.name === name) : all;
    },
    waitFor(pred, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const done = (err?: Error) => {
          clearTimeout(timer);
          clearInterval(poll);
          waiters.delete(check);
          if (err) reject(err);
          else resolve();
        };
        const check = () => {
          if (pred(receiver)) done();
        };
        const timer = setTimeout(
          () => done(new Error(`webhook condition not met in ${timeoutMs} ms; got ${JSON.stringify(receiver.events())}`)),
          timeoutMs,
        );
        const poll = setInterval(check, 25);
        waiters.add(check);
        check();
      });
    },
    reset() {
      deliveries.length = 0;
      failures = 0;
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  return receiver;
}
