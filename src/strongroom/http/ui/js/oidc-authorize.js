// Strongroom as an OIDC provider, in the browser: the authorization endpoint that
// identity/oidc/provider/<name>/.well-known/openid-configuration names,
// /ui/vault/identity/oidc/provider/<name>/authorize?client_id=…&redirect_uri=…&… (Vault's UI
// path). The page signs the user in if this tab has no token (the app's sign-in, then back
// here), asks the server for a code with the token and the request's parameters, and sends
// the browser to the client's redirect_uri with code and state, or with OAuth 2.0's error
// parameters when the server refuses. It redirects only to a redirect_uri the server has
// checked against the client's registration: until then every problem is shown here.
import { api, ApiError, session } from './api.js';
import { h, link, replace } from './dom.js';
import { rememberReturn } from './oidc.js';

const main = document.getElementById('main');
const match = location.pathname.match(/^\/ui\/vault\/identity\/oidc\/provider\/([A-Za-z0-9._-]+)\/authorize$/);
const params = new URLSearchParams(location.search);
// what identity/oidc/provider/:name/authorize takes (request/request_uri are not supported)
const FORWARDED = ['client_id', 'redirect_uri', 'scope', 'response_type', 'state', 'nonce', 'max_age',
  'code_challenge', 'code_challenge_method'];
// the server checks the client and its redirect_uri first and answers these codes when either
// is wrong: the redirect_uri is then not known good, so the error stays on this page
const NOT_REDIRECTABLE = new Set(['invalid_client_id', 'invalid_redirect_uri']);
const UNSAFE_SCHEMES = new Set(['javascript:', 'data:', 'vbscript:', 'blob:', 'file:', 'about:', 'filesystem:']);
// set when this tab is sent to sign in, so that a refusal right after a sign-in is shown
// rather than sending the user round again
const FRESH = 'strongroom.authorize.fresh';

function fail(title, message) {
  replace(main, h('div', { class: 'card narrow' },
    h('h1', {}, title),
    h('div', { class: 'notice error', role: 'alert' }, message),
    h('p', {}, 'The application was not told anything. ', link('/ui/', 'Open Strongroom'))));
}

function signInFirst() {
  // back here after signing in, without `prompt` (the sign-in it asks for has happened)
  const back = new URLSearchParams(params);
  back.delete('prompt');
  rememberReturn(`${location.pathname}?${back}`);
  sessionStorage.setItem(FRESH, '1');
  location.replace('/ui/#/login');
}

function redirectTo(uri, values) {
  const target = new URL(uri);
  if (UNSAFE_SCHEMES.has(target.protocol)) throw new Error(`Refusing to send the browser to a ${target.protocol} address.`);
  for (const [key, value] of Object.entries(values)) {
    if (value) target.searchParams.append(key, value);
  }
  replace(main, h('p', { role: 'status' }, `Returning to ${target.origin === 'null' ? target.protocol : target.origin}…`));
  location.replace(target.href);
}

async function authorize() {
  if (!match) {
    fail('Authorization failed', 'Not an authorization address.');
    return;
  }
  const fresh = sessionStorage.getItem(FRESH) === '1';
  sessionStorage.removeItem(FRESH);
  const prompt = (params.get('prompt') || '').split(' ');
  if (prompt.includes('login')) {
    session.clear(); // the application asks for a new sign-in
    signInFirst();
    return;
  }
  if (!session.token) {
    if (prompt.includes('none')) {
      // without a token the server cannot check redirect_uri, so nothing is sent back
      fail('Sign-in required', 'The application asked not to show a sign-in (prompt=none), but this browser tab is not signed in to Strongroom.');
      return;
    }
    signInFirst();
    return;
  }
  const query = new URLSearchParams();
  for (const key of FORWARDED) {
    if (params.has(key)) query.set(key, params.get(key));
  }
  const redirectUri = params.get('redirect_uri') || '';
  const state = params.get('state') || '';
  let answer;
  try {
    answer = await api('GET', `identity/oidc/provider/${match[1]}/authorize?${query}`);
  } catch (err) {
    const body = err instanceof ApiError ? err.body : null;
    const code = body && typeof body.error === 'string' ? body.error : '';
    const description = (body && body.error_description) || '';
    if (code && !NOT_REDIRECTABLE.has(code) && redirectUri) {
      if (code === 'max_age_violation' && !fresh) {
        session.clear(); // the token's sign-in is older than the application accepts
        signInFirst();
        return;
      }
      // OAuth 2.0's error answer, to the redirect_uri the server accepted
      const error = code === 'max_age_violation' ? 'login_required' : code;
      redirectTo(redirectUri, { error, error_description: description, state: body.state || state });
      return;
    }
    if (code) {
      fail('Authorization failed', `${code}: ${description}`);
      return;
    }
    if (err instanceof ApiError && err.status === 403 && !fresh) {
      session.clear(); // the token expired, was revoked or may not authorize: sign in again
      signInFirst();
      return;
    }
    fail('Authorization failed', err instanceof ApiError ? `Error ${err.status}: ${err.message}` : String(err.message || err));
    return;
  }
  if (!answer || !answer.code) {
    fail('Authorization failed', 'The server answered without an authorization code.');
    return;
  }
  redirectTo(redirectUri, { code: answer.code, state: answer.state || state });
}

authorize().catch((err) => fail('Authorization failed', String(err.message || err)));
