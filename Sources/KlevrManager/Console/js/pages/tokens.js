import { api, enc, hasRole, currentUser } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, table, field, form, section, pageHeader, flash, badge, actionButton, errorBox, select, time, timeCell } from '../ui.js';
import { secretOnce } from '../admin-shared.js';

// API tokens: the caller's own (admins may list everyone's), created with the value shown once, revoked.
export async function render(ctx) {
  ctx.setTitle('API tokens');
  const admin = hasRole('admin');
  const me = currentUser();
  const list = h('div', { dataset: { part: 'token-list' } });
  const listErrors = errorBox();
  const fresh = h('div', { dataset: { part: 'fresh-token' } });
  const everyone = h('input', { type: 'checkbox', id: 'tokens-everyone', name: 'all', checked: admin && ctx.query.all !== '0' });

  const name = h('input', { name: 'name', required: true, maxlength: 100, placeholder: 'ci-deploy', autocomplete: 'off' });
  const expiry = select([['', 'never'], ['1', '1 day'], ['7', '7 days'], ['30', '30 days'], ['90', '90 days'], ['365', '365 days']], '90', { name: 'expiresInDays' });
  ctx.root.append(pageHeader('API tokens'),
    h('p.muted', 'A token acts as you, with your role, for the CLI and scripts: ', h('code', 'Authorization: Bearer klt_…'),
      '. Its value is shown once, when it is created; the manager keeps only its hash. Changing your password ends all your tokens.'),
    section('Create a token', form([
      h('div.row.align-top', field('Name', name, 'What it is for: 1 to 100 characters.'), field('Expires after', expiry)),
    ], async (el) => {
      const created = await api.post('/api/v1/tokens', { name: name.value.trim(), expiresInDays: expiry.value ? Number(expiry.value) : null });
      el.reset();
      expiry.value = '90';
      clear(fresh).append(secretOnce('Copy the token now: it is not shown again.', created.token, 'api-token',
        h('p', `Token “${created.name}”, `, created.expiresAt ? `expires ${time(created.expiresAt)}.` : 'does not expire.'),
        h('p.muted', 'Use it as ', h('code', 'Authorization: Bearer <token>'), ' on any API call.')));
      fresh.scrollIntoView({ block: 'nearest' });
      await load();
    }, 'Create token', { name: 'create-token' }), fresh));
  const filters = admin ? h('form.filters', h('div.field.inline', everyone, h('label', { for: everyone.id }, 'Everyone\'s tokens (admins)'))) : null;
  if (filters) {
    filters.addEventListener('submit', (event) => event.preventDefault());
    everyone.addEventListener('change', () => load().catch((e) => listErrors.show(e)));
  }
  ctx.root.append(section(admin ? 'Tokens' : 'Your tokens', filters, listErrors, list));

  async function load() {
    const all = admin && everyone.checked;
    const page = await api.get('/api/v1/tokens', all ? { all: true } : {});
    if (!ctx.alive) return;
    const now = Date.now();
    const columns = [
      { title: 'Name', cell: (t) => h('b', t.name) },
      all ? { title: 'Owner', cell: (t) => h('span', t.owner, t.owner === me?.username ? h('span.muted', ' (you)') : null) } : null,
      { title: 'State', cell: (t) => (t.expiresAt && t.expiresAt <= now ? badge('expired') : badge('active')) },
      { title: 'Created', cell: (t) => timeCell(t.createdAt) },
      { title: 'Last used', cell: (t) => (t.lastUsedAt ? timeCell(t.lastUsedAt) : h('span.muted', 'never')) },
      { title: 'Expires', cell: (t) => (t.expiresAt ? time(t.expiresAt) : 'never') },
      { title: '', cell: (t) => actionButton('Revoke', async () => {
        await api.del(`/api/v1/tokens/${enc(t.id)}`);
        flash(`Token ${t.name}${t.owner !== me?.username ? ` of ${t.owner}` : ''} revoked.`);
        await load();
      }, { tone: 'danger', name: 'revoke-token', confirmText: 'Really revoke?', errors: listErrors }) },
    ].filter(Boolean);
    clear(list).append(table(columns, page.items.map((t) => ({ ...t, dataset: { token: t.id, name: t.name } })),
      { empty: all ? 'No API token.' : 'You have no API token.' }));
  }
  await load();
  ctx.subscribe(['token', 'user.deleted', 'user.disabled', 'user.password_changed'], debounced(() => load().catch(() => {}), 300));
}
