// The REST API as the dashboard uses it: one fetch wrapper that sends the bearer token and
// turns a problem+json answer into an ApiError. The token lives in this tab's sessionStorage.

const TOKEN_KEY = 'mufl.token';

export const session = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  save(token) { this.token = token; sessionStorage.setItem(TOKEN_KEY, token); },
  forget() { this.token = ''; sessionStorage.removeItem(TOKEN_KEY); },
};

// An API error carrying the problem+json body, so callers can show title and detail.
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

// Sends one request; resolves with the parsed JSON body, rejects with an ApiError (status 0
// when the server cannot be reached).
export async function api(method, path, token = session.token) {
  let res;
  try {
    res = await fetch(path, {
      method,
      cache: 'no-store',
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    });
  } catch {
    throw new ApiError(0, { title: 'Network error', detail: 'cannot reach the server' });
  }
  const type = res.headers.get('Content-Type') || '';
  const body = type.includes('json') ? await res.json().catch(() => null) : null;
  if (!res.ok) throw new ApiError(res.status, body || { title: res.statusText || 'Error' });
  return body;
}

// '/v1/activities?limit=50&state=queued' from a path and the parameters that are set.
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// Every item of a paginated list: GETs `path` a page of `limit` items at a time, following
// next_cursor until it is null, and resolves with the items in the API's order.
export async function apiAll(path, limit = 1000) {
  const items = [];
  let cursor = null;
  do {
    const page = await api('GET', withQuery(path, { limit, cursor }));
    items.push(...(page.items || []));
    cursor = page.next_cursor || null;
  } while (cursor);
  return items;
}
