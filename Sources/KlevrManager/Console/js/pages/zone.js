import { api, enc, hasRole } from '../api.js';
import { debounced } from '../events.js';
import {
  h, clear, table, link, timeCell, field, form, section, pageHeader, flash, badge, actionButton, copyButton, errorBox, select,
  time, labelChips,
} from '../ui.js';
import { eventTable } from '../admin-shared.js';

// The command that starts an agent of `zone` against this manager. The enrollment key carries the
// manager's pin (`kle_<secret>.<pin>`), so the new agent recognises this manager and no other.
export function agentCommand(zone, key) {
  const quoted = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
  return `KLEVR_ENROLL_KEY=${quoted(key)} klevr agent run --manager ${quoted(window.location.origin)} --zone ${quoted(zone)}`;
}

export async function render(ctx) {
  const zoneName = ctx.params.zone;
  ctx.setTitle(`Zone ${zoneName}`);
  const summary = h('div');
  const map = h('div', { dataset: { part: 'zone-map' } });
  const agentsBox = h('div');
  const keysBox = h('div');
  const freshKey = h('div', { dataset: { part: 'fresh-key' } });
  const eventsBox = h('div');
  const admin = hasRole('admin');
  const deleteErrors = errorBox();

  const head = pageHeader(`Zone ${zoneName}`,
    admin ? actionButton('Delete zone', async () => {
      await api.del(`/api/v1/zones/${enc(zoneName)}`);
      flash(`Zone ${zoneName} deleted.`);
      ctx.navigate('#/zones');
    }, { tone: 'danger', confirmText: 'Really delete the zone?', errors: deleteErrors, name: 'delete-zone' }) : null);
  ctx.root.append(head, deleteErrors, summary,
    section('Zone map', h('p.muted', 'The primary alone talks to the manager and relays for the others. Updated live.'), map),
    section('Agents', agentsBox));
  if (admin) {
    const expiry = select([['', 'never'], ['3600', '1 hour'], ['86400', '1 day'], ['604800', '7 days'], ['2592000', '30 days']], '86400', { name: 'expires' });
    ctx.root.append(section('Enrollment keys',
      h('p.muted', 'A key lets new agents join this zone. Its value is shown once, when it is created or rotated.'),
      form([field('Expires after', expiry)], async () => {
        const created = await api.post(`/api/v1/zones/${enc(zoneName)}/enroll-keys`, { expiresInSeconds: expiry.value ? Number(expiry.value) : null });
        showFreshKey(created);
        await loadKeys();
      }, 'Create enrollment key', { name: 'create-key' }),
      freshKey, keysBox));
  }
  ctx.root.append(section('Recent events', eventsBox));

  function showFreshKey(created) {
    const command = agentCommand(zoneName, created.key);
    clear(freshKey).append(h('div.secret-once', { role: 'status' },
      h('p', h('strong', 'Copy the key now: it is not shown again. '), created.expiresAt ? `It expires ${time(created.expiresAt)}.` : 'It does not expire.'),
      h('div.copy-line', h('code', { dataset: { value: 'enroll-key' } }, created.key), copyButton(created.key, 'Copy key')),
      h('p', 'Start an agent of this zone with:'),
      h('div.copy-line', h('pre', { dataset: { value: 'agent-command' } }, command), copyButton(command, 'Copy command')),
      h('p.muted', 'Add --state-dir, --listen or --labels as needed. An agent that reaches only its zone\'s primary takes --peer HOST:PORT instead of --manager. '
        + 'For a manager on https:// with its own certificate, add --ca-pin with the pin it printed at start.')));
  }

  async function loadKeys() {
    const page = await api.get(`/api/v1/zones/${enc(zoneName)}/enroll-keys`);
    if (!ctx.alive) return;
    const state = (k) => (k.revokedAt ? 'revoked' : k.expiresAt && k.expiresAt < Date.now() ? 'expired_key' : 'active');
    clear(keysBox).append(table([
      { title: 'Key', cell: (k) => h('code', `${k.prefix}…`) },
      { title: 'State', cell: (k) => badge(state(k), state(k) === 'expired_key' ? 'expired' : state(k)) },
      { title: 'Created', cell: (k) => timeCell(k.createdAt) },
      { title: 'Expires', cell: (k) => (k.expiresAt ? time(k.expiresAt) : 'never') },
      { title: '', cell: (k) => (state(k) === 'active' ? h('span.actions',
        actionButton('Rotate', async () => {
          showFreshKey(await api.post(`/api/v1/zones/${enc(zoneName)}/enroll-keys/${enc(k.id)}/rotate`));
          await loadKeys();
        }, { name: 'rotate-key', confirmText: 'Rotate: the old value stops working' }),
        actionButton('Revoke', async () => {
          await api.del(`/api/v1/zones/${enc(zoneName)}/enroll-keys/${enc(k.id)}`);
          flash('Key revoked.');
          await loadKeys();
        }, { tone: 'danger', name: 'revoke-key', confirmText: 'Really revoke?' })) : '') },
    ], page.items, { empty: 'No enrollment key yet.' }));
  }

  async function load() {
    const [zone, agents, events] = await Promise.all([
      api.get(`/api/v1/zones/${enc(zoneName)}`),
      api.all('/api/v1/agents', { zone: zoneName }, 5000),
      api.get(`/api/v1/zones/${enc(zoneName)}/events`, { limit: 20 }),
    ]);
    if (!ctx.alive) return;
    const live = agents.filter((a) => a.status !== 'retired');
    clear(summary).append(h('div.stats',
      h('div.stat', h('b', String(live.length)), 'agents'),
      h('div.stat', h('b', String(live.filter((a) => a.status === 'online').length)), 'online'),
      h('div.stat', { dataset: { stat: 'epoch' } }, h('b', String(zone.epoch || 0)), 'election epoch')));
    // Element.append prints null as the text "null": append the description only when there is one.
    if (zone.description) summary.append(h('p', zone.description));
    clear(map).append(zoneMap(zone, live));
    clear(agentsBox).append(table([
      { title: 'Host', cell: (a) => link(`#/agents/${enc(a.id)}`, a.hostname) },
      { title: 'Role', cell: (a) => (a.id === zone.primary ? badge('primary', 'primary') : 'member') },
      { title: 'Status', cell: (a) => badge(a.status) },
      { title: 'Reason', cell: (a) => a.statusReason || '' },
      { title: 'Last seen', cell: (a) => timeCell(a.lastSeenAt) },
      { title: 'Labels', cell: (a) => labelChips(a.labels) },
      { title: 'Version', cell: (a) => a.version },
    ], agents, { empty: 'No agent in this zone yet: create an enrollment key and start one.' }));
    clear(eventsBox).append(eventTable(events.items, { columns: ['when', 'event', 'subject', 'detail'], relative: true, empty: 'No event yet.' }));
  }

  await load();
  if (admin) await loadKeys();
  const refresh = debounced(() => load().catch(() => {}), 300);
  ctx.subscribe(['agent', 'primary', 'zone', 'enroll_key'], (event) => {
    if (!event.zone || event.zone === zoneName || event.kind.startsWith('zone.')) refresh();
  });
  // Liveness also changes without an event (a missed heartbeat is noticed by the sweeper, which does
  // write one, but last-seen times move on): refresh now and then while the page is open.
  const timer = setInterval(refresh, 10000);
  ctx.onDispose(() => clearInterval(timer));
}

// The primary (with the election epoch) under the manager, its members under it; each node says its
// liveness, its reason and whether it has a route to the manager of its own.
export function zoneMap(zone, agents) {
  const primary = agents.find((a) => a.id === zone.primary);
  const members = agents.filter((a) => a.id !== zone.primary);
  const node = (a, role) => h(`div.${role === 'primary' ? 'map-primary' : 'map-member'}`, { dataset: { agent: a.id, role, status: a.status } },
    h('span.map-node-title', link(`#/agents/${enc(a.id)}`, a.hostname), ' ', badge(a.status)),
    h('span.map-node-meta', role === 'primary' ? `primary · epoch ${zone.epoch}` : 'member', ` · ${a.id.slice(0, 8)}`),
    h('span.map-node-meta', a.managerRoute ? 'has reached the manager itself' : 'has not reached the manager itself (relayed)'),
    a.statusReason ? h('span.map-node-meta', `reason: ${a.statusReason}`) : null,
    h('span.map-node-meta', 'last seen ', timeCell(a.lastSeenAt)));
  return h('div.zone-map', { dataset: { primary: zone.primary || '', epoch: String(zone.epoch || 0) } },
    h('div.map-manager', 'Manager'),
    primary ? node(primary, 'primary') : h('div.map-primary', { dataset: { role: 'primary', agent: '' } }, h('span.map-node-title', 'No primary'),
      h('span.map-node-meta', agents.length ? 'an election is under way or no agent can reach the manager' : 'no agent yet')),
    members.length ? h('div.map-members', members.map((a) => node(a, 'member'))) : null);
}
