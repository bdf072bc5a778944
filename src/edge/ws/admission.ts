// Whether one more client connection of an app key is let in: the per-address gate,
// the app (known, enabled, origin allowed) and the app's connection quota. Shared by
// the WebSocket upgrade and the HTTP fallback sessions, so both refuse alike.
import type { App } from '../../apps/app.js';
import { CloseCode, protocolError, type ProtocolError } from '../../protocol/codes.js';
import { originAllowed } from '../origins.js';
import type { WsDeps } from './settings.js';

export type Admission =
  | { ok: true; app: App; quota: boolean }
  /** `rate429`: Sockudo answers an address over websocket_rate_limit with HTTP 429, not a close */
  | { ok: false; refusal: ProtocolError; appId: string | null; rate429: boolean };

/**
 * Counts the address in the gate when admitted (the caller gives it back with `ipGate.closed`
 * when the connection ends); a refusal leaves nothing counted. `gone()` says whether the
 * client left meanwhile: then the quota is given back and a refusal returned.
 */
export async function admitConnection(d: WsDeps, key: string, origin: string, ip: string, gone: () => boolean): Promise<Admission> {
  const limits = d.settings.ipLimits;
  const overLimit = limits ? await d.ipGate.tryOpen(ip) : null;
  if (overLimit) {
    d.metrics.rateLimit('unknown', 'websocket_ip');
    const rate429 = overLimit === 'rate' && limits?.rate?.refusal === 'http_429';
    return refused(protocolError(CloseCode.OVER_CAPACITY, 'Too many connections from this address, retry later', true), null, rate429);
  }
  let app: App | null;
  try {
    app = await d.apps.findByKey(key);
  } catch (err) {
    d.ipGate.closed(ip);
    d.log.warn({ err: (err as Error).message }, 'app lookup failed while admitting a connection');
    return refused(protocolError(CloseCode.OVER_CAPACITY, 'App store unavailable, try again later', true), null);
  }
  const refusal = appRefusal(app, origin);
  if (refusal || !app) {
    d.ipGate.closed(ip);
    return refused(refusal!, app?.id ?? null);
  }
  const admission = await d.core.admit(app);
  if (admission.refusal) {
    d.ipGate.closed(ip);
    return refused(admission.refusal, app.id);
  }
  if (gone()) {
    d.ipGate.closed(ip);
    d.core.withdraw(app.id, admission.quota);
    return refused(protocolError(CloseCode.RECONNECT, 'Client went away', true), app.id);
  }
  return { ok: true, app, quota: admission.quota };
}

/**
 * The verdict without waiting, when there is one: no per-address limit to ask, the app in
 * memory and no connection quota to reserve (the usual connect: no promise, no microtask).
 * Null sends the caller to admitConnection. Nothing is counted, as there.
 */
export function admitNow(d: WsDeps, key: string, origin: string): Admission | null {
  if (d.settings.ipLimits) return null;
  const app = d.apps.peekByKey(key);
  if (app === undefined) return null;
  const refusal = appRefusal(app, origin);
  if (refusal || !app) return refused(refusal!, app?.id ?? null);
  const verdict = d.core.admitNow(app);
  if (verdict === null) return null;
  return verdict.refusal ? refused(verdict.refusal, app.id) : { ok: true, app, quota: false };
}

function appRefusal(app: App | null, origin: string): ProtocolError | null {
  if (!app) return protocolError(CloseCode.APP_NOT_FOUND, 'App key does not exist', true);
  if (!app.enabled) return protocolError(CloseCode.APP_DISABLED, 'App is disabled', true);
  if (!originAllowed(app.allowed_origins, origin)) return protocolError(CloseCode.UNAUTHORIZED, 'Origin not allowed', true);
  return null;
}

function refused(refusal: ProtocolError, appId: string | null, rate429 = false): Admission {
  return { ok: false, refusal, appId, rate429 };
}
