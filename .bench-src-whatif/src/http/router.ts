// The Pusher HTTP API and health routes on the node's main port.
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { App } from '../apps/app.js';
import { AppStoreError } from '../apps/store.js';
import type { NodeContext } from '../context.js';
import { readBody } from './body.js';
import { clientIp } from './client-ip.js';
import { registerDevClient } from './dev-client.js';
import { triggerBatch, triggerEvent } from './publish.js';
import { listChannels, listUsers, showChannel, terminateConnections } from './queries.js';
import { parseQuery, requestAuthProblem } from './request-auth.js';
import { CORS_HEADERS, errorReply, writeReply, type Reply } from './respond.js';

/** A slow client gets this long to send its whole body (slowloris). */
const BODY_TIMEOUT_MS = 10_000;

type Endpoint = 'events' | 'batch_events' | 'channels' | 'channel' | 'users' | 'terminate_connections';

interface Call {
  method: string;
  path: string;
  params: Map<string, string>;
  /** route parameters after the app id */
  args: string[];
  body: Buffer;
  ip: string;
}

type Handler = (ctx: NodeContext, app: App, call: Call) => Promise<Reply> | Reply;

function parseJson(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) };
  } catch {
    return { ok: false };
  }
}

const handlers: Record<Endpoint, Handler> = {
  events: (ctx, app, call) => {
    const json = parseJson(call.body);
    return json.ok ? triggerEvent(ctx, app, json.value) : errorReply(400, 'Body is not valid JSON');
  },
  batch_events: (ctx, app, call) => {
    const json = parseJson(call.body);
    return json.ok ? triggerBatch(ctx, app, json.value) : errorReply(400, 'Body is not valid JSON');
  },
  channels: (ctx, app, call) => listChannels(ctx, app, call.params),
  channel: (ctx, app, call) => showChannel(ctx, app, call.args[0], call.params),
  users: (ctx, app, call) => listUsers(ctx, app, call.args[0]),
  terminate_connections: (ctx, app, call) => terminateConnections(ctx, app, call.args[0]),
};

/** The largest body any app may legitimately send: a full batch of full events. */
export function bodyLimit(apps: readonly App[]): number {
  // Unknown apps (a database): 10 MB, Sockudo's request_limit_in_mb.
  if (apps.length === 0) return 10 * 1024 * 1024;
  let limit = 1024 * 1024;
  for (const app of apps) {
    const perEvent = (app.max_event_payload_in_kb ?? 1024) * 1024 + 64 * 1024;
    limit = Math.max(limit, perEvent * Math.max(1, app.max_event_batch_size ?? 100));
  }
  return limit;
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

function apiRoute(ctx: NodeContext, endpoint: Endpoint, argCount: number, maxBody: number) {
  const isRead = endpoint === 'channels' || endpoint === 'channel' || endpoint === 'users';
  return (res: HttpResponse, req: HttpRequest) => {
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const query = req.getQuery() ?? '';
    const rawAppId = req.getParameter(0) ?? '';
    const rawArgs = Array.from({ length: argCount }, (_, i) => req.getParameter(i + 1) ?? '');
    const declared = Number(req.getHeader('content-length') || 0);
    // Only the per-IP rate limit reads the address, and fetching it costs ~9% of a publish (bench/README.md).
    const ip = ctx.config.rate_limiter.enabled ? clientIp(res, req, ctx.config.rate_limiter.api_rate_limit.trust_hops) : '';
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const bodyPromise =
      method === 'POST' ? readBody(res, maxBody, declared, BODY_TIMEOUT_MS) : Promise.resolve({ ok: true as const, body: Buffer.alloc(0) });
    let appIdForMetrics = 'unknown';

    const respond = (reply: Reply) => {
      ctx.metrics.httpCall(appIdForMetrics, endpoint, reply.status);
      if (aborted) return;
      if (appIdForMetrics !== 'unknown') ctx.metrics.app(appIdForMetrics).httpBytesOut.inc(reply.body.length);
      res.cork(() => writeReply(res, reply));
    };

    (async (): Promise<Reply> => {
      // A draining node is about to leave the cluster: a publish it took now could be lost
      // after it stops its broker link. 503 and close, so a balancer's kept-alive connection goes too.
      if (ctx.draining) return { ...errorReply(503, 'Server is shutting down, retry on another node'), close: true };
      const appId = safeDecode(rawAppId);
      const args = rawArgs.map(safeDecode);
      if (appId === null || args.some((a) => a === null)) return errorReply(400, 'Malformed percent-encoding in path');
      if (ctx.config.rate_limiter.enabled) {
        const { max_requests, window_seconds } = ctx.config.rate_limiter.api_rate_limit;
        if (!(await ctx.rateLimiter.consume(`api-ip:${ip}`, 1, max_requests, window_seconds * 1000))) {
          ctx.metrics.rateLimit('unknown', 'api_ip'); // the id is not checked yet: no client-chosen label values
          return errorReply(429, 'Too many requests from this address');
        }
      }
      const app = await ctx.apps.findById(appId);
      const body = await bodyPromise;
      if (!body.ok) {
        return body.reason === 'too_large'
          ? { ...errorReply(413, 'Request body is too large'), close: true }
          : { ...errorReply(408, 'Request body not received in time'), close: true };
      }
      if (!app) return errorReply(404, `Unknown app ${appId.slice(0, 64)}`);
      appIdForMetrics = app.id;
      ctx.metrics.app(app.id).httpBytesIn.inc(body.body.length);
      if (!app.enabled) return errorReply(403, 'App is disabled');
      const params = parseQuery(query);
      const pathWithoutPrefix = ctx.config.path_prefix && path.startsWith(ctx.config.path_prefix)
        ? path.slice(ctx.config.path_prefix.length)
        : path;
      const problem = requestAuthProblem(app, method, [path, pathWithoutPrefix], params, body.body);
      if (problem) return errorReply(401, problem);
      if (isRead && app.max_read_requests_per_second !== null) {
        if (!(await ctx.rateLimiter.consume(`read:${app.id}`, 1, app.max_read_requests_per_second))) {
          ctx.metrics.rateLimit(app.id, 'read_requests');
          return errorReply(429, 'Too many requests: max_read_requests_per_second exceeded');
        }
      }
      return handlers[endpoint](ctx, app, { method, path, params, args: args as string[], body: body.body, ip });
    })()
      .then(respond)
      .catch((err) => {
        if (err instanceof AppStoreError) {
          respond(errorReply(503, 'App store unavailable, try again later'));
          return;
        }
        ctx.log.error({ err, endpoint }, 'HTTP API handler failed');
        respond(errorReply(500, 'Internal server error'));
      });
  };
}

/** CORS preflight: browsers send it before a cross-origin API call. */
function preflight(res: HttpResponse): void {
  res.writeStatus('204 No Content');
  for (const [k, v] of Object.entries(CORS_HEADERS)) res.writeHeader(k, v);
  res.end();
}

function methodNotAllowed(allowed: string) {
  return (res: HttpResponse) => {
    writeReply(res, { ...errorReply(405, `Method not allowed; use ${allowed}`), headers: { Allow: allowed } });
  };
}

export function registerHttpRoutes(ctx: NodeContext, uws: TemplatedApp, apps: readonly App[]): void {
  const p = ctx.config.path_prefix;
  const maxBody = bodyLimit(apps);
  const routes: Array<[string, 'get' | 'post', Endpoint, number]> = [
    ['/apps/:appId/events', 'post', 'events', 0],
    ['/apps/:appId/batch_events', 'post', 'batch_events', 0],
    ['/apps/:appId/channels', 'get', 'channels', 0],
    ['/apps/:appId/channels/:channel', 'get', 'channel', 1],
    ['/apps/:appId/channels/:channel/users', 'get', 'users', 1],
    ['/apps/:appId/users/:userId/terminate_connections', 'post', 'terminate_connections', 1],
  ];
  for (const [pattern, method, endpoint, args] of routes) {
    uws[method](p + pattern, apiRoute(ctx, endpoint, args, maxBody));
    // Per route: uWS prefers the exact pattern's `any` (405) over the wildcard OPTIONS below.
    uws.options(p + pattern, preflight);
    uws.any(p + pattern, methodNotAllowed(method.toUpperCase()));
  }

  uws.options(p + '/*', preflight);

  const health = (status: number, text: string): Reply => ({
    status,
    body: text,
    contentType: 'text/plain',
    headers: { 'X-Health-Check': text },
  });
  uws.get(p + '/up', (res) => {
    writeReply(res, ctx.draining ? health(503, 'ERROR') : health(200, 'OK'));
  });
  uws.get(p + '/up/:appId', (res, req) => {
    const appId = safeDecode(req.getParameter(0) ?? '') ?? '';
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    ctx.apps
      .findById(appId)
      .then((app) => (!app ? health(404, 'NOT_FOUND') : !app.enabled || ctx.draining ? health(503, 'ERROR') : health(200, 'OK')))
      .catch(() => health(503, 'ERROR'))
      .then((reply) => {
        if (!aborted) res.cork(() => writeReply(res, reply));
      });
  });
  uws.get(p + '/', (res) => writeReply(res, health(200, 'OK')));
  // The browser test client (off unless `client.enabled` or `debug`); before the catch-all.
  registerDevClient(ctx, uws, apps[0]?.key ?? 'app-key');
  uws.any('/*', (res) => writeReply(res, errorReply(404, 'Not found')));
}
