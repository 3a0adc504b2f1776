import { api, enc, hasRole } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, table, link, field, form, section, pageHeader, badge, select, timeCell } from '../ui.js';
import { kindFamilies, roleNote, secretOnce, whenBy } from '../admin-shared.js';

// Webhooks: the event log delivered to HTTP receivers, signed (docs/webhooks.md). Operators see them,
// admins create and change them; a secret is shown once, when it is made.
export async function render(ctx) {
  ctx.setTitle('Webhooks');
  ctx.root.append(pageHeader('Webhooks'));
  if (!hasRole('operator')) {
    ctx.root.append(roleNote('Webhooks are shown to operators and admins only: a webhook\'s URL often carries the receiver\'s own token.'));
    return;
  }
  const admin = hasRole('admin');
  const list = h('div', { dataset: { part: 'webhook-list' } });
  const fresh = h('div', { dataset: { part: 'fresh-secret' } });
  ctx.root.append(h('p.muted', 'Each webhook receives the events that match its kinds and zone, as a signed POST (Standard Webhooks), '
    + 'retried with backoff for at least 24 hours. Only events appended after its creation are delivered.'));
  if (admin) {
    const zones = (await api.get('/api/v1/zones')).items;
    const fields = webhookFields(zones, null);
    ctx.root.append(section('Create a webhook',
      h('p.muted', 'The manager calls whatever http or https address it is given, also on its own network.'),
      form(fields.children, async (el) => {
        const created = await api.post('/api/v1/webhooks', fields.body(true));
        el.reset();
        fields.reset();
        showSecret(fresh, created, 'created');
        await load();
      }, 'Create webhook', { name: 'create-webhook' }), fresh));
  } else {
    ctx.root.append(roleNote('Only admins create, change or delete webhooks.'));
  }
  ctx.root.append(section('All webhooks', list));

  async function load() {
    const page = await api.get('/api/v1/webhooks');
    if (!ctx.alive) return;
    clear(list).append(table([
      { title: 'URL', cell: (w) => link(`#/webhooks/${enc(w.id)}`, h('code.url', w.url)) },
      { title: 'State', cell: (w) => badge(w.enabled ? 'enabled' : 'disabled') },
      { title: 'Kinds', cell: (w) => kindChips(w.kinds) },
      { title: 'Zone', cell: (w) => w.zone || h('span.muted', 'every event') },
      { title: 'Description', cell: (w) => w.description || '' },
      { title: 'Created', cell: (w) => whenBy(w.createdAt, w.createdBy) },
      { title: 'Updated', cell: (w) => timeCell(w.updatedAt) },
    ], page.items.map((w) => ({ ...w, dataset: { webhook: w.id } })), { empty: 'No webhook yet.' }));
  }
  await load();
  ctx.subscribe(['webhook'], debounced(() => load().catch(() => {}), 300));
}

export function kindChips(kinds) {
  if (!kinds || !kinds.length) return h('span.muted', 'every kind');
  return h('span.chips', kinds.map((k) => h('span.chip', k)));
}

// The secret of a webhook just created or rotated, shown this once.
export function showSecret(box, created, what) {
  const w = created.webhook;
  clear(box).append(secretOnce(`Copy the signing secret now: it is not shown again (webhook ${what}).`, created.secret, 'webhook-secret',
    h('p', 'Receivers verify the ', h('code', 'webhook-signature'), ' header with it (docs/webhooks.md). ',
      link(`#/webhooks/${enc(w.id)}`, 'Open the webhook'), ' to see its deliveries.')));
  box.scrollIntoView({ block: 'nearest' });
}

// The fields of a webhook (create and edit): URL, description, kinds by family, zone, enabled.
export function webhookFields(zones, webhook) {
  const url = h('input', { name: 'url', type: 'url', required: true, maxlength: 2048, placeholder: 'https://hooks.example.com/klevr', spellcheck: false, value: webhook?.url || '' });
  const description = h('input', { name: 'description', maxlength: 1000, value: webhook?.description || '' });
  const zoneNames = zones.map((z) => z.name);
  if (webhook?.zone && !zoneNames.includes(webhook.zone)) zoneNames.push(webhook.zone);
  const zone = select([['', 'every event (also those of no zone)'], ...zoneNames.map((n) => [n, `zone ${n} only`])], webhook?.zone || '', { name: 'zone' });
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: webhook ? webhook.enabled : true, id: `wh-enabled-${webhook ? 'edit' : 'new'}` });
  const picker = kindPicker(webhook ? 'edit' : 'new');
  if (webhook) picker.set(webhook.kinds);
  return {
    children: [
      h('div.row.align-top', field('URL', url, 'http:// or https://, no user info, no fragment.'), field('Description', description)),
      picker,
      h('div.row.align-top', field('Zone filter', zone),
        h('div.field.inline.enabled-field', enabled, h('label', { for: enabled.id }, 'Enabled (a disabled webhook gets no new deliveries)'))),
    ],
    body(creating) {
      const body = { url: url.value.trim(), description: description.value, kinds: picker.value(), enabled: enabled.checked };
      if (creating) {
        if (zone.value) body.zone = zone.value;
        if (!body.description) body.description = null;
      } else {
        body.zone = zone.value; // "" removes the zone filter
      }
      return body;
    },
    reset() { picker.set([]); enabled.checked = true; },
  };
}

// Event kinds by family: a family's box selects every kind of it (also kinds added later); or some of its
// kinds one by one. Nothing chosen: every kind.
function kindPicker(prefix) {
  const families = kindFamilies();
  const familyBoxes = new Map();
  const kindBoxes = new Map();
  const summary = h('span.kind-summary.muted');
  const groups = [];
  for (const [family, kinds] of families) {
    const familyBox = h('input', { type: 'checkbox', name: 'kinds', value: family, id: `${prefix}-k-${family}` });
    familyBoxes.set(family, familyBox);
    const boxes = kinds.map((kind) => {
      const box = h('input', { type: 'checkbox', name: 'kinds', value: kind, id: `${prefix}-k-${kind.replace('.', '-')}` });
      kindBoxes.set(kind, box);
      return h('label.kind-option', { for: box.id }, box, ' ', kind.slice(family.length + 1));
    });
    const details = h('details.kind-details', h('summary', `or some of its ${kinds.length}`), h('div.kind-options', boxes));
    familyBox.addEventListener('change', () => sync());
    groups.push(h('div.kind-family', h('label.family-label', { for: familyBox.id }, familyBox, ' ', h('code', family), h('span.muted', ' (every kind)')), details));
  }
  const el = h('fieldset.kind-picker', { dataset: { part: 'kind-picker' } },
    h('legend', 'Event kinds'),
    h('p.hint.muted', 'Nothing chosen: every kind. A family also selects kinds added to it later. ', summary),
    h('div.kind-families', groups));
  el.addEventListener('change', () => sync());
  function sync() {
    for (const [family, familyBox] of familyBoxes) {
      for (const kind of families.get(family)) kindBoxes.get(kind).disabled = familyBox.checked;
    }
    const chosen = el.value();
    summary.textContent = chosen.length ? `Chosen: ${chosen.join(', ')}` : 'Chosen: every kind.';
  }
  el.value = () => {
    const out = [];
    for (const [family, familyBox] of familyBoxes) {
      if (familyBox.checked) out.push(family);
      else for (const kind of families.get(family)) if (kindBoxes.get(kind).checked) out.push(kind);
    }
    return out;
  };
  el.set = (patterns) => {
    for (const box of [...familyBoxes.values(), ...kindBoxes.values()]) box.checked = false;
    for (const details of el.querySelectorAll('details')) details.open = false;
    for (const p of patterns || []) {
      const family = p.endsWith('.*') ? p.slice(0, -2) : p;
      if (familyBoxes.has(family)) familyBoxes.get(family).checked = true;
      else if (kindBoxes.has(p)) {
        kindBoxes.get(p).checked = true;
        kindBoxes.get(p).closest('details').open = true;
      }
    }
    sync();
  };
  sync();
  return el;
}
