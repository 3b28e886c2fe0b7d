"""identity/group* and identity/group-alias*: groups and the aliases of external groups."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.core.identity._store import IdentityStore
from strongroom.core.identity._views import (
    Mounts,
    group_alias_data,
    group_data,
    keys_response,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

__all__ = ["GroupPaths"]

_ID = r"[^/]+"


@dataclass(frozen=True, slots=True)
class GroupArgs:
    id: str = ""
    name: str | None = None
    type: str | None = None
    metadata: dict[str, str] | None = None
    policies: list[str] | None = None
    member_entity_ids: list[str] | None = None
    member_group_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class GroupIdArgs:
    id: str
    name: str | None = None
    type: str | None = None
    metadata: dict[str, str] | None = None
    policies: list[str] | None = None
    member_entity_ids: list[str] | None = None
    member_group_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class GroupNameArgs:
    name: str
    type: str | None = None
    metadata: dict[str, str] | None = None
    policies: list[str] | None = None
    member_entity_ids: list[str] | None = None
    member_group_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class GroupAliasArgs:
    id: str = ""
    name: str = ""
    mount_accessor: str = ""
    canonical_id: str = ""


@dataclass(frozen=True, slots=True)
class GroupAliasIdArgs:
    id: str
    name: str = ""
    mount_accessor: str = ""
    canonical_id: str = ""


class GroupPaths:
    def __init__(self, store: IdentityStore, mounts: Mounts) -> None:
        self.store = store
        self.mounts = mounts

    @staticmethod
    def _written(group_id: str, name: str, created: bool) -> Response | None:
        return Response(data={"id": group_id, "name": name}) if created else None

    # -- groups ----------------------------------------------------------------------------
    async def write(self, request: Request, args: GroupArgs) -> Response | None:
        # Vault: with an id, update that group; else with the name of a group, update it.
        group, created = await self.store.write_group(
            args.id or None,
            lookup_name=args.name if not args.id else None,
            name=args.name,
            type=args.type,
            metadata=args.metadata,
            policies=args.policies,
            member_entity_ids=args.member_entity_ids,
            member_group_ids=args.member_group_ids,
        )
        return self._written(group.id, group.name, created)

    async def exists_id(self, request: Request, args: GroupIdArgs) -> bool:
        return self.store.group(args.id) is not None

    async def read_id(self, request: Request, args: GroupIdArgs) -> Response | None:
        group = self.store.group(args.id)
        return None if group is None else Response(data=group_data(self.store, group, self.mounts))

    async def write_id(self, request: Request, args: GroupIdArgs) -> Response | None:
        group, created = await self.store.write_group(
            args.id,
            name=args.name,
            type=args.type,
            metadata=args.metadata,
            policies=args.policies,
            member_entity_ids=args.member_entity_ids,
            member_group_ids=args.member_group_ids,
        )
        return self._written(group.id, group.name, created)

    async def delete_id(self, request: Request, args: GroupIdArgs) -> Response | None:
        await self.store.delete_group(args.id)
        return None

    async def list_ids(self, request: Request, args: object) -> Response | None:
        groups = sorted(self.store.index.groups.values(), key=lambda g: g.id)
        info = {
            g.id: {"name": g.name, "num_member_entities": len(g.member_entity_ids)} for g in groups
        }
        return keys_response([g.id for g in groups], info)

    async def exists_name(self, request: Request, args: GroupNameArgs) -> bool:
        return self.store.index.group_by_name(args.name) is not None

    async def read_name(self, request: Request, args: GroupNameArgs) -> Response | None:
        group = self.store.index.group_by_name(args.name)
        return None if group is None else Response(data=group_data(self.store, group, self.mounts))

    async def write_name(self, request: Request, args: GroupNameArgs) -> Response | None:
        group, created = await self.store.write_group(
            None,
            lookup_name=args.name,
            name=args.name,
            type=args.type,
            metadata=args.metadata,
            policies=args.policies,
            member_entity_ids=args.member_entity_ids,
            member_group_ids=args.member_group_ids,
        )
        return self._written(group.id, group.name, created)

    async def delete_name(self, request: Request, args: GroupNameArgs) -> Response | None:
        group = self.store.index.group_by_name(args.name)
        if group is not None:
            await self.store.delete_group(group.id)
        return None

    async def list_names(self, request: Request, args: object) -> Response | None:
        return keys_response(sorted(g.name for g in self.store.index.groups.values()))

    # -- group aliases ---------------------------------------------------------------------
    async def write_alias(self, request: Request, args: GroupAliasArgs) -> Response | None:
        return await self.write_alias_id(
            request,
            GroupAliasIdArgs(
                id=args.id,
                name=args.name,
                mount_accessor=args.mount_accessor,
                canonical_id=args.canonical_id,
            ),
        )

    async def exists_alias(self, request: Request, args: GroupAliasIdArgs) -> bool:
        return args.id in self.store.index.group_aliases

    async def read_alias(self, request: Request, args: GroupAliasIdArgs) -> Response | None:
        alias = self.store.index.group_aliases.get(args.id)
        return None if alias is None else Response(data=group_alias_data(alias, self.mounts))

    async def write_alias_id(self, request: Request, args: GroupAliasIdArgs) -> Response | None:
        existing = self.store.index.group_aliases.get(args.id) if args.id else None
        if args.id and existing is None:
            raise InvalidRequest("group alias not found")
        name = args.name or (existing.name if existing else "")
        accessor = args.mount_accessor or (existing.mount_accessor if existing else "")
        if not name:
            raise InvalidRequest("missing alias name")
        alias = await self.store.write_group_alias(
            args.id or None,
            name=name,
            mount_accessor=accessor,
            mount_type=self.mounts.check(accessor),
            canonical_id=args.canonical_id,
        )
        return Response(data={"id": alias.id, "canonical_id": alias.canonical_id})

    async def delete_alias(self, request: Request, args: GroupAliasIdArgs) -> Response | None:
        await self.store.delete_group_alias(args.id)
        return None

    async def list_aliases(self, request: Request, args: object) -> Response | None:
        aliases = sorted(self.store.index.group_aliases.values(), key=lambda a: a.id)
        info = {
            a.id: {
                "canonical_id": a.canonical_id,
                "mount_accessor": a.mount_accessor,
                "mount_type": a.mount_type,
                "name": a.name,
            }
            for a in aliases
        }
        return keys_response([a.id for a in aliases], info)

    def paths(self) -> list[Path]:
        group_ops = {
            Operation.READ: self.read_id,
            Operation.UPDATE: self.write_id,
            Operation.DELETE: self.delete_id,
        }
        return [
            Path(
                pattern=r"group",
                args=GroupArgs,
                operations={Operation.UPDATE: self.write},
                synopsis="Create a group, or update one given its id or name",
                description=_GROUP_HELP,
            ),
            Path(
                pattern=r"group/id/?",
                operations={Operation.LIST: self.list_ids},
                synopsis="List groups by ID",
            ),
            Path(
                pattern=rf"group/id/(?P<id>{_ID})",
                args=GroupIdArgs,
                existence_check=self.exists_id,
                operations=group_ops,
                synopsis="Read, update or delete a group by ID",
                description=_GROUP_HELP,
            ),
            Path(
                pattern=r"group/name/?",
                operations={Operation.LIST: self.list_names},
                synopsis="List groups by name",
            ),
            Path(
                pattern=rf"group/name/(?P<name>{_ID})",
                args=GroupNameArgs,
                existence_check=self.exists_name,
                operations={
                    Operation.READ: self.read_name,
                    Operation.UPDATE: self.write_name,
                    Operation.DELETE: self.delete_name,
                },
                synopsis="Create, read, update or delete a group by name",
                description=_GROUP_HELP,
            ),
            Path(
                pattern=r"group-alias",
                args=GroupAliasArgs,
                operations={Operation.UPDATE: self.write_alias},
                synopsis="Create a group alias, or update one given its id",
                description=_GROUP_ALIAS_HELP,
            ),
            Path(
                pattern=r"group-alias/id/?",
                operations={Operation.LIST: self.list_aliases},
                synopsis="List group aliases by ID",
            ),
            Path(
                pattern=rf"group-alias/id/(?P<id>{_ID})",
                args=GroupAliasIdArgs,
                existence_check=self.exists_alias,
                operations={
                    Operation.READ: self.read_alias,
                    Operation.UPDATE: self.write_alias_id,
                    Operation.DELETE: self.delete_alias,
                },
                synopsis="Read, update or delete a group alias by ID",
                description=_GROUP_ALIAS_HELP,
            ),
        ]


_GROUP_HELP = """\
A group gives its policies to its member entities and to the entities of its member groups
(member_group_ids, nested to any depth; cycles are refused). An internal group lists its
members; an external group (type "external") gets them from logins through its alias."""

_GROUP_ALIAS_HELP = """\
A group alias names an external group in an auth mount (mount_accessor, name: e.g. a value
of a JWT groups claim). At each login through that mount, the entity joins or leaves the
group according to the groups the auth method reports. Without canonical_id, a new
external group is created for the alias."""
