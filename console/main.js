// The console's shell: who serves the page, the app picker, the tabs (and #view/app in
// the address, so a reload or a shared link opens the same place), logout, and the error
// banner each view reports into. Only the open view polls (the apps view always does).
import { api, el, fill } from './api.js';
import { appsView } from './apps.js';
import { channelsView } from './channels.js';
import { clusterView } from './cluster.js';
import { eventsView } from './events.js';

const VIEWS = ['cluster', 'apps', 'channels', 'events'];
const picker = document.querySelector('[data-testid="app-select"]');
const banner = document.getElementById('banner');
const errors = new Map();

let current = null;
let appId = null;

const ctx = {
  showError(source, message) {
    errors.set(source, message);
    renderBanner();
  },
  clearError(source) {
    if (errors.delete(source)) renderBanner();
  },
  appsChanged(apps) {
    const ids = apps.map((a) => a.id);
    const have = [...picker.options].map((o) => o.value);
    if (ids.join('\n') !== have.join('\n')) {
      fill(picker, ...apps.map((a) => el('option', { value: a.id }, a.enabled ? a.id : `${a.id} (disabled)`)));
      if (appId !== null && ids.includes(appId)) picker.value = appId;
    }
    if ((appId === null || !ids.includes(appId)) && ids.length > 0) chooseApp(ids[0]);
  },
  prefillChannel(name) {
    views.events.prefill(name);
  },
};

const views = {
  cluster: clusterView(ctx),
  apps: appsView(ctx),
  channels: channelsView(ctx),
  events: eventsView(ctx),
};

function renderBanner() {
  banner.hidden = errors.size === 0;
  banner.textContent = [...errors.values()].join(' · ');
}

function writeHash() {
  const hash = `#${current}${appId === null ? '' : `/${encodeURIComponent(appId)}`}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

function showView(name) {
  if (!VIEWS.includes(name)) name = 'cluster';
  if (current === name) return;
  if (current !== null) views[current].hide();
  current = name;
  for (const section of document.querySelectorAll('main > section')) section.hidden = section.dataset.view !== name;
  for (const tab of document.querySelectorAll('.tabs button')) tab.setAttribute('aria-selected', String(tab.dataset.view === name));
  views[name].show();
  writeHash();
}

function chooseApp(id) {
  if (id === appId) return;
  appId = id;
  picker.value = id;
  for (const v of Object.values(views)) v.setApp(id);
  writeHash();
}

for (const tab of document.querySelectorAll('.tabs button')) tab.addEventListener('click', () => showView(tab.dataset.view));
picker.addEventListener('change', () => chooseApp(picker.value));

document.querySelector('[data-testid="logout"]').addEventListener('click', () => {
  fetch('/console/logout', { method: 'POST', credentials: 'same-origin' }).finally(() => location.assign('/console'));
});

// #view/app from the address, then who serves the page.
{
  const [view, app] = location.hash.replace(/^#/, '').split('/');
  if (app) {
    try {
      chooseApp(decodeURIComponent(app));
    } catch {
      /* a mangled address opens the first app */
    }
  }
  showView(view || 'cluster');
}
api('/console/api/cluster').then(
  (view) => {
    document.querySelector('[data-testid="serving-node"]').textContent = `served by ${view.node_id}`;
  },
  (err) => ctx.showError('serving', `The serving node did not answer: ${err.message}`),
);
