// The page the identity provider sends the browser back to:
// /ui/vault/auth/<mount>/oidc/callback?state=…&code=… (Vault's UI path). It completes the
// sign-in, keeps the token in sessionStorage and goes on to the app.
import { ApiError } from './api.js';
import { h, link, replace } from './dom.js';
import { finishOidc, takeReturn } from './oidc.js';

const main = document.getElementById('main');
const match = location.pathname.match(/^\/ui\/vault\/auth\/(.+)\/oidc\/callback$/);
const params = new URLSearchParams(location.search);
// the code and state are spent now: keep them out of the history and any later Referer
history.replaceState(null, '', location.pathname);

async function complete() {
  try {
    if (!match) throw new Error('Not an OIDC callback address.');
    await finishOidc(decodeURIComponent(match[1]), params);
    location.replace(takeReturn() || '/ui/#/secrets');
  } catch (err) {
    const message = err instanceof ApiError ? `Error ${err.status}: ${err.message}` : String(err.message || err);
    replace(main, h('div', { class: 'card narrow' },
      h('h1', {}, 'Sign-in failed'),
      h('div', { class: 'notice error', role: 'alert' }, message),
      h('p', {}, link('/ui/#/login', 'Back to sign in'))));
  }
}

complete();
