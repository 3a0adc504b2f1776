import { api, enc } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, table, link, timeCell, field, pageHeader, badge, labelChips, select, errorBox } from '../ui.js';

export async function render(ctx) {
  ctx.setTitle('Agents');
  const zones = await api.all('/api/v1/zones');
  const zone = select([['', 'every zone'], ...zones.map((z) => [z.name, z.name])], ctx.query.zone || '', { name: 'zone' });
  const status = select([['', 'any status'], 'online', 'offline', 'retiring', 'retired'], ctx.query.status || '', { name: 'status' });
  const selector = h('input', { name: 'selector', placeholder: 'env=prod,role!=db', value: ctx.query.selector || '', maxlength: 1024 });
  const errors = errorBox();
  const list = h('div');
  const filters = h('form.filters', { role: 'search' }, field('Zone', zone), field('Status', status), field('Label selector', selector),
    h('button', { type: 'submit' }, 'Filter'));
  filters.addEventListener('submit', (event) => { event.preventDefault(); load().catch((e) => errors.show(e)); });
  zone.addEventListener('change', () => load().catch((e) => errors.show(e)));
  status.addEventListener('change', () => load().catch((e) => errors.show(e)));
  ctx.root.append(pageHeader('Agents'), filters, errors, list);

  async function load() {
    errors.hide();
    const [agents, zoneList] = await Promise.all([
      api.all('/api/v1/agents', { zone: zone.value, selector: selector.value.trim() }, 5000),
      api.all('/api/v1/zones'),
    ]);
    if (!ctx.alive) return;
    const primaries = new Set(zoneList.map((z) => z.primary).filter(Boolean));
    const shown = status.value ? agents.filter((a) => a.status === status.value) : agents;
    clear(list).append(table([
      { title: 'Host', cell: (a) => link(`#/agents/${enc(a.id)}`, a.hostname) },
      { title: 'Zone', cell: (a) => link(`#/zones/${enc(a.zone)}`, a.zone) },
      { title: 'Role', cell: (a) => (primaries.has(a.id) ? badge('primary', 'primary') : 'member') },
      { title: 'Status', cell: (a) => badge(a.status) },
      { title: 'Reason', cell: (a) => a.statusReason || '' },
      { title: 'Last seen', cell: (a) => timeCell(a.lastSeenAt) },
      { title: 'Labels', cell: (a) => labelChips(a.labels) },
      { title: 'Version', cell: (a) => a.version },
      { title: 'OS', cell: (a) => a.os },
    ], shown.map((a) => ({ ...a, dataset: { agent: a.id } })), { empty: 'No agent matches.' }));
  }
  await load();
  ctx.subscribe(['agent', 'primary'], debounced(() => load().catch(() => {}), 500));
}
