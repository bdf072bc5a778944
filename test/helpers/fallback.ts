// Raw HTTP fallback sessions (pusher-js's xhr_streaming / xhr_polling wire) for the
// frames a good client never sends, and pusher-js clients forced onto one transport.
import { request, type IncomingHttpHeaders } from 'node:http';
import type { ChorusNode } from './node.js';
import { pusherClient, type ClientOptions, type PusherClient } from './clients.js';

export type FallbackTransport = 'xhr_streaming' | 'xhr_polling';

/** A pusher-js client that may use only `transport`, on `port` (a node or a balancer). */
export function fallbackClient(port: number, transport: FallbackTransport, opts: ClientOptions = {}): PusherClient {
  return pusherClient(
    { port },
    { ...opts, extra: { httpHost: '127.0.0.1', httpPort: port, enabledTransports: [transport], ...opts.extra } },
  );
}

/** The transport pusher-js connected with. */
export const transportOf = (client: PusherClient): string =>
  (client.connection as unknown as { connection?: { transport?: { name?: string } } }).connection?.transport?.name ?? '';

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export const sessionBase = (session: string, key = 'app-key', prefix = '/pusher') => `${prefix}/app/${key}/${session}`;
export const Q = '?protocol=7&client=js&version=8.6.0';

/** One request to its end (a poll, a send). */
export function call(
  port: number,
  path: string,
  body: string | Buffer = '',
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer to ${path} in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The Pusher frames of a body's `a` lines, and its `c` line. */
export function parseLines(body: string): {
  frames: Array<{ event: string; channel?: string; data?: unknown }>;
  close: [number, string] | null;
  kinds: string[];
} {
  const frames: Array<{ event: string; channel?: string; data?: unknown }> = [];
  let close: [number, string] | null = null;
  const kinds: string[] = [];
  for (const line of body.split('\n')) {
    if (!line) continue;
    kinds.push(line[0]);
    if (line[0] === 'a') for (const f of JSON.parse(line.slice(1)) as string[]) frames.push(JSON.parse(f));
    if (line[0] === 'c') close = JSON.parse(line.slice(1)) as [number, string];
  }
  return { frames, close, kinds };
}

export interface Stream {
  status: Promise<number>;
  headers: Promise<IncomingHttpHeaders>;
  text: () => string;
  /** resolves once the body so far satisfies `pred` */
  until(pred: (body: string) => boolean, timeoutMs?: number): Promise<string>;
  ended: Promise<void>;
  abort(): void;
}

/** An xhr_streaming request that stays open; its body grows as lines arrive. */
export function openStream(port: number, path: string, headers: Record<string, string> = {}): Stream {
  let text = '';
  const waiters: Array<() => void> = [];
  let setStatus: (n: number) => void = () => undefined;
  let setHeaders: (h: IncomingHttpHeaders) => void = () => undefined;
  let setEnded: () => void = () => undefined;
  const status = new Promise<number>((r) => (setStatus = r));
  const heads = new Promise<IncomingHttpHeaders>((r) => (setHeaders = r));
  const ended = new Promise<void>((r) => (setEnded = r));
  const wake = () => waiters.splice(0).forEach((w) => w());
  const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers }, (res) => {
    setStatus(res.statusCode ?? 0);
    setHeaders(res.headers);
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      text += c;
      wake();
    });
    res.on('end', () => {
      setEnded();
      wake();
    });
    res.on('error', () => undefined);
  });
  req.on('error', () => {
    setStatus(0);
    setEnded();
    wake();
  });
  req.end();
  let finished = false;
  void ended.then(() => (finished = true));
  return {
    status,
    headers: heads,
    text: () => text,
    until: (pred, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`stream ${path} never matched; body so far:\n${text}`)), timeoutMs);
        const check = () => {
          if (pred(text)) {
            clearTimeout(timer);
            resolve(text);
          } else if (finished) {
            clearTimeout(timer);
            reject(new Error(`stream ${path} ended; body:\n${text}`));
          } else waiters.push(check);
        };
        check();
      }),
    ended,
    abort: () => req.destroy(),
  };
}

/** Sends frames over xhr_send, as pusher-js does (a JSON array of JSON strings). */
export const sendFrames = (node: Pick<ChorusNode, 'port'>, base: string, ...frames: unknown[]): Promise<Answer> =>
  call(node.port, `${base}/xhr_send`, JSON.stringify(frames.map((f) => JSON.stringify(f))));
