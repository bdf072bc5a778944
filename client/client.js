// Chorus test client: plain pusher-js against the node that serves this page.
// Channel auth, sign-in and publishing go through the node's development endpoints
// (<prefix>/client/auth, /client/signin, /client/publish), which exist only while this page is enabled.
(function () {
  'use strict';

  var MAX_LOG = 500;
  var $ = function (id) {
    return document.getElementById(id);
  };
  var meta = function (name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute('content') : '';
  };

  var pusher = null;
  /** channel name -> { name, kind, cache, channel, state, detail } */
  var channels = new Map();
  var log = [];
  var logCounts = new Map();
  var logFilter = '';

  // ---------- helpers ----------

  function kindOf(name) {
    if (name.indexOf('private-encrypted-') === 0) return 'encrypted';
    if (name.indexOf('private-') === 0) return 'private';
    if (name.indexOf('presence-') === 0) return 'presence';
    return 'public';
  }

  function isCache(name) {
    return /^(private-encrypted-|private-|presence-)?cache-/.test(name);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function pretty(data) {
    if (data === undefined) return '';
    if (typeof data === 'string') {
      try {
        return JSON.stringify(JSON.parse(data), null, 2);
      } catch (e) {
        return data;
      }
    }
    try {
      return JSON.stringify(data, null, 2);
    } catch (e) {
      return String(data);
    }
  }

  /** JSON when it parses, the plain text otherwise. */
  function parseLoose(text) {
    try {
      return JSON.parse(text);
    } catch (e) {
      return text;
    }
  }

  function settings() {
    var host = $('host').value.trim() || location.hostname;
    var tls = $('tls').checked;
    var port = Number($('port').value) || (tls ? 443 : 80);
    var prefix = $('prefix').value.trim().replace(/\/+$/, '');
    if (prefix && prefix.charAt(0) !== '/') prefix = '/' + prefix;
    var hostPart = host.indexOf(':') >= 0 ? '[' + host + ']' : host;
    return {
      host: host,
      port: port,
      tls: tls,
      prefix: prefix,
      key: $('key').value.trim(),
      userId: $('user-id').value.trim(),
      userName: $('user-name').value.trim(),
      httpBase: (tls ? 'https://' : 'http://') + hostPart + ':' + port + prefix,
    };
  }

  function showResult(id, ok, text) {
    var node = $(id);
    node.textContent = text;
    node.className = 'result ' + (ok ? 'ok' : 'bad');
  }

  // ---------- event log ----------

  function addLog(channel, event, data, flags) {
    var entry = { time: new Date(), channel: channel, event: event, data: data, flags: flags || {} };
    log.push(entry);
    logCounts.set(channel, (logCounts.get(channel) || 0) + 1);
    if (log.length > MAX_LOG) {
      var dropped = log.shift();
      logCounts.set(dropped.channel, logCounts.get(dropped.channel) - 1);
    }
    renderTabs();
    if (!logFilter || logFilter === channel) {
      var list = $('log');
      list.insertBefore(renderEntry(entry), list.firstChild);
      while (list.children.length > MAX_LOG) list.removeChild(list.lastChild);
    }
  }

  function renderEntry(entry) {
    var li = el('li', 'entry');
    if (entry.flags.sent) li.classList.add('sent');
    if (entry.flags.error) li.classList.add('error');
    if (/^pusher(_internal)?:/.test(entry.event) || entry.channel === 'connection') li.classList.add('internal');
    li.dataset.channel = entry.channel;
    li.dataset.event = entry.event;
    var time = el(
      'time',
      null,
      entry.time.toLocaleTimeString([], { hour12: false }) + '.' + String(entry.time.getMilliseconds()).padStart(3, '0'),
    );
    time.dateTime = entry.time.toISOString();
    li.appendChild(time);
    li.appendChild(el('span', 'where', entry.channel));
    var body = el('div');
    var name = el('div', 'event', entry.event);
    if (entry.flags.sent) name.appendChild(el('span', 'dir', entry.flags.sent));
    body.appendChild(name);
    var text = pretty(entry.data);
    if (text) body.appendChild(el('pre', 'data', text));
    li.appendChild(body);
    return li;
  }

  function renderLog() {
    var list = $('log');
    list.textContent = '';
    for (var i = log.length - 1; i >= 0; i--) {
      if (!logFilter || log[i].channel === logFilter) list.appendChild(renderEntry(log[i]));
    }
  }

  function renderTabs() {
    var tabs = $('log-tabs');
    tabs.textContent = '';
    var add = function (value, label, count) {
      var b = el('button', 'tab', label);
      b.type = 'button';
      b.dataset.channel = value;
      b.setAttribute('role', 'tab');
      b.setAttribute('aria-selected', String(logFilter === value));
      b.appendChild(el('span', 'count', count));
      b.addEventListener('click', function () {
        logFilter = value;
        renderTabs();
        renderLog();
      });
      tabs.appendChild(b);
    };
    add('', 'All', log.length);
    logCounts.forEach(function (count, channel) {
      if (count > 0 || channel === logFilter) add(channel, channel, count);
    });
  }

  // ---------- connection ----------

  function setBadge(state) {
    var badge = $('state');
    badge.textContent = state;
    badge.dataset.state = state;
    badge.className = 'badge badge-' + state;
    var id = pusher && state === 'connected' ? pusher.connection.socket_id : null;
    $('socket-id').textContent = id || '–';
    var via = id && pusher.connection.connection && pusher.connection.connection.transport;
    badge.dataset.transport = via ? via.name : '';
    badge.title = via ? 'transport: ' + via.name : '';
  }

  // A node that listens beyond loopback wants the token it was started with (client.token):
  // open the page as /client/?token=... and every signing request carries it.
  function tokenHeaders() {
    var token = new URLSearchParams(location.search).get('token');
    return token ? { 'X-Chorus-Client-Token': token } : {};
  }

  // ?transports=xhr_streaming,xhr_polling limits what pusher-js may use (all by default).
  function transports() {
    var all = ['ws', 'wss', 'xhr_streaming', 'xhr_polling'];
    var asked = (new URLSearchParams(location.search).get('transports') || '').split(',').filter(function (t) {
      return all.indexOf(t) >= 0;
    });
    return asked.length ? asked : all;
  }

  function connect() {
    disconnect();
    var s = settings();
    if (!s.key) return addLog('connection', 'missing app key', null, { error: true });
    var authParams = { key: s.key, user_id: s.userId, user_name: s.userName };
    var authHeaders = tokenHeaders();
    pusher = new Pusher(s.key, {
      cluster: 'mt1',
      wsHost: s.host,
      wsPort: s.port,
      wssPort: s.port,
      wsPath: s.prefix,
      // Where WebSockets are blocked, pusher-js falls back to HTTP streaming and polling on the same port.
      httpHost: s.host,
      httpPort: s.port,
      httpsPort: s.port,
      httpPath: s.prefix,
      forceTLS: s.tls,
      enabledTransports: transports(),
      disableStats: true,
      channelAuthorization: { endpoint: s.httpBase + '/client/auth', transport: 'ajax', params: authParams, headers: authHeaders },
      userAuthentication: { endpoint: s.httpBase + '/client/signin', transport: 'ajax', params: authParams, headers: authHeaders },
    });
    var conn = pusher.connection;
    conn.bind('state_change', function (states) {
      setBadge(states.current);
      var data =
        states.current === 'connected'
          ? { socket_id: conn.socket_id, transport: conn.connection && conn.connection.transport ? conn.connection.transport.name : null }
          : undefined;
      addLog('connection', states.previous + ' → ' + states.current, data);
      if (states.previous === 'connected' && states.current !== 'connected') {
        // pusher-js resubscribes by itself once reconnected; until then the channels are pending.
        channels.forEach(function (c) {
          if (c.state === 'subscribed') c.state = 'subscribing';
        });
        renderChannels();
      }
    });
    conn.bind('error', function (err) {
      addLog('connection', 'error', err && err.data ? err.data : err, { error: true });
    });
    conn.bind('message', function (msg) {
      if (msg.event === 'pusher:signin_success') {
        var user = parseLoose(msg.data && msg.data.user_data);
        $('signed-in').textContent = user && user.id ? user.id : 'signed in';
        addLog('connection', msg.event, user);
      }
    });
    pusher.user.bind_global(function (event, data) {
      addLog('#user', event, data);
    });
    pusher.user.watchlist.bind_global(function (event, data) {
      addLog('#watchlist', event, data);
    });
    setBadge(conn.state);
  }

  function disconnect() {
    if (!pusher) return;
    var old = pusher;
    pusher = null;
    old.disconnect();
    channels.clear();
    renderChannels();
    setBadge('disconnected');
    $('signed-in').textContent = 'not signed in';
    addLog('connection', 'disconnected by you');
  }

  function signin() {
    if (!pusher) return addLog('connection', 'connect first', null, { error: true });
    pusher.signin();
  }

  // ---------- channels ----------

  function subscribe(name) {
    if (!pusher) return addLog('connection', 'connect first', null, { error: true });
    if (channels.has(name)) return;
    var entry = { name: name, kind: kindOf(name), cache: isCache(name), channel: null, state: 'subscribing', detail: '' };
    channels.set(name, entry);
    entry.channel = pusher.subscribe(name);
    entry.channel.bind_global(function (event, data) {
      onChannelEvent(entry, event, data);
    });
    renderChannels();
  }

  function unsubscribe(name) {
    var entry = channels.get(name);
    if (!entry) return;
    channels.delete(name);
    entry.channel.unbind_global();
    if (pusher) pusher.unsubscribe(name);
    addLog(name, 'unsubscribed', null, { sent: 'by you' });
    renderChannels();
  }

  function onChannelEvent(entry, event, data) {
    if (channels.get(entry.name) !== entry) return;
    if (event === 'pusher:subscription_succeeded') {
      entry.state = 'subscribed';
      entry.detail = '';
    } else if (event === 'pusher:subscription_error') {
      entry.state = 'error';
      entry.detail = data && (data.error || data.status) ? String(data.error || 'HTTP ' + data.status) : '';
    }
    var isError = event === 'pusher:subscription_error' || event === 'pusher:error';
    // pusher-js hands presence channels its Members object; log just what the server sent.
    var shown =
      entry.kind === 'presence' && event === 'pusher:subscription_succeeded' && data && data.members
        ? { count: data.count, me: data.myID, members: data.members }
        : data;
    addLog(entry.name, event, shown, { error: isError });
    if (/^pusher:(subscription_|member_)/.test(event)) renderChannels();
  }

  function renderChannels() {
    var list = $('channel-list');
    list.textContent = '';
    channels.forEach(function (entry) {
      list.appendChild(renderChannel(entry));
    });
    $('no-channels').hidden = channels.size > 0;
    renderClientEventChannels();
  }

  function renderChannel(entry) {
    var li = el('li', 'channel');
    li.dataset.channel = entry.name;
    li.dataset.state = entry.state;
    var head = el('div', 'channel-head');
    head.appendChild(el('span', 'channel-name', entry.name));
    head.appendChild(el('span', 'tag tag-' + entry.kind, entry.kind));
    if (entry.cache) head.appendChild(el('span', 'tag tag-cache', 'cache'));
    var leave = el('button', 'unsubscribe', 'Unsubscribe');
    leave.type = 'button';
    leave.addEventListener('click', function () {
      unsubscribe(entry.name);
    });
    head.appendChild(leave);
    li.appendChild(head);
    li.appendChild(el('div', 'state state-' + entry.state, entry.state + (entry.detail ? ': ' + entry.detail : '')));
    if (entry.kind === 'presence' && entry.state === 'subscribed') li.appendChild(renderMembers(entry.channel.members));
    return li;
  }

  function renderMembers(members) {
    var ul = el('ul', 'members');
    ul.appendChild(el('li', 'members-title', members.count + (members.count === 1 ? ' member' : ' members')));
    var all = [];
    members.each(function (m) {
      all.push(m);
    });
    all.sort(function (a, b) {
      return String(a.id).localeCompare(String(b.id));
    });
    all.forEach(function (m) {
      var li = el('li', 'member');
      li.dataset.userId = m.id;
      var name = m.info && m.info.name ? m.info.name : m.id;
      li.appendChild(el('span', 'member-name', name));
      li.appendChild(el('code', null, m.id));
      if (members.me && members.me.id === m.id) li.appendChild(el('span', 'me', 'you'));
      ul.appendChild(li);
    });
    return ul;
  }

  function renderClientEventChannels() {
    var select = $('ce-channel');
    var previous = select.value;
    select.textContent = '';
    channels.forEach(function (entry) {
      if (entry.kind !== 'private' && entry.kind !== 'presence') return;
      var option = el('option', null, entry.name);
      option.value = entry.name;
      select.appendChild(option);
    });
    if (previous && channels.has(previous)) select.value = previous;
    if (!select.options.length) {
      var none = el('option', null, 'subscribe to a private or presence channel');
      none.value = '';
      select.appendChild(none);
    }
  }

  // ---------- sending ----------

  function sendClientEvent() {
    var name = $('ce-channel').value;
    var entry = channels.get(name);
    var event = $('ce-event').value.trim();
    if (event.indexOf('client-') !== 0) event = 'client-' + event;
    if (!entry) return showResult('ce-result', false, 'Subscribe to a private or presence channel first');
    if (entry.state !== 'subscribed') return showResult('ce-result', false, name + ' is not subscribed yet');
    var data = parseLoose($('ce-data').value);
    if (!entry.channel.trigger(event, data)) return showResult('ce-result', false, 'pusher-js refused to send');
    addLog(name, event, data, { sent: 'sent by you' });
    showResult('ce-result', true, 'Sent ' + event + ' (others on the channel receive it, not you)');
  }

  function publish() {
    var s = settings();
    var list = $('pub-channels')
      .value.split(',')
      .map(function (c) {
        return c.trim();
      })
      .filter(Boolean);
    var body = { key: s.key, name: $('pub-event').value.trim(), data: $('pub-data').value, channels: list };
    showResult('pub-result', true, 'Publishing…');
    fetch(s.httpBase + '/client/publish', {
      method: 'POST',
      headers: Object.assign({ 'Content-Type': 'application/json' }, tokenHeaders()),
      body: JSON.stringify(body),
    })
      .then(function (res) {
        return res.text().then(function (text) {
          if (res.ok) return showResult('pub-result', true, 'Published ' + body.name + ' to ' + list.join(', '));
          var reason = parseLoose(text);
          showResult('pub-result', false, res.status + ': ' + (reason && reason.error ? reason.error : text));
        });
      })
      .catch(function (err) {
        showResult('pub-result', false, 'Request failed: ' + err.message);
      });
  }

  // ---------- start ----------

  function defaults() {
    var tls = location.protocol === 'https:';
    $('host').value = location.hostname;
    $('port').value = location.port || (tls ? '443' : '80');
    $('tls').checked = tls;
    $('key').value = meta('chorus-default-key') || 'app-key';
    $('prefix').value = meta('chorus-prefix');
    var id = 'user-' + Math.random().toString(36).slice(2, 7);
    $('user-id').value = id;
    $('user-name').value = id;
    // Any field can be preset from the address: ?user-id=alice&user-name=Alice&key=app-key
    new URLSearchParams(location.search).forEach(function (value, name) {
      var field = $(name);
      if (!field || !/^(INPUT|SELECT|TEXTAREA)$/.test(field.tagName)) return;
      if (field.type === 'checkbox') field.checked = value === '1' || value === 'true';
      else field.value = value;
    });
  }

  function start() {
    if (typeof Pusher === 'undefined') {
      addLog('connection', 'pusher-js did not load', null, { error: true });
      return;
    }
    defaults();
    $('connect-form').addEventListener('submit', function (e) {
      e.preventDefault();
      connect();
    });
    $('disconnect').addEventListener('click', disconnect);
    $('signin').addEventListener('click', signin);
    $('subscribe-form').addEventListener('submit', function (e) {
      e.preventDefault();
      var name = $('channel-type').value + $('channel-name').value.trim();
      if (name) subscribe(name);
    });
    $('client-event-form').addEventListener('submit', function (e) {
      e.preventDefault();
      sendClientEvent();
    });
    $('publish-form').addEventListener('submit', function (e) {
      e.preventDefault();
      publish();
    });
    $('log-clear').addEventListener('click', function () {
      log = [];
      logCounts.clear();
      logFilter = '';
      renderTabs();
      renderLog();
    });
    renderTabs();
    renderChannels();
    connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
