// Auth methods: list, enable, disable, tune (sys/auth/:path/tune), and the users/roles of
// every method we ship, edited through a form built from the server's OpenAPI document
// (sys/internal/specs/openapi): one field per request-body property of the item's path.
import { api, ApiError, list, session } from './api.js';
import { button, field, h, link, notice, replace, table } from './dom.js';
import { errorText, go } from './app.js';

const enc = encodeURIComponent;
const rerender = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
const trim = (p) => p.replace(/\/$/, '');

// type → the LIST segment of its users/roles, and what one is called
export const ROLE_LISTS = {
  userpass: { list: 'users', noun: 'user' },
  approle: { list: 'role', noun: 'role' },
  ldap: { list: 'users', noun: 'user' },
  jwt: { list: 'role', noun: 'role' },
  oidc: { list: 'role', noun: 'role' },
  kubernetes: { list: 'role', noun: 'role' },
  cert: { list: 'certs', noun: 'certificate role' },
  token: { list: 'roles', noun: 'token role' },
};

// Vault's pre-token_* names of the token fields: shown apart, set only when typed in
const LEGACY = new Set(['policies', 'ttl', 'max_ttl', 'period', 'num_uses', 'bound_cidrs', 'explicit_max_ttl']);
const SECRET = /(^|_)(password|secret|secret_id|client_secret)$/;
const LONG_TEXT = /(certificate|_pem|pem_|ca_cert|pubkeys|public_key)/;

async function mountOf(path) {
  const mounts = (await api('GET', 'sys/auth')).data;
  const mount = mounts[`${path}/`];
  if (!mount) throw new ApiError(404, [`no auth method at ${path}/`], 'GET', `sys/auth/${path}`);
  return mount;
}

function crumbs(...items) {
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {},
    h('li', {}, link('#/auth-methods', 'Auth methods')),
    items.map((item, i) => h('li', {}, i === items.length - 1
      ? h('span', { 'aria-current': 'page' }, item[1]) : link(item[0], item[1])))));
}

async function authPage(view) {
  const resp = await api('GET', 'sys/auth');
  const methods = resp.data || resp;
  const message = h('div', { 'aria-live': 'assertive' });
  const rows = Object.entries(methods).filter(([, m]) => m && typeof m === 'object' && m.type)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([path, m]) => h('tr', {},
      h('td', {}, link(`#/auth-methods/${enc(trim(path))}`, path)), h('td', {}, m.type), h('td', {}, m.description || ''),
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
            await api('DELETE', `sys/auth/${trim(path)}`);
            rerender();
          } catch (err) {
            replace(message, notice(errorText(err), 'error'));
          }
        }, { class: 'small danger', 'aria-label': `Disable ${path}` }),
      ])));
  // the methods this server ships (ldap is not built in: a mount of it made elsewhere is still listed)
  const type = h('select', {}, ['userpass', 'approle', 'jwt', 'oidc', 'cert', 'kubernetes'].map((t) => h('option', { value: t }, t)));
  const path = h('input', { type: 'text', placeholder: 'defaults to the type' });
  const description = h('input', { type: 'text' });
  const form = h('form', { class: 'card narrow' }, h('h2', {}, 'Enable an auth method'), field('Type', type).row,
    field('Path', path).row, field('Description', description).row,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Enable')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', `sys/auth/${trim(path.value.trim() || type.value)}`, { type: type.value, description: description.value });
      rerender();
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  replace(view, h('h1', {}, 'Auth methods'), table(['Path', 'Type', 'Description', 'Listing', 'Actions'], rows), message, form);
}

// ---- tune ----------------------------------------------------------------------------

const csv = (v) => (Array.isArray(v) ? v.join(', ') : v === undefined || v === null ? '' : String(v));
const splitList = (text) => text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
// "3600", "1h" → what the server takes (a number of seconds or a duration string)
const duration = (text) => (/^\d+$/.test(text.trim()) ? Number(text.trim()) : text.trim());

function tuneForm(path, mount, tune) {
  const inputs = {
    description: h('input', { type: 'text', value: tune.description || '' }),
    default_lease_ttl: h('input', { type: 'text', value: String(tune.default_lease_ttl ?? ''), inputmode: 'text' }),
    max_lease_ttl: h('input', { type: 'text', value: String(tune.max_lease_ttl ?? '') }),
    listing_visibility: h('select', {}, [['', 'default (not listed)'], ['unauth', 'unauth (on the sign-in page)'], ['hidden', 'hidden']]
      .map(([v, t]) => h('option', { value: v }, t))),
    token_type: h('select', {}, ['default-service', 'default-batch', 'service', 'batch'].map((t) => h('option', { value: t }, t))),
    audit_non_hmac_request_keys: h('input', { type: 'text', value: csv(tune.audit_non_hmac_request_keys) }),
    audit_non_hmac_response_keys: h('input', { type: 'text', value: csv(tune.audit_non_hmac_response_keys) }),
    passthrough_request_headers: h('input', { type: 'text', value: csv(tune.passthrough_request_headers) }),
    allowed_response_headers: h('input', { type: 'text', value: csv(tune.allowed_response_headers) }),
  };
  inputs.listing_visibility.value = tune.listing_visibility || (mount.config && mount.config.listing_visibility) || '';
  inputs.token_type.value = tune.token_type || 'default-service';
  const initial = Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value]));
  const hints = {
    default_lease_ttl: 'seconds or a duration (1h); 0 = the system default',
    max_lease_ttl: 'seconds or a duration',
    audit_non_hmac_request_keys: 'comma-separated: request keys the audit log keeps in clear',
    audit_non_hmac_response_keys: 'comma-separated: response keys the audit log keeps in clear',
    passthrough_request_headers: 'comma-separated',
    allowed_response_headers: 'comma-separated',
  };
  const message = h('div', { 'aria-live': 'polite', id: 'tune-result' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'tune-title', 'data-form': 'tune' },
    h('h2', { id: 'tune-title' }, 'Tune'),
    h('div', { class: 'grid2' }, Object.entries(inputs).map(([name, el]) => field(name, el, hints[name]).row)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save tuning')), message);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const [name, el] of Object.entries(inputs)) {
      if (el.value === initial[name]) continue;
      if (name.endsWith('_ttl')) body[name] = duration(el.value);
      else if (name === 'description' || name === 'listing_visibility' || name === 'token_type') body[name] = el.value;
      else body[name] = splitList(el.value);
    }
    if (!Object.keys(body).length) {
      replace(message, notice('Nothing changed.'));
      return;
    }
    try {
      await api('POST', `sys/auth/${path}/tune`, body);
      for (const [name, el] of Object.entries(inputs)) initial[name] = el.value;
      replace(message, notice(`Saved: ${Object.keys(body).join(', ')}.`));
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  return form;
}

// ---- one method: tune, and its users/roles -------------------------------------------

async function methodPage(view, path) {
  const mount = await mountOf(path);
  const tune = (await api('GET', `sys/auth/${path}/tune`)).data || {};
  const kind = ROLE_LISTS[mount.type];
  const parts = [crumbs(['', `${path}/`]), h('h1', {}, `${mount.type} at ${path}/`), tuneForm(path, mount, tune)];
  if (kind) {
    const base = `auth/${path}/${kind.list}`;
    const names = await list(base);
    const message = h('div', { 'aria-live': 'assertive' });
    const rows = names.map((n) => h('tr', {}, h('td', {}, link(`#/auth-methods/${enc(path)}/edit/${enc(n)}`, n)),
      h('td', {}, button('Delete', async () => {
        if (!window.confirm(`Delete ${kind.noun} ${n}?`)) return;
        try {
          await api('DELETE', `${base}/${enc(n)}`);
          rerender();
        } catch (err) {
          replace(message, notice(errorText(err), 'error'));
        }
      }, { class: 'small danger', 'aria-label': `Delete ${n}` }))));
    const name = h('input', { type: 'text', required: true });
    const add = h('form', { class: 'card narrow' }, h('h2', {}, `Add a ${kind.noun}`), field('Name', name).row,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, `New ${kind.noun}`)));
    add.addEventListener('submit', (ev) => {
      ev.preventDefault();
      go(`#/auth-methods/${enc(path)}/edit/${enc(name.value.trim())}?new=1`);
    });
    parts.push(h('h2', {}, `${kind.noun[0].toUpperCase()}${kind.noun.slice(1)}s`),
      rows.length ? table(['Name', 'Actions'], rows) : notice(`No ${kind.noun}s yet.`), message, add);
  }
  replace(view, ...parts);
}

// ---- the field-based editor ----------------------------------------------------------

// The request-body properties of POST on `auth/<path>/<list>/{name}`, from the OpenAPI
// document the server builds from its path tables (null when the token may not read it).
// The document is ~300 KB: kept in this page's memory while the token and the auth methods
// stay the same (enabling or disabling one, or another token, fetches it again).
let specCache = null;

async function openapi() {
  const key = `${session.token}|${Object.keys((await api('GET', 'sys/auth')).data || {}).sort().join(',')}`;
  if (!specCache || specCache.key !== key) specCache = { key, doc: api('GET', 'sys/internal/specs/openapi') };
  try {
    return await specCache.doc;
  } catch (err) {
    specCache = null;
    throw err;
  }
}

async function itemSchema(path, listSegment) {
  let doc;
  try {
    doc = await openapi();
  } catch (err) {
    if (err instanceof ApiError && (err.status === 403 || err.status === 404)) return null;
    throw err;
  }
  const paths = (doc && (doc.paths || (doc.data && doc.data.paths))) || {};
  const prefix = `/auth/${path}/${listSegment}/{`;
  const key = Object.keys(paths).find((k) => k.startsWith(prefix) && k.indexOf('}') === k.length - 1);
  const post = key && paths[key].post;
  const schema = post && post.requestBody && post.requestBody.content && post.requestBody.content['application/json'];
  return (schema && schema.schema && schema.schema.properties) || null;
}

// An untyped property (some tables declare none) takes its kind from the current value.
function typeOf(schema, value) {
  if (schema.type) return schema.type;
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return 'integer';
  if (value && typeof value === 'object') return 'object';
  return '';
}

function inputFor(name, schema, value) {
  const type = typeOf(schema, value);
  if (type === 'boolean') {
    if (typeof value === 'boolean') return { el: h('input', { type: 'checkbox', checked: value }), kind: 'boolean' };
    // not known (a new item): the server's default unless chosen
    return { el: h('select', {}, [['', '(server default)'], ['true', 'true'], ['false', 'false']].map(([v, t]) => h('option', { value: v }, t))), kind: 'tristate' };
  }
  if (type === 'integer' || type === 'number') {
    return { el: h('input', { type: 'number', value: value === undefined || value === null ? '' : String(value) }), kind: 'number' };
  }
  if (type === 'array') {
    return { el: h('input', { type: 'text', value: csv(value) }), kind: 'list', hint: 'comma-separated list' };
  }
  if (type === 'object') {
    const el = h('textarea', { rows: '3', class: 'code', spellcheck: 'false' });
    el.value = value && Object.keys(value).length ? JSON.stringify(value, null, 2) : '';
    return { el, kind: 'json', hint: 'JSON object' };
  }
  if (SECRET.test(name)) return { el: h('input', { type: 'password', autocomplete: 'new-password' }), kind: 'string', hint: 'write-only' };
  if (LONG_TEXT.test(name)) {
    const el = h('textarea', { rows: '4', class: 'code', spellcheck: 'false' });
    el.value = Array.isArray(value) ? value.join('\n') : value === undefined || value === null ? '' : String(value);
    return { el, kind: type === 'array' ? 'lines' : 'string', hint: 'PEM' };
  }
  const hint = schema.format === 'duration' ? 'seconds or a duration (1h)' : '';
  return { el: h('input', { type: 'text', value: value === undefined || value === null ? '' : String(value) }), kind: schema.format === 'duration' ? 'duration' : 'string', hint };
}

function readInput({ el, kind }) {
  switch (kind) {
    case 'boolean': return el.checked;
    case 'tristate': return el.value === '' ? undefined : el.value === 'true';
    case 'number': return el.value === '' ? undefined : Number(el.value);
    case 'list': return splitList(el.value);
    case 'lines': return el.value.split('\n').map((s) => s.trim()).filter(Boolean);
    case 'json': return el.value.trim() ? JSON.parse(el.value) : {};
    case 'duration': return duration(el.value);
    default: return el.value;
  }
}

function snapshot(input) {
  return input.kind === 'boolean' ? String(input.el.checked) : input.el.value;
}

async function editPage(view, path, name, query) {
  const creating = new URLSearchParams(query || '').has('new');
  const mount = await mountOf(path);
  const kind = ROLE_LISTS[mount.type];
  if (!kind) throw new ApiError(404, [`${mount.type} has no users or roles`], 'GET', `sys/auth/${path}`);
  const itemPath = `auth/${path}/${kind.list}/${enc(name)}`;
  let current = {};
  if (!creating) current = (await api('GET', itemPath)).data || {};
  const properties = await itemSchema(path, kind.list);
  const message = h('div', { 'aria-live': 'assertive', id: 'edit-result' });
  const inputs = {};
  const fieldsets = { main: [], token: [], legacy: [] };
  const props = properties || { token_policies: { type: 'array', items: { type: 'string' } } };
  for (const [prop, schema] of Object.entries(props)) {
    if (prop === 'name' || prop === 'role_name' || prop === 'username') continue;
    const input = inputFor(prop, schema, current[prop]);
    input.el.dataset.field = prop;
    inputs[prop] = input;
    const row = field(prop, input.el, input.hint).row;
    if (input.kind === 'boolean') row.classList.add('check');
    (LEGACY.has(prop) ? fieldsets.legacy : prop.startsWith('token_') ? fieldsets.token : fieldsets.main).push(row);
  }
  const initial = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, snapshot(v)]));
  const form = h('form', { class: 'card', 'data-form': 'item' },
    properties ? null : notice('This token may not read the OpenAPI document: only token_policies can be set here.', 'warn'),
    fieldsets.main.length ? h('fieldset', {}, h('legend', {}, `${kind.noun} settings`), fieldsets.main) : null,
    fieldsets.token.length ? h('fieldset', {}, h('legend', {}, 'Token settings'), fieldsets.token) : null,
    fieldsets.legacy.length ? h('details', {}, h('summary', {}, 'Older names of the token settings'),
      h('fieldset', {}, h('legend', {}, 'Legacy aliases (set only if you need them)'), fieldsets.legacy)) : null,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, `Save ${kind.noun}`),
      creating ? null : button(`Delete ${kind.noun}`, async () => {
        if (!window.confirm(`Delete ${kind.noun} ${name}?`)) return;
        try {
          await api('DELETE', itemPath);
          go(`#/auth-methods/${enc(path)}`);
        } catch (err) {
          replace(message, notice(errorText(err), 'error'));
        }
      }, { class: 'danger' })),
    message);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {};
    try {
      for (const [prop, input] of Object.entries(inputs)) {
        if (snapshot(input) === initial[prop]) continue; // only what was changed is sent
        const value = readInput(input);
        if (value !== undefined) body[prop] = value;
      }
    } catch (err) {
      replace(message, notice(`Not valid JSON: ${err.message}`, 'error'));
      return;
    }
    try {
      await api('POST', itemPath, body);
      for (const [prop, input] of Object.entries(inputs)) {
        initial[prop] = snapshot(input);
        if (input.el.type === 'password') input.el.value = '';
      }
      if (creating) history.replaceState(null, '', `#/auth-methods/${enc(path)}/edit/${enc(name)}`);
      replace(message, notice(`Saved ${kind.noun} ${name}.`));
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  replace(view, crumbs([`#/auth-methods/${enc(path)}`, `${path}/`], ['', name]),
    h('h1', {}, `${creating ? 'New ' : ''}${kind.noun} ${name}`), form);
}

export const authRoutes = [
  [/^auth-methods$/, authPage],
  [/^auth-methods\/([^/?]+)\/edit\/([^?]+)(?:\?(.*))?$/, editPage],
  [/^auth-methods\/([^/?]+)$/, methodPage],
];
