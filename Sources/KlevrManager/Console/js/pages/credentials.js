import { api, enc, hasRole, ApiError } from '../api.js';
import { debounced } from '../events.js';
import {
  h, clear, table, link, field, form, section, pageHeader, flash, actionButton, errorBox, select,
} from '../ui.js';
import { roleNote, whenBy } from '../admin-shared.js';

// Credentials: names, scopes and who made or changed them; never values (the API never returns them).
// Admins create them, replace their values and delete them.
export async function render(ctx) {
  ctx.setTitle('Credentials');
  const admin = hasRole('admin');
  const zones = (await api.get('/api/v1/zones')).items;
  const scopeFilter = select([['', 'every credential'], ['global', 'global only'], ...zones.map((z) => [`zone:${z.name}`, `zone ${z.name} (its own)`])],
    ctx.query.zone ? `zone:${ctx.query.zone}` : '', { name: 'scope' });
  const list = h('div', { dataset: { part: 'credential-list' } });
  const editor = h('div', { dataset: { part: 'credential-editor' } });
  const listErrors = errorBox();
  let inputs = 0;

  ctx.root.append(pageHeader('Credentials'),
    h('p.write-only', { dataset: { part: 'write-only' } },
      h('strong', 'Values are write-only. '),
      'A credential\'s value is encrypted at rest and never shown again, by the console, the CLI or the API, not even to admins. ',
      'A task names the credentials its runs receive; the script reads each as the environment variable ', h('code', 'KLEVR_CRED_<NAME>'),
      ', and its value is masked in the run\'s log.'));

  if (admin) {
    ctx.root.append(section('Store a credential', createForm()));
  } else {
    ctx.root.append(roleNote('Only admins create, change or delete credentials.'));
  }
  const filters = h('form.filters', { role: 'search' }, field('Show', scopeFilter));
  filters.addEventListener('submit', (event) => event.preventDefault());
  scopeFilter.addEventListener('change', () => load().catch((e) => listErrors.show(e)));
  ctx.root.append(section('Credentials', filters, editor, listErrors, list));

  // A value input: one line, hidden as typed (password), or several lines (a key file) in a textarea.
  function valueInput(required) {
    const single = h('input', { type: 'password', name: 'value', required, maxlength: 65536, autocomplete: 'new-password', spellcheck: false });
    const multi = h('textarea', { name: 'value', required, maxlength: 65536, rows: 5, autocomplete: 'off', spellcheck: false, class: 'secret-text' });
    const valueField = field('Value', single, required
      ? 'Write-only: it cannot be read back. At most 65536 characters; values under 4 characters are not masked in logs.'
      : 'Write-only. Leave empty to keep the current value.');
    multi.id = `${single.id}-m`;
    multi.setAttribute('aria-describedby', single.getAttribute('aria-describedby'));
    const label = valueField.querySelector('label');
    inputs += 1;
    const toggle = h('input', { type: 'checkbox', name: 'multiline', id: `cred-ml-${inputs}-${Date.now()}` });
    toggle.addEventListener('change', () => {
      const [from, to] = toggle.checked ? [single, multi] : [multi, single];
      to.value = from.value;
      from.value = '';
      from.replaceWith(to);
      label.htmlFor = to.id;
      to.focus();
    });
    const wrap = h('div.value-input', valueField,
      h('div.field.inline', toggle, h('label', { for: toggle.id }, 'Several lines (a key file, a certificate)')));
    wrap.value = () => (multi.isConnected ? multi.value : single.value);
    wrap.reset = () => {
      if (multi.isConnected) { multi.replaceWith(single); label.htmlFor = single.id; }
      toggle.checked = false;
      single.value = '';
      multi.value = '';
    };
    return wrap;
  }

  function createForm() {
    const name = h('input', { name: 'name', required: true, maxlength: 64, pattern: '[A-Za-z_][A-Za-z0-9_]*', placeholder: 'DB_PASSWORD', autocomplete: 'off', spellcheck: false });
    const scope = select([['', 'global (every zone)'], ...zones.map((z) => [z.name, `zone ${z.name}`])], '', { name: 'zone' });
    const description = h('input', { name: 'description', maxlength: 500 });
    const value = valueInput(true);
    return form([
      h('div.row.align-top',
        field('Name', name, 'Letters, digits and _, not starting with a digit.'),
        field('Scope', scope, 'A zone\'s own credential wins over a global one of the same name.'),
        field('Description', description)),
      value,
    ], async (el) => {
      const created = await api.post('/api/v1/credentials', {
        name: name.value.trim(), zone: scope.value || null, value: value.value(), description: description.value || null,
      });
      el.reset();
      value.reset();
      flash(`Credential ${created.name} stored (${created.scope === 'zone' ? `zone ${created.zone}` : 'global'}).`);
      await load();
    }, 'Store credential', { name: 'create-credential' });
  }

  function edit(c) {
    const description = h('input', { name: 'description', maxlength: 500, value: c.description || '' });
    const value = valueInput(false);
    const editForm = form([value, field('Description', description)], async () => {
      const body = { description: description.value };
      const v = value.value();
      if (v) body.value = v;
      await api.patch(`/api/v1/credentials/${enc(c.id)}`, body);
      flash(v ? `The value of ${c.name} was replaced.` : `${c.name} updated.`);
      clear(editor);
      await load();
    }, 'Save', { name: 'update-credential' });
    editForm.querySelector('.actions').append(
      h('button', { type: 'button', dataset: { action: 'cancel-edit' }, on: { click: () => clear(editor) } }, 'Cancel'));
    const panel = h('div.card.editor', { dataset: { credential: c.id } },
      h('h3', `Change ${c.name} (${c.scope === 'zone' ? `zone ${c.zone}` : 'global'})`),
      h('p.muted', 'Leave the value empty to keep it. Runs handed out from now on receive the new value.'),
      editForm);
    clear(editor).append(panel);
    panel.scrollIntoView({ block: 'nearest' });
    panel.querySelector('input[name="value"]').focus();
  }

  async function load() {
    const [scopeKind, scopeZone] = scopeFilter.value.split(':');
    const query = scopeKind === 'global' ? { global: true } : scopeKind === 'zone' ? { zone: scopeZone } : {};
    const [page, changes] = await Promise.all([
      api.get('/api/v1/credentials', query),
      // Who changed each credential last: the newest credential.updated event of each.
      api.get('/api/v1/events', { kind: 'credential.updated', limit: 500 }).catch(() => ({ items: [] })),
    ]);
    if (!ctx.alive) return;
    const updatedBy = new Map();
    for (const e of changes.items) if (!updatedBy.has(e.subject)) updatedBy.set(e.subject, e.actor?.name || e.actor?.kind);
    listErrors.hide();
    const columns = [
      { title: 'Name', cell: (c) => h('code.cred-name', c.name) },
      { title: 'Scope', cell: (c) => (c.scope === 'zone' ? h('span', 'zone ', link(`#/zones/${enc(c.zone)}`, c.zone)) : h('span.scope-global', 'global')) },
      { title: 'Description', cell: (c) => c.description || '' },
      { title: 'Created', cell: (c) => whenBy(c.createdAt, c.createdBy) },
      { title: 'Updated', cell: (c) => (c.updatedAt > c.createdAt ? whenBy(c.updatedAt, updatedBy.get(c.id)) : h('span.muted', 'never')) },
      { title: 'Value', cell: () => h('span.muted.write-only-cell', 'write-only') },
    ];
    if (admin) {
      columns.push({ title: 'Actions', cell: (c) => h('span.actions',
        h('button', { type: 'button', dataset: { action: 'edit-credential' }, on: { click: () => edit(c) } }, 'Replace value'),
        actionButton('Delete', async () => {
          try {
            await api.del(`/api/v1/credentials/${enc(c.id)}`);
          } catch (error) {
            if (error instanceof ApiError && error.status === 409) throw new Error(`${c.name} was not deleted: ${error.describe()}`);
            throw error;
          }
          flash(`Credential ${c.name} deleted.`);
          await load();
        }, { tone: 'danger', confirmText: 'Really delete?', errors: listErrors, name: 'delete-credential' })) });
    }
    clear(list).append(table(columns, page.items.map((c) => ({ ...c, dataset: { credential: c.id, name: c.name } })),
      { empty: scopeFilter.value ? 'No credential in this scope.' : 'No credential yet.' }));
  }

  await load();
  ctx.subscribe(['credential'], debounced(() => load().catch(() => {}), 300));
}
