// The Pusher HTTP API and health routes on the node's main port. A request is
// authenticated before its body is read (the signature covers the query, body_md5
// included), bodies are read within a node-wide budget, and no exception leaves a
// uWS callback.
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { App } from '../../apps/app.js';
import { kb } from '../../apps/app.js';
import { AppStoreError } from '../../apps/store.js';
import { BODY_TIMEOUT_MS } from '../../config/limits.js';
import { NO_BODY, readBody, refuseAfterBody, type BodyReader, type BodyResult } from './body.js';
import { clientIp } from '../client-ip.js';
import { handlers, isReadEndpoint, type Endpoint } from './endpoints.js';
import { bodyProblem, parseQuery, signatureProblem } from './request-auth.js';
import { secondsToWindowEnd } from '../../rate-limit/limiter.js';
import { CorsPolicy } from './cors.js';
import { errorReply, writeReply, type Reply } from './respond.js';
import type { HttpDeps } from './settings.js';

/** The largest body an app may legitimately send: a full batch of full events. */
export function bodyLimitOf(app: App): number {
  const perEvent = (kb(app.max_event_payload_in_kb) ?? 1024 * 1024) + 64 * 1024;
  return Math.max(1024 * 1024, perEvent * Math.max(1, app.max_event_batch_size ?? 100));
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

const BODY_REFUSALS: Record<Exclude<BodyResult, { ok: true }>['reason'], Reply> = {
  too_large: { ...errorReply(413, 'Request body is too large'), close: true },
  timeout: { ...errorReply(408, 'Request body not received in time'), close: true },
  busy: { ...errorReply(503, 'Too many request bodies in flight, retry later'), close: true, headers: { 'Retry-After': '1' } },
  busy_ip: { ...errorReply(429, 'Too many request bodies in flight from this address'), close: true },
  aborted: { ...errorReply(400, 'Request aborted'), close: true },
};

/** What is known without waiting: the verdict on the app and the signature, or null to go on. */
function earlyRefusal(app: App | null, appId: string, request: SignedRequest): Reply | null {
  if (!app) return errorReply(404, `Unknown app ${appId.slice(0, 64)}`);
  if (!app.enabled) return errorReply(403, 'App is disabled');
  const problem = signatureProblem(app, request.method, request.paths, request.params, request.hasBody);
  return problem ? errorReply(401, problem) : null;
}

interface SignedRequest {
  method: string;
  paths: readonly string[];
  params: Map<string, string>;
  hasBody: boolean;
}

/** The body bound for an app: what its limits allow, never above http_api.request_limit_in_mb. */
const bodyBound = (app: App, maxBodyBytes: number): number => Math.min(bodyLimitOf(app), maxBodyBytes);

const NO_ARGS: Array<string | null> = [];
const READ_LIMITED: Reply = {
  ...errorReply(429, 'Too many requests: max_read_requests_per_second exceeded'),
  headers: { 'Retry-After': '1' },
};

/** Sockudo's answer to an address over api_rate_limit, with its headers (its clients back off on them). */
function ipLimited(maxRequests: number, windowSeconds: number): Reply {
  const reset = String(secondsToWindowEnd(windowSeconds * 1000));
  return {
    ...errorReply(429, 'Too many requests from this address'),
    headers: { 'X-RateLimit-Limit': String(maxRequests), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': reset, 'Retry-After': reset },
  };
}

function apiRoute(d: HttpDeps, cors: CorsPolicy, endpoint: Endpoint, argCount: number) {
  const { settings, metrics } = d;
  const isRead = isReadEndpoint(endpoint);
  const isPublish = endpoint === 'events' || endpoint === 'batch_events';
  return (res: HttpResponse, req: HttpRequest) => {
    let aborted = false;
    let replied = false;
    let body: BodyReader = NO_BODY;
    /** true once the whole body is in (or there is none): only then may the connection stay open */
    let bodyIn = true;
    let appIdForMetrics = 'unknown';
    let origin = '';
    const respond = (reply: Reply) => {
      if (replied) return;
      replied = true;
      metrics.httpCall(appIdForMetrics, endpoint, reply.status);
      if (aborted) return;
      if (appIdForMetrics !== 'unknown') metrics.app(appIdForMetrics).httpBytesOut.inc(reply.body.length);
      // Answering before the body was read: the connection goes, so its unread bytes cannot follow.
      res.cork(() => writeReply(res, bodyIn ? reply : { ...reply, close: true }, cors.responseHeaders(origin)));
    };
    const fail = (err: Error) => {
      body.cancel();
      if (err instanceof AppStoreError) return respond(errorReply(503, 'App store unavailable, try again later'));
      d.log.error({ err: err.message, endpoint }, 'HTTP API handler failed');
      respond(errorReply(500, 'Internal server error'));
    };
    try {
      res.onAborted(() => {
        aborted = true;
        body.abort();
      });
      if (!cors.anyOrigin) origin = req.getHeader('origin');
      const method = req.getMethod().toUpperCase();
      const path = req.getUrl();
      const params = parseQuery(req.getQuery() ?? '');
      const appId = safeDecode(req.getParameter(0) ?? '');
      const args = argCount === 0 ? NO_ARGS : Array.from({ length: argCount }, (_, i) => safeDecode(req.getParameter(i + 1) ?? ''));
      const declared = Number(req.getHeader('content-length') || 0);
      const isPost = method === 'POST';
      // uWS headers are readable only now, before the first await.
      const idempotencyHeader = isPublish ? req.getHeader('x-idempotency-key') : '';
      // A chunked body declares no length: it is read all the same, and signed like any other.
      const chunked = req.getHeader('transfer-encoding').toLowerCase().includes('chunked');
      const hasBody = isPost && (declared !== 0 || chunked);
      bodyIn = !isPost;
      // Only the per-IP limits read the address (reading it costs ~9% of a publish).
      let ip = '';
      const ipOf = () => (ip ||= clientIp(res, req, settings.apiIpLimit?.trustHops ?? 0));
      if (settings.apiIpLimit) ipOf();
      if (d.isDraining()) return respond({ ...errorReply(503, 'Server is shutting down, retry on another node'), close: true });
      const notServing = d.notServing();
      if (notServing !== null)
        return respond({
          ...errorReply(503, `Server is not serving yet (${notServing}); retry`),
          headers: { 'Retry-After': '2' },
          close: true,
        });
      if (appId === null || args.some((a) => a === null)) return respond(errorReply(400, 'Malformed percent-encoding in path'));
      if (!Number.isFinite(declared) || declared < 0) return respond(errorReply(400, 'Invalid Content-Length'));
      const paths = settings.pathPrefix && path.startsWith(settings.pathPrefix) ? [path, path.slice(settings.pathPrefix.length)] : [path];
      const signed: SignedRequest = { method, paths, params, hasBody };
      // Apps known without waiting are checked before a byte of the body is read (unless a
      // per-address limit must answer first: it may need the broker).
      const known = settings.apiIpLimit ? undefined : d.apps.peekById(appId);
      if (known !== undefined) {
        const refusal = earlyRefusal(known, appId, signed);
        if (refusal) {
          if (known) appIdForMetrics = known.id;
          // Read (and dropped) first when small, so the refusal cannot be lost to a reset.
          return refuseAfterBody(res, isPost ? declared : 0, isPost && chunked, BODY_TIMEOUT_MS, (drained) => {
            if (drained) bodyIn = true;
            respond(refusal);
          });
        }
      }
      if (isPost)
        body = readBody(
          res,
          known ? bodyBound(known, settings.maxBodyBytes) : settings.maxBodyBytes,
          declared,
          BODY_TIMEOUT_MS,
          d.bodyBudget,
          ipOf,
          hasBody,
        );

      /** Everything after the body: its checks, the read limit, the endpoint (a promise only where one waits). */
      const afterBody = (app: App, read: BodyResult): Reply | Promise<Reply> => {
        if (!read.ok) return BODY_REFUSALS[read.reason];
        bodyIn = true;
        metrics.app(app.id).httpBytesIn.inc(read.body.length);
        if (read.body.length > bodyBound(app, settings.maxBodyBytes)) return BODY_REFUSALS.too_large;
        const problem = bodyProblem(params, read.body);
        if (problem) return errorReply(401, problem);
        const call = { params, args: args as string[], body: read.body, idempotencyHeader };
        if (isRead && app.max_read_requests_per_second !== null) {
          return d.rateLimiter.consume(`read:${app.id}`, 1, app.max_read_requests_per_second).then((allowed) => {
            if (allowed) return handlers[endpoint](d, app, call);
            metrics.rateLimit(app.id, 'read_requests');
            return READ_LIMITED;
          });
        }
        return handlers[endpoint](d, app, call);
      };

      if (known) {
        // The usual call: app cached, signature good. It runs to its answer as the body arrives.
        appIdForMetrics = known.id;
        body.whenRead((read) => {
          try {
            const out = afterBody(known, read);
            if (out instanceof Promise) out.then(respond, fail);
            else respond(out);
          } catch (err) {
            fail(err as Error);
          }
        });
        return;
      }
      (async (): Promise<Reply> => {
        const limit = settings.apiIpLimit;
        if (limit && !(await d.rateLimiter.consume(`api-ip:${ip}`, 1, limit.maxRequests, limit.windowSeconds * 1000))) {
          metrics.rateLimit('unknown', 'api_ip'); // the id is not checked yet: no client-chosen label values
          return ipLimited(limit.maxRequests, limit.windowSeconds);
        }
        const app = await d.apps.findById(appId);
        const refusal = earlyRefusal(app, appId, signed);
        if (refusal || !app) return refusal ?? errorReply(404, `Unknown app ${appId.slice(0, 64)}`);
        appIdForMetrics = app.id;
        return afterBody(app, await body.result);
      })().then(respond, fail);
    } catch (err) {
      // The last resort: nothing a request holds may end the process.
      metrics.handlerError('http');
      d.log.error({ err: (err as Error).message, endpoint }, 'HTTP API handler threw');
      body.cancel();
      respond({ ...errorReply(500, 'Internal server error'), close: true });
    }
  };
}

/** CORS preflight: browsers send it before a cross-origin API call. */
function preflight(cors: CorsPolicy) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const headers = cors.preflightHeaders(cors.anyOrigin ? '' : req.getHeader('origin'));
    res.writeStatus('204 No Content');
    for (const [k, v] of headers) res.writeHeader(k, v);
    res.end();
  };
}

function methodNotAllowed(allowed: string) {
  return (res: HttpResponse, req: HttpRequest) => {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const declared = Number(req.getHeader('content-length') || 0);
    const chunked = req.getHeader('transfer-encoding').toLowerCase().includes('chunked');
    const reply = { ...errorReply(405, `Method not allowed; use ${allowed}`), headers: { Allow: allowed } };
    refuseAfterBody(res, Number.isFinite(declared) && declared >= 0 ? declared : Infinity, chunked, BODY_TIMEOUT_MS, (drained) => {
      if (!aborted) res.cork(() => writeReply(res, { ...reply, close: !drained }));
    });
  };
}

export const API_ROUTES: ReadonlyArray<[string, 'get' | 'post', Endpoint, number]> = [
  ['/apps/:appId/events', 'post', 'events', 0],
  ['/apps/:appId/batch_events', 'post', 'batch_events', 0],
  ['/apps/:appId/channels', 'get', 'channels', 0],
  ['/apps/:appId/channels/:channel', 'get', 'channel', 1],
  ['/apps/:appId/channels/:channel/users', 'get', 'users', 1],
  ['/apps/:appId/channels/:channel/history', 'get', 'history', 1],
  ['/apps/:appId/users/:userId/terminate_connections', 'post', 'terminate_connections', 1],
  ['/apps/:appId/users/:userId/force_reconnect', 'post', 'force_reconnect', 1],
];

export function registerApiRoutes(d: HttpDeps, uws: TemplatedApp): void {
  const p = d.settings.pathPrefix;
  const cors = new CorsPolicy(d.settings.cors);
  const answerPreflight = preflight(cors);
  for (const [pattern, method, endpoint, args] of API_ROUTES) {
    uws[method](p + pattern, apiRoute(d, cors, endpoint, args));
    // Per route: uWS prefers the exact pattern's `any` (405) over the wildcard OPTIONS below.
    uws.options(p + pattern, answerPreflight);
    uws.any(p + pattern, methodNotAllowed(method.toUpperCase()));
  }
  uws.options(p + '/*', answerPreflight);
}
