// The one road to the server: /v1 with X-Vault-Token. The token lives in sessionStorage
// only (never a cookie, never the URL) and is forgotten on sign-out.

const KEY = 'strongroom.token';

export const session = {
  get token() {
    return sessionStorage.getItem(KEY) || '';
  },
  set(token) {
    sessionStorage.setItem(KEY, token);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, errors, method, path, body = null) {
    super(errors.length ? errors.join('; ') : `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
    this.method = method;
    this.path = path;
    this.body = body; // the parsed answer, for endpoints whose errors are not {"errors": [...]} (OAuth)
  }
}

export async function api(method, path, body, { token = true } = {}) {
  const headers = { 'X-Vault-Request': 'true' };
  if (token && session.token) headers['X-Vault-Token'] = session.token;
  const init = { method: method === 'LIST' ? 'GET' : method, headers, credentials: 'omit', cache: 'no-store' };
  let url = `/v1/${path}`;
  if (method === 'LIST') url += (url.includes('?') ? '&' : '?') + 'list=true';
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  if (resp.status === 204) return null;
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const errors = json && Array.isArray(json.errors) ? json.errors : [];
    throw new ApiError(resp.status, errors, method, path, json);
  }
  return json;
}

// LIST that treats Vault's 404-for-empty as an empty list.
export async function list(path) {
  try {
    const resp = await api('LIST', path);
    return (resp && resp.data && resp.data.keys) || [];
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return [];
    throw err;
  }
}

const NEEDED = { GET: 'read', LIST: 'list', POST: 'update', PUT: 'update', DELETE: 'delete', PATCH: 'patch' };

// For a 403: which capability the request needed and what the token has on the path.
export async function explainDenied(err) {
  const needed = NEEDED[err.method] || 'read';
  const path = err.path.split('?')[0];
  let has = [];
  try {
    const resp = await api('POST', 'sys/capabilities-self', { paths: [path] });
    has = (resp && (resp.data || resp)[path]) || (resp && resp.capabilities) || [];
  } catch (err) {
    // capabilities-self is in the default policy: refused means the token itself is gone
    if (err instanceof ApiError && err.status === 403) return { needed, path, has, invalid: true };
    has = [];
  }
  return { needed, path, has, invalid: false };
}
