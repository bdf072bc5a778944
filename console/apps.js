// Apps view: each app's cluster-wide totals, polled every 2 s. Rates come from the
// difference of two samples (a node that restarts lowers a sum: clamped at 0), and the
// sparklines keep the last 60 samples of connections and messages in and out per second.
import { api, el, fill, num, Poller } from './api.js';

const POLL_MS = 2000;
const HISTORY = 60;

function sparkline(values, color) {
  const canvas = el('canvas', { width: 90, height: 22, class: 'spark' });
  const g = canvas.getContext('2d');
  if (!g || values.length < 2) return canvas;
  const max = Math.max(1, ...values);
  g.strokeStyle = color;
  g.lineWidth = 1.5;
  g.beginPath();
  values.forEach((v, i) => {
    // Newest at the right edge, so a short history grows from the right as a full one scrolls.
    const x = canvas.width - 1 - (values.length - 1 - i) * ((canvas.width - 2) / (HISTORY - 1));
    const y = canvas.height - 2 - (v / max) * (canvas.height - 4);
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
  });
  g.stroke();
  return canvas;
}

export function appsView(ctx) {
  const tbody = document.getElementById('app-rows');
  /** app id -> { last: sample, history: [{ connections, inRate, outRate }] } */
  const series = new Map();

  function track(app, at) {
    const s = series.get(app.id) ?? { last: null, history: [] };
    series.set(app.id, s);
    let inRate = 0;
    let outRate = 0;
    if (s.last) {
      const dt = Math.max(0.001, (at - s.last.at) / 1000);
      inRate = Math.max(0, (app.messages_in - s.last.in) / dt);
      outRate = Math.max(0, (app.messages_out - s.last.out) / dt);
    }
    s.last = { at, in: app.messages_in, out: app.messages_out };
    s.history.push({ connections: app.connections, inRate, outRate });
    if (s.history.length > HISTORY) s.history.shift();
    return s;
  }

  function row(app, s) {
    const h = s.history;
    const latest = h[h.length - 1];
    const w = app.webhooks;
    return el(
      'tr',
      { 'data-testid': 'app-row', 'data-app-id': app.id },
      el('td', { class: 'mono' }, app.id),
      el('td', { class: 'mono' }, app.key),
      el('td', {}, el('span', { class: `status ${app.enabled ? 'good' : 'bad'}` }, app.enabled ? 'enabled' : 'disabled')),
      el(
        'td',
        { class: 'num' },
        num(app.connections),
        sparkline(
          h.map((p) => p.connections),
          '#38bdf8',
        ),
      ),
      el('td', { class: 'num' }, num(app.peak_connections)),
      el(
        'td',
        { class: 'num' },
        num(latest.inRate),
        sparkline(
          h.map((p) => p.inRate),
          '#a78bfa',
        ),
      ),
      el(
        'td',
        { class: 'num' },
        num(latest.outRate),
        sparkline(
          h.map((p) => p.outRate),
          '#34d399',
        ),
      ),
      el('td', { class: 'num' }, num(app.api_messages)),
      el('td', { class: 'num' }, num(app.client_events)),
      el('td', { class: 'num' }, num(w.sent)),
      el('td', { class: `num ${w.failed > 0 ? 'warn-text' : ''}` }, num(w.failed)),
      el('td', { class: 'num' }, num(w.queued)),
      el('td', { class: `num ${app.rate_limited > 0 ? 'warn-text' : ''}` }, num(app.rate_limited)),
      el('td', { class: 'mono muted' }, app.secret),
    );
  }

  async function refresh() {
    const view = await api('/console/api/apps');
    const ids = new Set(view.apps.map((a) => a.id));
    for (const id of series.keys()) if (!ids.has(id)) series.delete(id);
    fill(tbody, ...view.apps.map((app) => row(app, track(app, view.sampled_at_ms))));
    ctx.appsChanged(view.apps);
    ctx.clearError('apps');
  }

  const poller = new Poller(POLL_MS, refresh, (err) => ctx.showError('apps', `Apps view: ${err.message}`));
  // Always polled, whichever view is open: the sparklines keep their history and the app picker stays current.
  poller.start();
  return { show: () => poller.now(), hide: () => undefined, setApp: () => undefined };
}
