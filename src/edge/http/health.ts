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

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

export function registerHealthRoutes(d: HttpDeps, uws: TemplatedApp, ready: () => boolean): void {
  const p = d.settings.pathPrefix;
  uws.get(p + '/up', (res) => writeReply(res, d.isDraining() || !ready() ? health(503, 'ERROR') : health(200, 'OK')));
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
      .then((app) => (!app ? health(404, 'NOT_FOUND') : !app.enabled || d.isDraining() ? health(503, 'ERROR') : health(200, 'OK')))
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
