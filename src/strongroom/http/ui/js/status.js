// Status: seal status (also the bar on every page), unseal, HA, metrics summary.
import { api, ApiError } from './api.js';
import { button, field, h, notice, replace, table } from './dom.js';
import { errorText } from './app.js';

const bar = () => document.getElementById('statusbar');

export async function refreshStatusBar() {
  try {
    const s = await api('GET', 'sys/seal-status', undefined, { token: false });
    const state = !s.initialized ? 'Not initialised' : s.sealed ? `Sealed (${s.progress}/${s.t} key shares)` : 'Unsealed';
    replace(bar(), h('span', { class: s.sealed ? 'dot bad' : 'dot ok', 'aria-hidden': 'true' }),
      `${state} · version ${s.version || '?'}${s.cluster_name ? ` · ${s.cluster_name}` : ''}`);
    bar().dataset.sealed = String(Boolean(s.sealed));
  } catch (err) {
    replace(bar(), `Server unreachable: ${errorText(err)}`);
  }
}

async function statusPage(view) {
  const s = await api('GET', 'sys/seal-status', undefined, { token: false });
  const parts = [h('h1', {}, 'Status')];
  parts.push(table(['Field', 'Value'], [
    ['Initialised', s.initialized], ['Sealed', s.sealed], ['Key shares (threshold / total)', `${s.t} / ${s.n}`],
    ['Unseal progress', s.progress], ['Version', s.version], ['Storage', s.storage_type || ''],
    ['Cluster', s.cluster_name || ''],
  ].map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, String(v)))), 'Seal status'));
  if (s.sealed) parts.push(unsealForm(s));
  const ha = h('section', { 'aria-labelledby': 'ha-title' }, h('h2', { id: 'ha-title' }, 'High availability'));
  const metrics = h('section', { 'aria-labelledby': 'metrics-title' }, h('h2', { id: 'metrics-title' }, 'Metrics'));
  parts.push(ha, metrics);
  replace(view, ...parts);
  if (s.sealed) return;
  try {
    const leader = await api('GET', 'sys/leader', undefined, { token: false });
    ha.appendChild(table(['Field', 'Value'], [
      ['HA enabled', leader.ha_enabled], ['This node is active', leader.is_self],
      ['Active node', leader.leader_address || ''], ['Active since', leader.active_time || ''],
    ].map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, String(v))))));
    try {
      const st = await api('GET', 'sys/ha-status');
      const nodes = (st.data || st).nodes || [];
      if (nodes.length) {
        ha.appendChild(table(['Node', 'Node ID', 'API address', 'Active', 'Last echo'], nodes.map((n) =>
          h('tr', {}, h('td', {}, n.hostname || ''), h('td', {}, n.node_id || ''), h('td', {}, n.api_address || ''),
            h('td', {}, String(Boolean(n.active_node))), h('td', {}, n.last_echo || ''))), 'Nodes'));
      }
    } catch (err) {
      ha.appendChild(notice(`Nodes: ${errorText(err)}`, 'warn'));
    }
  } catch (err) {
    ha.appendChild(notice(errorText(err), 'warn'));
  }
  try {
    const m = await api('GET', 'sys/metrics?format=json');
    const gauges = (m.Gauges || []).slice(0, 25).map((g) => h('tr', {}, h('td', {}, g.Name), h('td', {}, 'gauge'), h('td', {}, String(g.Value))));
    const counters = (m.Counters || []).slice(0, 25).map((c) => h('tr', {}, h('td', {}, c.Name), h('td', {}, 'counter'), h('td', {}, `${c.Count} (sum ${c.Sum})`)));
    const samples = (m.Samples || []).slice(0, 25).map((c) => h('tr', {}, h('td', {}, c.Name), h('td', {}, 'timer'), h('td', {}, `${c.Count} × mean ${Number(c.Mean).toFixed(3)} ms`)));
    metrics.appendChild(h('p', {}, `${(m.Gauges || []).length} gauges, ${(m.Counters || []).length} counters, ${(m.Samples || []).length} timers; the first of each:`));
    metrics.appendChild(table(['Name', 'Kind', 'Value'], [...gauges, ...counters, ...samples]));
  } catch (err) {
    metrics.appendChild(notice(err instanceof ApiError && err.status === 403 ? 'Permission denied: this token may not read sys/metrics.' : errorText(err), 'warn'));
  }
}

function unsealForm(s) {
  const key = h('input', { type: 'password', autocomplete: 'off', required: true });
  const progress = h('p', { 'aria-live': 'polite' }, `${s.progress} of ${s.t} key shares entered.`);
  const form = h('form', { class: 'card narrow' }, h('h2', {}, 'Unseal'),
    h('p', {}, 'Each key holder types their share in turn; the progress is kept by the server.'),
    field('Unseal key share', key).row,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Submit share'),
      button('Reset progress', async () => {
        await api('PUT', 'sys/unseal', { reset: true }, { token: false });
        window.dispatchEvent(new HashChangeEvent('hashchange'));
      })),
    progress);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('PUT', 'sys/unseal', { key: key.value.trim() }, { token: false });
      key.value = ''; // the share never stays on screen
      if (!r.sealed) window.dispatchEvent(new HashChangeEvent('hashchange'));
      else replace(progress, `${r.progress} of ${r.t} key shares entered.`);
      refreshStatusBar();
    } catch (err) {
      key.value = '';
      replace(progress, notice(errorText(err), 'error'));
    }
  });
  return form;
}

// One verify answer (sys/audit-verify): a summary, then one row per writer's chain.
function verifyReport(path, r) {
  const chainName = (c) => c.chain || '(no chain id)';
  const where = (b) => (b.file ? `${b.file} line ${b.line}: ` : '');
  const head = r.verified
    ? notice(`${path}: chain${r.chains.length === 1 ? '' : 's'} intact. ${r.lines} lines in ${r.files.length} file(s), `
      + `${r.chains.length} chain(s), ${r.checkpoints} signed checkpoints covering ${r.verified_lines} lines`
      + (r.unverified_tail ? `; lines ${r.unverified_tail.first_line}-${r.unverified_tail.last_line} not yet covered by a checkpoint.` : '.')
      + (r.recorded ? ' Last checkpoints recorded.' : ''))
    : notice(`${path}: BROKEN at ${where(r.broken)}${r.broken.message}`, 'error');
  const rows = r.chains.map((c) => h('tr', { 'data-chain': c.chain },
    h('td', {}, h('code', {}, chainName(c))),
    h('td', { class: c.verified ? 'state created' : 'state destroyed' }, c.verified ? 'intact' : 'broken'),
    h('td', {}, String(c.lines)), h('td', {}, String(c.checkpoints)),
    h('td', {}, c.last_checkpoint ? `seq ${c.last_checkpoint.seq} · ${c.last_checkpoint.time}` : 'none'),
    h('td', {}, c.last_verified ? `seq ${c.last_verified.seq} · verified ${c.last_verified.verified_at}` : 'never recorded'),
    h('td', {}, c.broken ? `${where(c.broken)}${c.broken.message}` : c.note || (c.unverified_tail ? `${c.unverified_tail.count} line(s) not yet checkpointed` : ''))));
  return [head,
    table(['Chain', 'Result', 'Lines', 'Checkpoints', 'Last checkpoint', 'Last verified checkpoint', 'Details'], rows, 'Chains (one per writer)'),
    h('p', { class: 'subtle' }, `Files, oldest first: ${r.files.join(', ')}`),
    (r.warnings || []).length ? h('ul', { class: 'warnings' }, r.warnings.map((w) => h('li', {}, w))) : null];
}

async function auditPage(view) {
  const resp = await api('GET', 'sys/audit');
  const devices = Object.entries(resp.data || resp).filter(([, d]) => d && typeof d === 'object' && d.type);
  const files = devices.filter(([, d]) => d.type === 'file' && !['stdout', 'discard'].includes((d.options || {}).file_path));
  const verifyOut = h('div', { 'aria-live': 'polite', id: 'verify-result' });
  const verify = (path, method) => async () => {
    try {
      const r = (await api(method, `sys/audit-verify/${path.replace(/\/$/, '')}`, method === 'GET' ? undefined : {})).data;
      replace(verifyOut, ...verifyReport(path, r));
    } catch (err) {
      replace(verifyOut, notice(errorText(err), 'error'));
    }
  };
  const rows = devices.map(([path, d]) => h('tr', {}, h('td', {}, path), h('td', {}, d.type), h('td', {}, d.description || ''),
    h('td', {}, Object.entries(d.options || {}).map(([k, v]) => `${k}=${v}`).join(', ')),
    h('td', {}, files.some(([p]) => p === path) ? [
      button('Verify', verify(path, 'GET'), { class: 'small' }),
      button('Verify and record', verify(path, 'POST'), { class: 'small', title: 'Keep each chain\'s last checkpoint on the server' }),
      button('Forget records', async () => {
        if (!window.confirm(`Forget the last verified checkpoints of ${path}?`)) return;
        try {
          await api('DELETE', `sys/audit-verify/${path.replace(/\/$/, '')}`);
          replace(verifyOut, notice(`${path}: recorded checkpoints forgotten.`));
        } catch (err) {
          replace(verifyOut, notice(errorText(err), 'error'));
        }
      }, { class: 'small danger' }),
    ] : '')));
  const parts = [h('h1', {}, 'Audit devices'),
    rows.length ? table(['Path', 'Type', 'Description', 'Options', 'Tamper evidence'], rows) : notice('No audit devices are enabled.'),
    verifyOut];
  if (files.length) parts.push(searchForm(files));
  replace(view, ...parts);
}

function searchForm(files) {
  const device = h('select', {}, files.map(([p]) => h('option', { value: p.replace(/\/$/, '') }, p)));
  const path = h('input', { type: 'text', placeholder: 'secret/data/* (a trailing * is a prefix)' });
  const op = h('select', {}, ['', 'read', 'list', 'create', 'update', 'delete'].map((o) => h('option', { value: o }, o || 'any')));
  const status = h('select', {}, ['', 'ok', 'denied', 'error'].map((o) => h('option', { value: o }, o || 'any')));
  const since = h('input', { type: 'text', placeholder: '2h, 2026-01-31 or RFC 3339' });
  const out = h('div', { 'aria-live': 'polite', id: 'search-result' });
  const rotated = h('input', { type: 'checkbox', id: 'search-rotated' });
  const form = h('form', { class: 'card' }, h('h2', {}, 'Search the log'), field('Device', device).row,
    field('Request path', path).row, field('Operation', op).row, field('Outcome', status).row, field('Since', since).row,
    h('div', { class: 'field check' }, rotated, h('label', { for: 'search-rotated' }, 'Include rotated files')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Search')), out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = (await api('POST', `sys/audit-search/${device.value}`, {
        request_path: path.value.trim(), operation: op.value, status: status.value, since: since.value.trim(), limit: 200,
        rotated: rotated.checked,
      })).data;
      const rows = r.matches.map(({ file, line, entry }) => {
        const req = entry.request || {};
        return h('tr', {}, h('td', {}, `${(file || '').split('/').pop()}:${line}`), h('td', {}, entry.time || ''), h('td', {}, entry.type || ''),
          h('td', {}, req.operation || ''), h('td', {}, req.path || ''), h('td', {}, entry.error || ''),
          h('td', {}, req.remote_address || ''));
      });
      replace(out, h('p', {}, `${r.matches.length} entries${r.truncated ? ' (more not shown)' : ''}`),
        rows.length ? table(['File:line', 'Time', 'Type', 'Operation', 'Path', 'Error', 'Remote address'], rows) : null);
    } catch (err) {
      replace(out, notice(errorText(err), 'error'));
    }
  });
  return form;
}

export const statusRoutes = [
  [/^status$/, statusPage],
  [/^audit$/, auditPage],
];
