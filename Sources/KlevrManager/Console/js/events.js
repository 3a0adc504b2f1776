// The live event log: one Server-Sent Events stream (`GET /api/v1/events?follow=true`) shared by every
// page. Pages subscribe to kinds or families (`run`, `agent.online`, `*`) and refresh what they show;
// the browser reconnects by itself and resumes after the last event id it saw (no gap).

// Every event kind of the API (the stream names each event by its kind).
export const kinds = [
  'run.created', 'run.dispatched', 'run.redelivered', 'run.released', 'run.started', 'run.succeeded',
  'run.failed', 'run.timed_out', 'run.canceled', 'run.cancel_requested', 'run.due', 'run.recovering',
  'run.failed_recover', 'run.expired', 'run.transition_refused', 'task.created', 'task.canceled', 'task.fired',
  'task.skipped', 'task.paused', 'task.resumed', 'task.rollout_stopped', 'agent.enrolled', 'agent.reenrolled',
  'agent.online', 'agent.offline', 'agent.retire_requested', 'agent.retired', 'agent.relay_forgery', 'agent.labels_changed',
  'zone.created', 'zone.deleted', 'primary.elected', 'primary.retired', 'enroll_key.created', 'enroll_key.rotated',
  'enroll_key.revoked', 'user.created', 'user.updated', 'user.disabled', 'user.enabled', 'user.deleted',
  'user.password_changed', 'user.logged_in', 'user.logged_out', 'token.created', 'token.revoked', 'credential.created',
  'credential.updated', 'credential.deleted', 'webhook.created', 'webhook.updated', 'webhook.deleted', 'webhook.redelivered',
];

const subscribers = new Set();
let source = null;
let lastId = null;

// Whether `kind` matches `pattern` as the API reads kind filters: a kind (`run.failed`), a family (`run`,
// `run.*`), or `*` for every kind (subscriptions only: the API's filters have no `*`).
export function kindMatches(pattern, kind) {
  const family = pattern.endsWith('.*') ? pattern.slice(0, -2) : pattern;
  return family === '*' || family === kind || kind.startsWith(`${family}.`);
}

function setLive(state) {
  const el = document.getElementById('live');
  if (!el) return;
  el.textContent = `live: ${state}`;
  el.dataset.state = state;
}

function deliver(message) {
  let event;
  try { event = JSON.parse(message.data); } catch { return; }
  lastId = event.id;
  for (const s of [...subscribers]) {
    if (s.patterns.some((p) => kindMatches(p, event.kind))) {
      try { s.handler(event); } catch (error) { console.error(error); }
    }
  }
}

export function connect() {
  if (source) return;
  source = new EventSource('/api/v1/events?follow=true', { withCredentials: true });
  for (const kind of kinds) source.addEventListener(kind, deliver);
  source.onopen = () => setLive('on');
  source.onerror = () => setLive(source && source.readyState === EventSource.CLOSED ? 'off' : 'reconnecting');
}

export function disconnect() {
  if (source) source.close();
  source = null;
  setLive('off');
}

// Calls `handler(event)` for each live event whose kind matches one of `patterns`; returns the
// unsubscribe function. Handlers for bursts should debounce (see `debounced`).
export function subscribe(patterns, handler) {
  const entry = { patterns: Array.isArray(patterns) ? patterns : [patterns], handler };
  subscribers.add(entry);
  return () => subscribers.delete(entry);
}

// `fn` at most once per `ms`, trailing: for refreshing a page after a burst of events. A refresh still
// pending when its page is left is dropped (`cancelPending`, called by the router).
const pending = new Set();
export function debounced(fn, ms = 300) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { pending.delete(timer); timer = null; fn(); }, ms);
    pending.add(timer);
  };
}

export function cancelPending() {
  for (const timer of pending) clearTimeout(timer);
  pending.clear();
}

export function lastEventId() { return lastId; }
