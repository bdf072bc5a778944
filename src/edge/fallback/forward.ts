// HTTP fallback sessions in a box of workers. A session lives on the worker that opened it,
// but the kernel spreads a client's requests by their TCP connection: a poll or an xhr_send
// may reach another worker. The box keeps a directory of which worker holds which session
// (claimed atomically when one opens it); a worker that gets a request for a session it does
// not hold passes it to the holder's private loopback port and relays the answer.
import { request } from 'node:http';
import type { HttpResponse } from 'uWebSockets.js';
import type { PendingResponse } from './session.js';

/** Marks a request already passed on once: the holder answers it itself, never passes it again. */
export const FORWARDED_HEADER = 'x-chorus-forwarded';

export type Claim = { mine: true } | { mine: false; holder: string | null };

/** Which worker of the box holds a session; `self` is this worker's private address (host:port). */
export interface SessionDirectory {
  readonly self: string;
  /** Holds the session for this worker unless another one already does. */
  claim(sessionKey: string): Promise<Claim>;
  /** The worker holding it (null: none known). */
  holderOf(sessionKey: string): Promise<string | null>;
  /** The session is alive here: its entry is renewed now and then. */
  touch(sessionKey: string): void;
  release(sessionKey: string): void;
}

/** What is read of a uWS request before its handler returns (the request object dies then). */
export interface CapturedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
}

const PASSED_HEADERS = ['content-type', 'origin', 'x-forwarded-for', 'x-real-ip', 'user-agent'];

export function capture(method: string, url: string, query: string, header: (name: string) => string): CapturedRequest {
  const headers: Record<string, string> = { [FORWARDED_HEADER]: '1' };
  for (const h of PASSED_HEADERS) {
    const v = header(h);
    if (v) headers[h] = v;
  }
  return { method, url: query ? `${url}?${query}` : url, headers };
}

/** How long a passed-on request may take (a long poll waits up to its heartbeat, ~25 s). */
const FORWARD_TIMEOUT_MS = 60_000;

/**
 * Sends the request to the holder and streams its answer back on `res`. Ends `res` with 502 if
 * the holder cannot be reached; stops the holder's side if the client goes away.
 */
export function forward(pending: PendingResponse, holder: string, req: CapturedRequest, body: Buffer | null): void {
  const res: HttpResponse = pending.res;
  const [host, port] = [holder.slice(0, holder.lastIndexOf(':')), Number(holder.slice(holder.lastIndexOf(':') + 1))];
  const headers = body ? { ...req.headers, 'content-length': String(body.length) } : req.headers;
  let answered = false;
  const upstream = request({ host, port, method: req.method, path: req.url, headers, timeout: FORWARD_TIMEOUT_MS }, (answer) => {
    answered = true;
    if (pending.gone) return void answer.destroy();
    res.cork(() => {
      res.writeStatus(`${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`.trim());
      for (const [k, v] of Object.entries(answer.headers)) {
        if (k === 'content-length' || k === 'transfer-encoding' || k === 'connection' || k === 'date' || v === undefined) continue;
        for (const one of Array.isArray(v) ? v : [v]) res.writeHeader(k, one);
      }
    });
    answer.on('data', (chunk: Buffer) => {
      if (!pending.gone) res.cork(() => res.write(chunk));
    });
    answer.on('end', () => {
      if (pending.gone) return;
      pending.gone = true;
      res.cork(() => res.end());
    });
    answer.on('error', () => {
      if (pending.gone) return;
      pending.gone = true;
      res.close();
    });
  });
  pending.onGone = () => upstream.destroy();
  upstream.on('timeout', () => upstream.destroy(new Error('timeout')));
  upstream.on('error', () => {
    if (pending.gone) return;
    pending.gone = true;
    if (answered) return res.close();
    res.cork(() =>
      res.writeStatus('502 Bad Gateway').writeHeader('Content-Type', 'text/plain; charset=UTF-8').end('Session holder unavailable'),
    );
  });
  upstream.end(body ?? undefined);
}
