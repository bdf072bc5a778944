// Decides, at the HTTP upgrade, whether a connection is accepted. Refused
// connections are still upgraded so the client gets the protocol's error frame
// and close code (a plain HTTP error would only make pusher-js retry) — except an
// address over Sockudo's websocket_rate_limit, which Sockudo answers with HTTP 429.
import { randomFillSync } from 'node:crypto';
import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import { CloseCode, protocolError, type ProtocolError } from '../../protocol/codes.js';
import { SUPPORTED_PROTOCOLS } from '../../protocol/limits.js';
import { secondsToWindowEnd } from '../../rate-limit/limiter.js';
import { clientIp } from '../client-ip.js';
import { admitConnection, admitNow, type Admission } from './admission.js';
import type { WsDeps } from './settings.js';
import { WsConnection, type SocketData } from './ws-connection.js';

/** Random bytes drawn 4 KB at a time: one system call per 512 socket ids. */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

/** A random integer in [1, 2^30]: a small integer, which V8 turns into digits several times faster than a 47-bit one. */
function random30(): number {
  if (poolAt + 4 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const n = pool.readUInt32LE(poolAt) & 0x3fffffff;
  poolAt += 4;
  return n + 1;
}

/**
 * Socket ids are `<int>.<int>` (digits and one dot: frames embed them without escaping);
 * random on both sides (60 bits) so ids stay unique across nodes, and checked against this node's.
 */
export function newSocketId(taken: { has(id: string): boolean }): string {
  for (let i = 0; ; i++) {
    const id = `${random30()}.${random30()}`;
    if (!taken.has(id) || i > 100) return id;
  }
}

export function protocolProblem(protocol: string): ProtocolError | null {
  if (protocol === '') return protocolError(CloseCode.NO_PROTOCOL, 'No protocol version supplied', true);
  if (!/^\d{1,6}$/.test(protocol)) return protocolError(CloseCode.INVALID_VERSION, 'Invalid version string format', true);
  if (!SUPPORTED_PROTOCOLS.has(Number(protocol))) {
    return protocolError(CloseCode.UNSUPPORTED_PROTOCOL, `Unsupported protocol version ${protocol}`, true);
  }
  return null;
}

/** The app key from `<prefix>/app/<key>`; null when the path is not one (malformed encoding included). */
export function appKeyOf(url: string, prefix: string): string | null {
  const start = prefix + '/app/';
  if (!url.startsWith(start)) return null;
  let key = url.slice(start.length);
  // Keys are seldom percent-encoded: decoding only then saves a pass over every upgrade's path.
  if (key.includes('%')) {
    try {
      key = decodeURIComponent(key);
    } catch {
      return null;
    }
  }
  return key.length === 0 || key.length > 256 || key.includes('/') ? null : key;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

/**
 * The subprotocol echoed in the 101: the client's first offer when it is a short RFC 7230
 * token, else none (RFC 6455 lets a server pick none). Pusher clients send none; echoing a
 * 4 KB header made the 101 too big for nginx's default proxy buffer (a 502).
 */
export function chosenSubprotocol(offered: string): string {
  if (offered === '') return '';
  const comma = offered.indexOf(',');
  const first = (comma === -1 ? offered : offered.slice(0, comma)).trim();
  return TOKEN.test(first) ? first : '';
}

/** Sockudo's answer to an address over websocket_rate_limit: no upgrade, a 429 saying when to retry. */
function tooManyAttempts(res: HttpResponse, rate: { maxRequests: number; windowSeconds: number }): void {
  const reset = String(secondsToWindowEnd(rate.windowSeconds * 1000));
  res.writeStatus('429 Too Many Requests');
  res.writeHeader('Content-Type', 'application/json');
  res.writeHeader('X-RateLimit-Limit', String(rate.maxRequests));
  res.writeHeader('X-RateLimit-Remaining', '0');
  res.writeHeader('X-RateLimit-Reset', reset);
  res.writeHeader('Retry-After', reset);
  res.end(JSON.stringify({ error: 'Too many connection attempts from this address, retry later' }), true);
}

export function handleUpgrade(d: WsDeps, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  // Everything the request holds is read now: uWS frees it when this callback returns.
  const url = req.getUrl();
  const protocol = req.getQuery('protocol') ?? '';
  const secKey = req.getHeader('sec-websocket-key');
  const secProtocol = chosenSubprotocol(req.getHeader('sec-websocket-protocol'));
  const secExtensions = req.getHeader('sec-websocket-extensions');
  const origin = req.getHeader('origin');
  const limits = d.settings.ipLimits;
  // Only the per-IP limits read the address (reading it has a cost on every upgrade).
  const ip = limits ? clientIp(res, req, limits.trustHops) : '';
  let aborted = false;
  /** false while still in this callback: uWS corks it already, and nothing can have aborted */
  let later = false;

  const upgrade = (data: SocketData) => {
    if (later) res.cork(() => res.upgrade(data, secKey, secProtocol, secExtensions, context));
    else res.upgrade(data, secKey, secProtocol, secExtensions, context);
  };
  const refuse = (refusal: ProtocolError, appId: string | null = null) => {
    if (!aborted) upgrade({ peer: { refusal, appId } });
  };
  const settle = (admission: Admission) => {
    if (!admission.ok) {
      if (aborted) return;
      if (admission.rate429 && limits?.rate) {
        res.cork(() => tooManyAttempts(res, limits.rate!));
        return;
      }
      return refuse(admission.refusal, admission.appId);
    }
    d.core.reserve(admission.app.id);
    const { app, quota } = admission;
    const burst = d.settings.controlBudget.burst;
    upgrade({ peer: new WsConnection(newSocketId(d.core.registry), app, quota, d.metrics.app(app.id), burst, d.sessionTopics, ip) });
  };

  const key = appKeyOf(url, d.settings.pathPrefix);
  if (key === null) return refuse(protocolError(CloseCode.PATH_NOT_FOUND, 'Path not found', true));
  const badProtocol = protocolProblem(protocol);
  if (badProtocol) return refuse(badProtocol);
  // The usual connect (app in memory, no per-address limit, no quota) is decided here and now.
  const now = admitNow(d, key, origin);
  if (now) return settle(now);

  later = true;
  res.onAborted(() => {
    aborted = true;
  });
  const admit = async (): Promise<void> => settle(await admitConnection(d, key, origin, ip, () => aborted));
  admit().catch((err: Error) => {
    d.log.error({ err: err.message }, 'upgrade failed');
    refuse(protocolError(CloseCode.OVER_CAPACITY, 'Server error, try again later', true));
  });
}
