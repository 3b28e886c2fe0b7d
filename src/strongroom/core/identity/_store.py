"""The identity store: entities, aliases and groups, held in memory and written through to
a storage view (core gives it the barrier view ``sys/identity/``).

Storage layout (relative to the view)::

    entity/<id>   an entity with its aliases
    group/<id>    a group with its alias
    oidc/...      identity tokens (see the OIDC provider)

Every write takes one lock, plans the change against the index (``_changes``), writes it
in one storage transaction, and only then applies it to memory and bumps :attr:`version`.
A failed write leaves memory as it was. Reads never wait and never touch storage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from strongroom.clock import Clock
from strongroom.core.identity import _changes as plan
from strongroom.core.identity._index import Change, IdentityIndex
from strongroom.core.identity._mfa import ENTITY_RECORD, MFAStore
from strongroom.core.identity._records import (
    Entity,
    EntityAlias,
    Group,
    GroupAlias,
    decode_entity,
    decode_group,
    encode_entity,
    encode_group,
)
from strongroom.core.identity._templating import acl_values
from strongroom.core.policy import ROOT_POLICY_NAME
from strongroom.errors import InvalidRequest
from strongroom.logical import Storage, StorageOp

__all__ = ["IdentityStore"]

ENTITY_PREFIX = ENTITY_RECORD
GROUP_PREFIX = "group/"
_CACHE_LIMIT = 50_000
_T = TypeVar("_T")


class IdentityStore:
    """Vault's identity store.

    Args:
        storage: a storage view private to identity (trusted: it is behind the barrier).
        clock: for creation and update times.
    """

    def __init__(self, storage: Storage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock
        self._index = IdentityIndex()
        self._lock = asyncio.Lock()
        self._version = 0
        self._policy_cache: dict[str, tuple[str, ...]] = {}
        self._values_cache: dict[str, dict[str, str]] = {}
        # login MFA records live in the same view (identity/mfa/*, core/mfa.py)
        self.mfa = MFAStore(storage)

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def version(self) -> int:
        """Bumped by every write: cache anything derived from identity under this number."""
        return self._version

    @property
    def index(self) -> IdentityIndex:
        """The live index, for read-only use by the path handlers."""
        return self._index

    async def load(self) -> None:
        """Read every record into memory (at unseal). Replaces whatever was loaded before."""
        async with self._lock:
            entities = []
            for key in await self._storage.list(ENTITY_PREFIX):
                raw = await self._storage.get(ENTITY_PREFIX + key)
                if raw is not None and not key.endswith("/"):
                    entities.append(decode_entity(raw))
            groups = []
            for key in await self._storage.list(GROUP_PREFIX):
                raw = await self._storage.get(GROUP_PREFIX + key)
                if raw is not None and not key.endswith("/"):
                    groups.append(decode_group(raw))
            index = IdentityIndex()
            index.load(entities, groups)
            self._index = index
            self._changed()

    # -- writing ---------------------------------------------------------------------------
    def _changed(self) -> None:
        self._version += 1
        self._policy_cache.clear()
        self._values_cache.clear()

    async def _commit(self, change: Change) -> None:
        if not change:
            return
        ops = [StorageOp(ENTITY_PREFIX + entity_id) for entity_id in change.drop_entities]
        ops += [StorageOp(GROUP_PREFIX + group_id) for group_id in change.drop_groups]
        ops += [StorageOp(ENTITY_PREFIX + e.id, encode_entity(e)) for e in change.entities]
        ops += [StorageOp(GROUP_PREFIX + g.id, encode_group(g)) for g in change.groups]
        for entity_id in change.drop_entities:  # their MFA secrets, in the same transaction
            ops += await self.mfa.purge_ops(entity_id)
        await self._storage.transaction(ops)
        self._index.apply(change)
        self._changed()
        # Entities deleted or merged away take their login-MFA secrets with them (above, in
        # the same transaction). Sweep again now the record is gone: a racing MFA generate
        # either failed its guard on that record or committed before this listing
        # (MFAStore.create_secret).
        for entity_id in change.drop_entities:
            await self.mfa.purge_entity(entity_id)

    async def _run(self, planner: Callable[[IdentityIndex, float], tuple[Change, _T]]) -> _T:
        async with self._lock:
            change, result = planner(self._index, self._clock.now())
            await self._commit(change)
            return result

    async def _run_change(self, planner: Callable[[IdentityIndex, float], Change]) -> None:
        async with self._lock:
            await self._commit(planner(self._index, self._clock.now()))

    # -- login -----------------------------------------------------------------------------
    async def login_entity(
        self,
        mount_accessor: str,
        mount_type: str,
        alias_name: str,
        alias_metadata: Mapping[str, str],
        group_names: Sequence[str] = (),
    ) -> Entity:
        """The entity of a principal that just logged in through an auth mount.

        Finds the alias (mount_accessor, alias_name) or creates an entity (named
        ``entity_<8 hex>``) with that alias; refreshes the alias metadata; and makes the
        entity a member of exactly those external groups of this mount whose alias is in
        ``group_names`` (the auth method is authoritative for them).

        Args:
            mount_accessor: the auth mount's accessor.
            mount_type: its type (``userpass``...), which decides normalisation.
            alias_name: the principal, already normalised by the auth method the way
                :func:`normalise` does it.
            alias_metadata: the auth method's metadata for the alias.
            group_names: the principal's groups in the auth source (a JWT groups claim).

        Raises:
            InvalidRequest: ``alias_name`` is empty, malformed or not normalised.
            PermissionDenied: the entity is disabled.

        Returns:
            The entity (a login never moves an alias to another entity).
        """
        alias = self._index.alias_by_factors(mount_accessor, alias_name)
        if alias is not None:
            fast = self._login_unchanged(alias, mount_type, alias_metadata, group_names)
            if fast is not None:
                return fast
        return await self._run(
            lambda index, now: plan.plan_login(
                index,
                now,
                mount_accessor=mount_accessor,
                mount_type=mount_type,
                alias_name=alias_name,
                alias_metadata=alias_metadata,
                group_names=group_names,
            )
        )

    def _login_unchanged(
        self,
        alias: EntityAlias,
        mount_type: str,
        metadata: Mapping[str, str],
        group_names: Sequence[str],
    ) -> Entity | None:
        """The entity if a login changes nothing (no write, no lock), else None."""
        entity = self._index.entities.get(alias.canonical_id)
        if entity is None or entity.disabled or alias.mount_type != mount_type:
            return None
        if dict(alias.metadata) != dict(metadata):
            return None
        if group_names or self._index.external_groups_on(alias.mount_accessor):
            return None  # membership may change: let the planner decide
        return entity

    # -- queries for core ------------------------------------------------------------------
    def is_disabled(self, entity_id: str) -> bool:
        """True if the entity exists and is disabled (its tokens must be refused)."""
        entity = self._index.entities.get(entity_id) if entity_id else None
        return entity is not None and entity.disabled

    def policies_for(self, entity_id: str) -> tuple[str, ...]:
        """The entity's policies plus those of every group it is in, directly or through
        nested groups; sorted. Empty for ``""``, an unknown entity or a disabled one."""
        cached = self._policy_cache.get(entity_id)
        if cached is not None:
            return cached
        entity = self._index.entities.get(entity_id) if entity_id else None
        if entity is None or entity.disabled:
            return ()
        names = set(entity.policies)
        for group in self.groups_of(entity_id):
            names.update(group.policies)
        names.discard(ROOT_POLICY_NAME)  # never from identity, whatever storage says
        result = tuple(sorted(names))
        if len(self._policy_cache) >= _CACHE_LIMIT:
            self._policy_cache.clear()
        self._policy_cache[entity_id] = result
        return result

    def template_values(self, entity_id: str) -> dict[str, str]:
        """The ACL templating parameters of the entity for
        :func:`strongroom.core.policy.render_policy`; empty for an unknown or disabled
        entity (every templated rule then grants nothing)."""
        cached = self._values_cache.get(entity_id)
        if cached is None:
            entity = self._index.entities.get(entity_id) if entity_id else None
            if entity is None or entity.disabled:
                return {}
            cached = acl_values(entity, self.groups_of(entity_id))
            if len(self._values_cache) >= _CACHE_LIMIT:
                self._values_cache.clear()
            self._values_cache[entity_id] = cached
        return dict(cached)

    def groups_of(self, entity_id: str) -> list[Group]:
        """Every group the entity is in, directly or inherited, sorted by ID."""
        direct, inherited = self._index.group_ids_of(entity_id)
        return [self._index.groups[g] for g in sorted({*direct, *inherited})]

    def entity(self, entity_id: str) -> Entity | None:
        return self._index.entities.get(entity_id)

    def group(self, group_id: str) -> Group | None:
        return self._index.groups.get(group_id)

    # -- entities --------------------------------------------------------------------------
    async def write_entity(
        self,
        entity_id: str | None,
        *,
        lookup_name: str | None = None,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        policies: Sequence[str] | None = None,
        disabled: bool | None = None,
    ) -> tuple[Entity, bool]:
        """Create or update an entity; returns it and whether it was created.

        ``entity_id`` addresses an existing entity (400 if unknown); else ``lookup_name``
        addresses one by name, created if absent; with neither, a new entity is made.
        """

        def planner(index: IdentityIndex, now: float) -> tuple[Change, tuple[Entity, bool]]:
            existing = None
            if entity_id:
                existing = index.entities.get(entity_id)
                if existing is None:
                    raise InvalidRequest("entity not found")
            elif lookup_name:
                existing = index.entity_by_name(lookup_name)
            change, entity = plan.plan_entity_write(
                index,
                now,
                existing,
                name=name,
                metadata=metadata,
                policies=policies,
                disabled=disabled,
            )
            return change, (entity, existing is None)

        return await self._run(planner)

    async def delete_entities(self, entity_ids: Sequence[str]) -> None:
        await self._run_change(lambda index, now: plan.plan_entity_delete(index, now, entity_ids))

    async def merge_entities(
        self, to_entity_id: str, from_entity_ids: Sequence[str], keep_alias_ids: Sequence[str]
    ) -> Entity:
        return await self._run(
            lambda index, now: plan.plan_merge(
                index,
                now,
                to_entity_id=to_entity_id,
                from_entity_ids=from_entity_ids,
                keep_alias_ids=keep_alias_ids,
            )
        )

    # -- entity aliases --------------------------------------------------------------------
    async def create_alias(
        self,
        *,
        canonical_id: str,
        mount_accessor: str,
        mount_type: str,
        name: str,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> EntityAlias:
        return await self._run(
            lambda index, now: plan.plan_alias_create(
                index,
                now,
                canonical_id=canonical_id,
                mount_accessor=mount_accessor,
                mount_type=mount_type,
                name=name,
                custom_metadata=custom_metadata,
            )
        )

    async def update_alias(
        self,
        alias_id: str,
        *,
        canonical_id: str | None = None,
        mount_accessor: str | None = None,
        mount_type: str | None = None,
        name: str | None = None,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> EntityAlias:
        def planner(index: IdentityIndex, now: float) -> tuple[Change, EntityAlias]:
            alias = index.aliases.get(alias_id)
            if alias is None:
                raise InvalidRequest("entity alias not found")
            return plan.plan_alias_update(
                index,
                now,
                alias,
                canonical_id=canonical_id,
                mount_accessor=mount_accessor,
                mount_type=mount_type,
                name=name,
                custom_metadata=custom_metadata,
            )

        return await self._run(planner)

    async def delete_alias(self, alias_id: str) -> None:
        def planner(index: IdentityIndex, now: float) -> Change:
            alias = index.aliases.get(alias_id)
            return Change() if alias is None else plan.plan_alias_delete(index, now, alias)

        await self._run_change(planner)

    async def drop_mount(self, mount_accessor: str) -> None:
        """Forget the entity and group aliases of an auth mount being disabled."""
        await self._run_change(lambda index, now: plan.plan_drop_mount(index, now, mount_accessor))

    # -- groups ----------------------------------------------------------------------------
    async def write_group(
        self,
        group_id: str | None,
        *,
        lookup_name: str | None = None,
        name: str | None = None,
        type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        policies: Sequence[str] | None = None,
        member_entity_ids: Sequence[str] | None = None,
        member_group_ids: Sequence[str] | None = None,
    ) -> tuple[Group, bool]:
        """Create or update a group, addressed like :meth:`write_entity`."""

        def planner(index: IdentityIndex, now: float) -> tuple[Change, tuple[Group, bool]]:
            existing = None
            if group_id:
                existing = index.groups.get(group_id)
                if existing is None:
                    raise InvalidRequest("group not found")
            elif lookup_name:
                existing = index.group_by_name(lookup_name)
            change, group = plan.plan_group_write(
                index,
                now,
                existing,
                name=name,
                type=type,
                metadata=metadata,
                policies=policies,
                member_entity_ids=member_entity_ids,
                member_group_ids=member_group_ids,
            )
            return change, (group, existing is None)

        return await self._run(planner)

    async def delete_group(self, group_id: str) -> None:
        await self._run_change(lambda index, now: plan.plan_group_delete(index, now, group_id))

    async def write_group_alias(
        self,
        alias_id: str | None,
        *,
        name: str,
        mount_accessor: str,
        mount_type: str,
        canonical_id: str = "",
    ) -> GroupAlias:
        def planner(index: IdentityIndex, now: float) -> tuple[Change, GroupAlias]:
            existing = None
            if alias_id:
                existing = index.group_aliases.get(alias_id)
                if existing is None:
                    raise InvalidRequest("group alias not found")
            return plan.plan_group_alias_write(
                index,
                now,
                existing,
                name=name,
                mount_accessor=mount_accessor,
                mount_type=mount_type,
                canonical_id=canonical_id,
            )

        return await self._run(planner)

    async def delete_group_alias(self, alias_id: str) -> None:
        def planner(index: IdentityIndex, now: float) -> Change:
            alias = index.group_aliases.get(alias_id)
            return Change() if alias is None else plan.plan_group_alias_delete(index, now, alias)

        await self._run_change(planner)
