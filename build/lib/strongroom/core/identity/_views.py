"""Response shapes (as Vault documents them) for identity records, and the mount lookups
core lends the identity backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.core.identity._records import Entity, EntityAlias, Group, GroupAlias
from strongroom.core.identity._store import IdentityStore
from strongroom.errors import InvalidRequest
from strongroom.framework import format_time
from strongroom.logical import Response

__all__ = [
    "Mounts",
    "alias_data",
    "entity_data",
    "group_alias_data",
    "group_data",
    "keys_response",
]

NAMESPACE_ID = "root"


@dataclass(frozen=True, slots=True)
class Mounts:
    """Core's mount table, seen through accessors.

    ``exists`` decides whether an accessor names a live auth mount (aliases may only be
    made for those); ``type_of`` gives its type (for name normalisation); ``path_of`` its
    path, only for display.
    """

    exists: Callable[[str], bool]
    type_of: Callable[[str], str | None]
    path_of: Callable[[str], str | None]

    def check(self, accessor: str) -> str:
        """The mount type of a valid accessor.

        Raises:
            InvalidRequest: the accessor is empty or names no mount.
        """
        if not accessor or not self.exists(accessor):
            raise InvalidRequest("invalid mount accessor")
        return self.type_of(accessor) or ""


def keys_response(keys: list[str], key_info: dict[str, Any] | None = None) -> Response | None:
    if not keys:
        return None
    data: dict[str, Any] = {"keys": keys}
    if key_info is not None:
        data["key_info"] = key_info
    return Response(data=data)


def alias_data(alias: EntityAlias, mounts: Mounts) -> dict[str, Any]:
    return {
        "id": alias.id,
        "canonical_id": alias.canonical_id,
        "mount_accessor": alias.mount_accessor,
        "mount_path": mounts.path_of(alias.mount_accessor) or "",
        "mount_type": alias.mount_type,
        "name": alias.name,
        "metadata": dict(alias.metadata),
        "custom_metadata": dict(alias.custom_metadata),
        "creation_time": format_time(alias.creation_time),
        "last_update_time": format_time(alias.last_update_time),
        "local": False,
        "merged_from_canonical_ids": list(alias.merged_from_canonical_ids) or None,
        "namespace_id": NAMESPACE_ID,
    }


def entity_data(store: IdentityStore, entity: Entity, mounts: Mounts) -> dict[str, Any]:
    direct, inherited = store.index.group_ids_of(entity.id)
    return {
        "id": entity.id,
        "name": entity.name,
        "aliases": [alias_data(alias, mounts) for alias in entity.aliases],
        "metadata": dict(entity.metadata),
        "policies": list(entity.policies),
        "disabled": entity.disabled,
        "creation_time": format_time(entity.creation_time),
        "last_update_time": format_time(entity.last_update_time),
        "direct_group_ids": direct,
        "inherited_group_ids": inherited,
        "group_ids": sorted({*direct, *inherited}),
        "merged_entity_ids": list(entity.merged_entity_ids) or None,
        "namespace_id": NAMESPACE_ID,
    }


def group_alias_data(alias: GroupAlias, mounts: Mounts) -> dict[str, Any]:
    return {
        "id": alias.id,
        "canonical_id": alias.canonical_id,
        "mount_accessor": alias.mount_accessor,
        "mount_path": mounts.path_of(alias.mount_accessor) or "",
        "mount_type": alias.mount_type,
        "name": alias.name,
        "metadata": None,
        "custom_metadata": None,  # Vault's group aliases carry none, but send the key
        "creation_time": format_time(alias.creation_time),
        "last_update_time": format_time(alias.last_update_time),
        "local": False,
        "merged_from_canonical_ids": None,
        "namespace_id": NAMESPACE_ID,
    }


def group_data(store: IdentityStore, group: Group, mounts: Mounts) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "type": group.type,
        "metadata": dict(group.metadata),
        "policies": list(group.policies),
        "member_entity_ids": list(group.member_entity_ids),
        "member_group_ids": list(group.member_group_ids),
        "parent_group_ids": store.index.parent_group_ids(group.id),
        "alias": {} if group.alias is None else group_alias_data(group.alias, mounts),
        "creation_time": format_time(group.creation_time),
        "last_update_time": format_time(group.last_update_time),
        "modify_index": group.modify_index,
        "namespace_id": NAMESPACE_ID,
    }
