import { api, enc, hasRole } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, link, section, pageHeader, badge, dl, time, actionButton, errorBox, flash, copyButton } from '../ui.js';
import { targetText, scheduleState, taskName, agentNames, runsTable, oneOffCopy, takeOver, isFinished } from '../tasks-shared.js';

// One task: its definition, its runs (live), and for a recurring task its next fire times with
// pause/resume. "Run again" creates a new one-off task with the same definition.
export async function render(ctx) {
  const id = ctx.params.id;
  const operator = hasRole('operator');
  const head = h('div');
  const secretBox = h('div', { dataset: { part: 'callback-secret' } });
  const facts = h('div', { dataset: { part: 'task-facts' } });
  const scheduleBox = h('div', { dataset: { part: 'task-schedule' } });
  const scheduleSection = section('Schedule', scheduleBox);
  const stepsBox = h('div', { dataset: { part: 'task-steps' } });
  const recoverBox = h('div', { dataset: { part: 'task-recover' } });
  const recoverSection = section('Recover steps', recoverBox);
  const runsBox = h('div', { dataset: { part: 'task-runs' } });
  const actionErrors = errorBox();
  ctx.root.append(head, actionErrors, secretBox,
    h('div.grid', section('Task', facts), scheduleSection),
    section('Steps', stepsBox), recoverSection, section('Runs', runsBox));

  const secret = takeOver(`callback-secret:${id}`);
  if (secret) {
    secretBox.append(h('div.secret-once', { role: 'status' },
      h('p', h('strong', 'Copy the callback secret now: it is not shown again. '), 'Deliveries to the callback URL are signed with it.'),
      h('div.copy-line', h('code', { dataset: { value: 'callback-secret' } }, secret), copyButton(secret, 'Copy secret'))));
  }

  let task = null;
  let runIDs = new Set();
  async function load() {
    const [found, names] = await Promise.all([api.get(`/api/v1/tasks/${enc(id)}`), agentNames()]);
    if (!ctx.alive) return;
    task = found;
    runIDs = new Set(task.runs.map((r) => r.id));
    const { hostOf } = names;
    ctx.setTitle(`Task ${taskName(task)}`);
    const state = scheduleState(task);
    const unfinished = task.runs.some((r) => !isFinished(r));
    const actions = [];
    if (operator) {
      actions.push(actionButton('Run again', async () => {
        const copy = await api.post('/api/v1/tasks', oneOffCopy(task));
        flash(`Created task ${taskName(copy)}: a one-off copy of this one.`);
        ctx.navigate(`#/tasks/${enc(copy.id)}`);
      }, { name: 'run-again', errors: actionErrors }));
      if (state === 'active') {
        actions.push(actionButton('Pause', async () => { await api.post(`/api/v1/tasks/${enc(id)}/pause`); flash('Paused: no occurrence fires until it is resumed.'); await load(); },
          { name: 'pause-task', errors: actionErrors }));
      }
      if (state === 'paused') {
        actions.push(actionButton('Resume', async () => { await api.post(`/api/v1/tasks/${enc(id)}/resume`); flash('Resumed from now.'); await load(); },
          { name: 'resume-task', errors: actionErrors }));
      }
      if (!task.canceledAt && (unfinished || (state && state !== 'finished'))) {
        actions.push(actionButton('Cancel task', async () => { await api.post(`/api/v1/tasks/${enc(id)}/cancel`); flash('Task canceled.'); await load(); },
          { name: 'cancel-task', tone: 'danger', errors: actionErrors, confirmText: task.schedule ? 'Really cancel its runs and every later occurrence?' : 'Really cancel its unfinished runs?' }));
      }
    }
    clear(head).append(pageHeader(taskName(task), ...actions));
    clear(facts).append(dl([
      ['Status', task.canceledAt ? h('span', badge('canceled'), ` ${time(task.canceledAt)}`) : state ? badge(state) : runSummary(task.runs)],
      ['Zone', link(`#/zones/${enc(task.zone)}`, task.zone)],
      ['Target', task.target.kind === 'agent' && task.target.agentId ? link(`#/agents/${enc(task.target.agentId)}`, targetText(task.target, hostOf)) : targetText(task.target, hostOf)],
      ['Timeout', `${task.timeoutSeconds} s per run`],
      task.runAt ? ['Run at', time(task.runAt)] : null,
      task.deliverWithinSeconds ? ['Deliver within', `${task.deliverWithinSeconds} s`] : null,
      ['Parameters', paramsView(task.params)],
      ['Credentials', task.credentials && task.credentials.length ? h('span.chips', task.credentials.map((c) => h('span.chip', c))) : null],
      task.rollout && (task.rollout.maxConcurrency || task.rollout.maxErrors)
        ? ['Rollout', [task.rollout.maxConcurrency ? `at most ${task.rollout.maxConcurrency} at once` : null, task.rollout.maxErrors ? `stop after more than ${task.rollout.maxErrors} errors` : null].filter(Boolean).join('; ')] : null,
      task.callbackUrl ? ['Callback', h('code', task.callbackUrl)] : null,
      ['Created', h('span', time(task.createdAt), task.createdBy ? ` by ${task.createdBy}` : '')],
      ['Id', h('code', task.id)],
    ]));
    scheduleSection.hidden = !task.schedule;
    if (task.schedule) {
      const s = task.schedule;
      const next = s.nextFireTimes || [];
      clear(scheduleBox).append(dl([
        ['State', badge(state)],
        ['Cron', h('code', s.cron)],
        ['Time zone', s.timeZone],
        ['Overlap', s.overlap],
        ['Catch up', s.catchUp],
        ['Fired', `${s.firedCount} time${s.firedCount === 1 ? '' : 's'}${s.maxOccurrences ? ` of at most ${s.maxOccurrences}` : ''}`],
        s.until ? ['Until', time(s.until)] : null,
      ]), h('h3', 'Next fire times'),
      next.length ? h('ol.fire-times', { dataset: { part: 'next-fire-times' } }, next.map((t) => h('li', { dataset: { at: String(t) } }, h('time', { datetime: new Date(t).toISOString() }, time(t)), h('span.muted', ` (${relative(t)})`))))
        : h('p.muted', { dataset: { part: 'next-fire-times' } }, s.paused ? 'None while paused.' : 'None: the schedule is over.'));
    }
    clear(stepsBox).append(stepsView(task.steps));
    recoverSection.hidden = !(task.recover && task.recover.length);
    clear(recoverBox).append(stepsView(task.recover || []));
    const runs = [...task.runs].sort((a, b) => b.createdAt - a.createdAt);
    clear(runsBox).append(...[
      runs.length > 50 ? h('p.muted', `The newest 50 of ${runs.length} runs; `, link(`#/runs?task=${enc(id)}`, 'all of them under Runs'), '.') : null,
      runsTable(runs.slice(0, 50), { hostOf, empty: task.schedule ? 'No run yet: runs appear when an occurrence fires.' : 'No run.' }),
      runs.length && runs.length <= 50 ? h('p.muted', link(`#/runs?task=${enc(id)}`, 'These runs under Runs'), ' (filter by status there).') : null].filter(Boolean));
  }

  await load();
  const refresh = debounced(() => load().catch(() => {}), 400);
  ctx.subscribe(['run', 'task'], (event) => {
    if (event.subject === id || (event.detail && event.detail.task === id) || runIDs.has(event.subject)) refresh();
  });
  // "in 3 min" and the next fire times move on without an event.
  const timer = setInterval(() => { if (task && task.schedule) refresh(); }, 30000);
  ctx.onDispose(() => clearInterval(timer));
}

function relative(ms) {
  const s = Math.round((ms - Date.now()) / 1000);
  if (s <= 0) return 'now';
  if (s < 90) return `in ${s} s`;
  if (s < 5400) return `in ${Math.round(s / 60)} min`;
  if (s < 172800) return `in ${Math.round(s / 3600)} h`;
  return `in ${Math.round(s / 86400)} days`;
}

function runSummary(runs) {
  if (!runs.length) return 'no run';
  const counts = new Map();
  for (const r of runs) counts.set(r.status, (counts.get(r.status) || 0) + 1);
  return h('span.chips', [...counts].map(([status, n]) => badge(status, `${n} ${status.replace('_', ' ')}`)));
}

function paramsView(params) {
  const entries = Object.entries(params || {});
  if (!entries.length) return null;
  return h('dl.params', entries.map(([k, v]) => [h('dt', h('code', k)), h('dd', v)]));
}

function stepsView(steps) {
  if (!steps.length) return h('p.empty', 'None.');
  return h('ol.step-list', steps.map((s, i) => h('li.step-view', { dataset: { index: String(i) } },
    h('div.step-view-head', h('strong', s.name || `Step ${i + 1}`),
      h('span.muted', s.command ? ' · built-in command ' : ' · script'), s.command ? h('code', s.command) : null,
      s.timeoutSeconds ? h('span.muted', ` · timeout ${s.timeoutSeconds} s`) : null),
    s.command
      ? h('pre.code', JSON.stringify(s.args || {}, null, 2))
      : h('pre.code', s.script || ''))));
}
