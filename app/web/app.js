// The cluster page. It opens this replica's leader stream
// (/api/v1/leader?watch=true, server-sent events) and, on every event,
// reads the lease, the term log, the replicas, their components and the
// resource counts once. It never polls: the only timer redraws the ages
// ("3 s ago", "expires in 4 s") from what it already has.
'use strict';

const $ = (id) => document.getElementById(id);

const view = {
  leader: null,      // /api/v1/leader
  leaderAt: 0,       // when it was received (performance.now())
  members: null,     // /api/v1/replicas, null when this replica has none
  cluster: null,     // /api/v1/cluster
};

// ---- the stream ---------------------------------------------------------

function connect() {
  const es = new EventSource('/api/v1/leader?watch=true');
  const onEvent = (ev) => {
    setLive('live', 'Live: this replica streams every leadership change.');
    const info = leaderInfoOf(ev.data);
    if (info) showLeader(info);
    refresh();
  };
  es.onopen = () => setLive('live', 'Live: this replica streams every leadership change.');
  es.onmessage = onEvent;
  es.addEventListener('leader', onEvent);
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      // The replica answered, but not with a stream: show what it knows once.
      setLive('down', 'Not live: this replica does not stream leadership changes; reload to see newer ones.');
      refresh();
    } else {
      setLive('reconnecting', 'Reconnecting to this replica… (what is shown may be out of date)');
    }
  };
}

function leaderInfoOf(data) {
  try {
    const v = JSON.parse(data);
    if (v && typeof v === 'object') {
      if ('holder' in v && 'self' in v) return v;
      if (v.leader && typeof v.leader === 'object' && 'holder' in v.leader) return v.leader;
    }
  } catch (_) { /* a comment or a non-JSON event: the refresh reads the lease */ }
  return null;
}

function setLive(state, text) {
  const el = $('live');
  if (el.dataset.state !== state || el.textContent !== text) {
    el.dataset.state = state;
    el.textContent = text;
  }
}

// ---- reading the API ----------------------------------------------------

let refreshing = false;
let again = false;

// refresh reads every endpoint once; events that arrive meanwhile cause one
// more round after it, so the page ends on the newest state.
async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    do {
      again = false;
      await Promise.allSettled([
        getJSON('/api/v1/leader').then(showLeader, (e) => showLeaseError(e)),
        getJSON('/api/v1/terms?limit=20').then(showTerms, (e) => showTermsError(e)),
        getJSON('/api/v1/replicas').then((v) => { view.members = membersOf(v); }, () => { view.members = null; })
          .then(() => getJSON('/api/v1/cluster')).then((v) => { view.cluster = v; }, () => {})
          .finally(showReplicas),
        getJSON('/api/v1/counts').then(showCounts, () => {}),
      ]);
    } while (again);
  } finally {
    refreshing = false;
  }
}

async function getJSON(path) {
  const resp = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error((body && body.message) || `${path}: ${resp.status} ${resp.statusText}`);
  return body;
}

function membersOf(v) {
  const list = Array.isArray(v) ? v : (v && (v.replicas || v.items || v.members)) || [];
  return list.map((m) => ({
    identity: m.identity || m.holder || '',
    address: m.address || m.httpAddress || m.url || '',
    version: m.version || '',
    role: m.role || '',
    term: m.term || 0,
    startedAt: m.startedAt || m.started || '',
    lastSeen: m.seenAt || m.lastSeen || '',
    error: m.error || '',
    gone: Boolean(m.gone),
  }));
}

// ---- rendering ----------------------------------------------------------

function showLeader(info) {
  const prev = view.leader;
  view.leader = info;
  view.leaderAt = performance.now();
  const el = $('leader');
  const holder = info.holder || '';
  const term = info.term || 0;
  el.dataset.holder = holder;
  el.dataset.term = holder ? String(term) : '';
  el.textContent = holder
    ? `Leader: ${holder}, term ${term}`
    : `No leader: the lease is free${term ? ` (last term ${term})` : ''}`;
  $('election').textContent = info.election || '–';
  $('term').textContent = term ? String(term) : '–';
  const self = info.self || {};
  $('self').textContent = `${self.identity || '?'} (${roleText(self.role, self.identity === holder)}${self.pid ? `, pid ${self.pid}` : ''})`;
  const err = $('lease-error');
  err.hidden = !info.stale;
  err.textContent = info.stale ? `The database could not be read; this is the lease as last seen: ${info.error || ''}` : '';
  if (prev && (prev.holder !== info.holder || prev.term !== info.term)) {
    $('announce').textContent = holder ? `Leadership changed: ${holder} leads term ${term}.` : 'The leader is gone: the lease is free.';
  }
  tick();
  showReplicas();
}

function showLeaseError(e) {
  const err = $('lease-error');
  err.hidden = false;
  err.textContent = `The lease could not be read: ${e.message}`;
}

const HOW = {
  'released': 'released: its holder stepped down (graceful stop)',
  'force-released': 'force-released by an operator (leader release --force)',
  'fenced': 'fenced: a write of the term was refused, so its holder resigned',
  'deadline': 'deadline: its holder could not renew the lease in time',
  'lost': 'lost: the lease was taken or released elsewhere',
  'clock-jump': 'clock jump: the database clock leapt ahead, so its holder stepped down',
  'lock': 'lock: its session lock was lost, or not confirmed within its lock window',
  'expired': 'expired: crash, hang or cut-off (a successor was elected while it had not ended)',
};

function showTerms(body) {
  const ol = $('terms');
  const items = (body.terms || []).map((t) => {
    const li = document.createElement('li');
    li.dataset.term = String(t.term);
    li.dataset.holder = t.holder;
    li.dataset.how = t.how || '';
    const head = document.createElement('strong');
    head.textContent = `Term ${t.term}`;
    li.append(head, ` — `, span('id', t.holder), ` — started ${clock(t.startedAt)}`);
    if (t.endedAt) {
      li.append(`, ended ${clock(t.endedAt)} after ${duration(Date.parse(t.endedAt) - Date.parse(t.startedAt))}: `,
        span('how', HOW[t.how] || t.how || 'ended'));
    } else {
      li.append(': ', span('how', 'leading now'));
    }
    if (t.token) li.append(` (${t.token})`);
    return li;
  });
  if (items.length === 0) {
    const li = document.createElement('li');
    li.dataset.how = 'none';
    li.textContent = 'No term yet: nobody has led this election.';
    items.push(li);
  }
  ol.replaceChildren(...items);
}

function showTermsError(e) {
  const li = document.createElement('li');
  li.className = 'error';
  li.textContent = `The term log could not be read: ${e.message}`;
  $('terms').replaceChildren(li);
}

// showReplicas merges the membership table (who exists) with each
// replica's own status (its role and components).
function showReplicas() {
  const statuses = new Map(((view.cluster && view.cluster.replicas) || []).map((r) => [r.identity, r]));
  const holder = (view.leader && view.leader.holder) || '';
  let rows = view.members;
  const note = $('replicas-note');
  if (rows === null) {
    // No /api/v1/replicas: the members as /api/v1/cluster read them.
    rows = [...statuses.values()].map((r) => ({ identity: r.identity, address: r.address || '', role: (r.status || {}).role || '', gone: Boolean(r.gone) }));
    note.hidden = rows.length > 1;
    note.textContent = 'Only this replica is listed: no other has recorded itself in the membership table.';
  } else {
    note.hidden = true;
  }
  const tbody = $('replicas').tBodies[0];
  tbody.replaceChildren(...rows.map((m) => {
    const st = statuses.get(m.identity);
    const role = (st && st.status && st.status.role) || m.role;
    const leading = m.identity === holder && !m.gone;
    const tr = document.createElement('tr');
    tr.dataset.identity = m.identity;
    tr.dataset.role = m.gone ? 'gone' : (leading ? 'leader' : 'follower');
    const unreachable = st && !st.status && !st.self && !m.gone;
    const roleCell = span('role' + (m.gone || unreachable ? ' gone' : leading ? ' leading' : ''),
      m.gone ? 'Gone (not seen within the lease)'
        : unreachable ? `Unreachable (last recorded as ${role || 'unknown'})` : roleText(role, leading));
    const roleTd = cell(roleCell);
    if (m.error) roleTd.append(Object.assign(document.createElement('div'), { className: 'error', textContent: `cannot take part in the election: ${m.error}` }));
    tr.append(cell(span('id', m.identity), st && st.self ? ' (this page)' : ''), roleTd,
      cell(m.address || '–'), cell(m.version || '–'), cell(m.startedAt ? clock(m.startedAt) : '–'),
      ageCell(m.lastSeen));
    return tr;
  }));
  showComponents(statuses);
}

function showComponents(statuses) {
  const rows = [];
  for (const r of statuses.values()) {
    if (!r.status) {
      const tr = document.createElement('tr');
      tr.append(cell(span('id', r.identity)), Object.assign(document.createElement('td'), { colSpan: 7, className: 'error', textContent: r.gone ? (r.error || 'gone') : `unreachable: ${r.error || 'no status'}` }));
      rows.push(tr);
      continue;
    }
    for (const c of r.status.components || []) {
      const tr = document.createElement('tr');
      tr.dataset.replica = r.identity;
      tr.dataset.component = c.name;
      // Pending is a leader component on a follower: as it should be.
      const cls = c.state === 'BackingOff' ? ' bad' : (c.state === 'Exited' || c.state === 'Stopped') ? ' warn' : '';
      tr.append(cell(span('id', r.identity)), cell(c.name), cell(c.leaderOnly ? 'leader only' : 'every replica'),
        cell(span('state' + cls, c.state)), cell(clock(c.since)), numCell(c.starts), numCell(c.restarts),
        cell(c.lastError ? `${c.lastError} (${clock(c.lastErrorAt)})` : '–'));
      rows.push(tr);
    }
  }
  $('components').tBodies[0].replaceChildren(...rows);
}

function showCounts(body) {
  const kinds = body.kinds || [];
  $('counts').tBodies[0].replaceChildren(...(kinds.length ? kinds.map((k) => {
    const tr = document.createElement('tr');
    tr.dataset.kind = k.kind;
    tr.append(cell(k.kind), numCell(k.count));
    return tr;
  }) : [Object.assign(document.createElement('tr'), { textContent: 'The store holds no resources.' })]));
  $('counts-total').textContent = String(body.total || 0);
}

// roleText names a role; only the lease holder is the leader.
function roleText(role, leading) {
  if (leading) return 'Leader';
  switch (role) {
    case 'Leading': return 'Leading (not the lease holder)';
    case 'Candidate': return 'Follower';
    case 'Draining': return 'Draining (stepping down)';
    case 'Stopped': return 'Stopped';
    case 'NotStarted': return 'Starting';
    default: return role || 'Follower';
  }
}

// ---- the clock: ages only, no requests -----------------------------------

// tick redraws what depends on the time since the lease was read.
function tick() {
  const info = view.leader;
  if (!info) return;
  const now = info.databaseNow ? dbNow() : NaN;
  if (info.holder && info.since) {
    $('since').textContent = `${clock(info.since)} (${isNaN(now) ? '' : duration(now - Date.parse(info.since)) + ' ago'})`;
  } else {
    $('since').textContent = '–';
  }
  if (info.holder && info.expires && !isNaN(now)) {
    const left = Date.parse(info.expires) - now;
    $('expires').textContent = left >= 0
      ? `${clock(info.expires)} (in ${duration(left)}, unless renewed)`
      : `${clock(info.expires)} (${duration(-left)} ago: not renewed)`;
  } else {
    $('expires').textContent = '–';
  }
  for (const td of document.querySelectorAll('td[data-seen]')) { // by the database's clock
    td.textContent = `${duration(dbNow() - Date.parse(td.dataset.seen))} ago`;
  }
}

// ---- small helpers -------------------------------------------------------

function span(cls, text) {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

function cell(...content) {
  const td = document.createElement('td');
  td.append(...content);
  return td;
}

function numCell(n) {
  const td = cell(String(n ?? 0));
  td.className = 'num';
  return td;
}

function ageCell(ts) {
  const td = cell(ts ? `${duration(dbNow() - Date.parse(ts))} ago` : '–');
  if (ts) {
    td.dataset.seen = ts;
    td.title = ts;
  }
  return td;
}

// dbNow is the database's clock now, as far as the last lease read tells.
function dbNow() {
  const info = view.leader;
  if (!info || !info.databaseNow) return Date.now();
  return Date.parse(info.databaseNow) + (performance.now() - view.leaderAt);
}

function clock(ts) {
  if (!ts) return '–';
  const d = new Date(ts);
  return isNaN(d) ? String(ts) : d.toLocaleTimeString([], { hour12: false });
}

function duration(ms) {
  if (!isFinite(ms)) return '?';
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

connect();
setInterval(tick, 1000);
