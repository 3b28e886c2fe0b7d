// Access: ACL policies, auth methods, tokens and leases.
import { api, ApiError, list } from './api.js';
import { button, field, h, link, notice, replace, table } from './dom.js';
import { errorText, go } from './app.js';

const enc = encodeURIComponent;
const rerender = () => window.dispatchEvent(new HashChangeEvent('hashchange'));

async function policiesPage(view) {
  const names = await list('sys/policies/acl');
  const name = h('input', { type: 'text', required: true });
  const form = h('form', { class: 'card narrow' }, h('h2', {}, 'New policy'), field('Name', name).row,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create policy')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    go(`#/policies/${enc(name.value.trim())}?new=1`);
  });
  replace(view, h('h1', {}, 'ACL policies'),
    h('ul', { class: 'keys' }, names.map((n) => h('li', {}, link(`#/policies/${enc(n)}`, n)))), form);
}

// Line N of the server's "line N: …" message, or 0.
export function errorLine(message) {
  const m = /line (\d+)/i.exec(message);
  return m ? Number(m[1]) : 0;
}

async function policyPage(view, name, query) {
  const creating = new URLSearchParams(query || '').has('new');
  let text = '';
  if (!creating) text = (await api('GET', `sys/policies/acl/${enc(name)}`)).data.policy;
  else text = `# ${name}\npath "secret/data/*" {\n  capabilities = ["read", "list"]\n}\n`;
  const editor = h('textarea', { rows: '12', spellcheck: 'false', class: 'code', 'aria-describedby': 'policy-error' }, text);
  editor.value = text;
  const gutter = h('pre', { class: 'gutter', 'aria-hidden': 'true' });
  const numberLines = (bad = 0) => {
    const n = editor.value.split('\n').length;
    replace(gutter, ...Array.from({ length: n }, (_, i) =>
      h('span', { class: i + 1 === bad ? 'bad' : '' }, `${i + 1}\n`)));
  };
  numberLines();
  editor.addEventListener('input', () => numberLines());
  editor.addEventListener('scroll', () => { gutter.scrollTop = editor.scrollTop; });
  const message = h('div', { id: 'policy-error', 'aria-live': 'assertive' });
  const form = h('form', { class: 'card' },
    h('div', { class: 'titlebar' }, h('h1', {}, `Policy ${name}`)),
    message,
    h('label', { for: 'policy-text' }, 'Policy (HCL)'),
    h('div', { class: 'editor' }, gutter, editor),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save policy'),
      name !== 'root' && name !== 'default' && !creating ? button('Delete policy', async () => {
        if (!window.confirm(`Delete policy ${name}?`)) return;
        try {
          await api('DELETE', `sys/policies/acl/${enc(name)}`);
          go('#/policies');
        } catch (err) {
          replace(message, notice(errorText(err), 'error'));
        }
      }, { class: 'danger' }) : null));
  editor.id = 'policy-text';
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('PUT', `sys/policies/acl/${enc(name)}`, { policy: editor.value });
      numberLines();
      replace(message, notice('Policy saved.'));
      if (creating) history.replaceState(null, '', `#/policies/${enc(name)}`);
    } catch (err) {
      const line = err instanceof ApiError && err.status === 400 ? errorLine(err.message) : 0;
      numberLines(line);
      if (line) {
        const lines = editor.value.split('\n');
        const start = lines.slice(0, line - 1).join('\n').length + (line > 1 ? 1 : 0);
        replace(message, h('div', { class: 'notice error', role: 'alert' },
          h('strong', { class: 'error-line' }, `Syntax error at line ${line}`), ': ', err.message,
          h('pre', { class: 'quoted' }, `${line} | ${lines[line - 1] || ''}`)));
        editor.focus();
        editor.setSelectionRange(start, start + (lines[line - 1] || '').length);
      } else {
        replace(message, notice(errorText(err), 'error'));
      }
    }
  });
  replace(view, h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, h('li', {}, link('#/policies', 'Policies')),
    h('li', {}, h('span', { 'aria-current': 'page' }, name)))), form);
}

async function authPage(view) {
  const resp = await api('GET', 'sys/auth');
  const methods = resp.data || resp;
  const message = h('div', { 'aria-live': 'assertive' });
  const rows = Object.entries(methods).filter(([, m]) => m && typeof m === 'object' && m.type)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([path, m]) => h('tr', {}, h('td', {}, ROLE_LISTS[m.type] ? link(`#/auth-methods/${enc(path.replace(/\/$/, ''))}`, path) : path), h('td', {}, m.type), h('td', {}, m.description || ''),
      h('td', {}, (m.config && m.config.listing_visibility) || ''),
      h('td', {}, m.type === 'token' ? '' : [
        button('Show on sign-in', async () => {
          try {
            await api('POST', `sys/auth/${path}tune`, { listing_visibility: m.config && m.config.listing_visibility === 'unauth' ? 'hidden' : 'unauth' });
            rerender();
          } catch (err) {
            replace(message, notice(errorText(err), 'error'));
          }
        }, { class: 'small', 'aria-pressed': String(Boolean(m.config && m.config.listing_visibility === 'unauth')) }),
        button('Disable', async () => {
          if (!window.confirm(`Disable ${path}? Its tokens are revoked.`)) return;
          try {
            await api('DELETE', `sys/auth/${path.replace(/\/$/, '')}`);
            rerender();
          } catch (err) {
            replace(message, notice(errorText(err), 'error'));
          }
        }, { class: 'small danger' }),
      ])));
  const type = h('select', {}, ['userpass', 'approle', 'ldap', 'jwt', 'oidc', 'cert', 'kubernetes'].map((t) => h('option', { value: t }, t)));
  const path = h('input', { type: 'text', placeholder: 'defaults to the type' });
  const description = h('input', { type: 'text' });
  const form = h('form', { class: 'card narrow' }, h('h2', {}, 'Enable an auth method'), field('Type', type).row,
    field('Path', path).row, field('Description', description).row,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Enable')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', `sys/auth/${(path.value.trim() || type.value).replace(/\/$/, '')}`, { type: type.value, description: description.value });
      rerender();
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  replace(view, h('h1', {}, 'Auth methods'), table(['Path', 'Type', 'Description', 'Listing', 'Actions'], rows), message, form);
}

function kvTable(data) {
  return table(['Field', 'Value'], Object.entries(data || {}).map(([k, v]) =>
    h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)))));
}

async function tokensPage(view) {
  const self = await api('GET', 'auth/token/lookup-self').then((r) => r.data, (err) => ({ error: errorText(err) }));
  const input = h('input', { type: 'password', autocomplete: 'off' });
  const byAccessor = h('input', { type: 'checkbox', id: 'by-accessor' });
  const out = h('div', { 'aria-live': 'polite' });
  const body = () => (byAccessor.checked ? { accessor: input.value.trim() } : { token: input.value.trim() });
  const suffix = () => (byAccessor.checked ? '-accessor' : '');
  const form = h('form', { class: 'card' }, h('h2', {}, 'Look up or revoke a token'),
    field('Token or accessor', input).row,
    h('div', { class: 'field check' }, byAccessor, h('label', { for: 'by-accessor' }, 'This is an accessor')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Look up'),
      button('Revoke', async () => {
        if (!window.confirm('Revoke this token and its children?')) return;
        try {
          await api('POST', `auth/token/revoke${suffix()}`, body());
          replace(out, notice('Token revoked.'));
        } catch (err) {
          replace(out, notice(errorText(err), 'error'));
        }
      }, { class: 'danger' })), out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      replace(out, kvTable((await api('POST', `auth/token/lookup${suffix()}`, body())).data));
    } catch (err) {
      replace(out, notice(errorText(err), 'error'));
    }
  });
  replace(view, h('h1', {}, 'Tokens'), h('h2', {}, 'This token'), kvTable(self), form);
}

async function leasesPage(view, prefix) {
  const keys = await list(`sys/leases/lookup/${prefix}`);
  const out = h('div', { 'aria-live': 'polite' });
  const act = (label, fn, cls = 'small') => button(label, async () => {
    try {
      replace(out, await fn());
    } catch (err) {
      replace(out, notice(errorText(err), 'error'));
    }
  }, { class: cls });
  const items = keys.map((k) => {
    const full = prefix + k;
    if (k.endsWith('/')) return h('li', { class: 'folder' }, link(`#/leases/${enc(full)}`, k));
    return h('li', {}, h('code', {}, k),
      act('Lookup', async () => kvTable((await api('PUT', 'sys/leases/lookup', { lease_id: full })).data)),
      act('Renew', async () => kvTable(await api('PUT', 'sys/leases/renew', { lease_id: full }))),
      act('Revoke', async () => {
        await api('PUT', 'sys/leases/revoke', { lease_id: full });
        rerender();
        return notice('Lease revoked.');
      }, 'small danger'));
  });
  replace(view, h('h1', {}, `Leases ${prefix ? `under ${prefix}` : ''}`),
    prefix ? link(`#/leases/${enc(prefix.replace(/[^/]+\/$/, ''))}`, 'Up one level') : null,
    items.length ? h('ul', { class: 'keys' }, items) : notice('No leases here.'),
    prefix ? h('div', { class: 'actions' }, act('Revoke every lease under this prefix', async () => {
      if (!window.confirm(`Revoke every lease under ${prefix}?`)) return '';
      await api('PUT', `sys/leases/revoke-prefix/${prefix}`, {});
      rerender();
      return notice('Revoked.');
    }, 'danger')) : null, out);
}

// The users or roles of an auth method (LIST path, noun, create fields).
const ROLE_LISTS = {
  userpass: { list: 'users', noun: 'user', secret: 'password' },
  approle: { list: 'role', noun: 'role', secret: '' },
  ldap: { list: 'users', noun: 'user', secret: '' },
  jwt: { list: 'role', noun: 'role', secret: '' },
  oidc: { list: 'role', noun: 'role', secret: '' },
  kubernetes: { list: 'role', noun: 'role', secret: '' },
  cert: { list: 'certs', noun: 'certificate role', secret: '' },
};

async function authRolesPage(view, path) {
  const mount = (await api('GET', 'sys/auth')).data[`${path}/`];
  if (!mount) throw new ApiError(404, [`no auth method at ${path}/`], 'GET', `sys/auth/${path}`);
  const kind = ROLE_LISTS[mount.type];
  const base = `auth/${path}/${kind.list}`;
  const names = await list(base);
  const message = h('div', { 'aria-live': 'assertive' });
  const rows = names.map((n) => h('tr', {}, h('td', {}, n), h('td', {}, button('Delete', async () => {
    if (!window.confirm(`Delete ${kind.noun} ${n}?`)) return;
    try {
      await api('DELETE', `${base}/${enc(n)}`);
      rerender();
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  }, { class: 'small danger' }))));
  const name = h('input', { type: 'text', required: true });
  const policies = h('input', { type: 'text', placeholder: 'default' });
  const secret = kind.secret ? h('input', { type: 'password', autocomplete: 'new-password', required: true }) : null;
  const form = h('form', { class: 'card narrow' }, h('h2', {}, `Add a ${kind.noun}`), field('Name', name).row,
    secret ? field('Password', secret).row : null, field('Token policies (comma-separated)', policies).row,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, `Save ${kind.noun}`)));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { token_policies: policies.value.split(',').map((p) => p.trim()).filter(Boolean) };
    if (secret) body.password = secret.value;
    try {
      await api('POST', `${base}/${enc(name.value.trim())}`, body);
      rerender();
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  replace(view, h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {},
    h('li', {}, link('#/auth-methods', 'Auth methods')), h('li', {}, h('span', { 'aria-current': 'page' }, `${path}/`)))),
  h('h1', {}, `${mount.type} at ${path}/: ${kind.noun}s`),
  rows.length ? table(['Name', 'Actions'], rows) : notice(`No ${kind.noun}s yet.`), message,
  mount.type === 'userpass' || mount.type === 'approle' ? form : null);
}

async function identityPage(view) {
  const section = async (kind, title) => {
    let resp = null;
    try {
      resp = await api('LIST', `identity/${kind}/id`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
    const keys = (resp && resp.data && resp.data.keys) || [];
    const info = (resp && resp.data && resp.data.key_info) || {};
    const rows = keys.map((id) => {
      const i = info[id] || {};
      return h('tr', {}, h('td', {}, i.name || ''), h('td', {}, h('code', {}, id)),
        h('td', {}, String(kind === 'entity' ? (i.aliases || []).length : (i.num_member_entities ?? ''))));
    });
    return [h('h2', {}, title), rows.length
      ? table(['Name', 'ID', kind === 'entity' ? 'Aliases' : 'Member entities'], rows)
      : notice(`No ${title.toLowerCase()} yet.`)];
  };
  replace(view, h('h1', {}, 'Identity'), ...(await section('entity', 'Entities')), ...(await section('group', 'Groups')));
}

export const accessRoutes = [
  [/^auth-methods\/(.+)$/, authRolesPage],
  [/^identity$/, identityPage],
  [/^policies$/, policiesPage],
  [/^policies\/([^?]+)(?:\?(.*))?$/, policyPage],
  [/^auth-methods$/, authPage],
  [/^tokens$/, tokensPage],
  [/^leases$/, (view) => leasesPage(view, '')],
  [/^leases\/(.+)$/, leasesPage],
];
