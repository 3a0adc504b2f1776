import { api, currentUser } from '../api.js';
import { h, field, form, flash } from '../ui.js';

export async function render(ctx) {
  ctx.setTitle('Change password');
  const user = currentUser();
  const forced = !!user.passwordChangeRequired;
  const current = h('input', { name: 'current', type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { name: 'new', type: 'password', autocomplete: 'new-password', required: true, minlength: 12 });
  const again = h('input', { name: 'again', type: 'password', autocomplete: 'new-password', required: true });
  const change = form([
    field('Current password', current),
    field('New password', next, 'At least 12 characters; it must differ from the current one.'),
    field('New password again', again),
  ], async () => {
    if (next.value !== again.value) throw new Error('the two new passwords differ');
    await api.post('/api/v1/me/password', { currentPassword: current.value, newPassword: next.value });
    ctx.signedIn(await api.get('/api/v1/auth/session'));
    flash('Password changed. Your other sessions and your API tokens have ended.');
    ctx.navigate('#/');
  }, 'Change password', { name: 'password' });
  ctx.root.append(h('div.login-box',
    h('h1', 'Change your password'),
    forced ? h('p.notice', { role: 'status' }, `The password of ${user.username} was generated at the manager's first start: choose your own before anything else.`) : null,
    change));
}
