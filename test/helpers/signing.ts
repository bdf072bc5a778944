// A hand-made HTTP API signer (PROTOCOL.md section 8) for requests the official
// SDK would never send: stale timestamps, wrong keys, missing or wrong body_md5,
// bodies that are not JSON, extra path prefixes.
import { createHash, createHmac } from 'node:crypto';
import type { TestApp } from './node.js';
import { DEMO_APP } from './node.js';

export interface SignOptions {
  app?: TestApp;
  method?: string;
  /** the full request path, including any path_prefix (that is what is signed) */
  path: string;
  /** extra query parameters (signed with the rest) */
  params?: Record<string, string>;
  body?: string | Buffer;
  /** extra request headers (not signed: Pusher signs no header) */
  headers?: Record<string, string>;
  /** unix seconds; defaults to now */
  timestamp?: number;
  /** overrides auth_key (the signature still uses app.secret) */
  key?: string;
  /** overrides the secret used to sign */
  secret?: string;
  /** overrides body_md5; null leaves it out even with a body */
  bodyMd5?: string | null;
}

export const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

/** The query string (with auth_signature) for a request signed as PROTOCOL.md section 8 says. */
export function signedQuery(opts: SignOptions): string {
  const app = opts.app ?? DEMO_APP;
  const method = (opts.method ?? 'GET').toUpperCase();
  const params: Record<string, string> = {
    auth_key: opts.key ?? app.key,
    auth_timestamp: String(opts.timestamp ?? Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
    ...opts.params,
  };
  const body = opts.body ?? '';
  if (opts.bodyMd5 !== undefined) {
    if (opts.bodyMd5 !== null) params.body_md5 = opts.bodyMd5;
  } else if (body.length > 0) {
    params.body_md5 = md5(body);
  }
  const keys = Object.keys(params)
    .map((k) => k.toLowerCase())
    .sort();
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) lower[k.toLowerCase()] = v;
  const toSign = `${method}\n${opts.path}\n${keys.map((k) => `${k}=${lower[k]}`).join('&')}`;
  const signature = createHmac('sha256', opts.secret ?? app.secret)
    .update(toSign)
    .digest('hex');
  const query = new URLSearchParams({ ...lower, auth_signature: signature });
  return query.toString();
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** the parsed body, or undefined when it is not JSON */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- responses are asserted field by field
  json: any;
}

/** Sends a hand-signed request to a node and reads the whole answer. */
export async function signedFetch(node: { port: number }, opts: SignOptions, timeoutMs = 5000): Promise<ApiResponse> {
  const method = (opts.method ?? 'GET').toUpperCase();
  const url = `http://127.0.0.1:${node.port}${opts.path}?${signedQuery(opts)}`;
  const res = await fetch(url, {
    method,
    body: opts.body === undefined ? undefined : (opts.body as BodyInit),
    headers: { ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
    signal: AbortSignal.timeout(timeoutMs),
  });
  return readResponse(res);
}

export async function readResponse(res: Response): Promise<ApiResponse> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
