// SIGHUP: re-read the static apps from the config file without dropping connections.
// Changed apps apply to connected sockets at once; a removed or disabled app's
// sockets are closed with the code a new connection would get.
import type { NodeContext } from '../context.js';
import { CloseCode } from '../protocol/codes.js';
import { errorFrame } from '../protocol/frames.js';
import { closeWith } from '../ws/socket.js';
import type { App } from './app.js';
import { StaticAppStore } from './static-store.js';

export interface ReloadResult {
  added: string[];
  removed: string[];
  changed: string[];
}

export async function reloadApps(ctx: NodeContext, next: readonly App[]): Promise<ReloadResult | null> {
  if (!(ctx.apps instanceof StaticAppStore)) return null;
  const before = new Map((await ctx.apps.list()).map((a) => [a.id, a]));
  const after = new Map(next.map((a) => [a.id, a]));
  const result: ReloadResult = { added: [], removed: [], changed: [] };
  for (const id of after.keys()) if (!before.has(id)) result.added.push(id);
  for (const [id, app] of before) {
    const updated = after.get(id);
    if (!updated) result.removed.push(id);
    else if (JSON.stringify(updated) !== JSON.stringify(app)) result.changed.push(id);
  }
  ctx.apps.replace(next);
  for (const sock of [...ctx.registry.sockets.values()]) {
    if (!sock.app) continue;
    const updated = after.get(sock.app.id);
    if (!updated || updated.key !== sock.app.key) {
      closeWith(sock, CloseCode.APP_NOT_FOUND, errorFrame(CloseCode.APP_NOT_FOUND, 'App no longer exists'), 'app removed');
    } else if (!updated.enabled) {
      closeWith(sock, CloseCode.APP_DISABLED, errorFrame(CloseCode.APP_DISABLED, 'App is disabled'), 'app disabled');
    } else {
      sock.app = updated;
    }
  }
  return result;
}
