// Secrets: the mounts a token may see, KV v2 (versions), KV v1 and cubbyhole.
import { api, ApiError, list } from './api.js';
import { button, field, fmtTime, h, link, notice, replace, table } from './dom.js';
import { errorText, go, showError } from './app.js';

const KV_TYPES = new Set(['kv', 'generic', 'cubbyhole']);
const enc = encodeURIComponent;

async function mountsInfo() {
  const resp = await api('GET', 'sys/internal/ui/mounts');
  const secret = (resp && (resp.data || resp).secret) || {};
  return secret;
}

async function mountInfo(mount) {
  const all = await mountsInfo();
  const info = all[`${mount}/`];
  const version = info && info.options && info.options.version === '2' ? 2 : 1;
  return { type: info ? info.type : 'kv', version: info && info.type === 'cubbyhole' ? 1 : version };
}

function crumbs(mount, path) {
  const parts = path.split('/').filter(Boolean);
  const items = [h('li', {}, link('#/secrets', 'Secrets')), h('li', {}, link(`#/secrets/${enc(mount)}/list/`, mount))];
  let acc = '';
  parts.forEach((part, i) => {
    acc += `${part}/`;
    const last = i === parts.length - 1;
    items.push(h('li', {}, last ? h('span', { 'aria-current': 'page' }, part) : link(`#/secrets/${enc(mount)}/list/${enc(acc)}`, part)));
  });
  return h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('ol', {}, items));
}

async function mountsPage(view) {
  const mounts = await mountsInfo();
  const rows = Object.entries(mounts)
    .filter(([, m]) => KV_TYPES.has(m.type))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([path, m]) => {
      const name = path.replace(/\/$/, '');
      const version = m.type === 'cubbyhole' ? '' : (m.options && m.options.version) === '2' ? 'v2' : 'v1';
      return h('tr', {}, h('td', {}, link(`#/secrets/${enc(name)}/list/`, path)),
        h('td', {}, m.type), h('td', {}, version), h('td', {}, m.description || ''));
    });
  replace(view, h('h1', {}, 'Secrets engines'),
    rows.length ? table(['Path', 'Type', 'Version', 'Description'], rows) : notice('No key/value mounts visible to this token.'));
}

async function browsePage(view, mount, path) {
  const info = await mountInfo(mount);
  const base = info.version === 2 ? `${mount}/metadata/${path}` : `${mount}/${path}`;
  const keys = await list(base);
  const filter = h('input', { type: 'search', placeholder: 'Filter keys' });
  const items = keys.map((key) => {
    const folder = key.endsWith('/');
    const href = `#/secrets/${enc(mount)}/${folder ? 'list' : 'show'}/${enc(path + key)}`;
    return h('li', { class: folder ? 'folder' : 'secret', 'data-key': key },
      link(href, key, { 'aria-label': `${folder ? 'Folder' : 'Secret'} ${key}` }));
  });
  const ul = h('ul', { class: 'keys', id: 'secret-keys' }, items);
  filter.addEventListener('input', () => {
    const q = filter.value.toLowerCase();
    for (const li of ul.children) li.hidden = q !== '' && !li.dataset.key.toLowerCase().includes(q);
  });
  replace(view, crumbs(mount, path),
    h('div', { class: 'titlebar' }, h('h1', {}, path ? `${mount}/${path}` : mount),
      link(`#/secrets/${enc(mount)}/create/${enc(path)}`, 'Create secret', { class: 'buttonlike primary' })),
    keys.length ? [field('Filter', filter).row, h('p', { class: 'count' }, `${keys.length} keys`), ul] : notice('Nothing here yet.'));
}

function masked(value) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const out = h('code', { class: 'masked' }, '••••••••');
  let shown = false;
  const reveal = button('Reveal', () => {
    shown = !shown;
    replace(out, shown ? text : '••••••••');
    out.classList.toggle('masked', !shown);
    reveal.textContent = shown ? 'Hide' : 'Reveal';
    reveal.setAttribute('aria-pressed', String(shown));
  }, { 'aria-pressed': 'false', class: 'small' });
  const status = h('span', { class: 'copied', 'aria-live': 'polite' });
  const copy = button('Copy', async () => {
    try {
      await navigator.clipboard.writeText(text);
      replace(status, 'Copied');
    } catch {
      replace(status, 'Copy failed');
    }
  }, { class: 'small' });
  return [out, reveal, copy, status];
}

function versionState(v) {
  if (v.destroyed) return 'destroyed';
  if (v.deletion_time) return 'deleted';
  return 'created';
}

async function showPage(view, mount, path, query) {
  const info = await mountInfo(mount);
  const params = new URLSearchParams(query || '');
  const wanted = params.get('version');
  const parts = [crumbs(mount, path)];
  const title = h('div', { class: 'titlebar' }, h('h1', {}, path),
    link(`#/secrets/${enc(mount)}/edit/${enc(path)}`, 'New version', { class: 'buttonlike primary' }));
  parts.push(title);
  let data = null;
  let meta = null;
  let current = null;
  if (info.version === 2) {
    meta = (await api('GET', `${mount}/metadata/${path}`)).data;
    current = wanted ? Number(wanted) : meta.current_version;
    try {
      const resp = await api('GET', `${mount}/data/${path}?version=${current}`);
      data = resp.data.data;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  } else {
    data = (await api('GET', `${mount}/${path}`)).data;
  }
  if (info.version === 2) parts.push(h('p', { class: 'subtle' }, `Version ${current} of ${meta.current_version}`));
  if (data) {
    const rows = Object.entries(data).map(([k, v]) =>
      h('tr', {}, h('th', { scope: 'row' }, k), h('td', { class: 'value' }, masked(v))));
    parts.push(table(['Key', 'Value'], rows, 'Data'));
  } else {
    const v = meta && meta.versions[String(current)];
    parts.push(notice(`Version ${current} is ${v ? versionState(v) : 'missing'}: no data.`, 'warn'));
  }
  const message = h('div', { 'aria-live': 'polite' });
  const rerender = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const act = (label, fn, attrs = {}) => button(label, async () => {
    if (attrs.confirm && !window.confirm(attrs.confirm)) return;
    try {
      await fn();
      if (attrs.stay) rerender();
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  }, { class: attrs.danger ? 'small danger' : 'small' });
  if (info.version === 2) {
    const rows = Object.entries(meta.versions)
      .sort(([a], [b]) => Number(b) - Number(a))
      .map(([num, v]) => {
        const state = versionState(v);
        const n = Number(num);
        return h('tr', { 'data-version': num },
          h('td', {}, link(`#/secrets/${enc(mount)}/show/${enc(path)}?version=${num}`, num,
            n === current ? { 'aria-current': 'true' } : {})),
          h('td', { class: `state ${state}` }, state),
          h('td', {}, fmtTime(v.created_time)),
          h('td', {}, fmtTime(v.deletion_time)),
          h('td', { class: 'actions' },
            state === 'created' ? act('Delete', () => api('POST', `${mount}/delete/${path}`, { versions: [n] }), { stay: true }) : null,
            state === 'deleted' ? act('Undelete', () => api('POST', `${mount}/undelete/${path}`, { versions: [n] }), { stay: true }) : null,
            state !== 'destroyed' ? act('Destroy', () => api('POST', `${mount}/destroy/${path}`, { versions: [n] }),
              { danger: true, stay: true, confirm: `Destroy version ${n} for good?` }) : null));
      });
    parts.push(table(['Version', 'State', 'Created', 'Deleted', 'Actions'], rows, 'Versions'));
    parts.push(metadataForm(mount, path, meta));
    parts.push(h('div', { class: 'actions' },
      act('Delete secret and all versions', async () => {
        await api('DELETE', `${mount}/metadata/${path}`);
        go(`#/secrets/${enc(mount)}/list/${enc(path.replace(/[^/]*$/, ''))}`);
      }, { danger: true, confirm: `Delete ${path} with all its versions and metadata?` })));
  } else {
    parts.push(h('div', { class: 'actions' }, act('Delete secret', async () => {
      await api('DELETE', `${mount}/${path}`);
      go(`#/secrets/${enc(mount)}/list/${enc(path.replace(/[^/]*$/, ''))}`);
    }, { danger: true, confirm: `Delete ${path}?` })));
  }
  parts.push(message);
  replace(view, ...parts);
}

function metadataForm(mount, path, meta) {
  const maxVersions = h('input', { type: 'number', min: '0', value: String(meta.max_versions || 0) });
  const cas = h('input', { type: 'checkbox', checked: meta.cas_required });
  const custom = h('textarea', { rows: '3', spellcheck: 'false' },
    Object.entries(meta.custom_metadata || {}).map(([k, v]) => `${k}=${v}`).join('\n'));
  const message = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card' }, h('h2', {}, 'Metadata'),
    field('Max versions (0: the mount default)', maxVersions).row,
    h('div', { class: 'field check' }, cas, h('label', { for: (cas.id = 'cas-required') }, 'Require check-and-set')),
    field('Custom metadata (key=value per line)', custom).row,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save metadata')), message);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const customMetadata = {};
    for (const line of custom.value.split('\n')) {
      if (!line.trim()) continue;
      const i = line.indexOf('=');
      if (i < 1) {
        replace(message, notice(`Not key=value: ${line}`, 'error'));
        return;
      }
      customMetadata[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    try {
      await api('POST', `${mount}/metadata/${path}`, {
        max_versions: Number(maxVersions.value) || 0, cas_required: cas.checked, custom_metadata: customMetadata,
      });
      replace(message, notice('Metadata saved.'));
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  return form;
}

function kvRow(key = '', value = '') {
  const k = h('input', { type: 'text', value: key, 'aria-label': 'Key', class: 'kv-key' });
  const v = h('input', { type: 'password', value, 'aria-label': 'Value', class: 'kv-value', autocomplete: 'off' });
  const row = h('div', { class: 'kv-row' }, k, v,
    button('Show', (ev) => {
      v.type = v.type === 'password' ? 'text' : 'password';
      ev.target.textContent = v.type === 'password' ? 'Show' : 'Hide';
    }, { class: 'small' }),
    button('Remove', () => row.remove(), { class: 'small', 'aria-label': 'Remove row' }));
  return row;
}

async function editPage(view, mount, path, creating) {
  const info = await mountInfo(mount);
  let current = {};
  let version = 0;
  let casRequired = false;
  if (!creating) {
    if (info.version === 2) {
      const meta = (await api('GET', `${mount}/metadata/${path}`)).data;
      version = meta.current_version;
      casRequired = meta.cas_required;
      try {
        current = (await api('GET', `${mount}/data/${path}`)).data.data || {};
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
      }
    } else {
      current = (await api('GET', `${mount}/${path}`)).data || {};
    }
  }
  const pathInput = h('input', { type: 'text', value: creating ? path : path, required: true, readonly: !creating });
  const rows = h('div', { class: 'kv-rows' });
  const entries = Object.entries(current);
  if (!entries.length) rows.appendChild(kvRow());
  for (const [k, v] of entries) rows.appendChild(kvRow(k, typeof v === 'string' ? v : JSON.stringify(v)));
  const json = h('textarea', { rows: '10', spellcheck: 'false', hidden: true, 'aria-label': 'Secret data as JSON' });
  const mode = h('input', { type: 'checkbox', id: 'json-mode' });
  const collect = () => {
    if (mode.checked) {
      const parsed = JSON.parse(json.value || '{}');
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('The JSON must be an object');
      return parsed;
    }
    const out = {};
    for (const row of rows.querySelectorAll('.kv-row')) {
      const k = row.querySelector('.kv-key').value.trim();
      if (k) out[k] = row.querySelector('.kv-value').value;
    }
    return out;
  };
  const message = h('div', { 'aria-live': 'assertive' });
  mode.addEventListener('change', () => {
    try {
      if (mode.checked) json.value = JSON.stringify(collect(), null, 2);
      else {
        const parsed = JSON.parse(json.value || '{}');
        replace(rows, ...Object.entries(parsed).map(([k, v]) => kvRow(k, typeof v === 'string' ? v : JSON.stringify(v))));
      }
      json.hidden = !mode.checked;
      rows.hidden = mode.checked;
      addRow.hidden = mode.checked;
      replace(message);
    } catch (err) {
      mode.checked = !mode.checked;
      replace(message, notice(`Invalid JSON: ${err.message}`, 'error'));
    }
  });
  const addRow = button('Add row', () => rows.appendChild(kvRow()), { class: 'small' });
  const form = h('form', { class: 'card' },
    h('h1', {}, creating ? 'Create secret' : `New version of ${path}`),
    field(`Path under ${mount}/`, pathInput).row,
    h('fieldset', {}, h('legend', {}, 'Data'), rows, addRow, json),
    h('div', { class: 'field check' }, mode, h('label', { for: 'json-mode' }, 'Edit as JSON')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save'),
      link(creating ? `#/secrets/${enc(mount)}/list/${enc(path)}` : `#/secrets/${enc(mount)}/show/${enc(path)}`, 'Cancel')),
    message);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const target = pathInput.value.trim().replace(/^\/+/, '');
    if (!target || target.endsWith('/')) {
      replace(message, notice('Enter a secret name (not a folder).', 'error'));
      return;
    }
    try {
      const data = collect();
      if (info.version === 2) {
        const body = { data };
        if (casRequired || !creating) body.options = { cas: creating ? 0 : version };
        await api('POST', `${mount}/data/${target}`, body);
      } else {
        await api('POST', `${mount}/${target}`, data);
      }
      go(`#/secrets/${enc(mount)}/show/${enc(target)}`);
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  replace(view, crumbs(mount, path), form);
  (creating ? pathInput : rows.querySelector('input')).focus();
}

export const secretsRoutes = [
  [/^secrets$/, mountsPage],
  [/^secrets\/([^/]+)\/list\/(.*)$/, browsePage],
  [/^secrets\/([^/]+)\/show\/([^?]*)(?:\?(.*))?$/, showPage],
  [/^secrets\/([^/]+)\/edit\/(.+)$/, (view, mount, path) => editPage(view, mount, path, false)],
  [/^secrets\/([^/]+)\/create\/(.*)$/, (view, mount, path) => editPage(view, mount, path, true)],
];
export { showError };
