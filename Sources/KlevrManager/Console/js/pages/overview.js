import { api, enc } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, badge, table, link, section, pageHeader } from '../ui.js';
import { agentNames, runsTable } from '../tasks-shared.js';
import { eventTable } from '../admin-shared.js';

// Zones with their agents online/offline and primary, runs in progress, recent failures and events,
// refreshed from the live event stream.
export async function render(ctx) {
  ctx.setTitle('Overview');
  const body = h('div');
  ctx.root.append(pageHeader('Overview'), body);

  async function load() {
    const [zones, { agents, hostOf }, active, failed, events] = await Promise.all([
      api.all('/api/v1/zones'),
      agentNames(),
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
        h('div.wide', section('Runs in progress', runsTable(inProgress, { hostOf, compact: true, empty: 'No run in progress.' }))),
        h('div.wide', section('Recent failures', runsTable(failures, { hostOf, compact: true, empty: 'No failure.' }))),
        h('div.wide', section('Recent events', eventTable(events.items,
          { columns: ['when', 'event', 'zone', 'actor'], relative: true, empty: 'No event yet.' })))));
  }
  await load();
  ctx.subscribe(['run', 'agent', 'zone', 'primary', 'task'], debounced(() => load().catch(() => {}), 500));
}
