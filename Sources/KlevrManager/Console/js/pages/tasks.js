import { api, enc, hasRole } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, table, link, timeCell, field, pageHeader, badge, select, errorBox, time } from '../ui.js';
import { targetText, scheduleState, taskName, agentNames } from '../tasks-shared.js';

// The tasks, newest first: filter by zone (server side) and by name or id (here); recurring tasks say
// whether they are paused and when they fire next.
export async function render(ctx) {
  ctx.setTitle('Tasks');
  const zones = await api.all('/api/v1/zones');
  if (!ctx.alive) return;
  const zone = select([['', 'every zone'], ...zones.map((z) => [z.name, z.name])], ctx.query.zone || '', { name: 'zone' });
  const kind = select([['', 'one-off and recurring'], ['one-off', 'one-off'], ['recurring', 'recurring']], ctx.query.kind || '', { name: 'kind' });
  const text = h('input', { name: 'name', type: 'search', placeholder: 'name or id', value: ctx.query.name || '', maxlength: 200 });
  const errors = errorBox();
  const list = h('div', { dataset: { part: 'task-list' } });
  const filters = h('form.filters', { role: 'search' }, field('Zone', zone), field('Kind', kind), field('Name', text));
  filters.addEventListener('submit', (event) => { event.preventDefault(); show(); });
  zone.addEventListener('change', () => load().catch((e) => errors.show(e)));
  kind.addEventListener('change', () => show());
  text.addEventListener('input', () => show());
  ctx.root.append(pageHeader('Tasks', hasRole('operator') ? h('a.button.primary', { href: '#/tasks/new', dataset: { action: 'new-task' } }, 'New task') : null),
    filters, errors, list);

  let tasks = [];
  let hostOf = new Map();
  async function load() {
    errors.hide();
    const [found, names] = await Promise.all([api.all('/api/v1/tasks', { zone: zone.value }, 2000), agentNames()]);
    if (!ctx.alive) return;
    tasks = found;
    hostOf = names.hostOf;
    show();
  }

  function show() {
    const needle = text.value.trim().toLowerCase();
    const shown = tasks.filter((t) => (!needle || (t.name || '').toLowerCase().includes(needle) || t.id.startsWith(needle))
      && (!kind.value || (kind.value === 'recurring') === !!t.schedule));
    clear(list).append(table([
      { title: 'Name', cell: (t) => link(`#/tasks/${enc(t.id)}`, taskName(t)) },
      { title: 'Zone', cell: (t) => t.zone },
      { title: 'Target', cell: (t) => targetText(t.target, hostOf) },
      { title: 'Steps', cell: (t) => stepsText(t.steps) },
      { title: 'Schedule', cell: (t) => scheduleCell(t) },
      { title: 'Created', cell: (t) => h('span', timeCell(t.createdAt), t.createdBy ? ` by ${t.createdBy}` : '') },
    ], shown.map((t) => ({ ...t, dataset: { task: t.id, recurring: String(!!t.schedule) } })),
    { empty: tasks.length ? 'No task matches.' : 'No task yet.' }));
  }

  await load();
  ctx.subscribe(['task'], debounced(() => load().catch(() => {}), 500));
  // Next fire times move on without an event.
  const timer = setInterval(() => { if (tasks.some((t) => t.schedule)) load().catch(() => {}); }, 30000);
  ctx.onDispose(() => clearInterval(timer));
}

function stepsText(steps) {
  const names = steps.map((s) => s.name || (s.command ? s.command : 'script'));
  return names.length > 3 ? `${names.slice(0, 3).join(', ')} +${names.length - 3}` : names.join(', ');
}

function scheduleCell(task) {
  const state = scheduleState(task);
  if (!state) {
    if (task.canceledAt) return badge('canceled');
    return task.runAt && task.runAt > Date.now() ? h('span', 'one-off at ', h('time', time(task.runAt))) : h('span.muted', 'one-off');
  }
  const next = task.schedule.nextFireTimes && task.schedule.nextFireTimes[0];
  return h('span.schedule-cell', badge(state), ' ', h('code', task.schedule.cron),
    next && state === 'active' ? h('span.next-fire', { dataset: { value: 'next-fire' } }, 'next ', timeCell(next)) : null);
}
