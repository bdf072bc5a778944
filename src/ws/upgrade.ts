// Decides, at the HTTP upgrade, whether a connection is accepted. Refused
// connections are still upgraded so the client gets the protocol's error frame
// and close code (a plain HTTP error would only make pusher-js retry).
import { randomInt } from 'node:crypto';
import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import type { App } from '../apps/app.js';
import type { NodeContext } from '../context.js';
import { CloseCode, protocolError, type ProtocolError } from '../protocol/codes.js';
import { originAllowed } from './origins.js';
import type { SocketData } from './socket.js';
import { clientIp } from '../http/client-ip.js';

const SUPPORTED_PROTOCOLS = new Set([5, 6, 7]);

/** Socket ids are `<int>.<int>`; random on both sides so ids stay unique across nodes. */
export function newSocketId(taken: ReadonlyMap<string, unknown>): string {
  for (;;) {
    const id = `${randomInt(1, 2 ** 47)}.${randomInt(1, 2 ** 47)}`;
    if (!taken.has(id)) return id;
  }
}

function protocolProblem(protocol: string): ProtocolError | null {
  if (protocol === '') return protocolError(CloseCode.NO_PROTOCOL, 'No protocol version supplied', true);
  if (!/^\d+$/.test(protocol)) return protocolError(CloseCode.INVALID_VERSION, 'Invalid version string format', true);
  if (!SUPPORTED_PROTOCOLS.has(Number(protocol))) {
    return protocolError(CloseCode.UNSUPPORTED_PROTOCOL, `Unsupported protocol version ${protocol}`, true);
  }
  return null;
}

async function admission(ctx: NodeContext, app: App | null, origin: string): Promise<ProtocolError | null> {
  if (!app) return protocolError(CloseCode.APP_NOT_FOUND, 'App key does not exist', true);
  if (!app.enabled) return protocolError(CloseCode.APP_DISABLED, 'App is disabled', true);
  if (!originAllowed(app.allowed_origins, origin)) {
    return protocolError(CloseCode.UNAUTHORIZED, 'Origin not allowed', true);
  }
  if (ctx.draining) return protocolError(CloseCode.RECONNECT, 'Server is shutting down', true);
  const nodeCap = ctx.config.max_connections;
  if (nodeCap !== null && ctx.registry.totalConnections() >= nodeCap) {
    return protocolError(CloseCode.OVER_CAPACITY, 'Node is over capacity', true);
  }
  return null;
}

/**
 * Takes a slot of the app's connection quota, cluster-wide: the adapter checks and
 * counts in one atomic step (a Lua script in Redis, a compare-and-set on NATS, a
 * synchronous check locally), so concurrent upgrades anywhere cannot overshoot it.
 */
async function takeQuota(ctx: NodeContext, app: App): Promise<ProtocolError | null> {
  if (app.max_connections === null) return null;
  if (await ctx.adapter.reserveConnection(app.id, app.max_connections)) return null;
  return protocolError(CloseCode.APP_OVER_QUOTA, 'App is over its connection quota', true);
}

export function handleUpgrade(ctx: NodeContext, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  const url = req.getUrl();
  const protocol = req.getQuery('protocol') ?? '';
  const secKey = req.getHeader('sec-websocket-key');
  const secProtocol = req.getHeader('sec-websocket-protocol');
  const secExtensions = req.getHeader('sec-websocket-extensions');
  const origin = req.getHeader('origin');
  // Only the per-IP limit reads the address (reading it has a cost on every upgrade).
  const ip = ctx.config.rate_limiter.enabled ? clientIp(res, req, ctx.config.rate_limiter.websocket_rate_limit.trust_hops) : '';
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });

  const prefix = ctx.config.path_prefix + '/app/';
  const key = url.startsWith(prefix) ? decodeURIComponent(url.slice(prefix.length)) : null;

  const finish = (app: App | null, refusal: ProtocolError | null, quota = false) => {
    if (aborted) {
      if (quota && app) ctx.adapter.releaseConnection(app.id);
      return;
    }
    const data: SocketData = {
      socketId: newSocketId(ctx.registry.sockets),
      app: refusal ? null : app,
      refusal,
      channels: new Map(),
      user: null,
      lastSeen: Date.now(),
      pingSentAt: 0,
      authDeadline: 0,
      clientWindowStart: 0,
      clientWindowCount: 0,
      closed: false,
      ws: null,
      quota,
    };
    // The socket joins the registry in `open`: uWS copies this object, so only that copy is live.
    if (!refusal && app) ctx.registry.app(app.id).connections++;
    res.cork(() => res.upgrade(data, secKey, secProtocol, secExtensions, context));
  };

  if (key === null || key.length === 0 || key.includes('/')) {
    finish(null, protocolError(CloseCode.PATH_NOT_FOUND, 'Path not found', true));
    return;
  }
  const badProtocol = protocolProblem(protocol);
  if (badProtocol) {
    finish(null, badProtocol);
    return;
  }
  void (async () => {
    try {
      const limits = ctx.config.rate_limiter;
      if (limits.enabled) {
        const { max_requests, window_seconds } = limits.websocket_rate_limit;
        if (!(await ctx.rateLimiter.consume(`ws-ip:${ip}`, 1, max_requests, window_seconds * 1000))) {
          ctx.metrics.rateLimit('unknown', 'websocket_ip');
          finish(null, protocolError(CloseCode.OVER_CAPACITY, 'Too many connections from this address, retry later', true));
          return;
        }
      }
      const app = await ctx.apps.findByKey(key);
      const refusal = (await admission(ctx, app, origin)) ?? (app ? await takeQuota(ctx, app) : null);
      finish(app, refusal, !refusal && app?.max_connections !== null);
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'app lookup failed during upgrade');
      finish(null, protocolError(CloseCode.OVER_CAPACITY, 'App store unavailable, try again later', true));
    }
  })();
}
