import { api, enc, hasRole } from '../api.js';
import { debounced } from '../events.js';
import {
  h, clear, link, field, form, section, pageHeader, badge, labelChips, labelsText, dl, time, actionButton, errorBox, flash,
} from '../ui.js';
import { runsTable } from '../tasks-shared.js';
import { eventTable } from '../admin-shared.js';

// "a=b,c=d" as a labels object (the server validates keys and values).
export function parseLabels(text) {
  const labels = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const at = part.indexOf('=');
    if (at < 0) labels[part] = ''; else labels[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return labels;
}

export async function render(ctx) {
  const id = ctx.params.id;
  const head = h('div');
  const facts = h('div');
  const labelsBox = h('div');
  const runsBox = h('div');
  const eventsBox = h('div');
  const hostFacts = h('div', { dataset: { part: 'host-facts' } });
  ctx.root.append(head, h('div.grid', section('Agent', facts), section('Labels', labelsBox)), section('Host facts', hostFacts),
    section('Runs', runsBox), section('Events', eventsBox));
  const operator = hasRole('operator');

  async function load() {
    const [agent, runs, events] = await Promise.all([
      api.get(`/api/v1/agents/${enc(id)}`),
      api.get('/api/v1/runs', { agent: id, limit: 50 }),
      api.get('/api/v1/events', { subject: id, limit: 30 }),
    ]);
    if (!ctx.alive) return;
    const zone = await api.get(`/api/v1/zones/${enc(agent.zone)}`).catch(() => null);
    if (!ctx.alive) return;
    ctx.setTitle(`Agent ${agent.hostname}`);
    const retireErrors = errorBox();
    clear(head).append(pageHeader(`Agent ${agent.hostname}`,
      operator && agent.status !== 'retired' && agent.status !== 'retiring' ? actionButton('Retire', async () => {
        await api.post(`/api/v1/agents/${enc(id)}/retire`);
        flash(`${agent.hostname} is retiring: its runs stop, then its credential dies.`);
        await load();
      }, { tone: 'danger', confirmText: 'Really retire? It cannot come back', errors: retireErrors, name: 'retire' }) : null), retireErrors);
    clear(facts).append(dl([
      ['Status', h('span', badge(agent.status), agent.statusReason ? ` ${agent.statusReason}` : '')],
      ['Role', zone && zone.primary === agent.id ? `primary (epoch ${zone.epoch})` : 'member'],
      ['Zone', link(`#/zones/${enc(agent.zone)}`, agent.zone)],
      ['Manager route', agent.managerRoute ? 'direct' : 'through its primary only'],
      ['Peer address', agent.peerAddress ? h('code', agent.peerAddress) : null],
      ['Last seen', agent.lastSeenAt ? `${time(agent.lastSeenAt)}` : null],
      ['Enrolled', time(agent.enrolledAt)],
      ['Clock skew', agent.clockSkewMillis !== undefined ? `${agent.clockSkewMillis} ms` : null],
      ['Id', h('code', agent.id)],
    ]));
    clear(hostFacts).append(dl([
      ['Hostname', agent.hostname], ['OS', agent.os], ['Version', agent.version],
      ['Addresses', agent.addresses.length ? agent.addresses.join(', ') : null],
    ]), h('p.muted', 'More facts (CPU, memory, disks): run the built-in command host.facts on it from Tasks.'));
    clear(labelsBox).append(h('p', labelChips(agent.labels)),
      agent.labelsSetBy ? h('p.muted', `Set by ${agent.labelsSetBy}; the agent reports: ${labelsText(agent.reportedLabels) || 'none'}.`)
        : h('p.muted', 'The agent\'s own --labels.'));
    if (operator && agent.status !== 'retired') {
      const input = h('input', { name: 'labels', value: labelsText(agent.labels), placeholder: 'env=prod,role=web' });
      labelsBox.append(form([field('Labels', input, 'key=value, comma-separated; these override the agent\'s --labels.')], async () => {
        await api.put(`/api/v1/agents/${enc(id)}/labels`, { labels: parseLabels(input.value) });
        flash('Labels saved.');
        await load();
      }, 'Save labels', { name: 'labels' }));
      if (agent.labelsSetBy) {
        labelsBox.append(actionButton('Use the agent\'s own labels', async () => {
          await api.del(`/api/v1/agents/${enc(id)}/labels`);
          await load();
        }, { name: 'clear-labels' }));
      }
    }
    clear(runsBox).append(runsTable(runs.items, { hostOf: new Map([[agent.id, agent.hostname]]), compact: true, empty: 'No run on this agent yet.' }));
    clear(eventsBox).append(eventTable(events.items, { columns: ['when', 'event', 'detail'], relative: true, empty: 'No event yet.' }));
  }
  await load();
  const refresh = debounced(() => load().catch(() => {}), 500);
  ctx.subscribe(['agent', 'primary', 'run'], (event) => { if (event.subject === id || event.kind.startsWith('primary') || event.kind.startsWith('run')) refresh(); });
}
