"""The in-memory identity index: every entity, alias, group and group alias, with the
lookups and the group graph the store and the path handlers need. Pure: no I/O, no clock.

The index is only changed through :meth:`IdentityIndex.apply` with a :class:`Change` that
has already been written to storage, so memory never holds what storage does not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from strongroom.core.identity._records import Entity, EntityAlias, Group, GroupAlias, name_key

__all__ = ["Change", "IdentityIndex"]

log = logging.getLogger("strongroom.identity")


@dataclass(frozen=True, slots=True)
class Change:
    """Records to write (whole records: an entity carries its aliases) and IDs to delete."""

    entities: tuple[Entity, ...] = ()
    drop_entities: tuple[str, ...] = ()
    groups: tuple[Group, ...] = ()
    drop_groups: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entities or self.drop_entities or self.groups or self.drop_groups)


class IdentityIndex:
    __slots__ = (
        "alias_factors",
        "aliases",
        "entities",
        "entity_names",
        "group_alias_factors",
        "group_aliases",
        "group_names",
        "groups",
        "groups_of_entity",
        "parents",
    )

    def __init__(self) -> None:
        self.entities: dict[str, Entity] = {}
        self.entity_names: dict[str, str] = {}
        self.aliases: dict[str, EntityAlias] = {}
        self.alias_factors: dict[tuple[str, str], str] = {}
        self.groups: dict[str, Group] = {}
        self.group_names: dict[str, str] = {}
        self.group_aliases: dict[str, GroupAlias] = {}
        self.group_alias_factors: dict[tuple[str, str], str] = {}
        # entity ID -> IDs of the groups that list it in member_entity_ids
        self.groups_of_entity: dict[str, set[str]] = {}
        # group ID -> IDs of the groups that list it in member_group_ids
        self.parents: dict[str, set[str]] = {}

    # -- loading ---------------------------------------------------------------------------
    def load(self, entities: Iterable[Entity], groups: Iterable[Group]) -> None:
        """Index records read from storage. A record that would collide with one already
        indexed (same name or alias factors: only possible if storage was edited behind our
        back) is skipped and logged, never merged: first come (by ID order) keeps it."""
        for entity in sorted(entities, key=lambda e: e.id):
            clash = self.entity_names.get(name_key(entity.name))
            if clash is not None:
                log.error("identity: entity %s skipped: name clashes with %s", entity.id, clash)
                continue
            kept = []
            for alias in entity.aliases:
                owner = self.alias_factors.get(alias.factors)
                if owner is not None or alias.id in self.aliases:
                    log.error("identity: alias %s skipped: duplicate of %s", alias.id, owner)
                    continue
                self.alias_factors[alias.factors] = alias.id
                self.aliases[alias.id] = alias
                kept.append(alias)
            if len(kept) != len(entity.aliases):
                for alias in kept:
                    del self.alias_factors[alias.factors]
                    del self.aliases[alias.id]
                entity = _with_aliases(entity, tuple(kept))
            self._index_entity(entity)
        for group in sorted(groups, key=lambda g: g.id):
            if name_key(group.name) in self.group_names:
                log.error("identity: group %s skipped: name clash", group.id)
                continue
            if group.alias is not None and group.alias.factors in self.group_alias_factors:
                log.error("identity: group %s alias dropped: duplicate", group.id)
                group = _group_without_alias(group)
            self._index_group(group)

    # -- changes ---------------------------------------------------------------------------
    def apply(self, change: Change) -> None:
        for entity_id in change.drop_entities:
            self._unindex_entity(entity_id)
        for group_id in change.drop_groups:
            self._unindex_group(group_id)
        for entity in change.entities:
            self._unindex_entity(entity.id)
        for group in change.groups:
            self._unindex_group(group.id)
        for entity in change.entities:
            self._index_entity(entity)
        for group in change.groups:
            self._index_group(group)

    def _index_entity(self, entity: Entity) -> None:
        self.entities[entity.id] = entity
        self.entity_names[name_key(entity.name)] = entity.id
        for alias in entity.aliases:
            self.aliases[alias.id] = alias
            self.alias_factors[alias.factors] = alias.id

    def _unindex_entity(self, entity_id: str) -> None:
        old = self.entities.pop(entity_id, None)
        if old is None:
            return
        if self.entity_names.get(name_key(old.name)) == entity_id:
            del self.entity_names[name_key(old.name)]
        for alias in old.aliases:
            self.aliases.pop(alias.id, None)
            if self.alias_factors.get(alias.factors) == alias.id:
                del self.alias_factors[alias.factors]

    def _index_group(self, group: Group) -> None:
        self.groups[group.id] = group
        self.group_names[name_key(group.name)] = group.id
        if group.alias is not None:
            self.group_aliases[group.alias.id] = group.alias
            self.group_alias_factors[group.alias.factors] = group.alias.id
        for entity_id in group.member_entity_ids:
            self.groups_of_entity.setdefault(entity_id, set()).add(group.id)
        for child in group.member_group_ids:
            self.parents.setdefault(child, set()).add(group.id)

    def _unindex_group(self, group_id: str) -> None:
        old = self.groups.pop(group_id, None)
        if old is None:
            return
        if self.group_names.get(name_key(old.name)) == group_id:
            del self.group_names[name_key(old.name)]
        if old.alias is not None:
            self.group_aliases.pop(old.alias.id, None)
            if self.group_alias_factors.get(old.alias.factors) == old.alias.id:
                del self.group_alias_factors[old.alias.factors]
        for entity_id in old.member_entity_ids:
            _discard(self.groups_of_entity, entity_id, group_id)
        for child in old.member_group_ids:
            _discard(self.parents, child, group_id)

    # -- lookups ---------------------------------------------------------------------------
    def entity_by_name(self, name: str) -> Entity | None:
        entity_id = self.entity_names.get(name_key(name))
        return None if entity_id is None else self.entities.get(entity_id)

    def group_by_name(self, name: str) -> Group | None:
        group_id = self.group_names.get(name_key(name))
        return None if group_id is None else self.groups.get(group_id)

    def alias_by_factors(self, mount_accessor: str, name: str) -> EntityAlias | None:
        alias_id = self.alias_factors.get((mount_accessor, name))
        return None if alias_id is None else self.aliases.get(alias_id)

    def group_alias_by_factors(self, mount_accessor: str, name: str) -> GroupAlias | None:
        alias_id = self.group_alias_factors.get((mount_accessor, name))
        return None if alias_id is None else self.group_aliases.get(alias_id)

    def external_groups_on(self, mount_accessor: str) -> list[Group]:
        """External groups whose alias names a group of ``mount_accessor``."""
        out = []
        for alias in self.group_aliases.values():
            if alias.mount_accessor == mount_accessor:
                group = self.groups.get(alias.canonical_id)
                if group is not None:
                    out.append(group)
        return out

    # -- the group graph -------------------------------------------------------------------
    def direct_group_ids(self, entity_id: str) -> list[str]:
        return sorted(self.groups_of_entity.get(entity_id, ()))

    def ancestors(self, group_ids: Sequence[str]) -> set[str]:
        """Every group that contains one of ``group_ids`` through ``member_group_ids``,
        transitively. Cycle-safe: each group is visited once (writes refuse cycles, but a
        loaded store is not trusted to be acyclic)."""
        seen: set[str] = set()
        pending = list(group_ids)
        while pending:
            current = pending.pop()
            for parent in self.parents.get(current, ()):
                if parent not in seen:
                    seen.add(parent)
                    pending.append(parent)
        return seen

    def group_ids_of(self, entity_id: str) -> tuple[list[str], list[str]]:
        """``(direct, inherited)`` group IDs of an entity, each sorted, disjoint."""
        direct = self.direct_group_ids(entity_id)
        inherited = self.ancestors(direct) - set(direct)
        return direct, sorted(inherited)

    def parent_group_ids(self, group_id: str) -> list[str]:
        return sorted(self.parents.get(group_id, ()))


def _discard(mapping: dict[str, set[str]], key: str, value: str) -> None:
    members = mapping.get(key)
    if members is None:
        return
    members.discard(value)
    if not members:
        del mapping[key]


def _with_aliases(entity: Entity, aliases: tuple[EntityAlias, ...]) -> Entity:
    return replace(entity, aliases=aliases)


def _group_without_alias(group: Group) -> Group:
    return replace(group, alias=None)
