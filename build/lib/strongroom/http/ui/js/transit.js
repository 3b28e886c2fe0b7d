// Transit: keys (list, details, create, rotate, config) and the crypto forms.
import { api, list } from './api.js';
import { button, field, fromBase64, h, link, notice, replace, table, toBase64 } from './dom.js';
import { errorText, go } from './app.js';

const enc = encodeURIComponent;
const KEY_TYPES = ['aes256-gcm96', 'aes128-gcm96', 'chacha20-poly1305', 'ed25519', 'ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'hmac'];

async function transitMounts() {
  const resp = await api('GET', 'sys/internal/ui/mounts');
  const secret = (resp && (resp.data || resp).secret) || {};
  return Object.entries(secret).filter(([, m]) => m.type === 'transit').map(([p]) => p.replace(/\/$/, ''));
}

async function mountsPage(view) {
  const mounts = await transitMounts();
  if (mounts.length === 1) {
    location.replace(`#/transit/${enc(mounts[0])}`);
    return;
  }
  replace(view, h('h1', {}, 'Transit'), mounts.length
    ? h('ul', {}, mounts.map((m) => h('li', {}, link(`#/transit/${enc(m)}`, m))))
    : notice('No transit mounts visible to this token.'));
}

async function keysPage(view, mount) {
  const keys = await list(`${mount}/keys`);
  const name = h('input', { type: 'text', required: true, pattern: '[A-Za-z0-9_.\\-]+' });
  const type = h('select', {}, KEY_TYPES.map((t) => h('option', { value: t }, t)));
  const exportable = h('input', { type: 'checkbox', id: 'new-exportable' });
  const message = h('div', { 'aria-live': 'assertive' });
  const form = h('form', { class: 'card' }, h('h2', {}, 'Create key'), field('Name', name).row, field('Type', type).row,
    h('div', { class: 'field check' }, exportable, h('label', { for: 'new-exportable' }, 'Exportable')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create key')), message);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', `${mount}/keys/${enc(name.value.trim())}`, { type: type.value, exportable: exportable.checked });
      go(`#/transit/${enc(mount)}/key/${enc(name.value.trim())}`);
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  replace(view, h('h1', {}, `Transit keys in ${mount}/`),
    keys.length ? h('ul', { class: 'keys' }, keys.map((k) => h('li', {}, link(`#/transit/${enc(mount)}/key/${enc(k)}`, k))))
      : notice('No keys yet.'),
    form);
}

function resultBox(label) {
  const out = h('output', { class: 'result', 'aria-label': label });
  return out;
}

// One operation form: inputs → body → request → shown result.
function opForm(title, inputs, run) {
  const out = resultBox(`${title} result`);
  const form = h('form', { class: 'card op', 'data-op': title.toLowerCase() }, h('h3', {}, title),
    inputs.map(([label, input]) => field(label, input).row),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, title)), out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      replace(out, await run());
      out.classList.remove('error');
    } catch (err) {
      replace(out, errorText(err));
      out.classList.add('error');
    }
  });
  return form;
}

async function keyPage(view, mount, name) {
  const key = (await api('GET', `${mount}/keys/${enc(name)}`)).data;
  const base = `${mount}`;
  const rows = [
    ['Type', key.type], ['Latest version', key.latest_version], ['Min decryption version', key.min_decryption_version],
    ['Min encryption version', key.min_encryption_version], ['Deletion allowed', key.deletion_allowed],
    ['Exportable', key.exportable], ['Supports encryption', key.supports_encryption], ['Supports signing', key.supports_signing],
  ].map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, String(v))));
  const versions = Object.entries(key.keys || {}).map(([v, t]) =>
    h('tr', {}, h('td', {}, v), h('td', {}, typeof t === 'number' ? new Date(t * 1000).toISOString() : (t.creation_time || ''))));
  const message = h('div', { 'aria-live': 'assertive' });
  const rerender = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const rotate = button('Rotate', async () => {
    try {
      await api('POST', `${base}/keys/${enc(name)}/rotate`, {});
      rerender();
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  const minDec = h('input', { type: 'number', min: '1', value: String(key.min_decryption_version) });
  const minEnc = h('input', { type: 'number', min: '0', value: String(key.min_encryption_version) });
  const deletion = h('input', { type: 'checkbox', id: 'cfg-deletion', checked: key.deletion_allowed });
  const exportable = h('input', { type: 'checkbox', id: 'cfg-exportable', checked: key.exportable, disabled: key.exportable });
  const config = h('form', { class: 'card' }, h('h2', {}, 'Config'),
    field('Min decryption version', minDec).row, field('Min encryption version (0: latest)', minEnc).row,
    h('div', { class: 'field check' }, deletion, h('label', { for: 'cfg-deletion' }, 'Deletion allowed')),
    h('div', { class: 'field check' }, exportable, h('label', { for: 'cfg-exportable' }, 'Exportable (cannot be undone)')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save config'),
      key.deletion_allowed ? button('Delete key', async () => {
        if (!window.confirm(`Delete key ${name} for good?`)) return;
        try {
          await api('DELETE', `${base}/keys/${enc(name)}`);
          go(`#/transit/${enc(mount)}`);
        } catch (err) {
          replace(message, notice(errorText(err), 'error'));
        }
      }, { class: 'danger' }) : null));
  config.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', `${base}/keys/${enc(name)}/config`, {
        min_decryption_version: Number(minDec.value), min_encryption_version: Number(minEnc.value),
        deletion_allowed: deletion.checked, ...(exportable.checked && !key.exportable ? { exportable: true } : {}),
      });
      rerender();
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  const ta = (label) => h('textarea', { rows: '2', spellcheck: 'false', 'aria-label': label });
  const ops = [];
  if (key.supports_encryption) {
    const pt = ta('Plaintext');
    const ct = ta('Ciphertext');
    const rw = ta('Ciphertext to rewrap');
    ops.push(opForm('Encrypt', [['Plaintext (text; base64 is done for you)', pt]], async () =>
      (await api('POST', `${base}/encrypt/${enc(name)}`, { plaintext: toBase64(pt.value) })).data.ciphertext));
    ops.push(opForm('Decrypt', [['Ciphertext', ct]], async () => {
      const r = fromBase64((await api('POST', `${base}/decrypt/${enc(name)}`, { ciphertext: ct.value.trim() })).data.plaintext);
      return r.binary ? `(binary, base64) ${r.text}` : r.text;
    }));
    ops.push(opForm('Rewrap', [['Ciphertext', rw]], async () =>
      (await api('POST', `${base}/rewrap/${enc(name)}`, { ciphertext: rw.value.trim() })).data.ciphertext));
  }
  if (key.type === 'hmac' || key.supports_encryption || key.supports_signing) {
    const input = ta('Input');
    ops.push(opForm('HMAC', [['Input (text)', input]], async () =>
      (await api('POST', `${base}/hmac/${enc(name)}`, { input: toBase64(input.value) })).data.hmac));
  }
  if (key.supports_signing) {
    const input = ta('Input to sign');
    const vin = ta('Input to verify');
    const sig = ta('Signature');
    ops.push(opForm('Sign', [['Input (text)', input]], async () =>
      (await api('POST', `${base}/sign/${enc(name)}`, { input: toBase64(input.value) })).data.signature));
    ops.push(opForm('Verify', [['Input (text)', vin], ['Signature', sig]], async () =>
      ((await api('POST', `${base}/verify/${enc(name)}`, { input: toBase64(vin.value), signature: sig.value.trim() })).data.valid
        ? 'Valid signature' : 'Invalid signature')));
  }
  replace(view,
    h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('ol', {}, h('li', {}, link(`#/transit/${enc(mount)}`, `${mount}/`)),
      h('li', {}, h('span', { 'aria-current': 'page' }, name)))),
    h('div', { class: 'titlebar' }, h('h1', {}, `Key ${name}`), rotate),
    table(['Field', 'Value'], rows, 'Details'), table(['Version', 'Created'], versions, 'Versions'),
    message, h('section', { 'aria-labelledby': 'ops-title', class: 'ops' }, h('h2', { id: 'ops-title' }, 'Operations'), ops), config);
}

export const transitRoutes = [
  [/^transit$/, mountsPage],
  [/^transit\/([^/]+)$/, keysPage],
  [/^transit\/([^/]+)\/key\/(.+)$/, keyPage],
];
