// Identity: entities and groups (create, edit, delete) and their aliases.
import { api, ApiError } from './api.js';
import { button, field, h, link, notice, replace, table } from './dom.js';
import { errorText, go } from './app.js';

const enc = encodeURIComponent;
const rerender = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
const splitList = (text) => text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);

async function listWithInfo(kind) {
  try {
    const resp = await api('LIST', `identity/${kind}/id`);
    const data = (resp && resp.data) || {};
    return (data.keys || []).map((id) => ({ id, ...(data.key_info || {})[id] }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return [];
    throw err;
  }
}

// "k=v" lines ↔ a metadata object
const metaText = (meta) => Object.entries(meta || {}).map(([k, v]) => `${k}=${v}`).join('\n');
function parseMeta(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const at = line.indexOf('=');
    if (at < 1) throw new Error(`"${line.trim()}" is not key=value`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

async function authMounts() {
  const mounts = (await api('GET', 'sys/auth')).data || {};
  return Object.entries(mounts).filter(([, m]) => m && m.accessor)
    .map(([path, m]) => ({ path, type: m.type, accessor: m.accessor }));
}

function crumbs(label) {
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {},
    h('li', {}, link('#/identity', 'Identity')), h('li', {}, h('span', { 'aria-current': 'page' }, label))));
}

async function identityPage(view) {
  const entities = await listWithInfo('entity');
  const groups = await listWithInfo('group');
  const message = h('div', { 'aria-live': 'assertive' });
  const entityRows = entities.map((e) => h('tr', {}, h('td', {}, link(`#/identity/entity/${enc(e.id)}`, e.name || e.id)),
    h('td', {}, h('code', {}, e.id)), h('td', {}, String((e.aliases || []).length))));
  const groupRows = groups.map((g) => h('tr', {}, h('td', {}, link(`#/identity/group/${enc(g.id)}`, g.name || g.id)),
    h('td', {}, h('code', {}, g.id)), h('td', {}, String(g.num_member_entities ?? ''))));
  const entityName = h('input', { type: 'text', required: true });
  const newEntity = h('form', { class: 'card narrow' }, h('h3', {}, 'New entity'), field('Entity name', entityName).row,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create entity')));
  newEntity.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const made = await api('POST', 'identity/entity', { name: entityName.value.trim() });
      go(`#/identity/entity/${enc(made.data.id)}`);
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  const groupName = h('input', { type: 'text', required: true });
  const groupType = h('select', {}, h('option', { value: 'internal' }, 'internal'), h('option', { value: 'external' }, 'external'));
  const newGroup = h('form', { class: 'card narrow' }, h('h3', {}, 'New group'), field('Group name', groupName).row,
    field('Group type', groupType, 'external: membership comes from an auth method (a group alias)').row,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create group')));
  newGroup.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const made = await api('POST', 'identity/group', { name: groupName.value.trim(), type: groupType.value });
      go(`#/identity/group/${enc(made.data.id)}`);
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  replace(view, h('h1', {}, 'Identity'), message,
    h('h2', {}, 'Entities'), entityRows.length ? table(['Name', 'ID', 'Aliases'], entityRows, 'Entities') : notice('No entities yet.'), newEntity,
    h('h2', {}, 'Groups'), groupRows.length ? table(['Name', 'ID', 'Member entities'], groupRows, 'Groups') : notice('No groups yet.'), newGroup);
}

// The fields shared by entities and groups: name, policies, metadata.
function commonFields(record) {
  const name = h('input', { type: 'text', value: record.name || '', required: true });
  const policies = h('input', { type: 'text', value: (record.policies || []).join(', ') });
  const metadata = h('textarea', { rows: '3', spellcheck: 'false' });
  metadata.value = metaText(record.metadata);
  return {
    rows: [field('Name', name).row, field('Policies', policies, 'comma-separated').row,
      field('Metadata', metadata, 'one key=value per line').row],
    read: () => ({ name: name.value.trim(), policies: splitList(policies.value), metadata: parseMeta(metadata.value) }),
  };
}

function deleteButton(label, path, back, message) {
  return button(label, async () => {
    if (!window.confirm(`${label}?`)) return;
    try {
      await api('DELETE', path);
      go(back);
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  }, { class: 'danger' });
}

function aliasForm(title, mounts, onSubmit) {
  const name = h('input', { type: 'text', required: true });
  const mount = h('select', { required: true }, mounts.map((m) => h('option', { value: m.accessor }, `${m.path} (${m.type})`)));
  const form = h('form', { class: 'card narrow' }, h('h3', {}, title), field('Alias name', name, 'the name the auth method reports (user name, role, group …)').row,
    field('Auth method', mount).row, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add alias')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    onSubmit(name.value.trim(), mount.value);
  });
  return form;
}

async function entityPage(view, id) {
  const entity = (await api('GET', `identity/entity/id/${enc(id)}`)).data;
  const mounts = await authMounts();
  const message = h('div', { 'aria-live': 'assertive', id: 'identity-result' });
  const common = commonFields(entity);
  const disabled = h('input', { type: 'checkbox', checked: Boolean(entity.disabled) });
  const form = h('form', { class: 'card', 'data-form': 'entity' }, common.rows,
    h('div', { class: 'field check' }, disabled, h('label', { for: 'entity-disabled' }, 'Disabled (its tokens cannot be used)')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save entity'),
      deleteButton('Delete entity', `identity/entity/id/${enc(id)}`, '#/identity', message)), message);
  disabled.id = 'entity-disabled';
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', `identity/entity/id/${enc(id)}`, { ...common.read(), disabled: disabled.checked });
      replace(message, notice('Entity saved.'));
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  const aliases = entity.aliases || [];
  const pathOf = Object.fromEntries(mounts.map((m) => [m.accessor, m.path]));
  const rows = aliases.map((a) => h('tr', {}, h('td', {}, a.name), h('td', {}, a.mount_path || pathOf[a.mount_accessor] || a.mount_accessor),
    h('td', {}, a.mount_type || ''), h('td', {}, h('code', {}, a.id)),
    h('td', {}, button('Delete', async () => {
      if (!window.confirm(`Delete alias ${a.name}?`)) return;
      try {
        await api('DELETE', `identity/entity-alias/id/${enc(a.id)}`);
        rerender();
      } catch (err) {
        replace(message, notice(errorText(err), 'error'));
      }
    }, { class: 'small danger', 'aria-label': `Delete alias ${a.name}` }))));
  const addAlias = aliasForm('Add an alias', mounts, async (name, accessor) => {
    try {
      await api('POST', 'identity/entity-alias', { name, mount_accessor: accessor, canonical_id: id });
      rerender();
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  replace(view, crumbs(entity.name), h('h1', {}, `Entity ${entity.name}`), h('p', { class: 'subtle' }, `ID ${entity.id}`), form,
    h('h2', {}, 'Aliases'), rows.length ? table(['Name', 'Auth method', 'Type', 'ID', 'Actions'], rows, 'Aliases') : notice('No aliases yet.'),
    addAlias);
}

async function groupPage(view, id) {
  const group = (await api('GET', `identity/group/id/${enc(id)}`)).data;
  const entities = await listWithInfo('entity');
  const groups = (await listWithInfo('group')).filter((g) => g.id !== id);
  const message = h('div', { 'aria-live': 'assertive', id: 'identity-result' });
  const common = commonFields(group);
  const external = group.type === 'external';
  const members = h('select', { multiple: true, size: String(Math.min(6, Math.max(2, entities.length))) },
    entities.map((e) => h('option', { value: e.id, selected: (group.member_entity_ids || []).includes(e.id) }, e.name || e.id)));
  const subgroups = h('select', { multiple: true, size: String(Math.min(6, Math.max(2, groups.length))) },
    groups.map((g) => h('option', { value: g.id, selected: (group.member_group_ids || []).includes(g.id) }, g.name || g.id)));
  const chosen = (select) => [...select.selectedOptions].map((o) => o.value);
  const form = h('form', { class: 'card', 'data-form': 'group' }, common.rows,
    external ? notice('An external group takes its members from its alias, not from this list.') : [
      field('Member entities', members, 'Ctrl/⌘-click or Shift+arrows to select several').row,
      field('Member groups', subgroups).row],
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save group'),
      deleteButton('Delete group', `identity/group/id/${enc(id)}`, '#/identity', message)), message);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const body = { ...common.read(), type: group.type };
      if (!external) {
        body.member_entity_ids = chosen(members);
        body.member_group_ids = chosen(subgroups);
      }
      await api('POST', `identity/group/id/${enc(id)}`, body);
      replace(message, notice('Group saved.'));
    } catch (err) {
      replace(message, notice(errorText(err), 'error'));
    }
  });
  const parts = [crumbs(group.name), h('h1', {}, `Group ${group.name}`), h('p', { class: 'subtle' }, `ID ${group.id} · ${group.type}`), form];
  if (external) {
    const alias = group.alias && group.alias.id ? group.alias : null;
    const mounts = await authMounts();
    const pathOf = Object.fromEntries(mounts.map((m) => [m.accessor, m.path]));
    parts.push(h('h2', {}, 'Group alias'));
    if (alias) {
      parts.push(table(['Name', 'Auth method', 'ID', 'Actions'], [h('tr', {}, h('td', {}, alias.name),
        h('td', {}, alias.mount_path || pathOf[alias.mount_accessor] || alias.mount_accessor), h('td', {}, h('code', {}, alias.id)),
        h('td', {}, button('Delete', async () => {
          try {
            await api('DELETE', `identity/group-alias/id/${enc(alias.id)}`);
            rerender();
          } catch (err) {
            replace(message, notice(errorText(err), 'error'));
          }
        }, { class: 'small danger', 'aria-label': `Delete alias ${alias.name}` })))], 'Group alias'));
    } else {
      parts.push(aliasForm('Set the alias', mounts, async (name, accessor) => {
        try {
          await api('POST', 'identity/group-alias', { name, mount_accessor: accessor, canonical_id: id });
          rerender();
        } catch (err) {
          replace(message, notice(errorText(err), 'error'));
        }
      }));
    }
  }
  replace(view, ...parts);
}

export const identityRoutes = [
  [/^identity$/, identityPage],
  [/^identity\/entity\/([^/]+)$/, entityPage],
  [/^identity\/group\/([^/]+)$/, groupPage],
];
