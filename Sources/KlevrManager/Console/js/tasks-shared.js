// Helpers shared by the task and run pages (tasks.js, task-new.js, task.js, runs.js, run.js), and the
// runs tables and agent names of the overview, agent and zone list pages.
import { api, enc } from './api.js';
import { h, badge, link, table, timeCell } from './ui.js';

export const runStatuses = ['scheduled', 'queued', 'dispatched', 'running', 'recovering', 'succeeded', 'failed', 'failed_recover', 'timed_out', 'canceled', 'expired'];
export const finishedStatuses = new Set(['succeeded', 'failed', 'failed_recover', 'timed_out', 'canceled', 'expired']);
export function isFinished(run) { return finishedStatuses.has(run.status); }

// A target in words: "all of lab", "agent web-1", "selector env=prod (every zone)".
export function targetText(target, hostOf = new Map()) {
  if (!target) return '—';
  switch (target.kind) {
    case 'agent': return `agent ${hostOf.get(target.agentId) || (target.agentId || '').slice(0, 8)}`;
    case 'any': return 'any one online agent';
    case 'all': return 'every agent of the zone';
    case 'selector': return `selector ${target.selector || ''}${target.allZones ? ' (every zone)' : ''}`;
    default: return String(target.kind);
  }
}

// The state of a task's schedule: paused, active, finished (no next occurrence) or canceled.
export function scheduleState(task) {
  if (!task.schedule) return null;
  if (task.canceledAt) return 'canceled';
  if (task.schedule.paused) return 'paused';
  return task.schedule.nextFireTimes && task.schedule.nextFireTimes.length ? 'active' : 'finished';
}

export function taskName(task) { return task.name || `task ${task.id.slice(0, 8)}`; }

// Hostnames by agent id, for showing runs (every agent, also retired ones).
export async function agentNames() {
  const agents = await api.all('/api/v1/agents', {}, 5000);
  return { agents, hostOf: new Map(agents.map((a) => [a.id, a.hostname])) };
}

// Runs as a table. `compact` (the overview, an agent's page): one Since column (finished, else started,
// else created) in place of Created, Finished and Exit, and the Reason column always; otherwise the
// Reason column only when a run has one.
export function runsTable(runs, { hostOf = new Map(), taskOf = null, compact = false, empty = 'No run yet.' } = {}) {
  const columns = [
    { title: 'Run', cell: (r) => link(`#/runs/${enc(r.id)}`, h('code', r.id.slice(0, 8))) },
    { title: 'Status', cell: (r) => h('span', badge(r.status), r.cancelRequested && !isFinished(r) ? ' cancel requested' : '') },
  ];
  if (taskOf) columns.push({ title: 'Task', cell: (r) => link(`#/tasks/${enc(r.taskId)}`, taskOf.get(r.taskId) || r.taskId.slice(0, 8)) });
  columns.push(
    { title: 'Agent', cell: (r) => link(`#/agents/${enc(r.agentId)}`, hostOf.get(r.agentId) || r.agentId.slice(0, 8)) },
    { title: 'Zone', cell: (r) => r.zone },
  );
  if (compact) {
    columns.push({ title: 'Since', cell: (r) => timeCell(r.finishedAt || r.startedAt || r.createdAt) });
  } else {
    columns.push(
      { title: 'Created', cell: (r) => timeCell(r.createdAt) },
      { title: 'Finished', cell: (r) => (r.finishedAt ? timeCell(r.finishedAt) : r.startedAt ? h('span', 'started ', timeCell(r.startedAt)) : r.dueAt && r.dueAt > Date.now() ? h('span', 'due ', timeCell(r.dueAt)) : '—') },
      { title: 'Exit', cell: (r) => (r.exitCode === undefined || r.exitCode === null ? '—' : String(r.exitCode)) },
    );
  }
  if (compact || runs.some((r) => r.reason)) columns.push({ title: 'Reason', cell: (r) => r.reason || '' });
  return table(columns, runs.map((r) => ({ ...r, dataset: { run: r.id, status: r.status } })), { empty });
}

// Values the console hands from one page to the next (never in the URL): the callback secret of a
// task just created, shown once on its page.
const handoff = new Map();
export function handOver(key, value) { handoff.set(key, value); }
export function takeOver(key) { const value = handoff.get(key); handoff.delete(key); return value; }

// A task's definition as a new one-off creation request: no schedule, no runAt, no callback (a
// callback gets a new secret, which the "Run again" button could not show).
export function oneOffCopy(task) {
  const clean = (obj) => Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined && v !== null));
  const step = (s) => clean({ name: s.name, script: s.command ? undefined : s.script, command: s.command, args: s.command ? (s.args || {}) : undefined, timeoutSeconds: s.timeoutSeconds });
  const target = clean({ kind: task.target.kind, agentId: task.target.agentId, selector: task.target.selector, allZones: task.target.allZones });
  return clean({
    name: task.name,
    zone: task.zone,
    target,
    steps: task.steps.map(step),
    params: task.params && Object.keys(task.params).length ? task.params : undefined,
    timeoutSeconds: task.timeoutSeconds,
    deliverWithinSeconds: task.deliverWithinSeconds,
    credentials: task.credentials && task.credentials.length ? task.credentials : undefined,
    recover: task.recover && task.recover.length ? task.recover.map(step) : undefined,
    rollout: task.rollout && (task.rollout.maxConcurrency || task.rollout.maxErrors) ? clean({ maxConcurrency: task.rollout.maxConcurrency, maxErrors: task.rollout.maxErrors }) : undefined,
  });
}
