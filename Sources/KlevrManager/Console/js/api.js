// The console's only way to the manager: the same REST API as the CLI, with the session cookie and the
// CSRF token of the session on every write. Errors are the API's problem documents.

const session = { csrf: null, user: null };

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.type = this.problem.type || '';
    this.fieldErrors = Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
  // The message with each field error, as one line of text.
  describe() {
    // Field errors the message does not already say.
    const fields = this.fieldErrors.map((e) => `${e.field}: ${e.message}`).filter((text) => !this.message.includes(text));
    return fields.length ? `${this.message} (${fields.join('; ')})` : this.message;
  }
}

const listeners = new Set();
// Called with the ApiError when a call finds the session gone (401) or a password change required.
export function onSessionProblem(listener) { listeners.add(listener); }

export function setSession(answer) {
  session.csrf = answer ? answer.csrfToken : null;
  session.user = answer ? answer.user : null;
}
export function currentUser() { return session.user; }
export function hasRole(role) {
  const order = { viewer: 0, operator: 1, admin: 2 };
  return !!session.user && order[session.user.role] >= order[role];
}

// `params` as a query string (no `?`), without the empty ones (undefined, null, '').
export function queryString(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  return search.toString();
}

function url(path, query) {
  const u = new URL(path, window.location.origin);
  u.search = queryString(query);
  return u.pathname + u.search;
}

// `body` goes as JSON; `text` (with `contentType`) as it is, e.g. a task as YAML.
export async function request(method, path, { query, body, text, contentType, raw } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && session.csrf) headers['X-Klevr-CSRF'] = session.csrf;
  let payload;
  if (text !== undefined) {
    headers['Content-Type'] = contentType || 'text/plain';
    payload = text;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  } catch (error) {
    throw new ApiError(0, { detail: `the manager cannot be reached (${error.message})` });
  }
  if (raw) return response;
  const answer = await response.text();
  let data = null;
  if (answer) {
    try { data = JSON.parse(answer); } catch { data = { detail: answer.slice(0, 500) }; }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 || error.type === 'password-change-required') {
      for (const listener of listeners) listener(error);
    }
    throw error;
  }
  return data;
}

export const api = {
  get: (path, query) => request('GET', path, { query }),
  post: (path, body, query) => request('POST', path, { body: body === undefined ? {} : body, query }),
  postText: (path, text, contentType) => request('POST', path, { text, contentType }),
  put: (path, body) => request('PUT', path, { body }),
  patch: (path, body) => request('PATCH', path, { body }),
  del: (path, query) => request('DELETE', path, { query }),
  // Every item of a paginated list (at most `max`).
  async all(path, query = {}, max = 2000) {
    const items = [];
    let cursor;
    do {
      const page = await request('GET', path, { query: { ...query, limit: 500, cursor } });
      items.push(...(page.items || []));
      cursor = page.nextCursor;
    } while (cursor && items.length < max);
    return items;
  },
};

export const enc = encodeURIComponent;
