// Helpers shared by the admin and operator pages (credentials, webhooks, users, tokens, events, audit).
import { api, enc, hasRole, queryString } from './api.js';
import { kinds, kindMatches } from './events.js';
import {
  h, clear, table, link, timeCell, field, select, copyButton, time, ago, errorBox, pageHeader, localMillis, toLocalInput,
} from './ui.js';

// The event families (`run`, `agent` …) in the order of `kinds`, each with its kinds.
export function kindFamilies() {
  const families = new Map();
  for (const kind of kinds) {
    const family = kind.split('.')[0];
    if (!families.has(family)) families.set(family, []);
    families.get(family).push(kind);
  }
  return families;
}

// A note in place of what the user's role cannot do.
export function roleNote(text) {
  return h('p.role-note', { dataset: { part: 'role-note' } }, text);
}

// A value shown once (a secret, a token, a password), with a copy button and what to do with it.
export function secretOnce(title, value, name, ...more) {
  return h('div.secret-once', { role: 'status', dataset: { part: `${name}-once` } },
    h('p', h('strong', title)),
    h('div.copy-line', h('code', { dataset: { value: name } }, value), copyButton(value, 'Copy')),
    more);
}

// A random password of `length` characters from an unambiguous alphabet (crypto.getRandomValues).
export function randomPassword(length = 20) {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_';
  const bytes = new Uint8Array(length * 2);
  crypto.getRandomValues(bytes);
  let out = '';
  for (const b of bytes) {
    if (b >= 256 - (256 % alphabet.length)) continue; // no modulo bias
    out += alphabet[b % alphabet.length];
    if (out.length === length) break;
  }
  return out.length === length ? out : randomPassword(length);
}

// "who" for a time: `2026-11-28 20:01:02 by admin`.
export function whenBy(ms, who) {
  return h('span.when-by', timeCell(ms), who ? h('span.muted', ` by ${who}`) : null);
}

// ---- The event log and the audit log ----

const subjectPages = { run: 'runs', task: 'tasks', agent: 'agents', webhook: 'webhooks' };

// Where the subject of an event is shown, when the console has a page for it.
function subjectCell(e) {
  if (!e.subject) return '—';
  const family = e.kind.split('.')[0];
  const short = e.subject.length > 12 ? e.subject.slice(0, 8) : e.subject;
  const pages = subjectPages[family];
  let target = null;
  if (pages && !e.kind.endsWith('.deleted')) target = `#/${pages}/${enc(e.subject)}`;
  else if (family === 'zone' && e.zone && e.kind !== 'zone.deleted') target = `#/zones/${enc(e.zone)}`;
  else if (family === 'primary' || family === 'enroll_key') target = e.zone ? `#/zones/${enc(e.zone)}` : null;
  else if (family === 'credential') target = '#/credentials';
  else if (family === 'user' && hasRole('admin')) target = '#/users';
  else if (family === 'token') target = '#/tokens';
  return h('span.subject', { title: e.subject }, target ? link(target, short) : h('code', short));
}

function actorCell(e) {
  const a = e.actor || {};
  const name = a.name || (a.kind === 'system' ? 'system' : a.id ? a.id.slice(0, 8) : '—');
  return h('span.actor', { title: a.id || '' }, name, a.kind && a.kind !== name ? h('span.actor-kind', a.kind) : null);
}

export function detailChips(detail) {
  const entries = Object.entries(detail || {});
  if (!entries.length) return '—';
  return h('span.chips.detail', entries.map(([k, v]) => h('span.chip', `${k}=${v}`)));
}

// The columns of an event table, by name.
const eventColumns = {
  when: (relative) => ({ title: 'When', cell: (e) => h('time.event-time',
    { datetime: new Date(e.at).toISOString(), title: relative ? `${time(e.at)} · event ${e.id}` : `event ${e.id}` }, relative ? ago(e.at) : time(e.at)) }),
  event: () => ({ title: 'Event', cell: (e) => h('code.kind', e.kind) }),
  zone: () => ({ title: 'Zone', cell: (e) => (e.zone ? link(`#/zones/${enc(e.zone)}`, e.zone) : e.zoneId ? h('code', e.zoneId.slice(0, 8)) : '—') }),
  actor: () => ({ title: 'Actor', cell: actorCell }),
  address: () => ({ title: 'Address', cell: (e) => (e.actor?.address ? h('code', e.actor.address) : '—') }),
  subject: () => ({ title: 'Subject', cell: subjectCell }),
  detail: () => ({ title: 'Detail', cell: (e) => detailChips(e.detail) }),
};

// Events as a table: every column (the client address only with `showAddress`), or those named in
// `columns` (`when`, `event`, `zone`, `actor`, `address`, `subject`, `detail`); `relative` shows
// "3m 5s ago" in place of the time (which stays in the tooltip).
export function eventTable(items, { showAddress, columns, relative = false, empty = 'No event matches.' } = {}) {
  const names = columns || ['when', 'event', 'zone', 'actor', ...(showAddress ? ['address'] : []), 'subject', 'detail'];
  return table(names.map((name) => eventColumns[name](relative)),
    items.map((e) => ({ ...e, dataset: { event: String(e.id), kind: e.kind } })), { empty });
}

// The event or audit log page: filters (kept in the address), pages of 50 with "Older", and a Live toggle.
// `live(filters, afterId, onEvent, onState)` starts following and returns the function that stops it.
export async function eventLogPage(ctx, { title, path, route, intro, live, showAddress }) {
  ctx.setTitle(title);
  const q = ctx.query;
  const zones = await api.get('/api/v1/zones').then((p) => p.items).catch(() => []);
  const families = kindFamilies();
  const kindList = h('datalist', { id: `${route}-kinds` },
    [...families.keys()].map((f) => h('option', { value: f })), kinds.map((k) => h('option', { value: k })));
  const kind = h('input', { name: 'kind', list: `${route}-kinds`, value: q.kind || '', placeholder: 'run, agent.*, user.logged_in', autocomplete: 'off' });
  const zoneNames = zones.map((z) => z.name);
  if (q.zone && !zoneNames.includes(q.zone)) zoneNames.push(q.zone);
  const zone = select([['', 'every zone'], ...zoneNames.map((n) => [n, n])], q.zone || '', { name: 'zone' });
  const subject = h('input', { name: 'subject', value: q.subject || '', placeholder: 'an id (UUID)', autocomplete: 'off', spellcheck: false });
  const actor = h('input', { name: 'actor', value: q.actor || '', placeholder: 'user name or id', autocomplete: 'off' });
  const since = h('input', { name: 'since', type: 'datetime-local', value: q.since ? toLocalInput(Number(q.since)) : '' });
  const errors = errorBox();
  const showError = (error) => { if (ctx.alive) errors.show(error); };
  const list = h('div', { dataset: { part: 'event-list' } });
  const older = h('button', { type: 'button', dataset: { action: 'older' } }, 'Older');
  const liveButton = h('button.live-toggle', { type: 'button', dataset: { action: 'live' }, 'aria-pressed': 'false' }, 'Live: off');
  const liveState = h('span.muted.live-state', { 'aria-live': 'polite' });
  const count = h('span.muted');
  const filters = h('form.filters.log-filters', { role: 'search', dataset: { form: `${route}-filters` } },
    kindList,
    field('Kind or family', kind), field('Zone', zone), field('Subject', subject), field('Actor', actor), field('Since', since),
    h('div.filter-buttons', h('button.primary', { type: 'submit' }, 'Filter'),
      h('button', { type: 'button', dataset: { action: 'clear-filters' }, on: { click: () => { for (const el of [kind, zone, subject, actor, since]) el.value = ''; filters.requestSubmit(); } } }, 'Clear')));
  ctx.root.append(pageHeader(title, liveState, liveButton),
    intro ? h('p.muted', intro) : null, filters, errors, h('section.card.log-card', list, h('div.actions.log-more', older, count)));

  let items = [];
  let cursor = null;
  let stop = null;
  let current = {};

  function readFilters() {
    const f = { kind: kind.value.trim().replace(/\s+/g, ''), zone: zone.value, subject: subject.value.trim(), actor: actor.value.trim(), since: localMillis(since.value) };
    for (const key of Object.keys(f)) if (f[key] === '' || f[key] === undefined) delete f[key];
    return f;
  }
  function keepInAddress(f) {
    const text = queryString({ ...f, live: stop ? '1' : undefined });
    history.replaceState(null, '', `#/${route}${text ? `?${text}` : ''}`);
  }
  function show() {
    clear(list).append(eventTable(items, { showAddress }));
    older.hidden = !cursor;
    count.textContent = items.length ? `${items.length} event${items.length === 1 ? '' : 's'} shown` : '';
  }
  async function load() {
    errors.hide();
    const f = readFilters();
    const page = await api.get(path, { ...f, limit: 50 });
    if (!ctx.alive) return;
    current = f;
    items = page.items;
    cursor = page.nextCursor || null;
    keepInAddress(f);
    show();
  }
  older.addEventListener('click', async () => {
    if (!cursor) return;
    older.disabled = true;
    try {
      const page = await api.get(path, { ...current, limit: 50, cursor });
      if (!ctx.alive) return;
      const seen = new Set(items.map((e) => e.id));
      items = items.concat(page.items.filter((e) => !seen.has(e.id)));
      cursor = page.nextCursor || null;
      show();
    } catch (error) { showError(error); } finally { older.disabled = false; }
  });

  // Live: new events at the top, at most 1000 kept beyond the loaded pages.
  let pending = [];
  let flushTimer = null;
  function add(event) {
    pending.push(event);
    if (!flushTimer) flushTimer = setTimeout(flush, 200);
  }
  function flush() {
    flushTimer = null;
    if (!ctx.alive || !pending.length) return;
    const seen = new Set(items.map((e) => e.id));
    const fresh = pending.filter((e) => !seen.has(e.id) && (current.since === undefined || e.at >= current.since));
    pending = [];
    if (!fresh.length) return;
    items = fresh.sort((a, b) => b.id - a.id).concat(items).slice(0, Math.max(items.length, 1000));
    show();
  }
  function setLive(on) {
    if (stop) { stop(); stop = null; }
    liveButton.setAttribute('aria-pressed', String(on));
    liveButton.textContent = on ? 'Live: on' : 'Live: off';
    liveButton.classList.toggle('on', on);
    liveState.textContent = '';
    if (on) {
      const newest = items.reduce((m, e) => Math.max(m, e.id), 0);
      stop = live(current, newest, add, (state) => { if (ctx.alive) liveState.textContent = state; }, showError);
    }
    keepInAddress(current);
  }
  liveButton.addEventListener('click', () => setLive(!stop));
  filters.addEventListener('submit', async (event) => {
    event.preventDefault();
    const wasLive = !!stop;
    if (stop) { stop(); stop = null; }
    try { await load(); if (wasLive) setLive(true); } catch (error) { showError(error); }
  });
  ctx.onDispose(() => { if (stop) stop(); stop = null; clearTimeout(flushTimer); });

  // A bad filter in the address (a subject that is not an id …) is shown, with the filters to fix it.
  try { await load(); } catch (error) { show(); showError(error); }
  if (q.live === '1') setLive(true);
}

// Whether an event passes the filters (for the shared live stream, which carries every event).
export function eventMatches(f, e) {
  const patterns = String(f.kind || '').split(',').map((p) => p.trim()).filter(Boolean);
  if (patterns.length && !patterns.some((p) => kindMatches(p, e.kind))) return false;
  if (f.zone && e.zone !== f.zone && e.zoneId !== f.zone) return false;
  if (f.subject && e.subject !== f.subject) return false;
  if (f.actor && e.actor?.name !== f.actor && e.actor?.id !== f.actor) return false;
  return true;
}
