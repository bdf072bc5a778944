// Cluster view: every node as the serving node's cluster sees it, polled each second.
// A node that leaves the membership stays one more moment as a red "gone" row, so an
// operator watching sees it die rather than silently vanish.
import { api, bytes, duration, el, fill, num, Poller } from './api.js';

const LATE_MS = 3000;
const GONE_KEPT_MS = 10_000;

function status(node) {
  if (!node.reported) return ['no answer', 'bad'];
  if (node.broker && node.broker.state === 'down') return ['broker down', 'bad'];
  if (node.heartbeat_age_ms > LATE_MS) return ['late', 'warn'];
  return ['ok', 'good'];
}

function broker(node) {
  if (!node.broker) return '–';
  if (node.broker.state === 'none') return 'none (local)';
  return node.broker.rtt_ms === null ? node.broker.state : `${node.broker.state} · ${num(node.broker.rtt_ms)} ms`;
}

export function clusterView(ctx) {
  const tbody = document.getElementById('node-rows');
  const countEl = document.querySelector('[data-testid="node-count"]');
  const driverEl = document.getElementById('cluster-driver');
  /** node id -> { node, goneSince } */
  const known = new Map();

  function row(id, node, goneSince) {
    const [label, tone] = goneSince === null ? status(node) : ['gone', 'bad'];
    const nameCell = el('td', { class: 'mono' }, id, node.self ? el('span', { class: 'tag' }, 'serving') : null);
    return el(
      'tr',
      { 'data-testid': 'node-row', 'data-node-id': id, class: goneSince === null ? null : 'gone' },
      el('td', {}, el('span', { class: `status ${tone}`, 'data-testid': 'node-status' }, label)),
      nameCell,
      el('td', { class: 'mono' }, node.address ?? '–'),
      el('td', { class: 'mono' }, node.pid === null ? '–' : String(node.pid)),
      el('td', {}, node.version ?? '–'),
      el('td', {}, duration(node.uptime_s)),
      el('td', { class: 'num' }, num(node.connections)),
      el('td', { class: 'num' }, node.event_loop_lag_ms === null ? '–' : `${num(node.event_loop_lag_ms)} ms`),
      el('td', { class: 'num' }, bytes(node.rss_bytes)),
      el('td', { class: 'num' }, bytes(node.heap_used_bytes)),
      el('td', {}, broker(node)),
      el('td', { class: 'num' }, goneSince === null ? `${num(node.heartbeat_age_ms)} ms` : 'left the cluster'),
    );
  }

  async function refresh() {
    const view = await api('/console/api/cluster');
    const now = Date.now();
    const present = new Set();
    for (const node of view.nodes) {
      present.add(node.node_id);
      known.set(node.node_id, { node, goneSince: null });
    }
    for (const [id, entry] of known) {
      if (present.has(id)) continue;
      if (entry.goneSince === null) entry.goneSince = now;
      else if (now - entry.goneSince > GONE_KEPT_MS) known.delete(id);
    }
    const ids = [...known.keys()].sort((a, b) => Number(known.get(b).node.self) - Number(known.get(a).node.self) || a.localeCompare(b));
    fill(tbody, ...ids.map((id) => row(id, known.get(id).node, known.get(id).goneSince)));
    countEl.textContent = String(view.nodes.length);
    driverEl.textContent = `adapter: ${view.driver}`;
    ctx.clearError('cluster');
  }

  const poller = new Poller(1000, refresh, (err) => ctx.showError('cluster', `Cluster view: ${err.message}`));
  return { show: () => poller.start(), hide: () => poller.stop(), setApp: () => undefined };
}
