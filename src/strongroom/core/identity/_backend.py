"""The ``identity/`` mount: one path table over the identity store and the OIDC provider,
plus ``lookup/entity`` and ``lookup/group`` (find one record by one criterion)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from strongroom.core.identity._entities import EntityPaths
from strongroom.core.identity._groups import GroupPaths
from strongroom.core.identity._mfa_paths import MFAPaths
from strongroom.core.identity._oidc import OIDCProvider
from strongroom.core.identity._oidc_paths import UNAUTHENTICATED, OIDCPaths
from strongroom.core.identity._oidc_provider import ProviderStore
from strongroom.core.identity._oidc_provider_paths import UNAUTHENTICATED as PROVIDER_UNAUTH
from strongroom.core.identity._oidc_provider_paths import ProviderPaths
from strongroom.core.identity._records import normalise
from strongroom.core.identity._store import IdentityStore
from strongroom.core.identity._views import Mounts, entity_data, group_data
from strongroom.errors import InvalidRequest
from strongroom.framework import FrameworkBackend, Path
from strongroom.logical import BackendKind, Operation, Request, Response

__all__ = ["LookupPaths", "build_identity_backend"]


@dataclass(frozen=True, slots=True)
class LookupArgs:
    type: str = ""
    name: str = ""
    id: str = ""
    alias_id: str = ""
    alias_name: str = ""
    alias_mount_accessor: str = ""


def _criterion(args: LookupArgs) -> str:
    given = [
        label
        for label, value in (
            ("name", args.name),
            ("id", args.id),
            ("alias_id", args.alias_id),
            ("alias", args.alias_name or args.alias_mount_accessor),
        )
        if value
    ]
    if len(given) != 1:
        raise InvalidRequest(
            "give exactly one of name, id, alias_id, or alias_name with alias_mount_accessor"
        )
    if given[0] == "alias" and not (args.alias_name and args.alias_mount_accessor):
        raise InvalidRequest("alias_name and alias_mount_accessor go together")
    return given[0]


class LookupPaths:
    def __init__(self, store: IdentityStore, mounts: Mounts) -> None:
        self.store = store
        self.mounts = mounts

    def _alias_name(self, args: LookupArgs) -> str:
        # the same normalisation as at login, so a lookup finds what a login would
        mount_type = self.mounts.type_of(args.alias_mount_accessor) or ""
        return normalise(mount_type, args.alias_name)

    async def entity(self, request: Request, args: LookupArgs) -> Response | None:
        index = self.store.index
        criterion = _criterion(args)
        entity = None
        if criterion == "name":
            entity = index.entity_by_name(args.name)
        elif criterion == "id":
            entity = index.entities.get(args.id)
        else:
            alias = (
                index.aliases.get(args.alias_id)
                if criterion == "alias_id"
                else index.alias_by_factors(args.alias_mount_accessor, self._alias_name(args))
            )
            entity = None if alias is None else index.entities.get(alias.canonical_id)
        if entity is None:
            return None
        return Response(data=entity_data(self.store, entity, self.mounts))

    async def group(self, request: Request, args: LookupArgs) -> Response | None:
        index = self.store.index
        criterion = _criterion(args)
        group = None
        if criterion == "name":
            group = index.group_by_name(args.name)
        elif criterion == "id":
            group = index.groups.get(args.id)
        else:
            alias = (
                index.group_aliases.get(args.alias_id)
                if criterion == "alias_id"
                else index.group_alias_by_factors(args.alias_mount_accessor, self._alias_name(args))
            )
            group = None if alias is None else index.groups.get(alias.canonical_id)
        if group is None:
            return None
        return Response(data=group_data(self.store, group, self.mounts))

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"lookup/entity",
                args=LookupArgs,
                operations={Operation.UPDATE: self.entity},
                synopsis="Look up an entity by name, id, alias_id, or alias name and mount",
                description="Answers 204 when nothing matches.",
            ),
            Path(
                pattern=r"lookup/group",
                args=LookupArgs,
                operations={Operation.UPDATE: self.group},
                synopsis="Look up a group by name, id, alias_id, or alias name and mount",
                description="Answers 204 when nothing matches.",
            ),
        ]


_HELP = """\
The identity store: entities (one per client), their aliases in auth methods, groups
(internal, or external and filled from auth-method group claims), lookups, and signed
identity tokens (OIDC) with their public keys."""


def build_identity_backend(
    store: IdentityStore,
    oidc: OIDCProvider,
    *,
    mount_exists: Callable[[str], bool],
    mount_type_of: Callable[[str], str | None],
    mount_path_of: Callable[[str], str | None] | None = None,
) -> FrameworkBackend:
    """The backend core mounts at ``identity/``.

    Args:
        store: the loaded identity store.
        oidc: the identity-token provider over the same storage view.
        mount_exists: whether an accessor names an existing auth mount; entity and group
            aliases can only be made for those.
        mount_type_of: an auth mount's type by accessor (normalisation of alias names).
        mount_path_of: an auth mount's path by accessor, shown in alias responses.

    Returns:
        A backend whose ``unauthenticated_paths`` are the OIDC discovery documents.
    """
    mounts = Mounts(
        exists=mount_exists,
        type_of=mount_type_of,
        path_of=mount_path_of or (lambda _accessor: None),
    )
    provider = ProviderStore(oidc.storage, oidc.clock, store, oidc)
    paths = [
        *EntityPaths(store, mounts).paths(),
        *GroupPaths(store, mounts).paths(),
        *LookupPaths(store, mounts).paths(),
        *MFAPaths(store).paths(),
        *OIDCPaths(oidc, provider.clients_using_key).paths(),
        *ProviderPaths(provider).paths(),
    ]
    return FrameworkBackend(
        kind=BackendKind.SECRET,
        paths=paths,
        help=_HELP,
        unauthenticated_paths=(*UNAUTHENTICATED, *PROVIDER_UNAUTH),
    )
