// SIGHUP: re-read the static apps from the config file without dropping connections.
// Changed apps apply to connected sockets at once; a removed or disabled app's
// sockets are closed with the code a new connection would get.
import type { App } from '../apps/app.js';
import { StaticAppStore } from '../apps/static-store.js';
import type { AppStore } from '../apps/store.js';
import type { LocalRegistry } from '../conn/registry.js';
import { CloseCode } from '../protocol/codes.js';
import { errorFrame } from '../protocol/frames.js';

export interface ReloadResult {
  added: string[];
  removed: string[];
  changed: string[];
}

export async function reloadApps(apps: AppStore, registry: LocalRegistry, next: readonly App[]): Promise<ReloadResult | null> {
  if (!(apps instanceof StaticAppStore)) return null;
  const before = new Map((await apps.list()).map((a) => [a.id, a]));
  const after = new Map(next.map((a) => [a.id, a]));
  const result: ReloadResult = { added: [], removed: [], changed: [] };
  for (const id of after.keys()) if (!before.has(id)) result.added.push(id);
  for (const [id, app] of before) {
    const updated = after.get(id);
    if (!updated) result.removed.push(id);
    else if (JSON.stringify(updated) !== JSON.stringify(app)) result.changed.push(id);
  }
  apps.replace(next);
  for (const conn of registry.all()) {
    const updated = after.get(conn.app.id);
    if (!updated || updated.key !== conn.app.key) {
      conn.close(CloseCode.APP_NOT_FOUND, 'app removed', errorFrame(CloseCode.APP_NOT_FOUND, 'App no longer exists'));
    } else if (!updated.enabled) {
      conn.close(CloseCode.APP_DISABLED, 'app disabled', errorFrame(CloseCode.APP_DISABLED, 'App is disabled'));
    } else {
      conn.app = updated;
    }
  }
  return result;
}
