// Access: ACL policies, tokens and leases.
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

export const accessRoutes = [
  [/^policies$/, policiesPage],
  [/^policies\/([^?]+)(?:\?(.*))?$/, policyPage],
  [/^tokens$/, tokensPage],
  [/^leases$/, (view) => leasesPage(view, '')],
  [/^leases\/(.+)$/, leasesPage],
];
