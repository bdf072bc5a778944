// What every view shares: the console's JSON API (any 401 goes back to the login page),
// element building (server strings only ever become text, never markup) and number formats.

/** A JSON answer from the console API; throws an Error with .status on anything but 2xx. */
export async function api(path, init = {}) {
  const res = await fetch(path, { credentials: 'same-origin', ...init, headers: { Accept: 'application/json', ...(init.headers ?? {}) } });
  if (res.status === 401) {
    location.assign('/console');
    throw Object.assign(new Error('The console session ended: log in again'), { status: 401 });
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) throw Object.assign(new Error(body?.error ?? `HTTP ${res.status}`), { status: res.status });
  return body;
}

/** An element with attributes (`class`, `data-*`, `title`...) and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  return node;
}

/** Replaces a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
}

export const appPath = (appId) => `/console/api/apps/${encodeURIComponent(appId)}`;

export function num(n) {
  if (n === null || n === undefined) return '–';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: n < 10 ? 1 : 0 });
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function clock(ms) {
  const d = new Date(ms);
  const pad = (v, n = 2) => String(v).padStart(n, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** JSON text pretty-printed when it parses, else as it came. */
export function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Runs `work` now and every `ms` while started; one call in flight at a time, errors shown by `onError`. */
export class Poller {
  constructor(ms, work, onError) {
    this.ms = ms;
    this.work = work;
    this.onError = onError;
    this.timer = null;
    this.running = false;
    this.seq = 0;
  }
  start() {
    if (this.running) return;
    this.running = true;
    void this.tick();
  }
  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
  }
  /** Runs at once (e.g. after a filter changed) and keeps the rhythm from there. */
  now() {
    if (!this.running) return;
    clearTimeout(this.timer);
    void this.tick();
  }
  async tick() {
    const seq = ++this.seq;
    try {
      await this.work();
    } catch (err) {
      this.onError(err);
    }
    if (this.running && seq === this.seq) this.timer = setTimeout(() => void this.tick(), this.ms);
  }
}
