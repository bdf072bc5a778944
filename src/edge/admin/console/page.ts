// The console's page and assets (console/, copied to dist/console by the build),
// read once at start-up, and the login page answered to anyone without a session.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Reply } from '../../http/respond.js';

/** dist/edge/admin/console/page.js -> dist/console/ */
const ASSET_DIR = fileURLToPath(new URL('../../../console/', import.meta.url));

const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  // ES modules: main.js imports the rest from the same directory.
  ...Object.fromEntries(
    ['main', 'api', 'virtual-list', 'cluster', 'apps', 'channels', 'events'].map((m) => [`${m}.js`, 'text/javascript; charset=utf-8']),
  ),
};

/** The page's own files only, whatever else the directory holds; none may be framed by another site. */
export function consoleAssets(): Map<string, Reply> {
  const out = new Map<string, Reply>();
  for (const [name, contentType] of Object.entries(ASSETS)) {
    const path = join(ASSET_DIR, name);
    if (!existsSync(path)) continue;
    out.set(name, { status: 200, body: readFileSync(path, 'utf8'), contentType, headers: SECURITY_HEADERS });
  }
  return out;
}

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** 401 with a form: the page a browser sees until it logs in (the message is ours, never the input). */
export function loginPage(message: string | null): Reply {
  const body = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Chorus console: log in</title>
<style>
body{font:15px system-ui,sans-serif;background:#0f172a;color:#e2e8f0;display:flex;min-height:100vh;align-items:center;justify-content:center;margin:0}
form{background:#1e293b;padding:2rem;border-radius:8px;min-width:320px;box-shadow:0 8px 30px #0006}
h1{font-size:1.2rem;margin:0 0 1rem}input{width:100%;box-sizing:border-box;padding:.55rem;border-radius:4px;border:1px solid #475569;background:#0f172a;color:#e2e8f0}
button{margin-top:1rem;padding:.55rem 1.2rem;border:0;border-radius:4px;background:#6366f1;color:#fff;font-weight:600;cursor:pointer}
p.error{color:#fca5a5}small{color:#94a3b8;display:block;margin-top:1rem}
</style></head>
<body><form method="post" action="/console/login">
<h1>Chorus console</h1>
${message ? `<p class="error" data-testid="login-error">${escapeHtml(message)}</p>` : ''}
<label for="token">Console token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus data-testid="login-token">
<button type="submit" data-testid="login-submit">Log in</button>
<small>The token is console.token (env CONSOLE_TOKEN) in the node's configuration.</small>
</form></body></html>`;
  return { status: 401, body, contentType: 'text/html; charset=utf-8', headers: SECURITY_HEADERS };
}
