"""Identity records (entities, aliases, groups, group aliases), their storage encoding, and
the input rules every writer shares: alias-name normalisation, names, policies, metadata.

Records are frozen: a change is a new record, written through to storage before the
in-memory index sees it. An entity is stored together with its aliases (one key,
``entity/<id>``) and a group with its alias (``group/<id>``), so creating an entity and
its first alias is one write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import orjson

from strongroom.core.policy import ROOT_POLICY_NAME, normalize_policy_name
from strongroom.errors import InvalidRequest

__all__ = [
    "CASE_INSENSITIVE_MOUNT_TYPES",
    "GROUP_EXTERNAL",
    "GROUP_INTERNAL",
    "Entity",
    "EntityAlias",
    "Group",
    "GroupAlias",
    "check_metadata",
    "check_name",
    "check_policies",
    "decode_entity",
    "decode_group",
    "encode_entity",
    "encode_group",
    "name_key",
    "normalise",
]

GROUP_INTERNAL: Final = "internal"
GROUP_EXTERNAL: Final = "external"

# Auth methods whose principals are case-insensitive: the method lower-cases the login name
# before it looks the user up, so "Alice" and "alice" are one user. Every other method
# (approle role IDs, JWT/OIDC claims, certificates, Kubernetes service accounts) keeps case,
# because there "Alice" and "alice" can be two different principals.
CASE_INSENSITIVE_MOUNT_TYPES: Final = frozenset({"userpass", "ldap"})

_MAX_ALIAS_NAME: Final = 1024
_MAX_NAME: Final = 128
_MAX_META_KEYS: Final = 64
_MAX_META_KEY: Final = 128
_MAX_META_VALUE: Final = 512
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
# Entity and group names: ASCII letters, digits and "_.@-", starting with a letter or digit.
# They appear in URL paths (entity/name/<name>) and fill policy templates, so nothing that
# could be a path separator, a glob or a look-alike Unicode character is allowed.
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@\-]*")
_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})


def normalise(mount_type: str, name: str) -> str:
    """The canonical form of an alias name on a mount of ``mount_type``.

    Surrounding whitespace is stripped, and for :data:`CASE_INSENSITIVE_MOUNT_TYPES` the
    name is lower-cased (userpass and LDAP lower-case the login name themselves). Aliases are
    indexed by ``(mount_accessor, normalise(mount_type, name))``, so an alias matches exactly
    the principals the auth method considers the same, and no spelling (case, spaces) of one
    principal reaches another principal's entity. Auth methods must apply the same rule; at
    login :meth:`IdentityStore.login_entity` refuses a name that is not already normal, so a
    divergence shows up as a failed login instead of two principals sharing an entity.

    Raises:
        InvalidRequest: the name is empty (after stripping), too long, or holds control
            characters.
    """
    if not isinstance(name, str):
        raise InvalidRequest("alias name must be a string")
    cleaned = name.strip()
    if not cleaned:
        raise InvalidRequest("alias name must not be empty")
    if len(cleaned) > _MAX_ALIAS_NAME:
        raise InvalidRequest(f"alias name must be at most {_MAX_ALIAS_NAME} characters")
    if _CONTROL.search(cleaned):
        raise InvalidRequest("alias name must not contain control characters")
    return cleaned.lower() if mount_type in CASE_INSENSITIVE_MOUNT_TYPES else cleaned


def name_key(name: str) -> str:
    """Entity and group names are unique regardless of case (as in Vault); this is the key."""
    return name.lower()


def check_name(name: str, what: str) -> str:
    if len(name) > _MAX_NAME or _NAME.fullmatch(name) is None:
        raise InvalidRequest(
            f"{what} name must be 1-{_MAX_NAME} ASCII letters, digits or '_.@-', "
            "starting with a letter or digit"
        )
    return name


def check_policies(policies: Iterable[str]) -> tuple[str, ...]:
    """Normalised, de-duplicated, sorted policy names.

    Raises:
        InvalidRequest: a name is invalid, or is ``root``: identity must never be a way to
            hand out root (Vault refuses identity policies that contain root as well).
    """
    out: set[str] = set()
    for raw in policies:
        name = normalize_policy_name(raw)
        if name == ROOT_POLICY_NAME:
            raise InvalidRequest('identity policies cannot contain "root"')
        out.add(name)
    return tuple(sorted(out))


def check_metadata(metadata: Mapping[str, str], what: str = "metadata") -> Mapping[str, str]:
    if len(metadata) > _MAX_META_KEYS:
        raise InvalidRequest(f"{what}: at most {_MAX_META_KEYS} keys")
    for key, value in metadata.items():
        if not key or len(key) > _MAX_META_KEY or _CONTROL.search(key):
            raise InvalidRequest(f"{what}: keys must be 1-{_MAX_META_KEY} printable characters")
        if len(value) > _MAX_META_VALUE or _CONTROL.search(value):
            raise InvalidRequest(
                f"{what}: values must be at most {_MAX_META_VALUE} printable characters"
            )
    return _freeze(metadata)


def _freeze(mapping: Mapping[str, str]) -> Mapping[str, str]:
    if not mapping:
        return _EMPTY
    return MappingProxyType({str(k): str(v) for k, v in mapping.items()})


@dataclass(frozen=True, slots=True)
class EntityAlias:
    """One principal of one auth mount, bound to an entity (``canonical_id``).

    ``name`` is normalised (see :func:`normalise`); ``metadata`` comes from the auth method
    at each login, ``custom_metadata`` from operators.
    """

    id: str
    canonical_id: str
    mount_accessor: str
    mount_type: str
    name: str
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    custom_metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    creation_time: float = 0.0
    last_update_time: float = 0.0
    merged_from_canonical_ids: tuple[str, ...] = ()

    @property
    def factors(self) -> tuple[str, str]:
        return (self.mount_accessor, self.name)


@dataclass(frozen=True, slots=True)
class Entity:
    id: str
    name: str
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    policies: tuple[str, ...] = ()
    disabled: bool = False
    aliases: tuple[EntityAlias, ...] = ()
    creation_time: float = 0.0
    last_update_time: float = 0.0
    merged_entity_ids: tuple[str, ...] = ()

    def alias_on(self, mount_accessor: str) -> EntityAlias | None:
        for alias in self.aliases:
            if alias.mount_accessor == mount_accessor:
                return alias
        return None


@dataclass(frozen=True, slots=True)
class GroupAlias:
    """Names an external group in an auth method (e.g. a JWT ``groups`` claim value)."""

    id: str
    canonical_id: str
    mount_accessor: str
    mount_type: str
    name: str
    creation_time: float = 0.0
    last_update_time: float = 0.0

    @property
    def factors(self) -> tuple[str, str]:
        return (self.mount_accessor, self.name)


@dataclass(frozen=True, slots=True)
class Group:
    """A group. ``member_group_ids`` are child groups: their entities inherit this group's
    policies. External groups get ``member_entity_ids`` only from logins."""

    id: str
    name: str
    type: str = GROUP_INTERNAL
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    policies: tuple[str, ...] = ()
    member_entity_ids: tuple[str, ...] = ()
    member_group_ids: tuple[str, ...] = ()
    alias: GroupAlias | None = None
    creation_time: float = 0.0
    last_update_time: float = 0.0
    modify_index: int = 0


# -- storage encoding ------------------------------------------------------------------------


def _alias_doc(alias: EntityAlias) -> dict[str, Any]:
    return {
        "id": alias.id,
        "canonical_id": alias.canonical_id,
        "mount_accessor": alias.mount_accessor,
        "mount_type": alias.mount_type,
        "name": alias.name,
        "metadata": dict(alias.metadata),
        "custom_metadata": dict(alias.custom_metadata),
        "creation_time": alias.creation_time,
        "last_update_time": alias.last_update_time,
        "merged_from_canonical_ids": list(alias.merged_from_canonical_ids),
    }


def encode_entity(entity: Entity) -> bytes:
    return orjson.dumps(
        {
            "id": entity.id,
            "name": entity.name,
            "metadata": dict(entity.metadata),
            "policies": list(entity.policies),
            "disabled": entity.disabled,
            "aliases": [_alias_doc(alias) for alias in entity.aliases],
            "creation_time": entity.creation_time,
            "last_update_time": entity.last_update_time,
            "merged_entity_ids": list(entity.merged_entity_ids),
        }
    )


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value or ())


def decode_entity(raw: bytes) -> Entity:
    doc = orjson.loads(raw)
    entity_id = str(doc["id"])
    aliases = tuple(
        EntityAlias(
            id=str(a["id"]),
            # the alias belongs to the record it is stored in, whatever the field says
            canonical_id=entity_id,
            mount_accessor=str(a["mount_accessor"]),
            mount_type=str(a.get("mount_type", "")),
            name=str(a["name"]),
            metadata=_freeze(a.get("metadata") or {}),
            custom_metadata=_freeze(a.get("custom_metadata") or {}),
            creation_time=float(a.get("creation_time", 0.0)),
            last_update_time=float(a.get("last_update_time", 0.0)),
            merged_from_canonical_ids=_strs(a.get("merged_from_canonical_ids")),
        )
        for a in doc.get("aliases") or ()
    )
    return Entity(
        id=entity_id,
        name=str(doc["name"]),
        metadata=_freeze(doc.get("metadata") or {}),
        policies=_strs(doc.get("policies")),
        disabled=bool(doc.get("disabled", False)),
        aliases=aliases,
        creation_time=float(doc.get("creation_time", 0.0)),
        last_update_time=float(doc.get("last_update_time", 0.0)),
        merged_entity_ids=_strs(doc.get("merged_entity_ids")),
    )


def encode_group(group: Group) -> bytes:
    alias = group.alias
    return orjson.dumps(
        {
            "id": group.id,
            "name": group.name,
            "type": group.type,
            "metadata": dict(group.metadata),
            "policies": list(group.policies),
            "member_entity_ids": list(group.member_entity_ids),
            "member_group_ids": list(group.member_group_ids),
            "alias": None
            if alias is None
            else {
                "id": alias.id,
                "mount_accessor": alias.mount_accessor,
                "mount_type": alias.mount_type,
                "name": alias.name,
                "creation_time": alias.creation_time,
                "last_update_time": alias.last_update_time,
            },
            "creation_time": group.creation_time,
            "last_update_time": group.last_update_time,
            "modify_index": group.modify_index,
        }
    )


def decode_group(raw: bytes) -> Group:
    doc = orjson.loads(raw)
    group_id = str(doc["id"])
    raw_alias = doc.get("alias")
    alias = None
    if raw_alias:
        alias = GroupAlias(
            id=str(raw_alias["id"]),
            canonical_id=group_id,
            mount_accessor=str(raw_alias["mount_accessor"]),
            mount_type=str(raw_alias.get("mount_type", "")),
            name=str(raw_alias["name"]),
            creation_time=float(raw_alias.get("creation_time", 0.0)),
            last_update_time=float(raw_alias.get("last_update_time", 0.0)),
        )
    return Group(
        id=group_id,
        name=str(doc["name"]),
        type=str(doc.get("type", GROUP_INTERNAL)),
        metadata=_freeze(doc.get("metadata") or {}),
        policies=_strs(doc.get("policies")),
        member_entity_ids=_strs(doc.get("member_entity_ids")),
        member_group_ids=_strs(doc.get("member_group_ids")),
        alias=alias,
        creation_time=float(doc.get("creation_time", 0.0)),
        last_update_time=float(doc.get("last_update_time", 0.0)),
        modify_index=int(doc.get("modify_index", 0)),
    )


def unique(items: Sequence[str]) -> tuple[str, ...]:
    """De-duplicated, order kept."""
    return tuple(dict.fromkeys(items))
