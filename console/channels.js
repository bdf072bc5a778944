// Channels view: the app's occupied channels, searchable and fetched a page at a time
// as the list scrolls (so 100k channels cost one page per screen), and one channel in
// detail: counts, presence members with their info, and a cache channel's cached event.
import { api, appPath, el, fill, num, pretty, Poller } from './api.js';
import { VirtualList } from './virtual-list.js';

const PAGE = 200;
const ROW_HEIGHT = 30;
const LIST_REFRESH_MS = 5000;
const DETAIL_REFRESH_MS = 2000;
const SEARCH_DEBOUNCE_MS = 250;

export function channelsView(ctx) {
  const listEl = document.getElementById('channel-list');
  const totalEl = document.getElementById('channel-total');
  const detailEl = document.getElementById('channel-detail');
  const search = document.querySelector('[data-testid="channel-search"]');
  let appId = null;
  let query = '';
  let selected = null;
  /** page index -> channels; pages in flight */
  let pages = new Map();
  const loading = new Set();
  let generation = 0;
  let total = 0;

  const list = new VirtualList(listEl, ROW_HEIGHT, (i) => {
    const page = pages.get(Math.floor(i / PAGE));
    const ch = page?.[i % PAGE];
    if (!ch) {
      void loadPage(Math.floor(i / PAGE));
      return el('div', { class: 'channel-cols muted' }, 'loading…');
    }
    const row = el(
      'div',
      { class: `channel-cols clickable${ch.name === selected ? ' selected' : ''}`, 'data-testid': 'channel-row', 'data-channel': ch.name },
      el('span', { class: 'mono ellipsis', title: ch.name }, ch.name),
      el('span', { class: 'num' }, num(ch.subscription_count)),
      el('span', { class: 'num' }, ch.user_count === null ? '–' : num(ch.user_count)),
    );
    row.addEventListener('click', () => select(ch.name));
    return row;
  });

  async function loadPage(index) {
    if (appId === null || loading.has(index)) return;
    loading.add(index);
    const asked = generation;
    try {
      const q = new URLSearchParams({ q: query, offset: String(index * PAGE), limit: String(PAGE) });
      const view = await api(`${appPath(appId)}/channels?${q}`);
      if (asked !== generation) return;
      pages.set(index, view.channels);
      total = view.total;
      totalEl.textContent = num(total);
      list.update(total);
      ctx.clearError('channels');
    } catch (err) {
      ctx.showError('channels', `Channels: ${err.message}`);
    } finally {
      if (asked === generation) loading.delete(index);
    }
  }

  /** Starts over from the first page (new app, new search, or the periodic refresh). */
  async function reload() {
    if (appId === null) return;
    generation++;
    loading.clear();
    const [first, last] = list.range();
    const wanted = new Set([0, Math.floor(first / PAGE), Math.floor(Math.max(0, last - 1) / PAGE)]);
    pages = new Map([...pages].filter(([i]) => wanted.has(i)));
    await Promise.all([...wanted].map((i) => loadPage(i)));
  }

  function select(name) {
    selected = name;
    ctx.prefillChannel(name);
    list.draw();
    detail.now();
    detail.start();
  }

  function member(m) {
    return el(
      'tr',
      { 'data-testid': 'member-row', 'data-user-id': m.id },
      el('td', { class: 'mono' }, m.id),
      el('td', {}, el('pre', { class: 'json' }, m.info === undefined ? '–' : pretty(JSON.stringify(m.info)))),
    );
  }

  function cacheBlock(cache) {
    if (!cache) return null;
    if (!cache.present) return el('p', { class: 'hint' }, 'Cache: empty (nothing published since the last expiry)');
    return el(
      'div',
      {},
      el(
        'h4',
        {},
        `Cached event ${cache.event ?? ''}`,
        cache.ttl_s === null ? null : el('span', { class: 'hint' }, ` · expires in ${cache.ttl_s}s`),
      ),
      el('pre', { class: 'json' }, pretty(cache.data)),
      cache.truncated ? el('p', { class: 'hint' }, '(truncated by the server)') : null,
    );
  }

  async function refreshDetail() {
    if (selected === null || appId === null) return;
    const name = selected;
    let ch;
    try {
      ch = await api(`${appPath(appId)}/channels/${encodeURIComponent(name)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      if (name === selected) fill(detailEl, el('h3', { class: 'mono' }, name), el('p', { class: 'hint' }, 'channel not occupied'));
      return;
    }
    if (name !== selected) return;
    const members =
      ch.members === null
        ? null
        : el(
            'div',
            {},
            el(
              'h4',
              {},
              `Members (${num(ch.members_total)}${ch.members.length < ch.members_total ? `, first ${ch.members.length} shown` : ''})`,
            ),
            el('table', { class: 'grid compact' }, el('tbody', {}, ...ch.members.map(member))),
          );
    fill(
      detailEl,
      el('h3', { class: 'mono' }, ch.name),
      el(
        'dl',
        { class: 'facts' },
        el('dt', {}, 'Type'),
        el('dd', {}, ch.type),
        el('dt', {}, 'Subscriptions'),
        el('dd', {}, num(ch.subscription_count)),
        ch.user_count === null ? null : el('dt', {}, 'Users'),
        ch.user_count === null ? null : el('dd', {}, num(ch.user_count)),
      ),
      members,
      cacheBlock(ch.cache),
    );
    ctx.clearError('channel');
  }

  const listPoller = new Poller(LIST_REFRESH_MS, reload, (err) => ctx.showError('channels', `Channels: ${err.message}`));
  const detail = new Poller(DETAIL_REFRESH_MS, refreshDetail, (err) => ctx.showError('channel', `Channel: ${err.message}`));

  let debounce = null;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      query = search.value.trim();
      pages = new Map();
      listEl.scrollTop = 0;
      listPoller.now();
    }, SEARCH_DEBOUNCE_MS);
  });

  return {
    show() {
      listPoller.start();
      if (selected !== null) detail.start();
    },
    hide() {
      listPoller.stop();
      detail.stop();
    },
    setApp(id) {
      appId = id;
      selected = null;
      pages = new Map();
      total = 0;
      list.update(0);
      fill(detailEl, el('p', { class: 'hint' }, 'Pick a channel to see its members and cache.'));
      listPoller.now();
    },
  };
}
