// Live events view: the app's stream (Server-Sent Events, cluster-wide, sampled by the
// server past its per-second budget), kept to the last 5000, filtered by type and
// channel, drawn at most once per frame; and the form that sends a test event.
import { api, appPath, clock, el, fill, num, pretty } from './api.js';
import { VirtualList } from './virtual-list.js';

const KEPT = 5000;
const ROW_HEIGHT = 26;
const RETRY_MS = 3000;
export const EVENT_TYPES = [
  'connection_opened',
  'connection_closed',
  'subscribed',
  'subscription_failed',
  'unsubscribed',
  'api_message',
  'client_event',
  'webhook',
];

/** The short text after the columns: what happened, in a few words. */
function summary(e) {
  switch (e.type) {
    case 'connection_opened':
      return `${e.transport ?? 'ws'}${e.user_id ? ` · user ${e.user_id}` : ''}`;
    case 'connection_closed':
      return `${e.code ?? ''} ${e.reason ?? ''}`.trim();
    case 'subscription_failed':
      return `${e.code ?? ''} ${e.reason ?? ''}`.trim();
    case 'webhook':
      return [
        e.ok ? 'delivered' : 'failed',
        e.status ? `HTTP ${e.status}` : null,
        e.attempts ? `attempt ${e.attempts}` : null,
        e.events ? e.events.join(', ') : null,
        e.url ?? null,
        e.ok ? null : (e.reason ?? null),
      ]
        .filter(Boolean)
        .join(' · ');
    default:
      return e.data === undefined ? (e.user_id ? `user ${e.user_id}` : '') : e.data.slice(0, 160);
  }
}

export function eventsView(ctx) {
  const listEl = document.getElementById('event-list');
  const stateEl = document.querySelector('[data-testid="stream-state"]');
  const skippedEl = document.querySelector('[data-testid="events-skipped"]');
  const shownEl = document.getElementById('events-shown');
  const pauseBtn = document.querySelector('[data-testid="events-pause"]');
  const detailEl = document.getElementById('event-detail');
  const channelFilter = document.querySelector('[data-testid="filter-channel"]');
  const filtersEl = document.getElementById('event-filters');

  let appId = null;
  let source = null;
  let retry = null;
  let visible = false;
  let paused = false;
  let events = [];
  let shown = [];
  let skipped = 0;
  let dirty = false;
  let frame = 0;
  let seq = 0;
  let selected = -1;
  const enabled = new Set(EVENT_TYPES);

  for (const type of EVENT_TYPES) {
    const box = el('input', { type: 'checkbox', 'data-testid': `filter-${type}`, checked: true });
    box.addEventListener('change', () => {
      if (box.checked) enabled.add(type);
      else enabled.delete(type);
      redraw();
    });
    filtersEl.append(el('label', { class: `chip type-${type}` }, box, type.replace('_', ' ')));
  }
  channelFilter.addEventListener('input', () => redraw());

  const list = new VirtualList(listEl, ROW_HEIGHT, (i) => {
    const e = shown[shown.length - 1 - i];
    if (!e) return null;
    const row = el(
      'div',
      { class: `event-cols clickable${e.seq === selected ? ' selected' : ''}`, 'data-testid': 'event-row', 'data-type': e.type },
      el('span', { class: 'mono muted' }, clock(e.ts)),
      el('span', { class: 'mono ellipsis', title: e.node }, e.node),
      el('span', { class: `type type-${e.type}` }, e.type.replace('_', ' ')),
      el('span', { class: 'mono ellipsis', title: e.channel ?? '' }, e.channel ?? ''),
      el('span', { class: 'mono ellipsis' }, e.event ?? ''),
      el('span', { class: 'mono ellipsis' }, e.socket_id ?? ''),
      el('span', { class: 'ellipsis muted' }, summary(e)),
    );
    row.addEventListener('click', () => showDetail(e));
    return row;
  });

  function showDetail(e) {
    selected = e.seq;
    const { seq: _seq, ...plain } = e;
    const parts = [JSON.stringify(plain, null, 2)];
    if (typeof e.data === 'string') parts.push(`\ndata, parsed:\n${pretty(e.data)}`);
    if (e.truncated) parts.push('\n(truncated by the server)');
    detailEl.textContent = parts.join('\n');
    list.draw();
  }

  function matches(e) {
    if (!enabled.has(e.type)) return false;
    const q = channelFilter.value.trim();
    return q === '' || (e.channel ?? '').includes(q);
  }

  function redraw() {
    dirty = true;
    if (frame === 0) frame = requestAnimationFrame(paint);
  }

  function paint() {
    frame = 0;
    if (!dirty || !visible || paused) return;
    dirty = false;
    shown = events.filter(matches);
    list.update(shown.length);
    shownEl.textContent = `${num(shown.length)} of ${num(events.length)} shown`;
    skippedEl.textContent = skipped > 0 ? `${num(skipped)} events skipped` : '';
  }

  function setState(state) {
    stateEl.textContent = state;
    stateEl.dataset.state = state;
  }

  function onBatch(message) {
    let batch;
    try {
      batch = JSON.parse(message.data);
    } catch {
      return;
    }
    if (!Array.isArray(batch.events)) return;
    for (const e of batch.events) {
      if (e && typeof e.type === 'string') events.push({ ...e, seq: ++seq });
    }
    if (events.length > KEPT) events = events.slice(events.length - KEPT);
    skipped += Number(batch.skipped) || 0;
    redraw();
  }

  function close() {
    clearTimeout(retry);
    retry = null;
    if (source) source.close();
    source = null;
  }

  function open() {
    close();
    if (appId === null) return;
    setState('connecting');
    const s = new EventSource(`${appPath(appId)}/events`);
    source = s;
    s.addEventListener('hello', () => setState('live'));
    s.addEventListener('batch', onBatch);
    s.addEventListener('error', () => {
      if (source !== s) return;
      setState('reconnecting');
      // The browser retries a dropped stream by itself; a refused one (401, 404, 503) it gives up on.
      if (s.readyState === EventSource.CLOSED) {
        source = null;
        retry = setTimeout(() => {
          // A session that ended sends the page to the login form (api() does that on a 401).
          api('/console/api/cluster').then(open, (err) => {
            ctx.showError('events', `Live events: ${err.message}`);
            open();
          });
        }, RETRY_MS);
      }
    });
  }

  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    pauseBtn.classList.toggle('active', paused);
    if (!paused) redraw();
  });
  document.querySelector('[data-testid="events-clear"]').addEventListener('click', () => {
    events = [];
    skipped = 0;
    selected = -1;
    detailEl.textContent = 'Pick an event to see it whole.';
    redraw();
  });

  setupSend(ctx, () => appId);

  return {
    show() {
      visible = true;
      // The stream starts the first time the view is opened and then keeps the app's history while other views are shown.
      if (source === null && retry === null) open();
      redraw();
    },
    hide() {
      visible = false;
    },
    setApp(id) {
      if (id === appId) return;
      appId = id;
      events = [];
      skipped = 0;
      selected = -1;
      close();
      setState('connecting');
      if (visible) open();
      redraw();
    },
    prefill(channel) {
      document.querySelector('[data-testid="send-channel"]').value = channel;
    },
  };
}

function setupSend(ctx, currentApp) {
  const form = document.getElementById('send-form');
  const result = document.querySelector('[data-testid="send-result"]');
  const field = (id) => document.querySelector(`[data-testid="${id}"]`);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const appId = currentApp();
    if (appId === null) return;
    const body = { channel: field('send-channel').value.trim(), event: field('send-event').value.trim(), data: field('send-data').value };
    result.className = 'send-result';
    result.textContent = 'sending…';
    api(`${appPath(appId)}/events`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }).then(
      () => {
        result.classList.add('ok');
        result.textContent = `sent to ${body.channel}`;
      },
      (err) => {
        result.classList.add('error');
        result.textContent = err.message;
      },
    );
  });
  fill(result);
}
