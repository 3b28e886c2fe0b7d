"""Plans for every identity write: validate the request against the current index and
return the :class:`Change` (new records, deletions) that carries it out. Pure apart from
fresh IDs; the store writes the change to storage, then applies it to the index.

Security decisions live here, each at the check that enforces it:

* **No alias takeover.** The pair (mount accessor, normalised name) names one principal of
  one auth method, and an alias for it belongs to exactly one entity. A login never moves
  it; creating an alias that already belongs to another entity is refused (400); only an
  explicit update of that alias by ID with a new ``canonical_id`` moves it (an operator
  action the ACL must allow on ``identity/entity-alias/id/<id>``).
* **One alias per mount per entity**, so a login on a mount always resolves to one alias.
* **Disabled entities cannot log in** (their existing tokens are refused by core).
* **Group cycles are refused** at write time; reading the graph is cycle-safe anyway.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace

from strongroom.core.identity._index import Change, IdentityIndex
from strongroom.core.identity._records import (
    GROUP_EXTERNAL,
    GROUP_INTERNAL,
    Entity,
    EntityAlias,
    Group,
    GroupAlias,
    check_metadata,
    check_name,
    check_policies,
    name_key,
    normalise,
    unique,
)
from strongroom.errors import InvalidRequest, PermissionDenied

__all__ = [
    "plan_alias_create",
    "plan_alias_delete",
    "plan_alias_update",
    "plan_drop_mount",
    "plan_entity_delete",
    "plan_entity_write",
    "plan_group_alias_delete",
    "plan_group_alias_write",
    "plan_group_delete",
    "plan_group_write",
    "plan_login",
    "plan_merge",
]


def new_id() -> str:
    return str(uuid.uuid4())


def _auto_name(prefix: str, taken: Mapping[str, str]) -> str:
    while True:
        name = f"{prefix}_{secrets.token_hex(4)}"
        if name_key(name) not in taken:
            return name


def _entity(index: IdentityIndex, entity_id: str, what: str = "entity") -> Entity:
    entity = index.entities.get(entity_id)
    if entity is None:
        raise InvalidRequest(f"{what} not found")
    return entity


# -- login ------------------------------------------------------------------------------------


def plan_login(
    index: IdentityIndex,
    now: float,
    *,
    mount_accessor: str,
    mount_type: str,
    alias_name: str,
    alias_metadata: Mapping[str, str],
    group_names: Sequence[str],
) -> tuple[Change, Entity]:
    """Resolve (or create) the entity of a principal that just logged in."""
    if not mount_accessor:
        raise InvalidRequest("missing mount accessor")
    name = normalise(mount_type, alias_name)
    if name != alias_name:
        # The auth method must hand over the principal exactly as it identifies it. If its
        # rule and ours differ, two of its principals could share one alias: fail the login.
        raise InvalidRequest("alias name is not normalised for this auth method")
    metadata = check_metadata(alias_metadata, "alias metadata")
    entities: dict[str, Entity] = {}
    alias = index.alias_by_factors(mount_accessor, name)
    if alias is not None:
        entity = index.entities.get(alias.canonical_id)
        if entity is None:  # an alias is only ever indexed from its entity's record
            raise InvalidRequest("entity not found")
        if entity.disabled:
            # Vault: a disabled entity's tokens cannot be used; don't mint new ones either.
            raise PermissionDenied()
        if dict(alias.metadata) != dict(metadata) or alias.mount_type != mount_type:
            updated = replace(alias, metadata=metadata, mount_type=mount_type, last_update_time=now)
            entity = _replace_alias(entity, updated, now)
            entities[entity.id] = entity
    else:
        entity_id = new_id()
        alias = EntityAlias(
            id=new_id(),
            canonical_id=entity_id,
            mount_accessor=mount_accessor,
            mount_type=mount_type,
            name=name,
            metadata=metadata,
            creation_time=now,
            last_update_time=now,
        )
        entity = Entity(
            id=entity_id,
            name=_auto_name("entity", index.entity_names),
            aliases=(alias,),
            creation_time=now,
            last_update_time=now,
        )
        entities[entity.id] = entity
    groups = _sync_external_groups(index, now, entity.id, mount_accessor, mount_type, group_names)
    return Change(entities=tuple(entities.values()), groups=groups), entity


def _sync_external_groups(
    index: IdentityIndex,
    now: float,
    entity_id: str,
    mount_accessor: str,
    mount_type: str,
    group_names: Sequence[str],
) -> tuple[Group, ...]:
    """The auth method is authoritative for its own external groups: join the ones named in
    ``group_names``, leave the others of that mount (an empty list leaves them all)."""
    wanted: set[str] = set()
    for raw in group_names:
        try:
            wanted.add(normalise(mount_type, raw))
        except InvalidRequest:
            continue  # a malformed claim value names no group
    changed = []
    for group in index.external_groups_on(mount_accessor):
        if group.alias is None:
            continue
        member = entity_id in group.member_entity_ids
        if (group.alias.name in wanted) == member:
            continue
        members = (
            tuple(m for m in group.member_entity_ids if m != entity_id)
            if member
            else (*group.member_entity_ids, entity_id)
        )
        changed.append(_touch(group, now, member_entity_ids=members))
    return tuple(changed)


def _touch(group: Group, now: float, **fields: object) -> Group:
    return replace(
        group,
        **fields,  # type: ignore[arg-type]
        last_update_time=now,
        modify_index=group.modify_index + 1,
    )


def _replace_alias(entity: Entity, alias: EntityAlias, now: float) -> Entity:
    aliases = tuple(alias if a.id == alias.id else a for a in entity.aliases)
    return replace(entity, aliases=aliases, last_update_time=now)


# -- entities ---------------------------------------------------------------------------------


def plan_entity_write(
    index: IdentityIndex,
    now: float,
    existing: Entity | None,
    *,
    name: str | None = None,
    metadata: Mapping[str, str] | None = None,
    policies: Sequence[str] | None = None,
    disabled: bool | None = None,
) -> tuple[Change, Entity]:
    """Create an entity (``existing`` is None) or update the given fields of one."""
    if name is not None and name != "":
        check_name(name, "entity")
        holder = index.entity_by_name(name)
        if holder is not None and (existing is None or holder.id != existing.id):
            raise InvalidRequest("entity name is already in use")
    checked_meta = None if metadata is None else check_metadata(metadata)
    checked_policies = None if policies is None else check_policies(policies)
    if existing is None:
        entity = Entity(
            id=new_id(),
            name=name or _auto_name("entity", index.entity_names),
            metadata=checked_meta or {},
            policies=checked_policies or (),
            disabled=bool(disabled),
            creation_time=now,
            last_update_time=now,
        )
    else:
        entity = replace(
            existing,
            name=name or existing.name,
            metadata=existing.metadata if checked_meta is None else checked_meta,
            policies=existing.policies if checked_policies is None else checked_policies,
            disabled=existing.disabled if disabled is None else disabled,
            last_update_time=now,
        )
    return Change(entities=(entity,)), entity


def plan_entity_delete(index: IdentityIndex, now: float, entity_ids: Sequence[str]) -> Change:
    """Delete entities with their aliases, and take them out of every group."""
    doomed = {entity_id for entity_id in entity_ids if entity_id in index.entities}
    groups: dict[str, Group] = {}
    for entity_id in doomed:
        for group_id in index.groups_of_entity.get(entity_id, ()):
            group = groups.get(group_id) or index.groups[group_id]
            members = tuple(m for m in group.member_entity_ids if m not in doomed)
            groups[group_id] = _touch(group, now, member_entity_ids=members)
    return Change(drop_entities=tuple(sorted(doomed)), groups=tuple(groups.values()))


def plan_merge(
    index: IdentityIndex,
    now: float,
    *,
    to_entity_id: str,
    from_entity_ids: Sequence[str],
    keep_alias_ids: Sequence[str] = (),
) -> tuple[Change, Entity]:
    """Move the aliases, policies and group memberships of ``from`` entities into ``to``."""
    target = _entity(index, to_entity_id, "to_entity_id")
    sources = [_entity(index, fid, "from_entity_ids") for fid in unique(from_entity_ids)]
    if not sources:
        raise InvalidRequest("missing from_entity_ids")
    if any(source.id == target.id for source in sources):
        raise InvalidRequest("cannot merge an entity into itself")
    if keep_alias_ids and len(sources) != 1:
        raise InvalidRequest("conflicting_alias_ids_to_keep needs exactly one from_entity_id")
    keep = set(keep_alias_ids)
    aliases = {alias.mount_accessor: alias for alias in target.aliases}
    merged_ids = list(target.merged_entity_ids)
    policies = set(target.policies)
    for source in sources:
        for alias in source.aliases:
            mine = aliases.get(alias.mount_accessor)
            if mine is not None:
                if alias.id in keep:
                    pass  # the incoming alias replaces the target's
                elif mine.id in keep:
                    continue  # the target's alias stays; the incoming one is dropped
                else:
                    raise InvalidRequest(
                        "conflicting mount accessors in aliases "
                        f"{mine.id} and {alias.id}: set conflicting_alias_ids_to_keep"
                    )
            aliases[alias.mount_accessor] = replace(
                alias,
                canonical_id=target.id,
                merged_from_canonical_ids=(*alias.merged_from_canonical_ids, source.id),
                last_update_time=now,
            )
        merged_ids += [source.id, *source.merged_entity_ids]
        policies.update(source.policies)
    merged = replace(
        target,
        aliases=tuple(aliases.values()),
        policies=tuple(sorted(policies)),
        merged_entity_ids=unique(merged_ids),
        last_update_time=now,
    )
    source_ids = {source.id for source in sources}
    groups: dict[str, Group] = {}
    for source_id in source_ids:
        for group_id in index.groups_of_entity.get(source_id, ()):
            group = groups.get(group_id) or index.groups[group_id]
            members = unique([target.id if m in source_ids else m for m in group.member_entity_ids])
            groups[group_id] = _touch(group, now, member_entity_ids=members)
    change = Change(
        entities=(merged,), drop_entities=tuple(sorted(source_ids)), groups=tuple(groups.values())
    )
    return change, merged


# -- entity aliases ---------------------------------------------------------------------------


def plan_alias_create(
    index: IdentityIndex,
    now: float,
    *,
    canonical_id: str,
    mount_accessor: str,
    mount_type: str,
    name: str,
    custom_metadata: Mapping[str, str] | None = None,
) -> tuple[Change, EntityAlias]:
    entity = _entity(index, canonical_id)
    normal = normalise(mount_type, name)
    custom = None if custom_metadata is None else check_metadata(custom_metadata, "custom_metadata")
    existing = index.alias_by_factors(mount_accessor, normal)
    if existing is not None:
        if existing.canonical_id != entity.id:
            # Security: this principal already belongs to another entity. Creating the alias
            # again must not re-point it (that would hand this login another identity).
            raise InvalidRequest("alias already exists for requested fields and another entity")
        if custom is None:
            return Change(), existing
        updated = replace(existing, custom_metadata=custom, last_update_time=now)
        return Change(entities=(_replace_alias(entity, updated, now),)), updated
    if entity.alias_on(mount_accessor) is not None:
        raise InvalidRequest("entity already has an alias on this mount accessor")
    alias = EntityAlias(
        id=new_id(),
        canonical_id=entity.id,
        mount_accessor=mount_accessor,
        mount_type=mount_type,
        name=normal,
        custom_metadata=custom or {},
        creation_time=now,
        last_update_time=now,
    )
    updated_entity = replace(entity, aliases=(*entity.aliases, alias), last_update_time=now)
    return Change(entities=(updated_entity,)), alias


def plan_alias_update(
    index: IdentityIndex,
    now: float,
    alias: EntityAlias,
    *,
    canonical_id: str | None = None,
    mount_accessor: str | None = None,
    mount_type: str | None = None,
    name: str | None = None,
    custom_metadata: Mapping[str, str] | None = None,
) -> tuple[Change, EntityAlias]:
    """Update an alias by ID. ``mount_type`` is that of ``mount_accessor`` when it changes."""
    accessor = mount_accessor or alias.mount_accessor
    kind = (mount_type or "") if mount_accessor else alias.mount_type
    # re-normalised for the (possibly new) mount type, so the factors stay canonical
    normal = normalise(kind, name or alias.name)
    if (accessor, normal) != alias.factors:
        clash = index.alias_by_factors(accessor, normal)
        if clash is not None and clash.id != alias.id:
            raise InvalidRequest("alias with this name and mount accessor already exists")
    custom = (
        alias.custom_metadata
        if custom_metadata is None
        else check_metadata(custom_metadata, "custom_metadata")
    )
    old_owner = _entity(index, alias.canonical_id)
    new_owner = old_owner if not canonical_id else _entity(index, canonical_id)
    other = new_owner.alias_on(accessor)
    if other is not None and other.id != alias.id:
        raise InvalidRequest("entity already has an alias on this mount accessor")
    updated = replace(
        alias,
        canonical_id=new_owner.id,
        mount_accessor=accessor,
        mount_type=kind,
        name=normal,
        custom_metadata=custom,
        last_update_time=now,
    )
    if new_owner.id == old_owner.id:
        return Change(entities=(_replace_alias(old_owner, updated, now),)), updated
    # An explicit re-point by canonical_id: the one way an alias changes hands (see above).
    updated = replace(
        updated,
        merged_from_canonical_ids=(*alias.merged_from_canonical_ids, old_owner.id),
    )
    left = replace(
        old_owner,
        aliases=tuple(a for a in old_owner.aliases if a.id != alias.id),
        last_update_time=now,
    )
    joined = replace(new_owner, aliases=(*new_owner.aliases, updated), last_update_time=now)
    return Change(entities=(left, joined)), updated


def plan_alias_delete(index: IdentityIndex, now: float, alias: EntityAlias) -> Change:
    owner = _entity(index, alias.canonical_id)
    remaining = tuple(a for a in owner.aliases if a.id != alias.id)
    return Change(entities=(replace(owner, aliases=remaining, last_update_time=now),))


def plan_drop_mount(index: IdentityIndex, now: float, mount_accessor: str) -> Change:
    """Forget every entity alias and group alias of a disabled auth mount."""
    entities = []
    for entity in index.entities.values():
        if entity.alias_on(mount_accessor) is not None:
            kept = tuple(a for a in entity.aliases if a.mount_accessor != mount_accessor)
            entities.append(replace(entity, aliases=kept, last_update_time=now))
    groups = [
        _touch(group, now, alias=None)
        for group in index.groups.values()
        if group.alias is not None and group.alias.mount_accessor == mount_accessor
    ]
    return Change(entities=tuple(entities), groups=tuple(groups))


# -- groups -----------------------------------------------------------------------------------


def plan_group_write(
    index: IdentityIndex,
    now: float,
    existing: Group | None,
    *,
    name: str | None = None,
    type: str | None = None,
    metadata: Mapping[str, str] | None = None,
    policies: Sequence[str] | None = None,
    member_entity_ids: Sequence[str] | None = None,
    member_group_ids: Sequence[str] | None = None,
) -> tuple[Change, Group]:
    kind = type or (existing.type if existing else GROUP_INTERNAL)
    if kind not in (GROUP_INTERNAL, GROUP_EXTERNAL):
        raise InvalidRequest('group type must be "internal" or "external"')
    if existing is not None and kind != existing.type:
        raise InvalidRequest("group type cannot be changed")
    if name:
        check_name(name, "group")
        holder = index.group_by_name(name)
        if holder is not None and (existing is None or holder.id != existing.id):
            raise InvalidRequest("group name is already in use")
    group_id = existing.id if existing else new_id()
    entity_ids = None
    if member_entity_ids is not None:
        if kind == GROUP_EXTERNAL and member_entity_ids:
            # external membership is what the auth method says at login, nothing else
            raise InvalidRequest("member entities can't be set manually for external groups")
        for entity_id in member_entity_ids:
            if entity_id not in index.entities:
                raise InvalidRequest(f"entity {entity_id!r} does not exist")
        entity_ids = unique(member_entity_ids)
    group_ids = None
    if member_group_ids is not None:
        above = index.ancestors([group_id]) | {group_id}
        for child in member_group_ids:
            if child not in index.groups:
                raise InvalidRequest(f"group {child!r} does not exist")
            if child in above:
                raise InvalidRequest(f"member group {child!r} would create a cycle")
        group_ids = unique(member_group_ids)
    checked_meta = None if metadata is None else check_metadata(metadata)
    checked_policies = None if policies is None else check_policies(policies)
    if existing is None:
        group = Group(
            id=group_id,
            name=name or _auto_name("group", index.group_names),
            type=kind,
            metadata=checked_meta or {},
            policies=checked_policies or (),
            member_entity_ids=entity_ids or (),
            member_group_ids=group_ids or (),
            creation_time=now,
            last_update_time=now,
            modify_index=1,
        )
    else:
        group = _touch(
            existing,
            now,
            name=name or existing.name,
            metadata=existing.metadata if checked_meta is None else checked_meta,
            policies=existing.policies if checked_policies is None else checked_policies,
            member_entity_ids=existing.member_entity_ids if entity_ids is None else entity_ids,
            member_group_ids=existing.member_group_ids if group_ids is None else group_ids,
        )
    return Change(groups=(group,)), group


def plan_group_delete(index: IdentityIndex, now: float, group_id: str) -> Change:
    """Delete a group (and its alias), and take it out of its parents' member lists."""
    if group_id not in index.groups:
        return Change()
    parents = [
        _touch(
            index.groups[parent],
            now,
            member_group_ids=tuple(
                g for g in index.groups[parent].member_group_ids if g != group_id
            ),
        )
        for parent in index.parent_group_ids(group_id)
        if parent != group_id
    ]
    return Change(drop_groups=(group_id,), groups=tuple(parents))


def plan_group_alias_write(
    index: IdentityIndex,
    now: float,
    existing: GroupAlias | None,
    *,
    name: str,
    mount_accessor: str,
    mount_type: str,
    canonical_id: str = "",
) -> tuple[Change, GroupAlias]:
    """Create (``existing`` None) or update a group alias. Without ``canonical_id`` a new
    alias gets a new external group, as in Vault."""
    normal = normalise(mount_type, name)
    clash = index.group_alias_by_factors(mount_accessor, normal)
    if clash is not None and (existing is None or clash.id != existing.id):
        raise InvalidRequest("combination of mount and group alias name is already in use")
    groups: list[Group] = []
    if canonical_id:
        group = index.groups.get(canonical_id)
        if group is None:
            raise InvalidRequest("invalid group ID given in canonical_id")
    elif existing is not None:
        group = index.groups[existing.canonical_id]
    else:
        _, group = plan_group_write(index, now, None, type=GROUP_EXTERNAL)
    if group.type != GROUP_EXTERNAL:
        raise InvalidRequest("alias can't be set on an internal group")
    if group.alias is not None and (existing is None or group.alias.id != existing.id):
        raise InvalidRequest("group already has an alias")
    alias = GroupAlias(
        id=existing.id if existing else new_id(),
        canonical_id=group.id,
        mount_accessor=mount_accessor,
        mount_type=mount_type,
        name=normal,
        creation_time=existing.creation_time if existing else now,
        last_update_time=now,
    )
    if existing is not None and existing.canonical_id != group.id:
        old = index.groups[existing.canonical_id]
        groups.append(_touch(old, now, alias=None, member_entity_ids=()))
    # A new name or mount means new members: the next logins decide them.
    members = (
        group.member_entity_ids
        if existing is not None and existing.factors == alias.factors
        else ()
    )
    groups.append(_touch(group, now, alias=alias, member_entity_ids=members))
    return Change(groups=tuple(groups)), alias


def plan_group_alias_delete(index: IdentityIndex, now: float, alias: GroupAlias) -> Change:
    group = index.groups.get(alias.canonical_id)
    if group is None:
        return Change()
    # Without its alias nothing refreshes the group's members: drop them with it.
    return Change(groups=(_touch(group, now, alias=None, member_entity_ids=()),))
