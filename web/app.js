// The dashboard's entry: sign-in with a token, hash routing between the pages, and the live
// feed that tells the page shown when something changed. Every piece of server data goes into
// the DOM as text (dom.js), never as HTML.
//
// Routes: #/activities, #/activities/ID, #/groups, #/groups/ID, #/devices, #/usage.
// A page module's mount(view, ctx, id?) fills `view` and returns {refresh, onEvent, dispose}.
import * as activities from './activities.js';
import { api, session } from './api.js';
import * as devices from './devices.js';
import { el } from './dom.js';
import * as groups from './groups.js';
import { LiveFeed } from './live.js';
import * as usage from './usage.js';

const $ = (id) => document.getElementById(id);
const ui = {
  form: $('token-form'), token: $('token'), forget: $('forget'), who: $('who'), nav: $('nav'),
  live: $('live'), error: $('error'), status: $('status'), view: $('view'),
};

const ROUTES = [
  [/^#\/activities\/([^/]+)$/, (v, c, id) => activities.mountDetail(v, c, id), 'activities'],
  [/^#\/activities$/, (v, c) => activities.mountList(v, c), 'activities'],
  [/^#\/groups\/([^/]+)$/, (v, c, id) => groups.mountDetail(v, c, id), 'groups'],
  [/^#\/groups$/, (v, c) => groups.mountList(v, c), 'groups'],
  [/^#\/devices$/, (v, c) => devices.mount(v, c), 'devices'],
  [/^#\/usage$/, (v, c) => usage.mount(v, c), 'usage'],
];

const ctx = { me: null, showError, say };
let page = null;  // the mounted page's controller

function showError(err) {
  ui.error.replaceChildren();
  if (!err) { ui.error.hidden = true; return; }
  const p = err.problem || {};
  // 401 gets a plain explanation: the usual cause is a mistyped or revoked token.
  ui.error.append(el('strong', { text: err.status === 401 ? 'Token rejected' : (p.title || 'Error') }));
  if (p.detail) ui.error.append(`: ${p.detail}`);
  if (Array.isArray(p.errors) && p.errors.length) {
    ui.error.append(el('ul', {}, p.errors.map((e) => el('li', { text: `${e.field}: ${e.detail || e.message || ''}` }))));
  }
  ui.error.hidden = false;
  if (err.status === 401) signedOut(false);
}

function say(text) { ui.status.textContent = text; }

function route() {
  if (page) page.dispose();
  page = null;
  ui.view.replaceChildren();
  if (!session.token || !ctx.me) return;
  const hash = window.location.hash || '#/activities';
  const match = ROUTES.map(([re, mount, nav]) => [hash.match(re), mount, nav]).find(([m]) => m);
  if (!match) {
    ui.view.append(el('p', { className: 'empty', text: `No page ${hash}.` }), el('a', { href: '#/activities', text: 'Activities' }));
    return;
  }
  const [m, mount, nav] = match;
  for (const a of ui.nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.page === nav);
  page = mount(ui.view, ctx, m[1] ? decodeURIComponent(m[1]) : undefined);
  page.refresh();
}

const live = new LiveFeed({
  onEvent: (e) => { if (page) page.onEvent(e); },
  onOpen: () => { if (page) page.refresh(); },
  onStatus: ({ mode, text }) => {
    ui.live.className = `live live-${mode}`;
    ui.live.dataset.mode = mode;
    ui.live.textContent = text;
  },
  onUnauthorized: () => signedOut(false),
});

async function useToken(token) {
  try {
    const me = await api('GET', '/v1/me', token);
    session.save(token);
    ctx.me = me;
    ui.who.textContent = me.kind === 'admin' ? 'Operator (admin token): all tenants'
      : `Tenant ${(me.tenant && (me.tenant.name || me.tenant.id)) || '?'}`;
    ui.nav.hidden = false;
    ui.view.hidden = false;
    ui.form.hidden = true;
    showError(null);
    live.start(token);
    route();
  } catch (err) {
    showError(err);
  }
}

// forget=true also wipes the token field; after a 401 it stays there to be fixed.
function signedOut(forget) {
  session.forget();
  ctx.me = null;
  live.stop();
  if (page) page.dispose();
  page = null;
  if (forget) ui.token.value = '';
  ui.view.replaceChildren();
  ui.view.hidden = true;
  ui.nav.hidden = true;
  ui.form.hidden = false;
  ui.who.textContent = 'Not signed in';
}

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  const token = ui.token.value.trim();
  if (token) useToken(token);
});
ui.forget.addEventListener('click', () => { signedOut(true); showError(null); say('Token forgotten.'); });
window.addEventListener('hashchange', route);

if (session.token) {
  ui.token.value = session.token;
  useToken(session.token);
}
