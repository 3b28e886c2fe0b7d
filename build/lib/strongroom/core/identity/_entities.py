"""identity/entity* and identity/entity-alias*: entities and their aliases."""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.core.identity._records import normalise
from strongroom.core.identity._store import IdentityStore
from strongroom.core.identity._views import Mounts, alias_data, entity_data, keys_response
from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

__all__ = ["EntityPaths"]

_ID = r"[^/]+"


@dataclass(frozen=True, slots=True)
class EntityArgs:
    id: str = ""
    name: str | None = None
    metadata: dict[str, str] | None = None
    policies: list[str] | None = None
    disabled: bool | None = None


@dataclass(frozen=True, slots=True)
class EntityIdArgs:
    id: str
    name: str | None = None
    metadata: dict[str, str] | None = None
    policies: list[str] | None = None
    disabled: bool | None = None


@dataclass(frozen=True, slots=True)
class EntityNameArgs:
    name: str
    metadata: dict[str, str] | None = None
    policies: list[str] | None = None
    disabled: bool | None = None


@dataclass(frozen=True, slots=True)
class BatchDeleteArgs:
    entity_ids: list[str]


@dataclass(frozen=True, slots=True)
class MergeArgs:
    to_entity_id: str
    from_entity_ids: list[str]
    force: bool = False
    conflicting_alias_ids_to_keep: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AliasArgs:
    id: str = ""
    name: str | None = None
    canonical_id: str | None = None
    mount_accessor: str | None = None
    custom_metadata: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class AliasIdArgs:
    id: str
    name: str | None = None
    canonical_id: str | None = None
    mount_accessor: str | None = None
    custom_metadata: dict[str, str] | None = None


class EntityPaths:
    def __init__(self, store: IdentityStore, mounts: Mounts) -> None:
        self.store = store
        self.mounts = mounts

    # -- entities --------------------------------------------------------------------------
    def _written(self, entity_id: str, name: str, created: bool) -> Response | None:
        # Vault answers a create with the new ID and name (and no aliases yet), and an
        # update with 204.
        if not created:
            return None
        return Response(data={"id": entity_id, "name": name, "aliases": None})

    async def write(self, request: Request, args: EntityArgs) -> Response | None:
        # Vault: without an ID, a name that already exists names the entity to update
        # (find-or-create by name, one atomic change in the store)
        entity, created = await self.store.write_entity(
            args.id or None,
            lookup_name=None if args.id or args.name is None else args.name,
            name=args.name,
            metadata=args.metadata,
            policies=args.policies,
            disabled=args.disabled,
        )
        return self._written(entity.id, entity.name, created)

    async def exists_id(self, request: Request, args: EntityIdArgs) -> bool:
        return self.store.entity(args.id) is not None

    async def read_id(self, request: Request, args: EntityIdArgs) -> Response | None:
        entity = self.store.entity(args.id)
        if entity is None:
            return None
        return Response(data=entity_data(self.store, entity, self.mounts))

    async def write_id(self, request: Request, args: EntityIdArgs) -> Response | None:
        entity, created = await self.store.write_entity(
            args.id,
            name=args.name,
            metadata=args.metadata,
            policies=args.policies,
            disabled=args.disabled,
        )
        return self._written(entity.id, entity.name, created)

    async def delete_id(self, request: Request, args: EntityIdArgs) -> Response | None:
        await self.store.delete_entities([args.id])
        return None

    async def list_ids(self, request: Request, args: object) -> Response | None:
        entities = sorted(self.store.index.entities.values(), key=lambda e: e.id)
        info = {
            e.id: {
                "name": e.name,
                "aliases": [
                    {"id": a.id, "mount_accessor": a.mount_accessor, "name": a.name}
                    for a in e.aliases
                ],
            }
            for e in entities
        }
        return keys_response([e.id for e in entities], info)

    async def exists_name(self, request: Request, args: EntityNameArgs) -> bool:
        return self.store.index.entity_by_name(args.name) is not None

    async def read_name(self, request: Request, args: EntityNameArgs) -> Response | None:
        entity = self.store.index.entity_by_name(args.name)
        if entity is None:
            return None
        return Response(data=entity_data(self.store, entity, self.mounts))

    async def write_name(self, request: Request, args: EntityNameArgs) -> Response | None:
        entity, created = await self.store.write_entity(
            None,
            lookup_name=args.name,
            name=args.name,
            metadata=args.metadata,
            policies=args.policies,
            disabled=args.disabled,
        )
        return self._written(entity.id, entity.name, created)

    async def delete_name(self, request: Request, args: EntityNameArgs) -> Response | None:
        entity = self.store.index.entity_by_name(args.name)
        if entity is not None:
            await self.store.delete_entities([entity.id])
        return None

    async def list_names(self, request: Request, args: object) -> Response | None:
        return keys_response(sorted(e.name for e in self.store.index.entities.values()))

    async def batch_delete(self, request: Request, args: BatchDeleteArgs) -> Response | None:
        await self.store.delete_entities(args.entity_ids)
        return None

    async def merge(self, request: Request, args: MergeArgs) -> Response | None:
        await self.store.merge_entities(
            args.to_entity_id, args.from_entity_ids, args.conflicting_alias_ids_to_keep
        )
        return None

    # -- aliases ---------------------------------------------------------------------------
    async def write_alias(self, request: Request, args: AliasArgs) -> Response | None:
        if args.id:
            return await self.write_alias_id(
                request,
                AliasIdArgs(
                    id=args.id,
                    name=args.name,
                    canonical_id=args.canonical_id,
                    mount_accessor=args.mount_accessor,
                    custom_metadata=args.custom_metadata,
                ),
            )
        if not args.name or not args.mount_accessor:
            raise InvalidRequest("'id' or 'mount_accessor' and 'name' must be provided")
        if not args.canonical_id:
            return await self._alias_with_new_entity(args.mount_accessor, args.name)
        accessor = args.mount_accessor or ""
        mount_type = self.mounts.check(accessor)
        existing = self.store.index.alias_by_factors(accessor, normalise(mount_type, args.name))
        if existing is not None and existing.canonical_id != args.canonical_id:
            # Vault: naming an existing principal (mount, name) moves its alias to the
            # given entity. Whoever may write here may also update the alias by ID, so
            # this grants nothing new; a login never moves an alias.
            return await self.write_alias_id(
                request,
                AliasIdArgs(
                    id=existing.id,
                    canonical_id=args.canonical_id,
                    custom_metadata=args.custom_metadata,
                ),
            )
        alias = await self.store.create_alias(
            canonical_id=args.canonical_id,
            mount_accessor=accessor,
            mount_type=mount_type,
            name=args.name,
            custom_metadata=args.custom_metadata,
        )
        return Response(data={"id": alias.id, "canonical_id": alias.canonical_id})

    async def _alias_with_new_entity(self, accessor: str, name: str) -> Response | None:
        """Vault's alias create without ``canonical_id``: an existing alias is left as it is
        (204); otherwise a new entity is made for it, atomically (the login path's
        find-or-create, so a concurrent create cannot make two entities for one alias)."""
        mount_type = self.mounts.check(accessor)
        normal = normalise(mount_type, name)
        if self.store.index.alias_by_factors(accessor, normal) is not None:
            return None
        entity = await self.store.login_entity(accessor, mount_type, normal, {})
        alias = entity.alias_on(accessor)
        alias_id = alias.id if alias is not None else ""
        return Response(data={"id": alias_id, "canonical_id": entity.id})

    async def exists_alias(self, request: Request, args: AliasIdArgs) -> bool:
        return args.id in self.store.index.aliases

    async def read_alias(self, request: Request, args: AliasIdArgs) -> Response | None:
        alias = self.store.index.aliases.get(args.id)
        return None if alias is None else Response(data=alias_data(alias, self.mounts))

    async def write_alias_id(self, request: Request, args: AliasIdArgs) -> Response | None:
        mount_type = None
        if args.mount_accessor:
            mount_type = self.mounts.check(args.mount_accessor)
        alias = await self.store.update_alias(
            args.id,
            canonical_id=args.canonical_id,
            mount_accessor=args.mount_accessor,
            mount_type=mount_type,
            name=args.name,
            custom_metadata=args.custom_metadata,
        )
        return Response(data={"id": alias.id, "canonical_id": alias.canonical_id})

    async def delete_alias(self, request: Request, args: AliasIdArgs) -> Response | None:
        await self.store.delete_alias(args.id)
        return None

    async def list_aliases(self, request: Request, args: object) -> Response | None:
        aliases = sorted(self.store.index.aliases.values(), key=lambda a: a.id)
        info = {
            a.id: {
                "canonical_id": a.canonical_id,
                "mount_accessor": a.mount_accessor,
                "mount_path": self.mounts.path_of(a.mount_accessor) or "",
                "mount_type": a.mount_type,
                "name": a.name,
            }
            for a in aliases
        }
        return keys_response([a.id for a in aliases], info)

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"entity",
                args=EntityArgs,
                operations={Operation.UPDATE: self.write},
                synopsis="Create a new entity, or update one given its id",
                description=_ENTITY_HELP,
            ),
            Path(
                pattern=r"entity/id/?",
                operations={Operation.LIST: self.list_ids},
                synopsis="List entities by ID",
            ),
            Path(
                pattern=rf"entity/id/(?P<id>{_ID})",
                args=EntityIdArgs,
                existence_check=self.exists_id,
                operations={
                    Operation.READ: self.read_id,
                    Operation.UPDATE: self.write_id,
                    Operation.DELETE: self.delete_id,
                },
                synopsis="Read, update or delete an entity by ID",
                description=_ENTITY_HELP,
            ),
            Path(
                pattern=r"entity/name/?",
                operations={Operation.LIST: self.list_names},
                synopsis="List entities by name",
            ),
            Path(
                pattern=rf"entity/name/(?P<name>{_ID})",
                args=EntityNameArgs,
                existence_check=self.exists_name,
                operations={
                    Operation.READ: self.read_name,
                    Operation.UPDATE: self.write_name,
                    Operation.DELETE: self.delete_name,
                },
                synopsis="Create, read, update or delete an entity by name",
                description=_ENTITY_HELP,
            ),
            Path(
                pattern=r"entity/batch-delete",
                args=BatchDeleteArgs,
                operations={Operation.UPDATE: self.batch_delete},
                synopsis="Delete several entities and their aliases",
            ),
            Path(
                pattern=r"entity/merge",
                args=MergeArgs,
                operations={Operation.UPDATE: self.merge},
                synopsis="Merge entities into one",
                description=_MERGE_HELP,
            ),
            Path(
                pattern=r"entity-alias",
                args=AliasArgs,
                operations={Operation.UPDATE: self.write_alias},
                synopsis="Create an entity alias, or update one given its id",
                description=_ALIAS_HELP,
            ),
            Path(
                pattern=r"entity-alias/id/?",
                operations={Operation.LIST: self.list_aliases},
                synopsis="List entity aliases by ID",
            ),
            Path(
                pattern=rf"entity-alias/id/(?P<id>{_ID})",
                args=AliasIdArgs,
                existence_check=self.exists_alias,
                operations={
                    Operation.READ: self.read_alias,
                    Operation.UPDATE: self.write_alias_id,
                    Operation.DELETE: self.delete_alias,
                },
                synopsis="Read, update or delete an entity alias by ID",
                description=_ALIAS_HELP,
            ),
        ]


_ENTITY_HELP = """\
An entity is one client of the server, whatever auth methods it logs in with: name,
metadata, policies (added to those of its tokens on every request) and disabled (a disabled
entity's tokens are refused, not revoked). Names are unique regardless of case."""

_MERGE_HELP = """\
Moves the aliases, policies and group memberships of from_entity_ids into to_entity_id and
deletes the former. Aliases on the same mount conflict: name the one to keep in
conflicting_alias_ids_to_keep (then only one from-entity is allowed)."""

_ALIAS_HELP = """\
An alias binds one principal of one auth mount (mount_accessor, name) to an entity
(canonical_id). Each principal has one alias and each entity at most one alias per mount.
Creating an alias for a principal that already has one moves that alias to the given
entity (as Vault does); so does an update by ID with a new canonical_id."""
