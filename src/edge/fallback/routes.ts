// pusher-js's HTTP fallbacks on the node's main port, beside the WebSocket endpoint:
//   POST <prefix>[/pusher]/app/<key>/<server>/<session>/xhr_streaming  a stream of lines
//   POST <prefix>[/pusher]/app/<key>/<server>/<session>/xhr            a long poll
//   POST <prefix>[/pusher]/app/<key>/<server>/<session>/xhr_send       frames from the client
// (`/pusher` is pusher-js's default httpPath). The first receive request of a session id
// admits it like a WebSocket upgrade; no exception leaves a uWS callback.
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { BODY_TIMEOUT_MS } from '../../config/limits.js';
import { CloseCode, protocolError, type ProtocolError } from '../../protocol/codes.js';
import { errorFrame } from '../../protocol/frames.js';
import { clientIp } from '../client-ip.js';
import { NO_BODY, readBody, refuseAfterBody, type BodyReader, type BodyResult } from '../http/body.js';
import { statusLine } from '../http/respond.js';
import { admitConnection } from '../ws/admission.js';
import { handleClientMessage } from '../ws/dispatch.js';
import { connectionClosed, connectionOpened } from '../ws/lifecycle.js';
import { newSocketId, protocolProblem } from '../ws/upgrade.js';
import { closeLine, messagesLine, OPEN_LINE, parseSendBody, validSessionParts } from './framing.js';
import { FallbackConnection, type PendingResponse, type SessionHooks } from './session.js';
import type { FallbackDeps } from './settings.js';
import { capture, forward, FORWARDED_HEADER } from './forward.js';
import { clockMs } from '../../conn/clock.js';

const BODY_STATUS: Record<Exclude<BodyResult, { ok: true }>['reason'], number> = {
  too_large: 413,
  timeout: 408,
  busy: 503,
  busy_ip: 429,
  aborted: 400,
};

function decoded(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

export function registerFallbackRoutes(d: FallbackDeps, uws: TemplatedApp): void {
  if (!d.fallback.enabled) return;
  const cors = d.cors;
  const corsFor = (origin: string) => cors.responseHeaders(cors.anyOrigin ? '' : origin);
  const startResponse = (res: HttpResponse, origin: string, status = 200) => {
    res.writeStatus(statusLine(status));
    res.writeHeader('Content-Type', 'application/javascript; charset=UTF-8');
    res.writeHeader('Cache-Control', 'no-store, no-cache, must-revalidate, max-age=0');
    // nginx would buffer a stream otherwise.
    res.writeHeader('X-Accel-Buffering', 'no');
    for (const [k, v] of corsFor(origin)) res.writeHeader(k, v);
  };
  const plain = (res: HttpResponse, status: number, body: string, origin: string, close = false) => {
    res.cork(() => {
      res.writeStatus(statusLine(status));
      res.writeHeader('Content-Type', 'text/plain; charset=UTF-8');
      for (const [k, v] of corsFor(origin)) res.writeHeader(k, v);
      res.end(body, close);
    });
  };
  const hooks: SessionHooks = {
    publishToEngine: (topic, frame) => d.publishToEngine(topic, frame),
    topics: d.sessionTopics,
    startResponse: (res, origin) => startResponse(res, origin),
    closed: (conn, code, reason) => connectionClosed(d, conn, conn.gated ? conn.ip : '', code, () => reason),
    drop: (conn) => {
      d.sessions.remove(conn, conn.ip);
      if (d.fallback.maxSessionsPerIp !== null) d.sessionCap?.release(conn.ip);
      d.directory?.release(conn.sessionKey);
    },
  };

  /** A session refused as a WebSocket would be: opened, told the error, closed with the code. */
  const refuse = (pending: PendingResponse, origin: string, refusal: ProtocolError, appId: string | null) => {
    const { code, message } = refusal;
    if (code !== null) d.metrics.connectionError(appId ?? 'unknown', code);
    if (pending.gone) return;
    pending.gone = true;
    const body = OPEN_LINE + messagesLine([errorFrame(code, message)]) + closeLine(code ?? CloseCode.RECONNECT, message.slice(0, 100));
    pending.res.cork(() => {
      startResponse(pending.res, origin);
      pending.res.end(body);
    });
  };

  /** Whether the address may open one more session (counted for the box when this is a worker of one). */
  const sessionPlace = async (ip: string, cap: number): Promise<boolean> =>
    d.sessionCap ? d.sessionCap.take(ip, cap) : d.sessions.ofIp(ip) < cap;

  interface Opening {
    key: string;
    sessionKey: string;
    streaming: boolean;
    origin: string;
    ip: string;
    protocol: string;
  }

  const open = async (pending: PendingResponse, o: Opening): Promise<void> => {
    if (d.isDraining())
      return refuse(pending, o.origin, protocolError(CloseCode.RECONNECT, 'Server is shutting down, reconnect', true), null);
    const badProtocol = protocolProblem(o.protocol);
    if (badProtocol) return refuse(pending, o.origin, badProtocol, null);
    const cap = d.fallback.maxSessionsPerIp;
    if (cap !== null && !(await sessionPlace(o.ip, cap))) {
      d.metrics.rateLimit('unknown', 'websocket_ip');
      return refuse(
        pending,
        o.origin,
        protocolError(CloseCode.OVER_CAPACITY, 'Too many sessions from this address, retry later', true),
        null,
      );
    }
    // The address gate counts sessions only when a per-address limit is on, as for WebSockets.
    const gated = d.settings.ipLimits !== null;
    const admission = await admitConnection(d, o.key, o.origin, gated ? o.ip : '', () => pending.gone);
    if (!admission.ok) {
      if (cap !== null) d.sessionCap?.release(o.ip);
      if (admission.rate429 && !pending.gone) {
        pending.gone = true;
        return plain(pending.res, 429, 'Too many connection attempts from this address, retry later', o.origin);
      }
      return refuse(pending, o.origin, admission.refusal, admission.appId);
    }
    const { app, quota } = admission;
    // A second request for the same new session may have opened it while this one waited.
    const raced = d.sessions.get(o.sessionKey);
    if (raced) {
      if (gated) d.ipGate.closed(o.ip);
      d.core.withdraw(app.id, quota);
      if (cap !== null) d.sessionCap?.release(o.ip);
      return raced.attach(pending, o.streaming, o.origin, false);
    }
    d.core.reserve(app.id);
    const m = d.metrics.app(app.id);
    const conn = new FallbackConnection(
      o.sessionKey,
      o.streaming ? 'xhr_streaming' : 'xhr_polling',
      o.ip,
      gated,
      newSocketId(d.core.registry),
      app,
      quota,
      m,
      d.settings.controlBudget.burst,
      hooks,
    );
    d.sessions.add(conn, o.ip);
    connectionOpened(d, conn);
    conn.attach(pending, o.streaming, o.origin, true);
  };

  const receive = (streaming: boolean) => (res: HttpResponse, req: HttpRequest) => {
    const pending: PendingResponse = { res, gone: false, onGone: null };
    res.onAborted(() => {
      pending.gone = true;
      pending.onGone?.();
    });
    try {
      const key = decoded(req.getParameter(0) ?? '');
      const server = req.getParameter(1) ?? '';
      const session = req.getParameter(2) ?? '';
      const origin = req.getHeader('origin');
      if (key === null || key === '' || !validSessionParts(server, session)) {
        pending.gone = true;
        return plain(res, 404, 'Not found', origin);
      }
      const sessionKey = key + '\n' + server + '/' + session;
      const existing = d.sessions.get(sessionKey);
      if (existing) {
        d.directory?.touch(sessionKey);
        return existing.attach(pending, streaming, origin, false);
      }
      const opening: Opening = {
        key,
        sessionKey,
        streaming,
        origin,
        ip: clientIp(res, req, d.fallback.trustHops),
        protocol: req.getQuery('protocol') ?? '',
      };
      // In a box, the session may be another worker's (this request came on another connection).
      const directory = req.getHeader(FORWARDED_HEADER) === '1' ? null : d.directory;
      const captured = directory ? capture('POST', req.getUrl(), req.getQuery() ?? '', (h) => req.getHeader(h)) : null;
      const openHere = async () => {
        if (directory && captured) {
          const claim = await directory.claim(sessionKey);
          if (!claim.mine) {
            if (claim.holder !== null && claim.holder !== directory.self) return forward(pending, claim.holder, captured, null);
            if (pending.gone) return;
            pending.gone = true;
            return plain(res, 503, 'The session is opening on another worker; retry', origin);
          }
        }
        await open(pending, opening);
        // Refused (no session made): its place in the directory goes with it.
        if (directory && !d.sessions.get(sessionKey)) directory.release(sessionKey);
      };
      openHere().catch((err: Error) => {
        d.log.error({ err: err.message }, 'opening a fallback session failed');
        refuse(pending, origin, protocolError(CloseCode.OVER_CAPACITY, 'Server error, try again later', true), null);
      });
    } catch (err) {
      guardFailed(pending, err);
    }
  };

  const guardFailed = (pending: PendingResponse, err: unknown) => {
    d.metrics.handlerError('http');
    d.log.error({ err: (err as Error)?.message ?? String(err) }, 'a fallback handler threw; the request is closed');
    if (pending.gone) return;
    pending.gone = true;
    try {
      pending.res.close();
    } catch {
      /* already gone */
    }
  };

  const send = (res: HttpResponse, req: HttpRequest) => {
    const pending: PendingResponse = { res, gone: false, onGone: null };
    let body: BodyReader = NO_BODY;
    res.onAborted(() => {
      pending.gone = true;
      body.abort();
      pending.onGone?.();
    });
    try {
      const key = decoded(req.getParameter(0) ?? '');
      const server = req.getParameter(1) ?? '';
      const session = req.getParameter(2) ?? '';
      const origin = req.getHeader('origin');
      const sessionKey = key !== null && validSessionParts(server, session) ? key + '\n' + server + '/' + session : null;
      const conn = sessionKey !== null ? d.sessions.get(sessionKey) : undefined;
      const declared = Number(req.getHeader('content-length') || 0);
      if (!Number.isFinite(declared) || declared < 0) return plain(res, 400, 'Invalid Content-Length', origin, true);
      const readSendBody = () =>
        readBody(res, d.fallback.maxSendBytes, declared, BODY_TIMEOUT_MS, d.bodyBudget, () => clientIp(res, req, d.fallback.trustHops));
      const directory = req.getHeader(FORWARDED_HEADER) === '1' ? null : d.directory;
      if (!conn && directory && sessionKey !== null) {
        const captured = capture('POST', req.getUrl(), req.getQuery() ?? '', (h) => req.getHeader(h));
        body = readSendBody();
        body.result
          .then(async (read) => {
            if (pending.gone) return;
            if (!read.ok) return plain(res, BODY_STATUS[read.reason], 'Request body refused: ' + read.reason, origin, true);
            const holder = await directory.holderOf(sessionKey);
            if (pending.gone) return;
            if (holder === null || holder === directory.self) return plain(res, 404, 'Session not found', origin);
            forward(pending, holder, captured, read.body);
          })
          .catch((err: unknown) => guardFailed(pending, err));
        return;
      }
      if (!conn || conn.closed) {
        const chunked = req.getHeader('transfer-encoding').toLowerCase().includes('chunked');
        return refuseAfterBody(res, declared, chunked, BODY_TIMEOUT_MS, (drained) => {
          if (!pending.gone) plain(res, 404, 'Session not found', origin, !drained);
        });
      }
      body = readSendBody();
      body.result
        .then((read) => {
          if (pending.gone) return;
          if (!read.ok) return plain(res, BODY_STATUS[read.reason], 'Request body refused: ' + read.reason, origin, true);
          const parsed = parseSendBody(read.body);
          if (!parsed.ok) return plain(res, 400, parsed.reason, origin);
          if (conn.closed) return plain(res, 404, 'Session not found', origin);
          // `[]` is pusher-js's heartbeat: activity, nothing to dispatch.
          conn.lastSeen = clockMs();
          conn.pingSentAt = 0;
          for (const frame of parsed.frames) {
            if (conn.closed) break;
            try {
              handleClientMessage(d, conn, frame, false);
            } catch (err) {
              if (!(err instanceof RangeError)) throw err;
              conn.send(errorFrame(null, 'Invalid message: data is nested too deeply'));
            }
          }
          plain(res, 204, '', origin);
        })
        .catch((err: unknown) => guardFailed(pending, err));
    } catch (err) {
      body.cancel();
      guardFailed(pending, err);
    }
  };

  const p = d.fallback.pathPrefix;
  for (const base of [p + '/app/:key/:server/:session', p + '/pusher/app/:key/:server/:session']) {
    uws.post(base + '/xhr_streaming', receive(true));
    uws.post(base + '/xhr', receive(false));
    uws.post(base + '/xhr_send', send);
  }
}
