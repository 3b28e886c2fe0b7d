// OIDC sign-in (the jwt/oidc auth method's browser flow, as Vault's UI does it): ask the
// server for the provider's authorization URL with our callback page as redirect_uri, keep
// the login's state in sessionStorage, and send this window to the provider. The provider
// sends the browser back to /ui/vault/auth/<mount>/oidc/callback (oidc-callback.js).
import { api, session } from './api.js';

const PENDING = 'strongroom.oidc.pending';
// where to go after signing in: the OIDC provider's authorization page that sent us to sign in
const RETURN = 'strongroom.return';
const AUTHORIZE_PAGE = /^\/ui\/vault\/identity\/oidc\/provider\/[A-Za-z0-9._-]+\/authorize$/;

export function rememberReturn(url) {
  sessionStorage.setItem(RETURN, url);
}

export function pendingReturn() {
  return Boolean(sessionStorage.getItem(RETURN));
}

// The address to go back to after a sign-in (once), or null: only ever this origin's
// authorization page, whatever was stored.
export function takeReturn() {
  const value = sessionStorage.getItem(RETURN);
  sessionStorage.removeItem(RETURN);
  if (!value) return null;
  let url;
  try {
    url = new URL(value, location.origin);
  } catch {
    return null;
  }
  if (url.origin !== location.origin || !AUTHORIZE_PAGE.test(url.pathname)) return null;
  return url.pathname + url.search;
}

// "oidc/" or "team/oidc/" → "oidc" or "team/oidc"
function mountName(path) {
  return path.replace(/\/+$/, '');
}

export function callbackUrl(path) {
  return `${location.origin}/ui/vault/auth/${mountName(path)}/oidc/callback`;
}

export async function startOidc(path, role) {
  const body = { redirect_uri: callbackUrl(path) };
  if (role) body.role = role;
  const resp = await api('POST', `auth/${mountName(path)}/oidc/auth_url`, body, { token: false });
  const authUrl = resp && resp.data && resp.data.auth_url;
  if (!authUrl) throw new Error('The server gave no authorization URL (check the role and its allowed_redirect_uris).');
  const target = new URL(authUrl);
  if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new Error('The authorization URL is not an http(s) address.');
  const state = target.searchParams.get('state') || '';
  sessionStorage.setItem(PENDING, JSON.stringify({ mount: mountName(path), state }));
  location.assign(target.href);
}

// The callback page's half: check the state is the one this tab started, then let the
// server exchange the code. Returns the client token; throws with a message to show.
export async function finishOidc(mount, params) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  const error = params.get('error_description') || params.get('error');
  if (error) throw new Error(`The identity provider refused the sign-in: ${error}`);
  const state = params.get('state') || '';
  if (!pending || pending.mount !== mount || !state || pending.state !== state) {
    throw new Error('This sign-in was not started from this browser tab (or was already used).');
  }
  const query = new URLSearchParams({ state, code: params.get('code') || '' });
  const resp = await api('GET', `auth/${mount}/oidc/callback?${query}`, undefined, { token: false });
  const token = resp && resp.auth && resp.auth.client_token;
  if (!token) throw new Error('The server answered without a token.');
  session.set(token);
  return token;
}
