// mufl dashboard: lists a tenant's activities through the REST API.
// Every piece of server data goes into the DOM via textContent, never innerHTML (XSS).
'use strict';

const TOKEN_KEY = 'mufl.token';
const PAGE_SIZE = 50;
const MAX_PAGE = 1000; // the server's limit cap (service/activity_routes.cpp)
const REFRESH_MS = 5000;
// core/activity.h: the only states the server knows; the last three are terminal.
const STATES = ['queued', 'consolidating', 'splitting', 'training', 'succeeded', 'failed', 'cancelled'];
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

const $ = (id) => document.getElementById(id);
const ui = {
  form: $('token-form'), token: $('token'), forget: $('forget'), who: $('who'),
  error: $('error'), status: $('status'), section: $('activities'),
  filter: $('state-filter'), refresh: $('refresh'), auto: $('auto'), updated: $('updated'),
  rows: $('rows'), empty: $('empty'), more: $('more'),
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  items: [],        // activities shown, newest first
  next: null,       // next_cursor of the last page loaded
  busy: false,      // a list request is in flight: auto-refresh skips a tick
  generation: 0,    // bumped by every reload so that stale "load more" replies are dropped
};

// An API error carrying the problem+json body, so callers can show title/detail.
class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

async function api(method, path) {
  let res;
  try {
    res = await fetch(path, {
      method,
      cache: 'no-store',
      headers: { Authorization: `Bearer ${state.token}`, Accept: 'application/json' },
    });
  } catch {
    throw new ApiError(0, { title: 'Network error', detail: 'cannot reach the server' });
  }
  const type = res.headers.get('Content-Type') || '';
  const body = type.includes('json') ? await res.json().catch(() => null) : null;
  if (!res.ok) throw new ApiError(res.status, body || { title: res.statusText || 'Error' });
  return body;
}

function showError(err) {
  ui.error.replaceChildren();
  if (!err) { ui.error.hidden = true; return; }
  const p = err.problem || {};
  const title = document.createElement('strong');
  // 401 gets a plain explanation: the usual cause is a mistyped or revoked token.
  title.textContent = err.status === 401 ? 'Token rejected' : (p.title || 'Error');
  ui.error.append(title);
  if (p.detail) ui.error.append(document.createTextNode(`: ${p.detail}`));
  if (Array.isArray(p.errors) && p.errors.length) {
    const ul = document.createElement('ul');
    for (const e of p.errors) {
      const li = document.createElement('li');
      li.textContent = `${e.field}: ${e.detail || e.message || ''}`;
      ul.append(li);
    }
    ui.error.append(ul);
  }
  ui.error.hidden = false;
}

function say(text) { ui.status.textContent = text; }

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text == null ? '' : String(text);
  if (className) td.className = className;
  return td;
}

const formatTime = (iso) => (Number.isNaN(Date.parse(iso)) ? String(iso || '') : new Date(iso).toLocaleString());

// "accuracy 0.975" from the last round's report, or '' before the first round.
function latestMetric(latest, task) {
  const m = latest && latest.metrics && latest.metrics[task];
  if (!m) return '';
  const name = Object.keys(m).find((k) => k !== 'loss');
  return name ? `${name} ${Number(m[name]).toFixed(3)}` : `loss ${Number(m.loss).toFixed(3)}`;
}

function renderRow(a) {
  const tr = document.createElement('tr');
  tr.dataset.id = a.id;
  tr.append(cell(a.name), cell(a.id, 'mono'), cell(a.dataset), cell(a.task));

  const badge = document.createElement('span');
  // Only known states become class names: server text never picks a CSS class freely.
  badge.className = `badge state-${STATES.includes(a.state) ? a.state : 'unknown'}`;
  badge.textContent = a.state;
  const stateTd = document.createElement('td');
  stateTd.append(badge);
  if (a.state_reason) {
    const why = document.createElement('div');
    why.className = 'reason';
    why.textContent = a.state_reason;
    stateTd.append(why);
  }
  // Progress: "round r / R", and the latest test metric once a round has finished.
  const p = a.progress || {};
  tr.append(stateTd, cell(`${p.round ?? 0} / ${a.rounds}`, 'num'), cell(latestMetric(p.latest, a.task), 'num'));

  const created = document.createElement('td');
  const time = document.createElement('time');
  time.dateTime = a.created_at || '';
  time.textContent = formatTime(a.created_at);
  created.append(time);
  tr.append(created);

  const actions = document.createElement('td');
  if (!TERMINAL.has(a.state)) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'danger small';
    b.textContent = 'Cancel';
    b.setAttribute('aria-label', `Cancel activity ${a.name || a.id}`);
    b.addEventListener('click', () => cancelActivity(a, b));
    actions.append(b);
  }
  tr.append(actions);
  return tr;
}

function render() {
  ui.rows.replaceChildren(...state.items.map(renderRow));
  ui.empty.hidden = state.items.length > 0;
  ui.more.hidden = !state.next;
  ui.updated.textContent = `${state.items.length} shown · updated ${new Date().toLocaleTimeString()}`;
}

function listPath(limit, cursor) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (ui.filter.value) q.set('state', ui.filter.value);
  if (cursor) q.set('cursor', cursor);
  return `/v1/activities?${q}`;
}

// Reloads from the newest activity, keeping as many rows as are already shown,
// so a refresh does not throw away pages the user loaded with "Load more".
async function reload() {
  if (!state.token) return;
  const gen = ++state.generation;
  const limit = Math.min(MAX_PAGE, Math.max(PAGE_SIZE, state.items.length));
  state.busy = true;
  try {
    const page = await api('GET', listPath(limit));
    if (gen !== state.generation) return;
    state.items = page.items || [];
    state.next = page.next_cursor || null;
    render();
    showError(null);
  } catch (err) {
    if (gen === state.generation) handleFailure(err);
  } finally {
    if (gen === state.generation) state.busy = false;
  }
}

async function loadMore() {
  if (!state.next || state.busy) return;
  const gen = state.generation;
  state.busy = true;
  ui.more.disabled = true;
  try {
    const page = await api('GET', listPath(PAGE_SIZE, state.next));
    if (gen !== state.generation) return; // a reload replaced the list meanwhile
    state.items = state.items.concat(page.items || []);
    state.next = page.next_cursor || null;
    render();
    showError(null);
  } catch (err) {
    handleFailure(err);
  } finally {
    ui.more.disabled = false;
    if (gen === state.generation) state.busy = false;
  }
}

async function cancelActivity(a, button) {
  if (!window.confirm(`Cancel activity "${a.name || a.id}"?`)) return;
  button.disabled = true;
  try {
    // DELETE answers with the activity as it is now: swap in just that row.
    const updated = await api('DELETE', `/v1/activities/${encodeURIComponent(a.id)}`);
    const i = state.items.findIndex((x) => x.id === a.id);
    if (i >= 0 && updated) state.items[i] = updated;
    render();
    showError(null);
    say(`Activity ${a.id} is now ${updated ? updated.state : 'cancelled'}.`);
  } catch (err) {
    button.disabled = false;
    handleFailure(err);
    if (err.status === 409 || err.status === 404) reload(); // it moved on meanwhile: show what it is now
  }
}

function handleFailure(err) {
  showError(err);
  if (err.status === 401) signedOut(false);
}

async function useToken(token) {
  state.token = token;
  try {
    const me = await api('GET', '/v1/me');
    sessionStorage.setItem(TOKEN_KEY, token);
    showWho(me);
    showError(null);
    ui.section.hidden = false;
    Object.assign(state, { items: [], next: null });
    await reload();
  } catch (err) {
    handleFailure(err);
  }
}

function showWho(me) {
  if (me && me.kind === 'admin') {
    ui.who.textContent = 'Operator (admin token): all tenants';
    return;
  }
  const t = (me && me.tenant) || {};
  const max = t.quotas ? t.quotas.max_active_activities : '?';
  ui.who.textContent = `Tenant ${t.name || t.id || '?'} · quota: ${max} active activities`;
  say(`Signed in as ${t.name || t.id}.`);
}

// forget=true also wipes the stored token; a 401 keeps it visible in the field to fix.
function signedOut(forget) {
  Object.assign(state, { token: '', busy: false, items: [], next: null });
  state.generation++;
  sessionStorage.removeItem(TOKEN_KEY);
  if (forget) ui.token.value = '';
  ui.section.hidden = true;
  ui.who.textContent = 'Not signed in';
}

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  const token = ui.token.value.trim();
  if (token) useToken(token);
});
ui.forget.addEventListener('click', () => {
  signedOut(true);
  showError(null);
  say('Token forgotten.');
});
ui.filter.addEventListener('change', () => { Object.assign(state, { items: [], next: null }); reload(); });
ui.refresh.addEventListener('click', () => reload());
ui.more.addEventListener('click', () => loadMore());

// Poll only while the tab is visible: a background tab should not load the server.
setInterval(() => {
  if (ui.auto.checked && !state.busy && state.token && document.visibilityState === 'visible') reload();
}, REFRESH_MS);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && ui.auto.checked && state.token) reload();
});

if (state.token) {
  ui.token.value = state.token;
  useToken(state.token);
}
