import { api, enc, hasRole } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, table, link, timeCell, field, form, section, pageHeader, flash, badge } from '../ui.js';
import { agentNames } from '../tasks-shared.js';

export async function render(ctx) {
  ctx.setTitle('Zones');
  const list = h('div');
  ctx.root.append(pageHeader('Zones'));
  if (hasRole('admin')) {
    const name = h('input', { name: 'name', required: true, maxlength: 63, placeholder: 'office-seoul' });
    const description = h('input', { name: 'description', maxlength: 1000 });
    ctx.root.append(section('Create a zone', form([
      h('div.row', field('Name', name, 'Lowercase letters, digits and dashes (up to 63), starting with a letter or digit.'), field('Description', description)),
    ], async () => {
      const zone = await api.post('/api/v1/zones', { name: name.value.trim(), description: description.value || null });
      flash(`Zone ${zone.name} created.`);
      ctx.navigate(`#/zones/${enc(zone.name)}`);
    }, 'Create zone', { name: 'create-zone' })));
  }
  ctx.root.append(section('All zones', list));

  async function load() {
    const [zones, { agents, hostOf }] = await Promise.all([api.all('/api/v1/zones'), agentNames()]);
    if (!ctx.alive) return;
    const online = (zone) => agents.filter((a) => a.zone === zone && a.status === 'online').length;
    clear(list).append(table([
      { title: 'Name', cell: (z) => link(`#/zones/${enc(z.name)}`, z.name) },
      { title: 'Description', cell: (z) => z.description || '' },
      { title: 'Agents', cell: (z) => `${z.agents}` },
      { title: 'Online', cell: (z) => badge(online(z.name) ? 'online' : 'offline', `${online(z.name)} online`) },
      { title: 'Primary', cell: (z) => (z.primary ? `${hostOf.get(z.primary) || z.primary.slice(0, 8)} (epoch ${z.epoch})` : h('span.muted', 'none')) },
      { title: 'Created', cell: (z) => timeCell(z.createdAt) },
    ], zones, { empty: 'No zone yet.' }));
  }
  await load();
  ctx.subscribe(['zone', 'agent', 'primary'], debounced(() => load().catch(() => {}), 500));
}
