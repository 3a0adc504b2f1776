import { api } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, field, pageHeader, select, errorBox } from '../ui.js';
import { runStatuses, runsTable, taskName, agentNames } from '../tasks-shared.js';

// Runs, newest first, filtered by status, zone, agent and task (all server side); live.
export async function render(ctx) {
  ctx.setTitle('Runs');
  const [zones, { agents, hostOf }, tasks] = await Promise.all([
    api.all('/api/v1/zones'), agentNames(), api.all('/api/v1/tasks', {}, 1000),
  ]);
  if (!ctx.alive) return;
  const taskOf = new Map(tasks.map((t) => [t.id, taskName(t)]));
  const q = ctx.query;
  const status = select([['', 'any status'], ...runStatuses.map((s) => [s, s.replace('_', ' ')])], q.status || '', { name: 'status' });
  const zone = select([['', 'every zone'], ...zones.map((z) => [z.name, z.name])], q.zone || '', { name: 'zone' });
  const agentOptions = agents.map((a) => [a.id, `${a.hostname} · ${a.id.slice(0, 8)}${a.status === 'retired' ? ' (retired)' : ''}`]);
  if (q.agent && !hostOf.has(q.agent)) agentOptions.push([q.agent, q.agent]);
  const agent = select([['', 'every agent'], ...agentOptions], q.agent || '', { name: 'agent' });
  const taskOptions = tasks.map((t) => [t.id, `${taskName(t)} · ${t.id.slice(0, 8)}`]);
  if (q.task && !taskOf.has(q.task)) taskOptions.push([q.task, q.task]);
  const task = select([['', 'every task'], ...taskOptions], q.task || '', { name: 'task' });
  const errors = errorBox();
  const list = h('div', { dataset: { part: 'run-list' } });
  const more = h('button', { type: 'button', dataset: { action: 'load-more' }, hidden: true }, 'Load more');
  const filters = h('form.filters', { role: 'search' }, field('Status', status), field('Zone', zone), field('Agent', agent), field('Task', task));
  filters.addEventListener('submit', (event) => { event.preventDefault(); load().catch((e) => errors.show(e)); });
  for (const s of [status, zone, agent, task]) s.addEventListener('change', () => load().catch((e) => errors.show(e)));
  ctx.root.append(pageHeader('Runs'), filters, errors, list, more);

  const pageSize = 100;
  let runs = [];
  let cursor = null;
  let shown = pageSize;
  const query = () => ({ status: status.value, zone: zone.value, agent: agent.value, task: task.value });

  // The first `shown` runs (at least one page): a live refresh keeps what "Load more" added.
  async function load() {
    errors.hide();
    const found = [];
    let next;
    do {
      const page = await api.get('/api/v1/runs', { ...query(), limit: pageSize, cursor: next });
      found.push(...page.items);
      next = page.nextCursor;
    } while (next && found.length < shown);
    if (!ctx.alive) return;
    runs = found;
    cursor = next || null;
    draw();
  }
  async function loadMore() {
    if (!cursor) return;
    const page = await api.get('/api/v1/runs', { ...query(), limit: pageSize, cursor });
    if (!ctx.alive) return;
    runs.push(...page.items);
    cursor = page.nextCursor || null;
    shown = runs.length;
    draw();
  }
  more.addEventListener('click', () => loadMore().catch((e) => errors.show(e)));
  function draw() {
    clear(list).append(runsTable(runs, { hostOf, taskOf, empty: 'No run matches.' }));
    more.hidden = !cursor;
  }

  await load();
  ctx.subscribe(['run'], debounced(() => load().catch(() => {}), 600));
}
