// The operator console's routes on the metrics port (docs/CONSOLE.md): the page and
// its assets, login and logout, the JSON views, the live stream (Server-Sent Events)
// and the test publish. Everything but the login answers 401 without credentials.
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { App } from '../../../apps/app.js';
import { BODY_TIMEOUT_MS } from '../../../config/limits.js';
import { channelInfo } from '../../../protocol/channels.js';
import { BodyBudget, readBody } from '../../http/body.js';
import { afterStored, checkEvent, publishAll } from '../../http/publish.js';
import { errorReply, jsonReply, writeReply, type Reply } from '../../http/respond.js';
import { clearedCookie, ConsoleAuth, sessionCookie, type Credentials } from './auth.js';
import { consoleAssets, loginPage } from './page.js';
import { ViewerHub } from './viewers.js';
import { CHANNEL_PAGE_MAX, ConsoleViews, type ViewDeps } from './views.js';

export interface ConsoleSettings {
  token: string;
  maxEventsPerSecond: number;
}

export interface ConsoleDeps extends ViewDeps {
  settings: ConsoleSettings;
  log: Logger;
}

const LOGIN_BODY_LIMIT = 4 * 1024;
const SEND_BODY_LIMIT = 1024 * 1024;
/** A wrong token is answered this late: guessing over the network gets slow. */
const FAILED_LOGIN_DELAY_MS = 500;

/** No CORS headers: the console is for its own page (and scripts holding the token) only. */
const answer = (res: HttpResponse, reply: Reply): void => writeReply(res, reply, []);

const credentials = (req: HttpRequest): Credentials => ({ cookie: req.getHeader('cookie'), authorization: req.getHeader('authorization') });

const unauthorized = (): Reply => errorReply(401, 'The console needs its token: log in at /console or send Authorization: Bearer <token>');

/** A route parameter as sent (percent-encoded); null when it does not decode. */
function param(req: HttpRequest, i: number): string | null {
  try {
    return decodeURIComponent(req.getParameter(i) ?? '');
  } catch {
    return null;
  }
}

/** Answers once, unless the client went away first. */
function later(res: HttpResponse, work: () => Promise<Reply>, log: Logger): void {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  work()
    .catch((err: Error): Reply => {
      log.error({ err: err.message }, 'console request failed');
      return errorReply(500, 'The console could not answer; see the node log');
    })
    .then((reply) => {
      if (!aborted) res.cork(() => answer(res, { ...reply, headers: { 'Cache-Control': 'no-store', ...reply.headers } }));
    })
    .catch(() => undefined);
}

export function registerConsoleRoutes(d: ConsoleDeps, uws: TemplatedApp): () => void {
  const auth = new ConsoleAuth(d.settings.token);
  const views = new ConsoleViews(d);
  const hub = new ViewerHub(d.core.tap, d.settings.maxEventsPerSecond);
  const assets = consoleAssets();
  const budget = new BodyBudget({ nodeBytes: 4 * 1024 * 1024, ipBytes: 4 * 1024 * 1024, perIpAbove: 4 * 1024 * 1024 });

  const findApp = async (id: string | null): Promise<App | null> => (id === null ? null : d.apps.findById(id));

  /** A GET answered with JSON from `work`, for whoever holds the token. */
  const api = (path: string, work: (req: HttpRequest) => () => Promise<Reply>) =>
    uws.get(path, (res, req) => {
      if (!auth.allowed(credentials(req))) return answer(res, unauthorized());
      later(res, work(req), d.log);
    });

  const page = (res: HttpResponse, req: HttpRequest) => {
    if (!auth.allowed(credentials(req))) return answer(res, loginPage(null));
    answer(res, assets.get('index.html') ?? errorReply(500, 'console assets missing from dist/console: run npm run build'));
  };
  uws.get('/console', page);
  uws.get('/console/', page);
  uws.get('/console/assets/:file', (res, req) => {
    if (!auth.allowed(credentials(req))) return answer(res, unauthorized());
    answer(res, assets.get(req.getParameter(0) ?? '') ?? errorReply(404, 'No such asset'));
  });

  uws.post('/console/login', (res, req) => {
    const declared = Number(req.getHeader('content-length') || 0);
    const contentType = req.getHeader('content-type');
    const reader = readBody(res, LOGIN_BODY_LIMIT, declared, BODY_TIMEOUT_MS, budget, () => '');
    later(
      res,
      async () => {
        const body = await reader.result;
        if (!body.ok)
          return { ...loginPage('The login form could not be read.'), status: body.reason === 'too_large' ? 413 : 400, close: true };
        const token = tokenFrom(body.body.toString('utf8'), contentType);
        if (token === null || !auth.tokenMatches(token)) {
          await new Promise((r) => setTimeout(r, FAILED_LOGIN_DELAY_MS));
          return loginPage('Wrong token.');
        }
        return {
          status: 303,
          body: '',
          contentType: 'text/plain',
          headers: { Location: '/console', 'Set-Cookie': sessionCookie(auth.newSession()) },
        };
      },
      d.log,
    );
  });
  uws.post('/console/logout', (res) => {
    answer(res, { status: 303, body: '', contentType: 'text/plain', headers: { Location: '/console', 'Set-Cookie': clearedCookie } });
  });

  api('/console/api/cluster', () => async () => jsonReply(200, await views.cluster()));
  api('/console/api/apps', () => async () => jsonReply(200, await views.appsView()));
  api('/console/api/apps/:app/channels', (req) => {
    const id = param(req, 0);
    const query = new URLSearchParams(req.getQuery() ?? '');
    return async () => {
      const app = await findApp(id);
      if (!app) return errorReply(404, 'No such app');
      const offset = Math.max(0, Math.floor(Number(query.get('offset') ?? 0)) || 0);
      const limit = Math.min(CHANNEL_PAGE_MAX, Math.max(1, Math.floor(Number(query.get('limit') ?? 200)) || 200));
      return jsonReply(200, await views.channels(app, (query.get('q') ?? '').slice(0, 200), offset, limit));
    };
  });
  api('/console/api/apps/:app/channels/:channel', (req) => {
    const id = param(req, 0);
    const name = param(req, 1);
    return async () => {
      const app = await findApp(id);
      if (!app) return errorReply(404, 'No such app');
      if (name === null || name.length === 0 || name.length > 1024) return errorReply(400, 'Invalid channel name');
      const view = await views.channel(app, name);
      return view === null ? errorReply(404, 'The channel is not occupied') : jsonReply(200, view);
    };
  });

  uws.get('/console/api/apps/:app/events', (res, req) => {
    if (!auth.allowed(credentials(req))) return answer(res, unauthorized());
    const id = param(req, 0);
    let aborted = false;
    res.onAborted(() => (aborted = true));
    findApp(id).then(
      (app) => {
        if (aborted) return;
        res.cork(() => {
          if (!app) return answer(res, errorReply(404, 'No such app'));
          if (hub.full)
            return answer(res, { ...errorReply(503, 'Too many console viewers on this node'), headers: { 'Retry-After': '5' } });
          res
            .writeStatus('200 OK')
            .writeHeader('Content-Type', 'text/event-stream; charset=utf-8')
            .writeHeader('Cache-Control', 'no-store')
            .writeHeader('X-Accel-Buffering', 'no');
          hub.open(app.id, res);
        });
      },
      (err: Error) => {
        d.log.warn({ err: err.message }, 'console stream: app lookup failed');
        if (!aborted) res.cork(() => answer(res, errorReply(503, 'The app store did not answer')));
      },
    );
  });

  uws.post('/console/api/apps/:app/events', (res, req) => {
    if (!auth.allowed(credentials(req))) return answer(res, { ...unauthorized(), close: true });
    // JSON only: a cross-site form cannot send it without a preflight this port never grants.
    if (!/^application\/json\b/i.test(req.getHeader('content-type'))) {
      return answer(res, { ...errorReply(415, 'Send the event as application/json'), close: true });
    }
    const id = param(req, 0);
    const reader = readBody(res, SEND_BODY_LIMIT, Number(req.getHeader('content-length') || 0), BODY_TIMEOUT_MS, budget, () => '');
    later(
      res,
      async () => {
        const body = await reader.result;
        if (!body.ok) return { ...errorReply(body.reason === 'too_large' ? 413 : 400, 'The body could not be read'), close: true };
        const app = await findApp(id);
        if (!app) return errorReply(404, 'No such app');
        return sendTestEvent(d, app, body.body);
      },
      d.log,
    );
  });

  uws.any('/console/*', (res, req) => {
    answer(res, auth.allowed(credentials(req)) ? errorReply(404, 'Not found') : unauthorized());
  });

  return () => hub.close();
}

/** The token of a login form (urlencoded) or JSON body. */
function tokenFrom(text: string, contentType: string): string | null {
  if (/^application\/json\b/i.test(contentType)) {
    try {
      const v = (JSON.parse(text) as { token?: unknown }).token;
      return typeof v === 'string' ? v : null;
    } catch {
      return null;
    }
  }
  return new URLSearchParams(text).get('token');
}

/** Publishes as the HTTP API would, with the app's limits; the node signs nothing for the browser. */
async function sendTestEvent(d: ConsoleDeps, app: App, raw: Buffer): Promise<Reply> {
  let fields: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return errorReply(400, 'Body must be a JSON object');
    fields = parsed as Record<string, unknown>;
  } catch {
    return errorReply(400, 'Body must be JSON');
  }
  const checked = checkEvent(app, { name: fields.event, data: fields.data ?? '', channel: fields.channel }, true);
  if (!checked.ok) return checked.reply;
  if (checked.event.channels.some((c) => channelInfo(c).kind === 'encrypted')) {
    return errorReply(400, 'The console cannot encrypt: publish to encrypted channels from a server SDK');
  }
  const stored: Array<Promise<void>> = [];
  publishAll({ core: d.core }, app, checked.event, stored);
  return afterStored(stored, jsonReply(200, { ok: true, channels: checked.event.channels.length }));
}
