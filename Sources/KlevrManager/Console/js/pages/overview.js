import { api, enc } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, badge, table, timeCell, link, section } from '../ui.js';

// Zones with their agents online/offline and primary, runs in progress, recent failures and events,
// refreshed from the live event stream.
export async function render(ctx) {
  ctx.setTitle('Overview');
  const body = h('div');
  ctx.root.append(h('div.page-head', h('h1', 'Overview')), body);

  async function load() {
    const [zones, agents, active, failed, events] = await Promise.all([
      api.all('/api/v1/zones'),
      api.all('/api/v1/agents', {}, 5000),
      Promise.all(['running', 'dispatched', 'queued', 'recovering'].map((status) => api.get('/api/v1/runs', { status, limit: 50 }))),
      Promise.all(['failed', 'failed_recover', 'timed_out', 'expired'].map((status) => api.get('/api/v1/runs', { status, limit: 10 }))),
      api.get('/api/v1/events', { limit: 15 }),
    ]);
    if (!ctx.alive) return;
    const live = agents.filter((a) => a.status !== 'retired');
    const online = live.filter((a) => a.status === 'online').length;
    const inProgress = active.flatMap((p) => p.items).sort((a, b) => b.createdAt - a.createdAt);
    const failures = failed.flatMap((p) => p.items).sort((a, b) => (b.finishedAt || b.createdAt) - (a.finishedAt || a.createdAt)).slice(0, 10);
    const byZone = new Map(zones.map((z) => [z.name, { online: 0, offline: 0 }]));
    for (const a of live) {
      const counts = byZone.get(a.zone);
      if (!counts) continue;
      if (a.status === 'online') counts.online += 1; else counts.offline += 1;
    }
    const hostOf = new Map(agents.map((a) => [a.id, a.hostname]));
    clear(body).append(
      h('div.stats',
        h('div.stat', { dataset: { stat: 'zones' } }, h('b', String(zones.length)), 'zones'),
        h('div.stat', { dataset: { stat: 'online' } }, h('b', String(online)), 'agents online'),
        h('div.stat', { dataset: { stat: 'offline' } }, h('b', String(live.length - online)), 'agents not online'),
        h('div.stat', { dataset: { stat: 'running' } }, h('b', String(inProgress.length)), 'runs in progress'),
        h('div.stat', { dataset: { stat: 'failures' } }, h('b', String(failures.length)), 'recent failures')),
      h('div.grid',
        section('Zones', table([
          { title: 'Zone', cell: (z) => link(`#/zones/${enc(z.name)}`, z.name) },
          { title: 'Online', cell: (z) => badge(byZone.get(z.name).online ? 'online' : 'muted', `${byZone.get(z.name).online} online`) },
          { title: 'Not online', cell: (z) => (byZone.get(z.name).offline ? badge('offline', `${byZone.get(z.name).offline} offline`) : '0') },
          { title: 'Primary', cell: (z) => (z.primary ? link(`#/agents/${enc(z.primary)}`, hostOf.get(z.primary) || z.primary.slice(0, 8)) : h('span.muted', 'none')) },
        ], zones, { empty: 'No zone yet: create one under Zones.' })),
        h('div.wide', section('Runs in progress', runTable(inProgress, hostOf, 'No run in progress.'))),
        h('div.wide', section('Recent failures', runTable(failures, hostOf, 'No failure.'))),
        h('div.wide', section('Recent events', table([
          { title: 'When', cell: (e) => timeCell(e.at) },
          { title: 'Event', cell: (e) => h('code', e.kind) },
          { title: 'Zone', cell: (e) => e.zone || '—' },
          { title: 'By', cell: (e) => e.actor?.name || e.actor?.kind || '—' },
        ], events.items, { empty: 'No event yet.' })))));
  }
  await load();
  ctx.subscribe(['run', 'agent', 'zone', 'primary', 'task'], debounced(() => load().catch(() => {}), 500));
}

export function runTable(runs, hostOf, empty) {
  return table([
    { title: 'Run', cell: (r) => link(`#/runs/${enc(r.id)}`, r.id.slice(0, 8)) },
    { title: 'Status', cell: (r) => badge(r.status) },
    { title: 'Agent', cell: (r) => link(`#/agents/${enc(r.agentId)}`, hostOf.get(r.agentId) || r.agentId.slice(0, 8)) },
    { title: 'Zone', cell: (r) => r.zone },
    { title: 'Since', cell: (r) => timeCell(r.finishedAt || r.startedAt || r.createdAt) },
    { title: 'Reason', cell: (r) => r.reason || '' },
  ], runs, { empty });
}
