// Strongroom's web UI: a hash router, sign-in, the status bar and the shared error panel.
import { api, ApiError, explainDenied, session } from './api.js';
import { button, field, h, link, notice, replace } from './dom.js';
import { secretsRoutes } from './secrets.js';
import { transitRoutes } from './transit.js';
import { accessRoutes } from './access.js';
import { authRoutes } from './authmethods.js';
import { identityRoutes } from './identity.js';
import { statusRoutes, refreshStatusBar } from './status.js';
import { pendingReturn, startOidc, takeReturn } from './oidc.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const signout = document.getElementById('signout');

const SECTIONS = [
  ['#/secrets', 'Secrets'],
  ['#/transit', 'Transit'],
  ['#/policies', 'Policies'],
  ['#/auth-methods', 'Auth methods'],
  ['#/identity', 'Identity'],
  ['#/tokens', 'Tokens'],
  ['#/leases', 'Leases'],
  ['#/audit', 'Audit'],
  ['#/status', 'Status'],
];

// route table: [regexp over the hash after '#/', async (main, ...groups) => void]
const routes = [
  [/^login$/, loginPage],
  ...secretsRoutes,
  ...transitRoutes,
  ...accessRoutes,
  ...authRoutes,
  ...identityRoutes,
  ...statusRoutes,
];
const PUBLIC = new Set(['login', 'status']);

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

// The panel every screen shows on failure; a 403 names the missing capability, no data.
export async function showError(container, err) {
  if (err instanceof ApiError && err.status === 403) {
    const { needed, path, has, invalid } = await explainDenied(err);
    if (invalid) {
      replace(container, h('div', { class: 'notice error denied', role: 'alert' },
        h('h2', {}, 'Permission denied'),
        h('p', {}, 'This token is no longer valid (expired or revoked). ', link('#/login', 'Sign in again'), '.')));
      session.clear();
      signout.hidden = true;
      return;
    }
    replace(
      container,
      h(
        'div',
        { class: 'notice error denied', role: 'alert' },
        h('h2', {}, 'Permission denied'),
        h('p', {}, 'This token lacks the ', h('code', {}, needed), ' capability on ', h('code', {}, path), '.'),
        h('p', {}, 'Its capabilities there: ', h('code', {}, has.length ? has.join(', ') : 'deny')),
      ),
    );
    return;
  }
  const message = err instanceof ApiError ? `Error ${err.status}: ${err.message}` : String(err.message || err);
  replace(container, notice(message, 'error'));
}

// An inline error (keeps the form on screen), e.g. a failed save.
export function errorText(err) {
  return err instanceof ApiError ? `Error ${err.status}: ${err.message}` : String(err.message || err);
}

function renderNav(active) {
  const signedIn = Boolean(session.token);
  replace(
    nav,
    signedIn
      ? h('ul', {}, SECTIONS.map(([href, label]) =>
          h('li', {}, link(href, label, active.startsWith(href.slice(2)) ? { 'aria-current': 'page' } : {}))))
      : null,
  );
  signout.hidden = !signedIn;
}

async function render() {
  const hash = location.hash.replace(/^#\/?/, '');
  if (!location.hash.startsWith('#/') && location.hash !== '') return; // in-page anchors
  const route = hash || (session.token ? 'secrets' : 'login');
  if (!session.token && !PUBLIC.has(route.split('/')[0])) {
    location.replace('#/login');
    return;
  }
  renderNav(route);
  refreshStatusBar();
  for (const [pattern, page] of routes) {
    const m = route.match(pattern);
    if (m) {
      const view = h('div', { class: 'view' });
      replace(main, view);
      try {
        await page(view, ...m.slice(1).map((s) => (s === undefined ? '' : decodeURIComponent(s))));
      } catch (err) {
        await showError(view, err);
      }
      return;
    }
  }
  replace(main, notice(`No such page: ${route}`, 'error'));
}

async function loginPage(view) {
  if (session.token) {
    go('#/secrets');
    return;
  }
  let methods = [];
  try {
    const resp = await api('GET', 'sys/internal/ui/mounts', undefined, { token: false });
    const auth = (resp && (resp.data || resp).auth) || {};
    methods = Object.entries(auth)
      .filter(([, m]) => ['userpass', 'ldap', 'oidc', 'jwt'].includes(m.type))
      .map(([path, m]) => ({ path, type: m.type, description: m.description || '' }));
  } catch {
    methods = [];
  }
  const method = h('select', {}, h('option', { value: 'token' }, 'Token'),
    methods.map((m) => h('option', { value: m.path }, `${m.type} (${m.path})`)));
  const token = h('input', { type: 'password', autocomplete: 'off', required: true });
  const user = h('input', { type: 'text', autocomplete: 'username' });
  const pass = h('input', { type: 'password', autocomplete: 'current-password' });
  const tokenRow = h('div', {}, field('Token', token).row);
  const userRows = h('div', { hidden: true }, field('Username', user).row, field('Password', pass).row);
  // OIDC: a role (empty: the mount's default_role), then the browser goes to the provider
  const role = h('input', { type: 'text', autocomplete: 'off' });
  // a jwt mount (as Vault's UI): the browser flow when it has OIDC config, or a JWT pasted in
  const jwt = h('input', { type: 'password', autocomplete: 'off' });
  const jwtRow = h('div', { hidden: true }, field('JWT', jwt, 'Leave empty to sign in through the identity provider').row);
  const oidcRows = h('div', { hidden: true }, field('Role', role, 'Leave empty for the default role').row, jwtRow);
  const typeOf = (path) => (methods.find((m) => m.path === path) || { type: 'token' }).type;
  const message = h('div', { 'aria-live': 'assertive' });
  method.addEventListener('change', () => {
    const isToken = method.value === 'token';
    const isOidc = ['oidc', 'jwt'].includes(typeOf(method.value));
    jwtRow.hidden = typeOf(method.value) !== 'jwt';
    tokenRow.hidden = !isToken;
    userRows.hidden = isToken || isOidc;
    oidcRows.hidden = !isOidc;
    token.required = isToken;
    user.required = !isToken && !isOidc;
    pass.required = !isToken && !isOidc;
  });
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in'),
    pendingReturn() ? h('p', { class: 'notice' }, 'Sign in to continue to the application that sent you here.') : null,
    field('Method', method).row, tokenRow, userRows, oidcRows,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')),
    message);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(message);
    try {
      let clientToken = token.value.trim();
      const kind = typeOf(method.value);
      if (kind === 'jwt' && jwt.value.trim()) {
        const body = { jwt: jwt.value.trim() };
        if (role.value.trim()) body.role = role.value.trim();
        const resp = await api('POST', `auth/${method.value}login`, body, { token: false });
        clientToken = resp.auth.client_token;
      } else if (kind === 'oidc' || kind === 'jwt') {
        await startOidc(method.value, role.value.trim()); // leaves the page
        return;
      } else if (method.value !== 'token') {
        const resp = await api('POST', `auth/${method.value}login/${encodeURIComponent(user.value)}`,
          { password: pass.value }, { token: false });
        clientToken = resp.auth.client_token;
      }
      session.set(clientToken);
      try {
        await api('GET', 'auth/token/lookup-self');
      } catch (err) {
        if (err instanceof ApiError && err.status === 403) {
          session.clear();
          throw new Error('That token is not valid (or has expired).');
        }
        // a token without lookup-self rights may still sign in
      }
      pass.value = '';
      token.value = '';
      jwt.value = '';
      const back = takeReturn(); // an application's authorization request waits
      if (back) location.replace(back);
      else go('#/secrets');
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  replace(view, form);
  method.focus();
}

async function showWho() {
  if (!session.token) {
    replace(who);
    return;
  }
  try {
    const resp = await api('GET', 'auth/token/lookup-self');
    replace(who, `${resp.data.display_name} · ${resp.data.policies.join(', ')}`);
  } catch {
    replace(who);
  }
}

signout.addEventListener('click', () => {
  session.clear(); // revokes nothing: the token is only forgotten by this tab
  replace(who);
  go('#/login');
});
document.getElementById('skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', () => {
  render();
  showWho();
});
render();
showWho();
export { button };
