// The console's shell: the session, the hash router, the navigation and the page lifecycle.
// Each page is a module under pages/ exporting `render(ctx)`; ctx.subscribe() and ctx.onDispose()
// are undone when the page is left, so no stream or timer outlives its page.
import { api, ApiError, setSession, currentUser, hasRole, onSessionProblem } from './api.js';
import { connect, disconnect, subscribe, cancelPending } from './events.js';
import { h, clear, flash, errorText } from './ui.js';

const routes = [
  ['/login', 'login', 'login'],
  ['/password', 'password', 'password'],
  ['/', 'overview', 'overview'],
  ['/zones', 'zones', 'zones'],
  ['/zones/:zone', 'zone', 'zones'],
  ['/agents', 'agents', 'agents'],
  ['/agents/:id', 'agent', 'agents'],
  ['/tasks', 'tasks', 'tasks'],
  ['/tasks/new', 'task-new', 'tasks'],
  ['/tasks/:id', 'task', 'tasks'],
  ['/runs', 'runs', 'runs'],
  ['/runs/:id', 'run', 'runs'],
  ['/credentials', 'credentials', 'credentials'],
  ['/webhooks', 'webhooks', 'webhooks'],
  ['/webhooks/:id', 'webhook', 'webhooks'],
  ['/users', 'users', 'users'],
  ['/tokens', 'tokens', 'tokens'],
  ['/events', 'events', 'events'],
  ['/audit', 'audit', 'audit'],
];

function parseHash() {
  const raw = window.location.hash.replace(/^#/, '') || '/';
  const [path, queryString] = raw.split('?');
  const query = Object.fromEntries(new URLSearchParams(queryString || ''));
  const parts = path.split('/').filter(Boolean);
  for (const [pattern, page, nav] of routes) {
    const want = pattern.split('/').filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < want.length; i += 1) {
      if (want[i].startsWith(':')) {
        try { params[want[i].slice(1)] = decodeURIComponent(parts[i]); } catch { ok = false; }
      } else if (want[i] !== parts[i]) ok = false;
    }
    if (ok) return { page, nav, params, query, path };
  }
  return { page: null, nav: null, params: {}, query, path };
}

export function navigate(hash) {
  if (window.location.hash === hash) route(); else window.location.hash = hash;
}

let current = null; // { disposers }
let generation = 0;

function disposeCurrent() {
  cancelPending();
  if (!current) return;
  for (const fn of current.disposers) { try { fn(); } catch (error) { console.error(error); } }
  current = null;
}

function showChrome(visible) {
  document.getElementById('top').hidden = !visible;
  const user = currentUser();
  const who = document.getElementById('who');
  who.textContent = user ? `${user.username} (${user.role})` : '';
  for (const a of document.querySelectorAll('#nav a[data-role]')) a.hidden = !hasRole(a.dataset.role);
}

async function route() {
  const match = parseHash();
  const myGeneration = ++generation;
  disposeCurrent();
  const main = document.getElementById('main');
  const user = currentUser();
  if (!user && match.page !== 'login') { navigate(`#/login?next=${encodeURIComponent(match.path === '/login' ? '/' : match.path)}`); return; }
  if (user && user.passwordChangeRequired && match.page !== 'password') { navigate('#/password'); return; }
  if (user && match.page === 'login') { navigate('#/'); return; }
  showChrome(!!user && !user.passwordChangeRequired);
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.nav === match.nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.getElementById('nav').classList.remove('open');
  const disposers = [];
  current = { disposers };
  const root = h('div.page', { dataset: { page: match.page || 'missing' } });
  clear(main).append(root);
  if (!match.page) {
    root.append(h('h1', 'Not found'), h('p', 'This page does not exist. '), h('a', { href: '#/' }, 'Back to the overview'));
    document.title = 'Not found · Klevr';
    return;
  }
  const ctx = {
    root, params: match.params, query: match.query, navigate,
    onDispose: (fn) => disposers.push(fn),
    subscribe: (patterns, handler) => disposers.push(subscribe(patterns, handler)),
    // Whether this page is still the one shown (async work checks it before touching the DOM).
    get alive() { return generation === myGeneration; },
    setTitle: (title) => { document.title = `${title} · Klevr`; },
    signedIn: (answer) => signedIn(answer),
  };
  try {
    const module = await import(`./pages/${match.page}.js`);
    if (generation !== myGeneration) return;
    await module.render(ctx);
  } catch (error) {
    if (generation !== myGeneration) return;
    if (error instanceof ApiError && (error.status === 401 || error.type === 'password-change-required')) return;
    root.append(h('p.error', { role: 'alert' }, `This page could not be shown: ${errorText(error)}`));
  }
  if (generation === myGeneration) main.focus({ preventScroll: true });
}

function signedIn(answer) {
  setSession(answer);
  disconnect();
  // The event log is closed to a user who must change a generated password first.
  if (answer && !answer.passwordChangeRequired) connect();
}

function signedOut() {
  setSession(null);
  disconnect();
}

onSessionProblem((error) => {
  // Nobody is logged in (a wrong password at login): the page that asked shows the refusal itself.
  if (!currentUser()) return;
  if (error.status === 401) {
    if (currentUser()) flash('Your session has ended: log in again.', 'bad');
    signedOut();
    navigate('#/login');
  } else if (error.type === 'password-change-required') {
    const user = currentUser();
    if (user) user.passwordChangeRequired = true;
    navigate('#/password');
  }
});

async function start() {
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api.post('/api/v1/auth/logout'); } catch (error) { /* the cookie is cleared either way */ }
    signedOut();
    flash('Logged out.');
    navigate('#/login');
  });
  const toggle = document.getElementById('menu-toggle');
  toggle.addEventListener('click', () => {
    const nav = document.getElementById('nav');
    const open = nav.classList.toggle('open');
    toggle.setAttribute('aria-expanded', String(open));
  });
  try {
    signedIn(await api.get('/api/v1/auth/session'));
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) {
      if (error instanceof ApiError && error.status === 0) flash(errorText(error), 'bad');
    }
    setSession(null);
  }
  window.addEventListener('hashchange', route);
  route();
}

start();
