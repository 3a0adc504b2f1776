import { api, enc, hasRole } from '../api.js';
import { debounced } from '../events.js';
import {
  h, clear, table, field, form, section, pageHeader, flash, badge, actionButton, errorBox, select, dl, time, timeCell,
} from '../ui.js';
import { roleNote, whenBy } from '../admin-shared.js';
import { kindChips, showSecret, webhookFields } from './webhooks.js';

const POLL_MS = 3000;

// One webhook: its settings, its deliveries with every attempt (refreshed every few seconds while the
// page is open: attempts append no event), and for admins edit, rotate secret, delete and redeliver.
export async function render(ctx) {
  const id = ctx.params.id;
  ctx.setTitle('Webhook');
  if (!hasRole('operator')) {
    ctx.root.append(pageHeader('Webhook'), roleNote('Webhooks are shown to operators and admins only.'));
    return;
  }
  const admin = hasRole('admin');
  const headErrors = errorBox();
  const head = h('div');
  const fresh = h('div', { dataset: { part: 'fresh-secret' } });
  const facts = h('div', { dataset: { part: 'webhook-facts' } });
  const editBox = h('div');
  const deliveriesBox = h('div', { dataset: { part: 'deliveries' } });
  const deliveryErrors = errorBox();
  const status = select([['', 'any status'], 'pending', 'succeeded', 'failed'], '', { name: 'status' });
  const older = h('button', { type: 'button', dataset: { action: 'older' } }, 'Older');
  const refreshed = h('span.muted.refreshed', { 'aria-live': 'off' });
  const zones = admin ? (await api.get('/api/v1/zones')).items : [];

  ctx.root.append(head, headErrors, fresh, section('Webhook', facts));
  if (admin) ctx.root.append(editBox);
  else ctx.root.append(roleNote('Only admins change, rotate, delete or redeliver webhooks.'));
  const filters = h('form.filters', { role: 'search' }, field('Status', status), refreshed);
  filters.addEventListener('submit', (event) => event.preventDefault());
  ctx.root.append(section('Deliveries',
    h('p.muted', `Each delivery is one event sent to this webhook, with every attempt. Refreshed every ${POLL_MS / 1000} s while this page is open.`),
    filters, deliveryErrors, deliveriesBox, h('div.actions', older)));

  let webhook = null;
  async function loadWebhook() {
    const w = await api.get(`/api/v1/webhooks/${enc(id)}`);
    if (!ctx.alive) return;
    const firstTime = !webhook;
    webhook = w;
    ctx.setTitle(`Webhook ${w.url}`);
    clear(head).append(pageHeader('Webhook', admin ? [
      actionButton(w.enabled ? 'Disable' : 'Enable', async () => {
        await api.patch(`/api/v1/webhooks/${enc(id)}`, { enabled: !w.enabled });
        flash(w.enabled ? 'Webhook disabled: it gets no new deliveries, queued ones wait.' : 'Webhook enabled.');
        await loadWebhook();
        buildEdit();
      }, { name: w.enabled ? 'disable-webhook' : 'enable-webhook', errors: headErrors }),
      actionButton('Rotate secret', async () => {
        const created = await api.post(`/api/v1/webhooks/${enc(id)}/rotate-secret`);
        showSecret(fresh, created, 'secret rotated: the old one no longer signs');
        await loadWebhook();
      }, { name: 'rotate-secret', confirmText: 'Rotate: receivers need the new secret', errors: headErrors }),
      actionButton('Delete', async () => {
        await api.del(`/api/v1/webhooks/${enc(id)}`);
        flash('Webhook deleted, with its deliveries.');
        ctx.navigate('#/webhooks');
      }, { tone: 'danger', name: 'delete-webhook', confirmText: 'Really delete it and its deliveries?', errors: headErrors }),
    ] : []));
    clear(facts).append(dl([
      ['URL', h('code.url', { dataset: { value: 'webhook-url' } }, w.url)],
      ['State', badge(w.enabled ? 'enabled' : 'disabled')],
      ['Kinds', kindChips(w.kinds)],
      ['Zone', w.zone || 'every event (also those of no zone)'],
      ['Description', w.description],
      ['Created', whenBy(w.createdAt, w.createdBy)],
      ['Updated', time(w.updatedAt)],
      ['Secret', h('span.muted', 'never shown again after creation or rotation')],
      ['Id', h('code', w.id)],
    ]));
    if (firstTime) buildEdit();
  }

  function buildEdit() {
    if (!admin || !webhook) return;
    const fields = webhookFields(zones, webhook);
    clear(editBox).append(h('details.card.edit-webhook', h('summary', h('strong', 'Edit this webhook')),
      form(fields.children, async () => {
        await api.patch(`/api/v1/webhooks/${enc(id)}`, fields.body(false));
        flash('Webhook saved. Deliveries already queued keep their body.');
        await loadWebhook();
        buildEdit();
      }, 'Save changes', { name: 'update-webhook' })));
  }

  // Deliveries: the first page is reloaded while the page is open; older pages are kept as loaded.
  let first = [];
  let olderItems = [];
  let firstCursor = null;
  let cursor = null;
  let shown = '';
  async function loadDeliveries() {
    const page = await api.get(`/api/v1/webhooks/${enc(id)}/deliveries`, { status: status.value, limit: 25 });
    if (!ctx.alive) return;
    first = page.items;
    firstCursor = page.nextCursor || null;
    if (!olderItems.length) cursor = firstCursor;
    deliveryErrors.hide();
    refreshed.textContent = `refreshed ${time(Date.now()).slice(11)}`;
    showDeliveries();
  }
  function showDeliveries() {
    const seen = new Set(first.map((d) => d.id));
    const items = first.concat(olderItems.filter((d) => !seen.has(d.id)));
    older.hidden = !cursor;
    const signature = JSON.stringify(items);
    if (signature === shown) return; // nothing changed: keep the DOM (and a button being clicked)
    shown = signature;
    clear(deliveriesBox).append(deliveryTable(items));
  }
  older.addEventListener('click', async () => {
    older.disabled = true;
    try {
      const page = await api.get(`/api/v1/webhooks/${enc(id)}/deliveries`, { status: status.value, limit: 25, cursor });
      if (!ctx.alive) return;
      olderItems = olderItems.concat(page.items);
      cursor = page.nextCursor || null;
      showDeliveries();
    } catch (error) { deliveryErrors.show(error); } finally { older.disabled = false; }
  });
  status.addEventListener('change', () => {
    olderItems = [];
    loadDeliveries().catch((e) => deliveryErrors.show(e));
  });

  function deliveryTable(items) {
    const columns = [
      { title: 'Event', cell: (d) => h('span', h('code.kind', d.eventKind), h('span.muted', ` #${d.eventId}`)) },
      { title: 'Status', cell: (d) => h('span', badge(d.status), d.redeliveryOf ? h('small.muted.redelivery', ` re-send of ${d.redeliveryOf.slice(0, 8)}`) : null) },
      { title: 'Attempts', cell: (d) => attemptList(d.attempts) },
      { title: 'Next attempt', cell: (d) => (d.status === 'pending' && d.nextAttemptAt ? timeCell(d.nextAttemptAt) : '—') },
      { title: 'Queued', cell: (d) => timeCell(d.createdAt) },
    ];
    if (admin) {
      columns.push({ title: '', cell: (d) => actionButton('Redeliver', async () => {
        const copy = await api.post(`/api/v1/webhooks/${enc(id)}/deliveries/${enc(d.id)}/redeliver`);
        flash(`Event #${d.eventId} queued again (delivery ${copy.id.slice(0, 8)}, same webhook-id).`);
        await loadDeliveries();
      }, { name: 'redeliver', errors: deliveryErrors }) });
    }
    return table(columns, items.map((d) => ({ ...d, dataset: { delivery: d.id, status: d.status } })),
      { empty: status.value ? `No ${status.value} delivery.` : 'No delivery yet: only events appended after the webhook was created are sent.' });
  }

  await loadWebhook();
  await loadDeliveries();
  const refresh = debounced(() => loadDeliveries().catch((e) => deliveryErrors.show(e)), 500);
  const timer = setInterval(refresh, POLL_MS);
  ctx.onDispose(() => clearInterval(timer));
  ctx.subscribe(['webhook'], (event) => {
    if (event.subject !== id) return;
    if (event.kind === 'webhook.deleted') { flash('This webhook was deleted.', 'bad'); ctx.navigate('#/webhooks'); return; }
    loadWebhook().catch(() => {});
    refresh();
  });
}

// Every attempt of a delivery: number, time, the receiver's status (or none), duration, error.
function attemptList(attempts) {
  if (!attempts.length) return h('span.muted', 'not tried yet');
  return h('ol.attempts', attempts.map((a) => {
    const ok = a.statusCode >= 200 && a.statusCode < 300;
    const code = a.statusCode === undefined || a.statusCode === null
      ? h('span.badge.tone-bad', { dataset: { code: '' } }, 'no answer')
      : h(`span.badge.tone-${ok ? 'good' : 'bad'}`, { dataset: { code: String(a.statusCode) } }, String(a.statusCode));
    return h('li.attempt', { dataset: { attempt: String(a.attempt) } },
      h('span.attempt-head', h('b', `#${a.attempt}`), ' ', code, ' ', h('span.muted', `${a.durationMillis} ms · ${time(a.at)}`)),
      a.error ? h('span.attempt-error', a.error) : null);
  }));
}
