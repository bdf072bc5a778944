// POSTs webhook bodies over node:http / node:https through keep-alive agents,
// so a node reuses a few sockets per receiver instead of opening one per
// request. The agents' socket caps are a backstop: the queue never starts more
// requests than the endpoint gate allows, so nothing waits inside an agent.
import http from 'node:http';
import https from 'node:https';

export interface HttpClientOptions {
  /** sockets to one origin (scheme, host, port) */
  maxSocketsPerEndpoint: number;
  /** sockets to all origins together */
  maxSockets: number;
  /** the whole exchange: connect, send, answer and body */
  timeoutMs: number;
  /** response bytes read; past that the socket is dropped (the status still counts) */
  maxResponseBytes?: number;
}

export type DeliveryResult = { ok: true; status: number } | { ok: false; reason: string; status?: number };

/** Shorter than the 5 s keep-alive timeout of Node and most servers, so an idle socket is closed by us first. */
const IDLE_SOCKET_MS = 4000;
const MAX_RESPONSE_BYTES = 64 * 1024;

export class WebhookHttpClient {
  private readonly http: http.Agent;
  private readonly https: https.Agent;
  private inFlight = 0;
  private closing = false;

  constructor(private readonly options: HttpClientOptions) {
    const agent = {
      keepAlive: true,
      maxSockets: options.maxSocketsPerEndpoint,
      maxTotalSockets: options.maxSockets,
      maxFreeSockets: options.maxSocketsPerEndpoint,
      timeout: IDLE_SOCKET_MS,
      scheduling: 'lifo' as const,
    };
    this.http = new http.Agent(agent);
    this.https = new https.Agent(agent);
  }

  /** Resolves (never rejects) within the timeout; userinfo in the URL is never sent. */
  post(url: URL, headers: Record<string, string>, body: string): Promise<DeliveryResult> {
    const maxBytes = this.options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    return new Promise((resolve) => {
      let settled = false;
      let req: http.ClientRequest | undefined;
      const finish = (result: DeliveryResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (--this.inFlight === 0 && this.closing) this.destroyAgents();
        resolve(result);
      };
      this.inFlight++;
      const timer = setTimeout(() => {
        finish({ ok: false, reason: 'timeout' });
        req?.destroy();
      }, this.options.timeoutMs);
      timer.unref();
      const judge = (status: number): DeliveryResult =>
        status >= 200 && status < 300 ? { ok: true, status } : { ok: false, reason: `HTTP ${status}`, status };
      try {
        const secure = url.protocol === 'https:';
        req = (secure ? https : http).request({
          protocol: url.protocol,
          // WHATWG keeps IPv6 literals in brackets; node:http wants them bare.
          hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: url.port || undefined,
          path: `${url.pathname}${url.search}`,
          method: 'POST',
          headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
          agent: secure ? this.https : this.http,
        });
      } catch (err) {
        // Bad header names or values are refused before anything is sent.
        finish({ ok: false, reason: reasonOf(err) });
        return;
      }
      req.on('error', (err) => finish({ ok: false, reason: reasonOf(err) }));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        // Drained so the socket can be reused; a body past the bound drops the socket instead.
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > maxBytes) {
            res.destroy();
            finish(judge(status));
          }
        });
        res.on('end', () => finish(judge(status)));
        res.on('error', () => finish(judge(status)));
        res.on('close', () => finish(judge(status)));
      });
      req.end(body);
    });
  }

  /** Sockets open right now (in use and idle), for tests and the in-flight gauge. */
  sockets(): number {
    let n = 0;
    for (const agent of [this.http, this.https]) {
      for (const list of [...Object.values(agent.sockets), ...Object.values(agent.freeSockets)]) n += list?.length ?? 0;
    }
    return n;
  }

  /**
   * Idle sockets close now; requests in flight end on their own (within the timeout; a job
   * the Redis queue handed back on close would otherwise be reported dead though requeued).
   */
  close(): void {
    this.closing = true;
    if (this.inFlight === 0) this.destroyAgents();
    else
      for (const agent of [this.http, this.https])
        for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
  }

  private destroyAgents(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (!e.code) return e.message || 'request failed';
  return e.message?.includes(e.code) ? e.message : `${e.code}: ${e.message}`;
}
