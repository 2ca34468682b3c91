// The zdt dashboard: reads /api/v1 with the caller's identity (a client
// certificate, or a bearer token kept in sessionStorage) and renders it.
// Everything shown comes from the API; all text goes into the DOM as text.
'use strict';

(() => {
  const API = '/api/v1';
  const POLL_MS = 1500;      // the status
  // LIST_LIMIT is how many alarms, services, guests and prefixes a poll
  // asks for at most, those with a problem first: a provider's cluster has
  // thousands, more than a page can draw every poll. The filter narrows;
  // the page's address may ask for more or fewer (/ui/?limit=500).
  const LIST_LIMIT = (() => {
    const n = Number(new URLSearchParams(location.search).get('limit'));
    return Number.isInteger(n) && n > 0 ? n : 100;
  })();
  const SLOW_EVERY = 4;      // the op list and drills, every 4th poll
  const STALE_AFTER_MS = 5000;
  const LAG_WINDOW_MS = 5 * 60 * 1000;
  const MAX_EVENTS = 200;
  const MAX_FINISHED = 8;
  const MAX_OP_STREAMS = 3;
  const TOKEN_KEY = 'zdt-token';

  const $ = (id) => document.getElementById(id);
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    who: null,
    status: null,
    lastOK: 0,
    started: Date.now(),
    inFlight: false,
    lastPoll: 0,
    polls: 0,
    error: '',
    filter: {service: '', site: '', problems: false}, // as the status is asked for
    lag: new Map(),      // "group/site" -> [{t, bytes, secs}]
    ops: new Map(),      // op id -> {op (full, from its stream) or sum (from /ops), streaming}
    drills: [],
    drillOps: new Map(), // op id -> full op, for the timelines
    events: [],
    eventKeys: new Set(),
    armed: '',           // the button waiting for its confirming click
    armedUntil: 0,
    stop: new AbortController(),
  };

  // ---- DOM helpers -------------------------------------------------------

  // el makes an element; props may hold class, text, title, data (an
  // object of data-* attributes), and any other attribute. Children are
  // nodes or strings (as text).
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'data') for (const [d, dv] of Object.entries(v)) e.dataset[d] = String(dv);
      else if (k === 'onclick') e.addEventListener('click', v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  // The SVG namespace, from an <svg> of the page (no URL in the assets).
  const SVG = $('svg-ns').namespaceURI;
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    e.append(...children);
    return e;
  }

  // The shapes that say a state besides its word and colour.
  const SHAPES = {
    circle: () => svg('circle', {cx: 8, cy: 8, r: 6.5}),
    ring: () => svg('circle', {cx: 8, cy: 8, r: 5.5, fill: 'none', 'stroke-width': 2.5}),
    triangle: () => svg('polygon', {points: '8,1 15.5,14.5 0.5,14.5'}),
    diamond: () => svg('polygon', {points: '8,0.5 15.5,8 8,15.5 0.5,8'}),
    square: () => svg('rect', {x: 2, y: 2, width: 12, height: 12}),
    octagon: () => svg('polygon', {points: '5,1 11,1 15,5 15,11 11,15 5,15 1,11 1,5'}),
    cross: () => svg('path', {d: 'M2,4.5 4.5,2 8,5.5 11.5,2 14,4.5 10.5,8 14,11.5 11.5,14 8,10.5 4.5,14 2,11.5 5.5,8Z'}),
    dash: () => svg('rect', {x: 1, y: 6, width: 14, height: 4}),
  };

  // The shape and tone of each state word the API uses.
  const LOOKS = {
    up: ['circle', 'good'], healthy: ['circle', 'good'], succeeded: ['circle', 'good'], done: ['circle', 'good'],
    established: ['circle', 'good'], running: ['diamond', 'busy'], joining: ['diamond', 'busy'],
    pending: ['ring', 'idle'], skipped: ['dash', 'idle'], unknown: ['square', 'idle'],
    degraded: ['triangle', 'warn'], warning: ['triangle', 'warn'], preempted: ['triangle', 'warn'],
    unplaced: ['triangle', 'warn'], aborted: ['square', 'warn'], stale: ['triangle', 'warn'],
    dark: ['cross', 'bad'], down: ['cross', 'bad'], failed: ['cross', 'bad'],
    fenced: ['octagon', 'bad'], 'self-fenced': ['octagon', 'bad'], critical: ['octagon', 'bad'],
  };

  // badge is a state as shape and word: "● UP".
  function badge(word, look) {
    const [shape, tone] = LOOKS[look || word] || ['square', 'idle'];
    return el('span', {class: `badge ${tone}`, data: {badge: word}},
      svg('svg', {class: 'shape', viewBox: '0 0 16 16', width: '1em', height: '1em', 'aria-hidden': 'true'}, SHAPES[shape]()),
      ' ' + String(word).toUpperCase());
  }

  function panel(id) { return $(id).querySelector('.body'); }

  // put replaces a node's children, leaving out the empty ones.
  function put(node, ...kids) {
    node.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false));
  }

  function table(headers, rows) {
    return el('table', {}, el('thead', {}, el('tr', {}, headers.map((h) => el('th', {text: h})))),
      el('tbody', {}, rows));
  }

  const note = (text) => el('p', {class: 'note', text});

  // ---- formats -----------------------------------------------------------

  function bytes(n) {
    if (n < 1024) return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let u = -1;
    do { n /= 1024; u++; } while (n >= 1024 && u < units.length - 1);
    return `${n.toFixed(n < 10 ? 1 : 0)} ${units[u]}`;
  }
  const num = (n) => n.toLocaleString('en');
  const secs = (s) => `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const clock = (t) => (t ? new Date(t).toLocaleTimeString([], {hour12: false}) : '');
  // params shows an op's or a step's parameters: an object, or the
  // status's "k=v k=v" string.
  const params = (p) => (typeof p === 'string' ? p :
    Object.entries(p || {}).filter(([, v]) => v !== '').map(([k, v]) => `${k}=${v}`).join(' '));

  // ---- the API -----------------------------------------------------------

  function headers(extra) {
    const h = Object.assign({Accept: 'application/json'}, extra);
    if (state.token) h.Authorization = `Bearer ${state.token}`;
    return h;
  }

  // call asks the API; it resolves to {status, body}, rejects when the
  // controller does not answer.
  async function call(path, opts) {
    const o = opts || {};
    const init = {headers: headers(o.body ? {'Content-Type': 'application/json'} : {}), cache: 'no-store',
      credentials: 'same-origin', signal: o.signal || AbortSignal.timeout(10000)};
    if (o.body) { init.method = 'POST'; init.body = JSON.stringify(o.body); }
    const resp = await fetch(API + path, init);
    let body = null;
    try { body = await resp.json(); } catch (_) { body = null; }
    if (resp.status === 401) signedOut(body && body.error);
    return {status: resp.status, body};
  }

  function wait(ms, signal) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, {once: true});
    });
  }

  // follow reads a server-sent event stream with fetch (EventSource cannot
  // send a token) and calls onEvent(name, data, id) for each event. After a
  // break it reconnects with Last-Event-ID, backing off up to 30 s, until
  // onEvent returns true (the stream is done) or signal aborts.
  async function follow(path, onEvent, signal) {
    let lastID = '';
    let backoff = 1000;
    while (!signal.aborted) {
      try {
        const resp = await fetch(API + path, {headers: headers(lastID ? {'Last-Event-ID': lastID} : {}),
          cache: 'no-store', credentials: 'same-origin', signal});
        if (resp.status === 401) { signedOut(''); return; }
        if (resp.status === 404) return; // no such op: nothing to follow
        if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        let ev = {name: 'message', data: [], id: ''};
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          backoff = 1000;
          buf += value;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).replace(/\r$/, '');
            buf = buf.slice(nl + 1);
            if (line === '') {
              if (ev.data.length) {
                if (ev.id) lastID = ev.id;
                let data = null;
                try { data = JSON.parse(ev.data.join('\n')); } catch (_) { data = null; }
                if (onEvent(ev.name, data, ev.id)) { reader.cancel().catch(() => {}); return; }
              }
              ev = {name: 'message', data: [], id: ''};
              continue;
            }
            if (line.startsWith(':')) continue; // a comment: the heartbeat
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') ev.name = val;
            else if (field === 'data') ev.data.push(val);
            else if (field === 'id') ev.id = val;
          }
        }
      } catch (_) {
        if (signal.aborted) return;
      }
      await wait(backoff, signal);
      backoff = Math.min(backoff * 2, 30000);
    }
  }

  // ---- signing in --------------------------------------------------------

  async function start() {
    let r;
    try {
      r = await call('/whoami');
    } catch (e) {
      $('signin').hidden = true;
      showStale(`cannot reach this controller: ${e.message}`);
      setTimeout(start, 3000);
      return;
    }
    if (r.status === 401) return; // signedOut showed the form
    if (r.status !== 200) {
      showStale(`this controller does not say who you are: ${(r.body && r.body.error) || `HTTP ${r.status}`}`);
      setTimeout(start, 3000);
      return;
    }
    $('stale').hidden = true;
    state.who = r.body;
    $('signin').hidden = true;
    $('board').hidden = false;
    $('switchover').hidden = !canOperate();
    setupSwitchover();
    $('filter').addEventListener('submit', applyFilter);
    $('filter-problems').addEventListener('change', applyFilter);
    $('filter-clear').addEventListener('click', clearFilter);
    followEvents();
    poll();
    setInterval(tick, 500);
  }

  function signedOut(why) {
    if (state.who) { // signed in before: start over, without the old token
      sessionStorage.removeItem(TOKEN_KEY);
      state.stop.abort();
      location.reload();
      return;
    }
    $('board').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = state.token ? `Not signed in: ${why || 'the token is not known'}` : '';
    $('token').focus();
  }

  $('signin').addEventListener('submit', (e) => {
    e.preventDefault();
    state.token = $('token').value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    start();
  });

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  }

  const canOperate = () => state.who && (state.who.role === 'operator' || state.who.role === 'admin');
  const filtered = () => !!(state.filter.service || state.filter.site || state.filter.problems);

  // ---- polling -----------------------------------------------------------

  // tick runs twice a second: a poll when one is due and none is in flight,
  // and the stale banner.
  function tick() {
    if (!state.inFlight && Date.now() - state.lastPoll >= POLL_MS - 100) poll();
    renderStale();
  }

  async function poll() {
    state.inFlight = true;
    state.lastPoll = Date.now();
    try {
      const slow = state.polls % SLOW_EVERY === 0;
      state.polls++;
      const f = state.filter;
      const r = await call(statusPath(f));
      if (r.status !== 200) throw new Error((r.body && r.body.error) || `HTTP ${r.status}`);
      if (f !== state.filter) return; // the filter changed meanwhile: its own answer is shown
      state.status = r.body;
      state.lastOK = Date.now();
      state.error = '';
      recordLag(r.body);
      watchRunningOps(r.body);
      if (slow) await Promise.all([pollOps(), pollDrills()]);
      render();
    } catch (e) {
      state.error = e.message || String(e);
    } finally {
      state.inFlight = false;
      renderStale();
    }
  }

  async function pollOps() {
    const r = await call(`/ops?limit=${MAX_FINISHED}`);
    if (r.status !== 200) return;
    for (const sum of r.body.ops) {
      const o = state.ops.get(sum.id) || {};
      o.sum = sum;
      state.ops.set(sum.id, o);
      if (sum.outcome === 'running') watchOp(sum.id);
    }
  }

  async function pollDrills() {
    const r = await call('/drills?limit=5');
    if (r.status !== 200) return;
    state.drills = r.body.ops;
    for (const d of state.drills) {
      const have = state.drillOps.get(d.id);
      if (have && have.outcome !== 'running' && d.outcome !== 'running') continue;
      const op = await call(`/ops/${encodeURIComponent(d.id)}`);
      if (op.status === 200) state.drillOps.set(d.id, op.body);
    }
  }

  function recordLag(st) {
    const now = Date.now();
    for (const g of st.replication || []) {
      for (const m of g.members || []) {
        const key = `${g.group}/${m.site}`;
        const h = (state.lag.get(key) || []).filter((p) => now - p.t <= LAG_WINDOW_MS);
        h.push({t: now, bytes: m.lag_bytes, secs: m.lag_seconds});
        state.lag.set(key, h);
      }
    }
  }

  // ---- streams -----------------------------------------------------------

  function followEvents() {
    follow('/events/stream', (name, e) => {
      if (name === 'event' && e) {
        addEvent(e);
        if (e.op && !(state.ops.get(e.op) || {}).op) watchOp(e.op);
      } else if (name === 'broken' && e) {
        addEvent({at: new Date().toISOString(), site: '', kind: 'stream-broken', message: e.error});
      }
      renderEvents();
      return false;
    }, state.stop.signal);
    // The log so far; the stream, opened first, may bring some of it again.
    call('/events?limit=50').then((r) => {
      if (r.status === 200) { r.body.forEach(addEvent); renderEvents(); }
    }).catch(() => {});
  }

  const eventKey = (e) => `${e.at}|${e.kind}|${e.op || ''}|${e.message}`;

  function addEvent(e) {
    const key = eventKey(e);
    if (state.eventKeys.has(key)) return;
    state.eventKeys.add(key);
    state.events.push(e);
    state.events.sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
    while (state.events.length > MAX_EVENTS) state.eventKeys.delete(eventKey(state.events.pop()));
  }

  // watchRunningOps follows the unfinished ops of the status; until their
  // streams open they are shown as the status has them.
  function watchRunningOps(st) {
    for (const op of st.ops || []) {
      if (!state.ops.has(op.id)) state.ops.set(op.id, {sum: {...op, who: op.who || ''}});
      watchOp(op.id);
    }
  }

  // watchOp follows an op's stream, from the op's first version (an op
  // that ran its steps before the stream opened still shows each of them),
  // until it ends. The controller speaks
  // HTTP/1.1, and a browser opens at most six connections to it: at most
  // MAX_OP_STREAMS op streams run at once, beside the event stream and the
  // polls; the next poll starts the stream of an op left waiting.
  function watchOp(id) {
    const o = state.ops.get(id) || {};
    if (o.streaming || (o.op && o.op.outcome !== 'running')) return;
    if ([...state.ops.values()].filter((x) => x.streaming).length >= MAX_OP_STREAMS) return;
    o.streaming = true;
    state.ops.set(id, o);
    follow(`/ops/${encodeURIComponent(id)}/stream?from=created`, (name, data) => {
      if (name === 'op' && data) o.op = data;
      if (name === 'end') o.streaming = false;
      renderOps();
      return name === 'end';
    }, state.stop.signal).finally(() => { o.streaming = false; });
  }

  // statusPath asks for the status as the filter cuts it, each long list
  // limited.
  function statusPath(f) {
    const q = new URLSearchParams({limit: String(LIST_LIMIT)});
    if (f.service) q.set('service', f.service);
    if (f.site) q.set('site', f.site);
    if (f.problems) q.set('problems', 'true');
    return `/status?${q}`;
  }

  // applyFilter asks for the status with the filter's fields; the filter
  // only takes when the controller accepts it, and otherwise says why and
  // keeps the one before.
  async function applyFilter(e) {
    if (e) e.preventDefault();
    const f = {
      service: $('filter-service').value.replace(/\s+/g, ''),
      site: $('filter-site').value.replace(/\s+/g, ''),
      problems: $('filter-problems').checked,
    };
    const out = $('filter-error');
    let r;
    try {
      r = await call(statusPath(f));
    } catch (err) {
      out.textContent = `No answer: ${err.message}`;
      return;
    }
    if (r.status !== 200) {
      out.textContent = `Filter not applied: ${(r.body && r.body.error) || `HTTP ${r.status}`}`;
      return;
    }
    out.textContent = '';
    state.filter = f;
    state.status = r.body;
    state.lastOK = Date.now();
    render();
  }

  function clearFilter() {
    $('filter-service').value = '';
    $('filter-site').value = '';
    $('filter-problems').checked = false;
    applyFilter();
  }

  // cutNote says what the limit left out of a list, or null.
  function cutNote(st, list, what) {
    const c = st.shown && st.shown[list];
    if (!c || c.shown >= c.total) return null;
    const first = c.problems ? ` (the ${num(c.problems)} with a problem first)` : '';
    return el('p', {class: 'note cut', data: {cut: list}},
      `showing ${num(c.shown)} of ${num(c.total)} ${what}${first}; narrow with the filter above.`);
  }

  // ---- rendering ---------------------------------------------------------

  function render() {
    const st = state.status;
    if (!st) return;
    renderHeader(st);
    renderFilter(st);
    renderAlarms(st);
    renderSites(st);
    renderServices(st);
    renderReplication(st);
    renderPrefixes(st);
    renderGuests(st);
    renderOps();
    renderDrills();
    refreshSwitchover(st);
  }

  function showStale(text) {
    const b = $('stale');
    b.hidden = false;
    b.textContent = text;
  }

  function renderStale() {
    const age = Date.now() - (state.lastOK || state.started);
    if (!state.error && age < STALE_AFTER_MS) {
      $('stale').hidden = true;
      return;
    }
    const since = state.lastOK ? `for ${Math.round(age / 1000)} s` : 'yet';
    showStale(`STALE: no answer from this site ${since}` +
      (state.lastOK ? ` (last update ${clock(state.lastOK)})` : '') +
      (state.error ? `: ${state.error}` : '') + '. What you see may be out of date.');
  }

  function renderHeader(st) {
    const h = st.health || {state: 'unknown'};
    put($('header'),
      el('div', {class: 'title'}, el('h1', {text: `zdt · ${st.cluster}`}),
        el('span', {class: 'health', data: {health: h.state}}, 'HEALTH ', badge(h.state))),
      el('div', {class: 'meta'},
        el('span', {}, 'coordinator ', el('strong', {text: st.coordinator || 'none'})),
        el('span', {}, 'you are ', el('strong', {text: state.who.name}), ` (${state.who.role}, by ${state.who.via})`),
        el('span', {id: 'updated', data: {at: state.lastOK}}, `updated ${clock(state.lastOK)}`),
        state.token ? el('button', {type: 'button', class: 'small', onclick: signOut}, 'Sign out') : null),
      (h.reasons || []).length ? el('ul', {class: 'reasons'}, h.reasons.map((r) => el('li', {text: r}))) : null);
  }

  // renderFilter says what the filter keeps.
  function renderFilter(st) {
    const f = state.filter;
    const parts = [];
    if (f.service) parts.push(`services ${f.service}`);
    if (f.site) parts.push(`sites ${f.site}`);
    if (f.problems) parts.push('problems only');
    const s = st.shown || {};
    const count = (c, what) => (c ? `${num(c.total)} ${what}` : null);
    $('filter-state').textContent = (parts.length ? `Showing ${parts.join(', ')}: ` : 'Showing everything: ') +
      [count(s.services, 'services'), count(s.prefixes, 'prefixes'), count(s.guests, 'guests')].filter(Boolean).join(', ') + '.';
    $('filter-clear').hidden = !parts.length;
  }

  function renderAlarms(st) {
    const items = [];
    for (const a of st.alarms || []) {
      items.push(el('li', {class: `alarm ${a.severity}`}, badge(a.severity), ' ',
        el('strong', {text: a.subject}), a.site ? ` at ${a.site}: ` : ': ', a.message,
        a.stale ? el('span', {class: 'tag'}, ' STALE REPORT') : null));
    }
    for (const a of st.etcd_alarms || []) items.push(el('li', {class: 'alarm critical'}, badge('critical'), ' etcd: ', a));
    for (const f of st.fail_static || []) items.push(el('li', {class: 'alarm critical'}, badge('critical'), ' ', f));
    for (const i of st.insecure || []) items.push(el('li', {class: 'alarm warning'}, badge('warning'), ' without TLS: ', i));
    put(panel('alarms'), items.length ? el('ul', {class: 'alarms'}, items) :
      el('p', {class: 'quiet'}, badge('none', 'up'), ' no alarms'), cutNote(st, 'alarms', 'alarms'));
  }

  function renderSites(st) {
    put(panel('sites'), el('div', {class: 'cards'}, st.sites.map((s) => {
      const lease = s.lease_remaining_ms >= 0 ? `lease ${secs(s.lease_remaining_ms / 1000)} left` : 'NO LEASE';
      const notes = [];
      if (s.coordinator) notes.push(el('span', {class: 'tag coord'}, '★ COORDINATOR'));
      if (!s.joined) notes.push(el('span', {class: 'tag'}, 'never joined'));
      if (s.fence) {
        notes.push(el('p', {class: 'fence'}, `FENCED by ${s.fence.by} at ${clock(s.fence.at)}: ${s.fence.reason}`,
          s.fence.confirmed ? ` (dark confirmed by ${s.fence.confirmed.by})` : ''));
      }
      if (s.drain) notes.push(el('p', {class: 'drain'}, `DRAINED by ${s.drain.by}${s.drain.reason ? `: ${s.drain.reason}` : ''}`));
      return el('div', {class: `card site ${s.state}`, data: {site: s.name, state: s.state}},
        el('div', {class: 'card-head'}, el('span', {}, el('span', {class: 'name', text: s.name}), ' ', notes.filter((n) => n.tagName === 'SPAN')),
          badge(s.state)),
        el('div', {}, 'controller ', s.controller ? badge(s.controller) : el('span', {text: '—'}), ` · ${lease}`,
          s.reason ? el('span', {class: 'reason', text: ` · ${s.reason}`}) : null),
        notes.filter((n) => n.tagName !== 'SPAN'));
    })));
  }

  function rpoText(rpo) {
    if (!rpo) return 'no replication';
    const part = (v, f) => (v < 0 ? 'unchecked' : f(v));
    return `≤ ${part(rpo.max_lag_bytes, bytes)}, ≤ ${part(rpo.max_lag_seconds, secs)}` + (rpo.require_sync ? ', SYNC REQUIRED' : '');
  }

  function renderServices(st) {
    const up = new Set(st.sites.filter((s) => s.state === 'up').map((s) => s.name));
    put(panel('services'), table(['service', 'active', 'epoch', 'sites, in order', 'RPO'], st.services.map((s) =>
      el('tr', {data: {service: s.name, active: s.active}},
        el('td', {class: 'name', text: s.name}),
        el('td', {}, s.active ? el('strong', {class: 'big', text: s.active}) : badge('none', 'unknown'),
          s.active && !up.has(s.active) ? el('span', {class: 'tag bad'}, ' ACTIVE SITE NOT UP') : null,
),
        el('td', {text: String(s.epoch)}),
        el('td', {}, s.sites.map((name, i) => [i ? ' › ' : '', el('span', {class: name === s.active ? 'seq active' : 'seq'},
          name + (name === s.active ? ' (active)' : ''))])),
        el('td', {text: rpoText(s.rpo)})))),
    cutNote(st, 'services', 'services'),
    note('RTO: the config states no target, so none is shown.'));
  }

  // sparkline draws the lag history of one member (bytes), scaled to its max.
  function sparkline(points) {
    const w = 120;
    const h = 32;
    const max = Math.max(1, ...points.map((p) => p.bytes));
    const t0 = Date.now() - LAG_WINDOW_MS;
    const xy = points.map((p) => `${(((p.t - t0) / LAG_WINDOW_MS) * w).toFixed(1)},${(h - 2 - (p.bytes / max) * (h - 4)).toFixed(1)}`);
    return el('span', {class: 'spark'},
      svg('svg', {viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: 'img', 'aria-label': `lag over 5 minutes, at most ${bytes(max)}`},
        svg('line', {x1: 0, y1: h - 2, x2: w, y2: h - 2, class: 'axis'}),
        svg('polyline', {points: xy.join(' '), class: 'lag'})),
      el('span', {class: 'small', text: ` max ${bytes(max === 1 ? 0 : max)}`}));
  }

  function renderReplication(st) {
    const groups = st.replication || [];
    if (!groups.length) { put(panel('replication'), note('no replication groups')); return; }
    put(panel('replication'), ...groups.map((g) => el('div', {class: 'group'},
      el('h3', {text: `group ${g.group}`}),
      table(['site', 'role', 'writes', 'health', 'lag', 'last 5 min'], (g.members || []).map((m) =>
        el('tr', {data: {group: g.group, site: m.site, role: m.role}},
          el('td', {class: 'name', text: m.site}),
          el('td', {}, badge(m.role, m.role === 'primary' ? 'up' : m.role === 'unknown' ? 'unknown' : 'pending'),
            m.sync ? ' sync' : ''),
          el('td', {text: m.writable ? 'WRITABLE' : 'read-only'}),
          el('td', {}, badge(m.healthy ? 'healthy' : 'unhealthy', m.healthy ? 'healthy' : 'failed'),
            m.detail ? el('div', {class: 'small', text: m.detail}) : null),
          el('td', {class: 'nowrap', text: `${bytes(m.lag_bytes)}, ${secs(m.lag_seconds)}`}),
          el('td', {}, sparkline(state.lag.get(`${g.group}/${m.site}`) || []))))))));
  }

  // renderPrefixes shows, per service prefix, who announces it with what
  // prepends and where the upstream's best path leads.
  function renderPrefixes(st) {
    const anns = st.announcements || [];
    const ups = st.upstream || [];
    const rows = ups.length ? ups : [...new Map(anns.map((a) => [a.prefix, {prefix: a.prefix, service: a.service}])).values()];
    const active = Object.fromEntries(st.services.map((s) => [s.name, s.active]));
    // Each prefix's announcements, found once: a filter per row was
    // 10,000 × 30,000 comparisons a poll at a provider's scale.
    const byPrefix = new Map();
    for (const a of anns) {
      if (!byPrefix.has(a.prefix)) byPrefix.set(a.prefix, []);
      byPrefix.get(a.prefix).push(a);
    }
    put(panel('prefixes'),
      rows.length ? table(['prefix', 'service', 'announced (prepends)', 'upstream best path'], rows.map((u) => {
        const by = (byPrefix.get(u.prefix) || []).slice().sort((a, b) => a.prepends - b.prepends);
        // The service of a prefix kept may be one the limit left out.
        const want = u.active !== undefined ? u.active : active[u.service];
        let best = el('span', {class: 'small', text: 'no route observer'});
        if (u.best_site) {
          best = el('span', {}, el('strong', {text: u.best_site}), ' ', u.best_site === want ? badge('ok', 'up') : badge('not active', 'failed'),
            el('div', {class: 'small mono', text: `AS path ${(u.as_path || []).join(' ')} (${u.paths} paths)`}));
        } else if (ups.length) {
          best = badge('no path', 'warning');
        }
        return el('tr', {data: {prefix: u.prefix, best: u.best_site || ''}},
          el('td', {class: 'mono', text: u.prefix}),
          el('td', {}, u.service, el('div', {class: 'small', text: want === undefined ? 'active site not shown' : `active ${want || 'none'}`})),
          el('td', {}, by.length ? by.map((a, i) => [i ? ' · ' : '', el('span', {class: a.site === want ? 'seq active' : 'seq'},
            `${a.site} +${a.prepends}`)]) : badge('not announced', 'failed')),
          el('td', {}, best));
      })) : note('no prefixes'),
      cutNote(st, 'prefixes', 'prefixes'),
      (st.peers || []).length ? el('p', {class: 'small'}, 'BGP sessions: ',
        st.peers.map((p, i) => el('span', {}, i ? ', ' : '', `${p.site}→${p.address} `, badge(p.state, p.state === 'established' ? 'up' : 'failed')))) : null);
  }

  // renderGuests counts the guests of each site by tier and zone (all of
  // them, from the status's counts) and lists those not running (the ones
  // the limit kept: those with a problem come first).
  function renderGuests(st) {
    const counts = (st.shown && st.shown.guest_counts) || [];
    if (!counts.length) {
      put(panel('guests'), note(filtered() ? 'no guests match the filter' : 'no guests in the config'));
      return;
    }
    const tiers = ['gold', 'silver', 'bronze'];
    const sum = (list, k) => list.reduce((n, c) => n + c[k], 0);
    const zones = (list) => list.map((c) => `${c.zone || 'no zone'}: ${c.guests}`).sort().join(', ');
    const rows = st.sites.map((s) => {
      const here = counts.filter((c) => c.site === s.name);
      return el('tr', {data: {site: s.name}}, el('td', {class: 'name', text: s.name}),
        tiers.map((t) => el('td', {text: zones(here.filter((c) => c.tier === t)) || '—'})),
        el('td', {text: `${sum(here, 'running')} of ${sum(here, 'guests')}`}));
    });
    const notRunning = sum(counts, 'guests') - sum(counts, 'running');
    const out = (st.guests || []).filter((g) => g.state !== 'running' || !g.running_on.length);
    put(panel('guests'),
      table(['site', 'gold by zone', 'silver by zone', 'bronze by zone', 'running'], rows),
      notRunning ? el('div', {class: 'callout'}, el('strong', {text: `${num(notRunning)} NOT RUNNING`}),
        el('ul', {}, out.map((g) => el('li', {}, badge(g.state), ` ${g.name} (${g.tier}${g.zone ? `, zone ${g.zone}` : ''})`,
          g.site ? ` at ${g.site}` : '', g.reason ? `: ${g.reason}` : ''))),
        out.length < notRunning ? el('p', {class: 'note cut', data: {cut: 'guests'}},
          `${num(notRunning - out.length)} more not listed; narrow with the filter above.`) : null) :
        el('p', {class: 'quiet'}, badge('all running', 'up')));
  }

  // opButtons are an operator's approve and abort buttons for a running op.
  function opButtons(op) {
    if (!canOperate() || !op || op.outcome !== 'running') return null;
    const waiting = (op.steps || []).some((s) => s.name === 'confirm' && s.status === 'running' && !s.approved);
    return el('div', {class: 'buttons'},
      waiting ? armedButton(`approve-${op.id}`, 'Approve step', 'Confirm approval', () => opRequest(op.id, 'approve')) : null,
      op.abort_requested ? el('span', {class: 'tag', text: `abort requested by ${op.abort_requested.by}`}) :
        armedButton(`abort-${op.id}`, 'Abort', 'Confirm abort', () => opRequest(op.id, 'abort')));
  }

  async function opRequest(id, what) {
    try {
      const r = await call(`/ops/${encodeURIComponent(id)}/${what}`, {body: {reason: 'from the dashboard'}});
      addLocalNote(r.status === 200 ? `${what} of op ${id}: done` : `${what} of op ${id}: ${r.body && r.body.error}`);
    } catch (e) {
      addLocalNote(`${what} of op ${id}: ${e.message}`);
    }
  }

  function addLocalNote(text) {
    put($('so-result'), el('p', {text}));
  }

  // armedButton asks for a second click within 5 s before it acts.
  function armedButton(key, label, confirmLabel, act) {
    const armed = state.armed === key && Date.now() < state.armedUntil;
    return el('button', {type: 'button', class: armed ? 'danger armed' : 'danger', data: {key},
      onclick: () => {
        if (state.armed === key && Date.now() < state.armedUntil) { state.armed = ''; act(); } else {
          state.armed = key;
          state.armedUntil = Date.now() + 5000;
        }
        renderOps();
      }}, armed ? confirmLabel : label);
  }

  function progress(op) {
    const steps = op.steps || [];
    const done = steps.filter((s) => s.status === 'done' || s.status === 'skipped').length;
    const i = steps.findIndex((s) => s.status === 'pending' || s.status === 'running');
    const failed = steps.find((s) => s.status === 'failed');
    const cur = i >= 0 ? steps[i] : failed;
    const bar = el('div', {class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': steps.length, 'aria-valuenow': done});
    const fill = el('div', {class: `fill ${op.outcome}`});
    fill.style.width = `${steps.length ? (100 * done) / steps.length : 0}%`;
    bar.append(fill);
    return {done, total: steps.length, node: el('div', {class: 'progress'}, bar,
      el('div', {class: 'step'}, `${done} of ${steps.length} steps`,
        cur ? [' · ', badge(cur.status), ` ${cur.name} ${params(cur.params)}`] : null),
      cur && cur.detail ? el('div', {class: 'detail', text: cur.detail}) : null)};
  }

  // opCard is an op: from its stream with its steps, or else from the op
  // list or the status.
  function opCard(o) {
    const op = o.op;
    const sum = o.sum || {};
    const x = op || sum;
    const p = op ? progress(op) : null;
    return el('div', {class: `card op ${x.outcome}${x.outcome === 'running' ? '' : ' compact'}`,
      data: {op: x.id, kind: x.kind, outcome: x.outcome, done: p ? p.done : '', total: p ? p.total : ''}},
    el('div', {class: 'card-head'}, el('span', {class: 'name', text: `${x.kind} ${params(x.params)}`}), badge(x.outcome)),
    el('div', {class: 'small', text: `op ${x.id}${x.who ? ` · by ${x.who}` : ''} · ${clock(x.created)}`}),
    p ? p.node : el('div', {class: 'step', text: sum.step || sum.summary || ''}),
    op && op.error ? el('div', {class: 'detail', text: op.error}) : null,
    opButtons(op));
  }

  function renderOps() {
    const all = [...state.ops.values()].filter((o) => o.op || o.sum);
    const when = (o) => (o.op || o.sum).created;
    all.sort((a, b) => (when(a) < when(b) ? 1 : -1));
    const running = all.filter((o) => (o.op || o.sum).outcome === 'running');
    const finished = all.filter((o) => (o.op || o.sum).outcome !== 'running');
    for (const o of finished.slice(MAX_FINISHED)) if (!o.streaming) state.ops.delete((o.op || o.sum).id);
    finished.length = Math.min(finished.length, MAX_FINISHED);
    put(panel('ops'), 
      el('div', {class: 'running', data: {running: running.length}},
        running.length ? running.map(opCard) : el('p', {class: 'quiet', text: 'no running ops'})),
      el('h3', {text: 'finished'}),
      finished.length ? finished.map(opCard) : note('none yet'));
  }

  // timeline draws a finished op's steps as a bar, each as long as it took.
  function timeline(op) {
    const steps = (op.steps || []).filter((s) => s.started && s.ended);
    if (!steps.length) return note('no step times');
    const t = (s) => Date.parse(s);
    const t0 = Math.min(...steps.map((s) => t(s.started)));
    const t1 = Math.max(...steps.map((s) => t(s.ended)));
    const span = Math.max(1, t1 - t0);
    const bar = el('div', {class: 'timeline'});
    for (const s of steps) {
      const seg = el('span', {class: `seg ${s.status}`, title: `${s.name}: ${((t(s.ended) - t(s.started)) / 1000).toFixed(1)} s`});
      seg.style.left = `${(100 * (t(s.started) - t0)) / span}%`;
      seg.style.width = `${Math.max(0.5, (100 * (t(s.ended) - t(s.started))) / span)}%`;
      bar.append(seg);
    }
    const longest = steps.reduce((a, b) => (t(b.ended) - t(b.started) > t(a.ended) - t(a.started) ? b : a));
    const failed = steps.find((s) => s.status === 'failed');
    return el('div', {}, bar, el('div', {class: 'small',
      text: `${steps.length} steps in ${secs(span / 1000)}; longest ${longest.name} ${secs((t(longest.ended) - t(longest.started)) / 1000)}` +
        (failed ? `; FAILED at ${failed.name}` : '')}));
  }

  function renderDrills() {
    // Each site's last drill (zdt drill), then the drill ops of the journal.
    const last = (state.status ? state.status.sites : []).filter((s) => s.last_drill).map((s) => {
      const d = s.last_drill;
      const figures = [`RTO ${secs(d.rto_seconds)}`];
      if (d.probed) figures.push(`longest client outage ${secs(d.outage_seconds)}`);
      if (d.lost_writes >= 0) figures.push(`${d.lost_writes} acknowledged writes lost`);
      return el('div', {class: 'drill last-drill', data: {site: s.name, passed: String(d.passed)}},
        el('div', {class: 'card-head'}, el('span', {class: 'name', text: `site ${s.name}: ${d.kind} ${clock(d.started)}`}),
          badge(d.passed ? 'passed' : 'failed', d.passed ? 'up' : 'failed')),
        el('div', {class: 'small', text: `by ${d.who} · ${figures.join(' · ')}${d.failed ? ` · ${d.failed}` : ''}`}));
    });
    const ops = state.drills.map((d) => {
      const op = state.drillOps.get(d.id);
      return el('div', {class: 'drill', data: {op: d.id, outcome: d.outcome}},
        el('div', {class: 'card-head'}, el('span', {class: 'name', text: `${op && op.runbook ? op.runbook : d.kind} ${clock(d.created)}`}), badge(d.outcome)),
        el('div', {class: 'small', text: `${d.summary} · by ${d.who} · ${secs(d.duration_seconds)}`}),
        op ? timeline(op) : null);
    });
    put(panel('drills'), last.length || ops.length ? el('div', {}, last, ops) : note('no drills yet'));
  }

  function renderEvents() {
    put(panel('events'), state.events.length ? el('ol', {class: 'events'}, state.events.map((e) =>
      el('li', {data: {kind: e.kind}}, el('span', {class: 'time', text: clock(e.at)}), ' ',
        el('span', {class: 'kind', text: e.kind}), e.site ? ` [${e.site}] ` : ' ', e.message))) :
      note('waiting for events'));
  }

  // ---- the switchover form (operators and admins) ------------------------

  function setupSwitchover() {
    if (!canOperate()) return;
    $('so-service').addEventListener('change', () => refreshSwitchover(state.status));
    $('so-dry').addEventListener('click', () => switchover(true));
    $('so-run').addEventListener('click', () => {
      const key = `so-${$('so-service').value}-${$('so-to').value}`;
      if (state.armed === key && Date.now() < state.armedUntil) {
        state.armed = '';
        $('so-run').textContent = 'Switch over';
        switchover(false);
        return;
      }
      state.armed = key;
      state.armedUntil = Date.now() + 5000;
      $('so-run').textContent = `Click again: move ${$('so-service').value} to ${$('so-to').value}`;
      setTimeout(() => { if (state.armed === key) { state.armed = ''; $('so-run').textContent = 'Switch over'; } }, 5000);
    });
  }

  // setOptions replaces a select's options only when they changed, so that
  // a choice being made survives the polls.
  function setOptions(select, values, label) {
    const want = values.join('\n');
    if (select.dataset.values === want) return;
    const keep = select.value;
    select.replaceChildren(...values.map((v) => el('option', {value: v, text: label(v)})));
    select.dataset.values = want;
    if (values.includes(keep)) select.value = keep;
  }

  function refreshSwitchover(st) {
    if (!canOperate() || !st) return;
    setOptions($('so-service'), st.services.map((s) => s.name), (v) => v);
    const c = st.shown && st.shown.services;
    $('so-cut').textContent = (c && c.shown < c.total) || filtered() ?
      `The list holds the ${st.services.length} services shown; name another in the filter above.` : '';
    const svc = st.services.find((s) => s.name === $('so-service').value);
    const siteState = Object.fromEntries(st.sites.map((s) => [s.name, s.state]));
    const targets = svc ? svc.sites.filter((s) => s !== svc.active) : [];
    setOptions($('so-to'), targets, (v) => `${v} (${siteState[v] || 'unknown'})`);
  }

  async function switchover(dryRun) {
    const service = $('so-service').value;
    const to = $('so-to').value;
    const out = $('so-result');
    out.dataset.result = 'asking';
    put(out, el('p', {text: `${dryRun ? 'Dry run of' : 'Asking for'} a switchover of ${service} to ${to}…`}));
    let r;
    try {
      r = await call('/switchover', {body: {service, to, dry_run: dryRun}});
    } catch (e) {
      out.dataset.result = 'error';
      put(out, el('p', {class: 'error', text: `No answer: ${e.message}`}));
      return;
    }
    const b = r.body || {};
    if (r.status === 200 || r.status === 202) {
      out.dataset.result = dryRun ? 'dry-run' : 'accepted';
      out.dataset.op = b.op ? b.op.id : '';
      put(out, el('p', {}, badge(dryRun ? 'possible' : 'accepted', 'up'),
        dryRun ? ` ${service} to ${to} would run these steps:` : ` op ${b.op.id} journaled: ${service} to ${to}; follow it under Ops.`),
      dryRun ? el('ol', {}, (b.op.steps || []).map((s) => el('li', {text: `${s.name} ${params(s.params)}`}))) : null);
      if (!dryRun && b.op) watchOp(b.op.id);
      return;
    }
    out.dataset.result = r.status === 409 ? 'refused' : 'error';
    put(out, el('p', {}, badge(r.status === 409 ? 'refused' : 'error', 'failed'), ` ${b.error || `HTTP ${r.status}`}`),
      (b.blockers || []).length ? el('ul', {}, b.blockers.map((x) => el('li', {text: x}))) : null);
  }

  start();
})();
