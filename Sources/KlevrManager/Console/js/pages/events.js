import { api, hasRole } from '../api.js';
import { eventLogPage, eventMatches } from '../admin-shared.js';

// The event log: every change of runs, tasks, agents, zones, keys, users, tokens, credentials and
// webhooks, newest first, with filters, older pages and a Live toggle fed by the shared event stream.
export async function render(ctx) {
  let follow = null; // { filters, add } while Live is on
  ctx.subscribe(['*'], (event) => {
    if (follow && eventMatches(follow.filters, event)) follow.add(event);
  });
  await eventLogPage(ctx, {
    title: 'Events',
    path: '/api/v1/events',
    route: 'events',
    showAddress: hasRole('admin'),
    intro: hasRole('admin')
      ? 'Every change the manager recorded, newest first. Client addresses are shown to admins only.'
      : 'Every change the manager recorded, newest first.',
    live(filters, afterId, add, setState, showError) {
      let stopped = false;
      follow = { filters, add };
      setState('following the live stream');
      // What happened between the last load and now (the stream only brings what comes next).
      if (afterId) {
        api.get('/api/v1/events', { ...filters, after: afterId, limit: 500 })
          .then((page) => { if (!stopped) page.items.forEach(add); })
          .catch(showError);
      }
      return () => { stopped = true; follow = null; };
    },
  });
}
