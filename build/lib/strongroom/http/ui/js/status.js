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
        ha.appendChild(table(['Node', 'API address', 'Active', 'Last echo'], nodes.map((n) =>
          h('tr', {}, h('td', {}, n.hostname || ''), h('td', {}, n.api_address || ''),
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

async function auditPage(view) {
  const resp = await api('GET', 'sys/audit');
  const devices = resp.data || resp;
  const rows = Object.entries(devices).filter(([, d]) => d && typeof d === 'object' && d.type)
    .map(([path, d]) => h('tr', {}, h('td', {}, path), h('td', {}, d.type), h('td', {}, d.description || ''),
      h('td', {}, Object.entries(d.options || {}).map(([k, v]) => `${k}=${v}`).join(', '))));
  replace(view, h('h1', {}, 'Audit devices'),
    rows.length ? table(['Path', 'Type', 'Description', 'Options'], rows) : notice('No audit devices are enabled.'));
}

export const statusRoutes = [
  [/^status$/, statusPage],
  [/^audit$/, auditPage],
];
