// Health routes and the catch-all on the main port: `/up` for balancers, `/up/{app}`.
import type { TemplatedApp } from 'uWebSockets.js';
import { errorReply, writeReply, type Reply } from './respond.js';
import type { HttpDeps } from './settings.js';

const health = (status: number, text: string): Reply => ({
  status,
  body: text,
  contentType: 'text/plain',
  headers: { 'X-Health-Check': text },
});

const unready = (why: string): Reply => ({ ...health(503, 'ERROR'), body: `ERROR: ${why}` });

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/** `notServing`: null when the node serves, else why not (the body of /up's 503 says it). */
export function registerHealthRoutes(d: HttpDeps, uws: TemplatedApp, notServing: () => string | null): void {
  const p = d.settings.pathPrefix;
  uws.get(p + '/up', (res) => {
    const why = notServing();
    writeReply(res, d.isDraining() ? health(503, 'ERROR') : why !== null ? unready(why) : health(200, 'OK'));
  });
  uws.get(p + '/up/:appId', (res, req) => {
    const appId = safeDecode(req.getParameter(0) ?? '');
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    if (appId === null) {
      writeReply(res, health(404, 'NOT_FOUND'));
      return;
    }
    void d.apps
      .findById(appId)
      .then((app) => {
        if (!app) return health(404, 'NOT_FOUND');
        const why = notServing();
        return !app.enabled || d.isDraining() ? health(503, 'ERROR') : why !== null ? unready(why) : health(200, 'OK');
      })
      .catch(() => health(503, 'ERROR'))
      .then((reply) => {
        if (!aborted) res.cork(() => writeReply(res, reply));
      });
  });
  uws.get(p + '/', (res) => writeReply(res, health(200, 'OK')));
}

/** Last: every path nothing else answered. */
export function registerCatchAll(uws: TemplatedApp): void {
  uws.any('/*', (res) => writeReply(res, errorReply(404, 'Not found')));
}
