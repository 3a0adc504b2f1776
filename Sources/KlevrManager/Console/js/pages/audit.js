import { hasRole, queryString } from '../api.js';
import { kinds } from '../events.js';
import { h, pageHeader } from '../ui.js';
import { eventLogPage, roleNote } from '../admin-shared.js';

// The audit log (admins): the changes made by users and their API tokens, with the client address.
// Live follows `/api/v1/audit?follow=true` with the page's filters, on its own stream.
export async function render(ctx) {
  if (!hasRole('admin')) {
    ctx.setTitle('Audit');
    ctx.root.append(pageHeader('Audit'), roleNote('The audit log is for admins. The event log (Events) shows the same changes without client addresses.'),
      h('a', { href: '#/events' }, 'Open the event log'));
    return;
  }
  await eventLogPage(ctx, {
    title: 'Audit',
    path: '/api/v1/audit',
    route: 'audit',
    showAddress: true,
    intro: 'Every change made by users (sessions) and their API tokens, with the client address, newest first.',
    live(filters, afterId, add, setState) {
      const params = queryString({ follow: 'true', ...filters, after: afterId || undefined });
      const source = new EventSource(`/api/v1/audit?${params}`, { withCredentials: true });
      const deliver = (message) => {
        try { add(JSON.parse(message.data)); } catch { /* not an event */ }
      };
      for (const kind of kinds) source.addEventListener(kind, deliver);
      source.onopen = () => setState('following');
      source.onerror = () => setState(source.readyState === EventSource.CLOSED ? 'stream closed' : 'reconnecting…');
      return () => source.close();
    },
  });
}
