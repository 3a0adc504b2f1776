import { api } from '../api.js';
import { h, field, form } from '../ui.js';

export async function render(ctx) {
  ctx.setTitle('Log in');
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true, maxlength: 200 });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 1024 });
  const login = form([field('User name', username), field('Password', password)], async () => {
    const answer = await api.post('/api/v1/auth/login', { username: username.value, password: password.value });
    ctx.signedIn({ user: { ...answer.user, passwordChangeRequired: answer.passwordChangeRequired }, csrfToken: answer.csrfToken, passwordChangeRequired: answer.passwordChangeRequired });
    const next = ctx.query.next && ctx.query.next.startsWith('/') && !ctx.query.next.startsWith('//') ? ctx.query.next : '/';
    ctx.navigate(answer.passwordChangeRequired ? '#/password' : `#${next}`);
  }, 'Log in', { name: 'login' });
  ctx.root.append(h('div.login-box',
    h('h1', 'Klevr'),
    h('p.muted', 'Log in to manage your zones, agents and tasks.'),
    login));
  username.focus();
}
