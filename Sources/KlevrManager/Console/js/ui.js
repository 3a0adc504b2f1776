// DOM helpers. Text always goes in as text nodes (never innerHTML), so nothing the API returns can
// become markup.
import { ApiError } from './api.js';

// h('tag.class#id', { attrs, on: { click } }, ...children)
export function h(spec, attrs, ...children) {
  if (attrs === null || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    if (attrs !== undefined && attrs !== null) children.unshift(attrs);
    attrs = {};
  }
  const match = /^([a-z0-9-]+)?((?:[.#][A-Za-z0-9_-]+)*)$/.exec(spec);
  const el = document.createElement((match && match[1]) || 'div');
  if (match && match[2]) {
    for (const part of match[2].match(/[.#][A-Za-z0-9_-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
    }
  }
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === 'class') {
      for (const c of String(value).split(/\s+/).filter(Boolean)) el.classList.add(c);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key in el && key !== 'list' && key !== 'form' && typeof value !== 'string') {
      el[key] = value;
    } else if (key === 'value' || key === 'checked' || key === 'selected' || key === 'disabled' || key === 'hidden') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

// Times are the manager's epoch milliseconds.
export function time(ms) {
  if (ms === undefined || ms === null) return '—';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
export function ago(ms) {
  if (!ms) return '—';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < -5) return `in ${duration(-s)}`;
  if (s < 5) return 'just now';
  return `${duration(s)} ago`;
}
export function duration(seconds) {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}
export function timeCell(ms) { return ms ? h('time', { datetime: new Date(ms).toISOString(), title: time(ms) }, ago(ms)) : '—'; }

// The value of a datetime-local input (the browser's time zone) as epoch milliseconds (empty or not a
// date: undefined), and back (to the minute).
export function localMillis(value) {
  if (!value) return undefined;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : undefined;
}
export function toLocalInput(ms) {
  return ms ? time(ms).slice(0, 16).replace(' ', 'T') : '';
}

// A status shown by colour and by its word, so colour is never the only signal.
const tones = {
  online: 'good', succeeded: 'good', delivered: 'good', active: 'good', enabled: 'good', primary: 'info',
  running: 'info', dispatched: 'info', queued: 'wait', scheduled: 'wait', recovering: 'warn', pending: 'wait', paused: 'wait',
  retiring: 'warn', offline: 'bad', failed: 'bad', failed_recover: 'bad', timed_out: 'bad', expired: 'bad',
  canceled: 'muted', retired: 'muted', revoked: 'muted', disabled: 'muted', expired_key: 'muted', finished: 'muted',
};
export function badge(status, label) {
  const tone = tones[status] || 'muted';
  return h(`span.badge.tone-${tone}`, { dataset: { status } }, label || String(status).replace('_', ' '));
}

export function table(columns, rows, { empty = 'Nothing yet.', caption } = {}) {
  if (!rows.length) return h('p.empty', empty);
  return h('div.table-wrap',
    h('table',
      caption ? h('caption', caption) : null,
      h('thead', h('tr', columns.map((c) => h('th', { scope: 'col' }, c.title)))),
      h('tbody', rows.map((row) => h('tr', row.dataset ? { dataset: row.dataset } : {},
        columns.map((c) => h('td', { dataset: { label: c.title } }, c.cell(row))))))));
}

export function link(href, text) { return h('a', { href }, text); }

let flashTimer;
export function flash(message, tone = 'good') {
  const el = document.getElementById('flash');
  clear(el);
  el.className = `flash tone-${tone}`;
  el.append(document.createTextNode(message));
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { clear(el); el.className = 'flash'; }, tone === 'bad' ? 12000 : 5000);
}

export function errorText(error) {
  return error instanceof ApiError ? error.describe() : String(error && error.message ? error.message : error);
}

// A box that shows an error (the server's refusal, verbatim) under a form.
export function errorBox() {
  const el = h('p.error', { role: 'alert', hidden: true });
  el.show = (error) => { el.textContent = errorText(error); el.hidden = false; };
  el.hide = () => { el.textContent = ''; el.hidden = true; };
  return el;
}

let fieldCounter = 0;
// A labelled form field. `input` is an element; the label points at it.
export function field(label, input, hint) {
  if (!input.id) input.id = `f${++fieldCounter}`;
  const hintEl = hint ? h('small.hint', { id: `${input.id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div.field', h('label', { for: input.id }, label), input, hintEl);
}

export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map((o) => {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    return h('option', { value: v, selected: v === value }, text);
  }));
}

// A button that runs an async action, disabled while it runs; errors go to `errors` or the flash.
export function actionButton(label, action, { tone, errors, confirmText, name } = {}) {
  const button = h(`button${tone ? `.${tone}` : ''}`, { type: 'button', dataset: name ? { action: name } : {} }, label);
  let armed = false;
  let disarm;
  button.addEventListener('click', async () => {
    if (confirmText && !armed) {
      armed = true;
      button.textContent = confirmText;
      button.classList.add('armed');
      disarm = setTimeout(() => { armed = false; button.textContent = label; button.classList.remove('armed'); }, 6000);
      return;
    }
    clearTimeout(disarm);
    armed = false;
    button.textContent = label;
    button.classList.remove('armed');
    button.disabled = true;
    try {
      errors?.hide?.();
      await action();
    } catch (error) {
      if (errors?.show) errors.show(error); else flash(errorText(error), 'bad');
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

// A form whose submit runs `action` (async) with its errors shown under it.
export function form(children, action, submitLabel, { name } = {}) {
  const errors = errorBox();
  const submit = h('button.primary', { type: 'submit' }, submitLabel);
  const el = h('form', { dataset: name ? { form: name } : {} }, children, errors, h('div.actions', submit));
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    errors.hide();
    try { await action(el); } catch (error) { errors.show(error); } finally { submit.disabled = false; }
  });
  el.errors = errors;
  return el;
}

export function copyButton(getText, label = 'Copy') {
  const button = h('button', { type: 'button', class: 'copy' }, label);
  button.addEventListener('click', async () => {
    const text = typeof getText === 'function' ? getText() : getText;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      // Without clipboard access (plain http beyond localhost), select the text for the user to copy.
      const target = button.previousElementSibling;
      if (target) window.getSelection().selectAllChildren(target);
      button.textContent = 'Selected: press Ctrl+C';
    }
    setTimeout(() => { button.textContent = label; }, 3000);
  });
  return button;
}

export function section(title, ...children) {
  return h('section.card', h('h2', title), children);
}

export function pageHeader(title, ...actions) {
  return h('div.page-head', h('h1', title), h('div.page-actions', actions));
}

export function dl(pairs) {
  return h('dl.facts', pairs.filter(Boolean).map(([k, v]) => [h('dt', k), h('dd', v === undefined || v === null || v === '' ? '—' : v)]));
}

export function labelsText(labels) {
  const entries = Object.entries(labels || {});
  return entries.length ? entries.map(([k, v]) => (v ? `${k}=${v}` : k)).join(',') : '';
}
export function labelChips(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return '—';
  return h('span.chips', entries.map(([k, v]) => h('span.chip', v ? `${k}=${v}` : k)));
}
