// The browser test client (client/, copied to dist/client by the build) and its
// development endpoints: channel auth, user sign-in and publish, all signed here with
// the app's secret for whoever asks. That is why it is off unless asked for.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { App } from '../../apps/app.js';
import { AppStoreError } from '../../apps/store.js';
import { BODY_TIMEOUT_MS } from '../../config/limits.js';
import { channelInfo, channelNameProblem, needsAuth } from '../../protocol/channels.js';
import { MAX_USER_ID_LENGTH, SOCKET_ID_PATTERN } from '../../protocol/limits.js';
import { channelStringToSign, hmacSha256Hex, safeEqual, userStringToSign } from '../../protocol/signatures.js';
import { readBody } from './body.js';
import { afterStored, checkEvent, publishAll } from './publish.js';
import { errorReply, jsonReply, statusLine, writeReply, type Reply } from './respond.js';
import type { HttpDeps } from './settings.js';

/** dist/edge/http/dev-client.js -> dist/client/ */
const ASSET_DIR = fileURLToPath(new URL('../../client/', import.meta.url));
const AUTH_BODY_LIMIT = 16 * 1024;
const PUBLISH_BODY_LIMIT = 1024 * 1024;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

export interface DevClientSettings {
  enabled: boolean;
  /** the app key the page starts with */
  defaultKey: string;
  /** when set, the signing endpoints need it in X-Chorus-Client-Token (required beyond loopback) */
  token: string | null;
}

const TOKEN_HEADER = 'x-chorus-client-token';

/**
 * The key for encrypted channels in the dev client: SHA-256 of the app secret. A server
 * SDK given this as its encryption master key publishes events the page can decrypt.
 */
export const devEncryptionMasterKey = (secret: string): Buffer => createHash('sha256').update(secret).digest();

/** What the `pusher` SDK returns as shared_secret for an encrypted channel. */
const sharedSecret = (secret: string, channel: string): string =>
  createHash('sha256')
    .update(Buffer.concat([Buffer.from(channel), devEncryptionMasterKey(secret)]))
    .digest('base64');

type Fields = Record<string, unknown>;

/** pusher-js posts form fields; scripts may post JSON. */
function parseFields(body: Buffer, contentType: string): Fields | null {
  const text = body.toString('utf8');
  if (contentType.includes('application/json')) {
    try {
      const value = JSON.parse(text) as unknown;
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : null;
    } catch {
      return null;
    }
  }
  return Object.fromEntries(new URLSearchParams(text));
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

async function appFor(d: HttpDeps, fields: Fields): Promise<App | Reply> {
  const key = str(fields.key);
  if (!key) return errorReply(400, '"key" (the app key) is required');
  const app = await d.apps.findByKey(key);
  if (!app) return errorReply(404, `Unknown app key ${key.slice(0, 64)}`);
  if (!app.enabled) return errorReply(403, 'App is disabled');
  return app;
}

const isReply = (v: App | Reply): v is Reply => typeof (v as Reply).status === 'number' && 'body' in v;

/** The presence/sign-in user from the form: an id and an optional display name. */
function userFrom(fields: Fields): { id: string; name: string } | Reply {
  const id = str(fields.user_id);
  if (!id) return errorReply(400, '"user_id" is required');
  if (id.length > MAX_USER_ID_LENGTH) return errorReply(400, `"user_id" is longer than ${MAX_USER_ID_LENGTH} characters`);
  const name = typeof fields.user_name === 'string' && fields.user_name.length > 0 ? fields.user_name.slice(0, 100) : id;
  return { id, name };
}

async function channelAuth(d: HttpDeps, fields: Fields): Promise<Reply> {
  const found = await appFor(d, fields);
  if (isReply(found)) return found;
  const app = found;
  const socketId = str(fields.socket_id);
  if (!socketId || !SOCKET_ID_PATTERN.test(socketId)) return errorReply(400, '"socket_id" is missing or invalid');
  const channel = fields.channel_name;
  const problem = channelNameProblem(channel, app.max_channel_name_length);
  if (problem) return errorReply(400, problem);
  const name = channel as string;
  const { kind } = channelInfo(name);
  if (!needsAuth(kind)) return errorReply(400, `${name} is not a private, presence or encrypted channel`);
  const sign = (channelData?: string) => `${app.key}:${hmacSha256Hex(app.secret, channelStringToSign(socketId, name, channelData))}`;
  if (kind === 'presence') {
    const user = userFrom(fields);
    if ('status' in user) return user;
    const channelData = JSON.stringify({ user_id: user.id, user_info: { name: user.name } });
    return jsonReply(200, { auth: sign(channelData), channel_data: channelData });
  }
  if (kind === 'encrypted') return jsonReply(200, { auth: sign(), shared_secret: sharedSecret(app.secret, name) });
  return jsonReply(200, { auth: sign() });
}

async function userSignin(d: HttpDeps, fields: Fields): Promise<Reply> {
  const found = await appFor(d, fields);
  if (isReply(found)) return found;
  const socketId = str(fields.socket_id);
  if (!socketId || !SOCKET_ID_PATTERN.test(socketId)) return errorReply(400, '"socket_id" is missing or invalid');
  const user = userFrom(fields);
  if ('status' in user) return user;
  const userData = JSON.stringify({ id: user.id, user_info: { name: user.name } });
  return jsonReply(200, { auth: `${found.key}:${hmacSha256Hex(found.secret, userStringToSign(socketId, userData))}`, user_data: userData });
}

async function publish(d: HttpDeps, fields: Fields): Promise<Reply> {
  const found = await appFor(d, fields);
  if (isReply(found)) return found;
  const checked = checkEvent(found, fields, false);
  if (!checked.ok) return checked.reply;
  const { event } = checked;
  // The node holds no encryption master key, so it cannot encrypt (see README).
  if (event.channels.some((c) => channelInfo(c).kind === 'encrypted')) {
    return errorReply(400, 'The dev client cannot encrypt: publish to encrypted channels from a server SDK');
  }
  const stored: Array<Promise<void>> = [];
  publishAll(d, found, event, stored);
  return afterStored(stored, jsonReply(200, {}));
}

type FieldHandler = (d: HttpDeps, fields: Fields) => Promise<Reply>;

function postRoute(d: HttpDeps, handler: FieldHandler, limit: number, token: string | null) {
  return (res: HttpResponse, req: HttpRequest) => {
    if (token !== null && !safeEqual(req.getHeader(TOKEN_HEADER), token)) {
      // Refused before the body is read, so the connection closes after the answer.
      writeReply(res, {
        ...errorReply(401, 'The test client needs its token in X-Chorus-Client-Token (open the page with ?token=...)'),
        close: true,
      });
      return;
    }
    const notServing = d.notServing();
    if (notServing !== null) {
      writeReply(res, { ...errorReply(503, `Server is not serving yet (${notServing}); retry`), close: true });
      return;
    }
    const contentType = req.getHeader('content-type');
    const declared = Number(req.getHeader('content-length') || 0);
    let aborted = false;
    const reader = readBody(res, limit, declared, BODY_TIMEOUT_MS, d.bodyBudget, () => '');
    res.onAborted(() => {
      aborted = true;
      reader.abort();
    });
    void reader.result
      .then(async (body): Promise<Reply> => {
        if (!body.ok) {
          const status = body.reason === 'too_large' ? 413 : 408;
          return { ...errorReply(status, status === 413 ? 'Request body is too large' : 'Request body not received in time'), close: true };
        }
        const fields = parseFields(body.body, contentType);
        return fields ? handler(d, fields) : errorReply(400, 'Body must be a form or a JSON object');
      })
      .catch((err): Reply => {
        if (err instanceof AppStoreError) return errorReply(503, 'App store unavailable, try again later');
        d.log.error({ err }, 'dev client endpoint failed');
        return errorReply(500, 'Internal server error');
      })
      .then((reply) => {
        if (!aborted) res.cork(() => writeReply(res, reply));
      });
  };
}

interface Asset {
  type: string;
  body: Buffer;
}

/** Every file of dist/client, read once; the page gets the path prefix and default key. */
function loadAssets(prefix: string, defaultKey: string): Map<string, Asset> | null {
  if (!existsSync(join(ASSET_DIR, 'index.html'))) return null;
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(ASSET_DIR)) {
    const type = CONTENT_TYPES[extname(name)];
    if (!type) continue;
    let body = readFileSync(join(ASSET_DIR, name));
    if (name === 'index.html') {
      const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
      body = Buffer.from(body.toString('utf8').replaceAll('__PREFIX__', attr(prefix)).replaceAll('__DEFAULT_KEY__', attr(defaultKey)));
    }
    assets.set(name, { type, body });
  }
  return assets;
}

function writeAsset(res: HttpResponse, asset: Asset): void {
  res.writeStatus(statusLine(200));
  res.writeHeader('Content-Type', asset.type);
  res.writeHeader('Cache-Control', 'no-store');
  res.writeHeader('X-Content-Type-Options', 'nosniff');
  res.end(asset.body);
}

/** Registers the page and its endpoints under `<path_prefix>/client` when enabled. */
export function registerDevClient(d: HttpDeps, uws: TemplatedApp, settings: DevClientSettings): void {
  if (!settings.enabled) return;
  const base = d.settings.pathPrefix + '/client';
  uws.post(base + '/auth', postRoute(d, channelAuth, AUTH_BODY_LIMIT, settings.token));
  uws.post(base + '/signin', postRoute(d, userSignin, AUTH_BODY_LIMIT, settings.token));
  uws.post(base + '/publish', postRoute(d, publish, PUBLISH_BODY_LIMIT, settings.token));

  const assets = loadAssets(d.settings.pathPrefix, settings.defaultKey);
  if (!assets) {
    d.log.warn({ dir: ASSET_DIR }, 'browser test client enabled but its files are missing; run npm run build');
    return;
  }
  const index = assets.get('index.html')!;
  uws.get(base, (res) => writeAsset(res, index));
  uws.get(base + '/', (res) => writeAsset(res, index));
  uws.get(base + '/:file', (res, req) => {
    const asset = assets.get(req.getParameter(0) ?? '');
    if (asset) writeAsset(res, asset);
    else writeReply(res, errorReply(404, 'Not found'));
  });
  d.log.warn(
    { path: base + '/' },
    'browser test client enabled: its endpoints sign channel auth for anyone; never enable it in production',
  );
}
