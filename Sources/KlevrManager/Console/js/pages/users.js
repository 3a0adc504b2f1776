import { api, enc, hasRole, currentUser, ApiError } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, table, field, form, section, pageHeader, flash, badge, actionButton, errorBox, select, time, timeCell } from '../ui.js';
import { randomPassword, roleNote, secretOnce } from '../admin-shared.js';

const roles = [['viewer', 'viewer (reads)'], ['operator', 'operator (runs tasks)'], ['admin', 'admin (everything)']];

// Users (admins): create, change role, disable or enable, delete. The last enabled admin cannot be
// demoted, disabled or deleted: the server refuses (409) and the page shows why.
export async function render(ctx) {
  ctx.setTitle('Users');
  ctx.root.append(pageHeader('Users'));
  if (!hasRole('admin')) {
    ctx.root.append(roleNote('Users are managed by admins. Change your own password under your account (klevr user passwd).'));
    return;
  }
  const me = currentUser();
  const list = h('div', { dataset: { part: 'user-list' } });
  const listErrors = errorBox();
  const fresh = h('div', { dataset: { part: 'fresh-password' } });

  const username = h('input', { name: 'username', required: true, maxlength: 63, pattern: '[a-z0-9][a-z0-9\\-]*', autocomplete: 'off', spellcheck: false, placeholder: 'jane' });
  const role = select(roles, 'viewer', { name: 'role' });
  const password = h('input', { name: 'password', type: 'password', required: true, minlength: 12, maxlength: 72, autocomplete: 'new-password' });
  let generated = null;
  const generate = h('button', { type: 'button', dataset: { action: 'generate-password' } }, 'Generate');
  generate.addEventListener('click', () => {
    generated = randomPassword(20);
    password.value = generated;
    password.type = 'text';
  });
  password.addEventListener('input', () => { generated = null; });
  const show = h('input', { type: 'checkbox', id: 'user-show-password' });
  show.addEventListener('change', () => { password.type = show.checked ? 'text' : 'password'; });
  ctx.root.append(section('Create a user', form([
    h('div.row.align-top',
      field('User name', username, 'Lowercase letters, digits and -.'),
      field('Role', role)),
    h('div.field',
      h('label', { for: 'user-new-password' }, 'Password'),
      h('div.password-line', Object.assign(password, { id: 'user-new-password' }), generate),
      h('small.hint', '12 to 72 characters. Generate makes a random one in this browser (the API does not generate passwords); give it to the user, who can change it with klevr user passwd.')),
    h('div.field.inline', show, h('label', { for: show.id }, 'Show the password')),
  ], async (el) => {
    const created = await api.post('/api/v1/users', { username: username.value.trim(), role: role.value, password: password.value });
    const given = password.value;
    const wasGenerated = generated === given;
    el.reset();
    password.type = 'password';
    generated = null;
    clear(fresh);
    if (wasGenerated) {
      fresh.append(secretOnce(`User ${created.username} created. Copy the generated password now: it is not shown again.`, given, 'user-password'));
    }
    flash(`User ${created.username} (${created.role}) created.`);
    await load();
  }, 'Create user', { name: 'create-user' }), fresh));
  ctx.root.append(section('All users',
    h('p.muted', 'The last enabled admin cannot be demoted, disabled or deleted. Disabling or deleting a user ends their sessions and API tokens at once.'),
    listErrors, list));

  // The server's refusal, naming the user it was about.
  const about = (name, what) => async (fn) => {
    try { await fn(); } catch (error) {
      if (error instanceof ApiError && error.status === 409) throw new Error(`${name} was not ${what}: ${error.describe()}`);
      throw error;
    }
  };

  async function load() {
    const page = await api.get('/api/v1/users');
    if (!ctx.alive) return;
    const columns = [
      { title: 'User', cell: (u) => h('span', h('b', u.username), u.username === me?.username ? h('span.muted', ' (you)') : null) },
      { title: 'Role', cell: (u) => {
        const choice = select(roles.map(([v]) => [v, v]), u.role, { name: 'role', 'aria-label': `Role of ${u.username}` });
        const set = actionButton('Set', () => about(u.username, `changed to ${choice.value}`)(async () => {
          await api.put(`/api/v1/users/${enc(u.username)}/role`, { role: choice.value });
          flash(`${u.username} is now ${choice.value}.`);
          if (u.username === me?.username) {
            // Your own role changed: the console follows the session's new role.
            ctx.signedIn(await api.get('/api/v1/auth/session'));
            ctx.navigate('#/');
            return;
          }
          await load();
        }), { name: 'set-role', errors: listErrors });
        set.hidden = true;
        choice.addEventListener('change', () => { set.hidden = choice.value === u.role; });
        return h('span.role-line', choice, set);
      } },
      { title: 'State', cell: (u) => (u.disabledAt ? h('span', badge('disabled'), h('small.muted', ` since ${time(u.disabledAt)}`)) : badge('enabled')) },
      { title: 'Password', cell: (u) => (u.passwordChangeRequired ? badge('pending', 'change required')
        : u.passwordChangedAt ? h('span.muted', 'changed ', timeCell(u.passwordChangedAt)) : h('span.muted', 'as created')) },
      { title: 'Created', cell: (u) => timeCell(u.createdAt) },
      { title: 'Actions', cell: (u) => h('span.actions',
        u.disabledAt
          ? actionButton('Enable', async () => {
            await api.post(`/api/v1/users/${enc(u.username)}/enable`);
            flash(`${u.username} enabled: they log in anew.`);
            await load();
          }, { name: 'enable-user', errors: listErrors })
          : actionButton('Disable', () => about(u.username, 'disabled')(async () => {
            await api.post(`/api/v1/users/${enc(u.username)}/disable`);
            flash(`${u.username} disabled: their sessions and tokens ended.`);
            await load();
          }), { name: 'disable-user', confirmText: 'Really disable?', errors: listErrors }),
        actionButton('Delete', () => about(u.username, 'deleted')(async () => {
          await api.del(`/api/v1/users/${enc(u.username)}`);
          flash(`${u.username} deleted (what they created stays).`);
          await load();
        }), { tone: 'danger', name: 'delete-user', confirmText: 'Really delete?', errors: listErrors })) },
    ];
    clear(list).append(table(columns, page.items.map((u) => ({ ...u, dataset: { user: u.username, role: u.role } })), { empty: 'No user.' }));
  }
  await load();
  ctx.subscribe(['user.created', 'user.updated', 'user.disabled', 'user.enabled', 'user.deleted', 'user.password_changed'], debounced(() => load().catch(() => {}), 300));
}
