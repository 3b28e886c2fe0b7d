"""The ``auth/token/`` backend: Vault's token API over the :class:`TokenStore`.

It lives in core (not auth/) because it mints tokens directly and checks the caller's
own policies: a non-root caller may only create children with a subset of its policies,
and orphans need sudo on the create path (or the create-orphan endpoint).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from strongroom.core.acl import ACL
from strongroom.core.policy import normalize_policy_name
from strongroom.core.token_role_paths import ROLE_TABLE
from strongroom.core.token_roles import (
    TokenRole,
    TokenRoleStore,
    check_entity_alias,
    role_limits,
    role_policies,
    role_token_type,
)
from strongroom.core.tokens import TokenEntry, TokenStore, rfc3339
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import BackgroundJob, Duration, Endpoint, FrameworkBackend, NoArgs
from strongroom.logical import Auth, BackendKind, Connection, Operation, Request, Response

__all__ = [
    "TABLE",
    "TokenBackend",
    "TokenBackendDeps",
    "build_token_backend",
    "token_auth_block",
    "token_lookup_data",
]

_DISPLAY_NAME_STRIP = re.compile(r"[^a-zA-Z0-9\-_.@]")
# token ID prefixes of our own (and Vault's older) tokens: a custom ID may not mimic them
_RESERVED_ID_PREFIXES = ("hvs.", "hvb.", "s.", "b.")


@dataclass(frozen=True, slots=True)
class TokenBackendDeps:
    store: TokenStore
    acl_for: Callable[[TokenEntry], Awaitable[ACL]]
    default_ttl: Callable[[], int]
    max_ttl: Callable[[], int]
    now: Callable[[], float]
    # Asks the auth method that issued a login token whether it may be renewed (it raises
    # to refuse: user gone, policies changed, a different client certificate ...).
    renew_check: Callable[[TokenEntry, int, Connection], Awaitable[None]] | None = None
    roles: TokenRoleStore | None = None
    # The entity of an ``entity_alias`` on this token mount (found or created).
    entity_for_alias: Callable[[str], Awaitable[str]] | None = None


@dataclass(frozen=True, slots=True)
class CreateArgs:
    id: str = ""
    policies: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    no_parent: bool = False
    no_default_policy: bool = False
    renewable: bool = True
    ttl: Duration = Duration(0)
    type: str = ""  # the role's type with a role, else service
    explicit_max_ttl: Duration = Duration(0)
    display_name: str = ""
    num_uses: int = 0
    period: Duration = Duration(0)
    entity_alias: str = ""
    role_name: str = ""


@dataclass(frozen=True, slots=True)
class TokenArgs:
    token: str = ""


@dataclass(frozen=True, slots=True)
class AccessorArgs:
    accessor: str = ""


@dataclass(frozen=True, slots=True)
class RenewArgs:
    token: str = ""
    increment: Duration = Duration(0)


@dataclass(frozen=True, slots=True)
class RenewAccessorArgs:
    accessor: str = ""
    increment: Duration = Duration(0)


@dataclass(frozen=True, slots=True)
class RenewSelfArgs:
    increment: Duration = Duration(0)


def token_lookup_data(entry: TokenEntry, token_id: str, now: float) -> dict[str, Any]:
    """The ``data`` of a token lookup, in Vault's shape (``period`` only when set)."""
    data = {
        "accessor": entry.accessor,
        "creation_time": int(entry.creation_time),
        "creation_ttl": entry.creation_ttl,
        "display_name": entry.display_name,
        "entity_id": entry.entity_id,
        "expire_time": rfc3339(entry.expire_time) if entry.expire_time else None,
        "explicit_max_ttl": entry.explicit_max_ttl,
        "id": token_id,
        "issue_time": rfc3339(entry.creation_time),
        "meta": dict(entry.meta) or None,
        "num_uses": max(entry.num_uses, 0),
        "orphan": entry.orphan,
        "path": entry.path,
        "policies": list(entry.policies),
        "renewable": entry.renewable and entry.expire_time != 0.0,
        "ttl": entry.ttl(now),
        "type": entry.type,
    }
    if entry.period:
        data["period"] = entry.period
    return data


def token_auth_block(token: str, entry: TokenEntry, now: float, **extra: Any) -> Auth:
    return Auth(
        client_token=token,
        accessor=entry.accessor,
        policies=entry.policies,
        token_policies=entry.policies,
        metadata=dict(entry.meta),
        lease_duration=entry.ttl(now),
        renewable=entry.renewable and entry.expire_time != 0.0,
        entity_id=entry.entity_id,
        orphan=entry.orphan,
        token_type=entry.type,
        num_uses=max(entry.num_uses, 0),
        **extra,
    )


def check_privileged_fields(args: CreateArgs, *, sudo: bool) -> None:
    """Vault's rules for the fields of token creation that need root or sudo.

    ``sudo``: the caller is root or has ``sudo`` on the create path it called.

    Raises:
        InvalidRequest: as Vault (400), naming the field.
    """
    if args.num_uses < 0:
        raise InvalidRequest("number of uses cannot be negative")
    if args.id:
        if not sudo:
            raise InvalidRequest("root or sudo privileges required to specify token id")
        for prefix in _RESERVED_ID_PREFIXES:
            if args.id.startswith(prefix):
                raise InvalidRequest(f"custom token ID cannot have the {prefix!r} prefix")
        if "." in args.id:
            raise InvalidRequest("custom token ID cannot have a '.' in the value")
    if args.no_parent and not sudo and not args.role_name:
        raise InvalidRequest("root or sudo privileges required to create orphan token")
    if args.period and not sudo:
        raise InvalidRequest("root or sudo privileges required to create periodic token")


def check_batch_fields(
    args: CreateArgs, policies: tuple[str, ...], period: int, explicit_max: int, num_uses: int
) -> None:
    """What a batch token cannot be (Vault's messages).

    Raises:
        InvalidRequest: a root policy, a period, a use count, an explicit max TTL or an ID.
    """
    if "root" in policies:
        raise InvalidRequest("batch tokens cannot be root tokens")
    if period:
        raise InvalidRequest('batch tokens cannot have "period" set')
    if num_uses:
        raise InvalidRequest('batch tokens cannot have "num_uses" set')
    if explicit_max:
        raise InvalidRequest('batch tokens cannot have "explicit_max_ttl" set')
    if args.id:
        raise InvalidRequest("batch tokens cannot have a custom ID")


def check_policy_subset(requested: list[str], parent: tuple[str, ...], *, sudo: bool) -> None:
    """A non-root parent grants only its own policies (``default`` aside) unless it has
    sudo; even with sudo, only a root parent may mint a root token.

    Raises:
        InvalidRequest: as Vault (400).
    """
    if not sudo and set(requested) - set(parent) - {"default"}:
        raise InvalidRequest("child policies must be subset of parent")
    if "root" in requested:
        raise InvalidRequest("root tokens may not be created without parent token being root")


async def _caller(backend: TokenBackend, request: Request) -> TokenEntry:
    entry = await backend.store.lookup(request.client_token, in_last_use=True)
    if entry is None:
        raise PermissionDenied()
    return entry


async def _create(
    backend: TokenBackend, request: Request, args: CreateArgs, *, orphan_endpoint: bool
) -> Response:
    parent = await _caller(backend, request)
    if parent.type == "batch":
        raise InvalidRequest("batch tokens cannot create more tokens")
    acl = await backend.deps.acl_for(parent)
    role = await _role_of(backend, args.role_name)
    token_type = role_token_type(role, args.type) if role is not None else args.type
    if token_type not in ("service", "default", "batch", ""):
        raise InvalidRequest("invalid 'token_type' value")
    batch = token_type == "batch"  # noqa: S105 (a token kind)
    check_entity_alias(role, args.entity_alias)
    path = request.mount_point + request.path
    sudo = parent.is_root or acl.check(Operation.UPDATE, path).sudo
    check_privileged_fields(args, sudo=sudo)
    # Without explicit policies a child inherits its parent's.
    if args.policies:
        requested = [normalize_policy_name(p) for p in args.policies]
    else:
        requested = list(parent.policies)
    by_role = (
        role_policies(
            role, args.policies, parent.policies, no_default_policy=args.no_default_policy
        )
        if role is not None
        else None
    )
    if by_role is not None:
        requested = list(by_role.policies)  # the role, not the parent, bounds them
        if "root" in requested and not parent.is_root:
            raise InvalidRequest("root tokens may not be created without parent token being root")
    elif not parent.is_root:
        check_policy_subset(requested, parent.policies, sudo=sudo)
    orphan = orphan_endpoint
    if role is not None:
        orphan = role.orphan  # a role's orphans need no sudo
    elif args.no_parent:
        orphan = True  # check_privileged_fields required sudo
    policies = set(requested)
    if by_role is None and not args.no_default_policy and "root" not in policies:
        policies.add("default")
    if args.no_default_policy:
        policies.discard("default")
    policy_tuple = tuple(sorted(policies))
    period, explicit_max, num_uses = int(args.period), int(args.explicit_max_ttl), args.num_uses
    warnings: list[str] = []
    if role is not None:
        limits = role_limits(role, period, explicit_max, num_uses)
        period, explicit_max, num_uses = limits.period, limits.explicit_max_ttl, limits.num_uses
        warnings.extend(limits.warnings)
    if batch:
        check_batch_fields(args, policy_tuple, period, explicit_max, num_uses)
    args = replace(args, period=Duration(period), explicit_max_ttl=Duration(explicit_max))
    ttl = int(args.period) or int(args.ttl)
    max_ttl = backend.deps.max_ttl()
    if ttl == 0 and "root" not in policies:
        ttl = backend.deps.default_ttl()
        if args.explicit_max_ttl and ttl > args.explicit_max_ttl:
            ttl = int(args.explicit_max_ttl)
    if "root" in policies and args.ttl == 0 and args.period == 0:
        max_ttl = 0  # a root token without a TTL never expires
    if parent.expire_time and not orphan and ttl == 0:
        ttl = parent.ttl(backend.deps.now())
    if max_ttl and ttl > max_ttl and not args.period:
        warnings.append(
            f"TTL of {ttl}s exceeded the effective max_ttl of {max_ttl}s; "
            "TTL value is capped accordingly"
        )
        ttl = max_ttl
    name = _DISPLAY_NAME_STRIP.sub("", args.display_name.strip().replace(" ", "-"))
    display_name = f"token-{name}" if name else "token"
    internal: dict[str, Any] = {}
    entity_id = ""
    if role is not None:
        path = request.mount_point + "create/" + role.name
        if role.path_suffix:
            path += "/" + role.path_suffix
        if role.token_bound_cidrs and ttl:
            internal["bound_cidrs"] = list(role.token_bound_cidrs)
        if args.entity_alias and backend.deps.entity_for_alias is not None:
            entity_id = await backend.deps.entity_for_alias(args.entity_alias)
        elif not orphan:
            entity_id = parent.entity_id
    token, entry = await backend.store.create(
        policies=policy_tuple,
        parent=None if orphan else parent,
        meta=args.meta,
        display_name=display_name,
        ttl=ttl,
        explicit_max_ttl=int(args.explicit_max_ttl),
        max_ttl=0 if args.period else max_ttl,
        period=int(args.period),
        num_uses=num_uses,
        renewable=args.renewable and (role is None or role.renewable) and not batch,
        path=path,
        token_id=args.id or None,
        entity_id=entity_id,
        internal=internal,
        token_type="batch" if batch else "service",
    )
    auth = token_auth_block(token, entry, backend.deps.now())
    return Response(auth=auth, warnings=warnings)


async def _role_of(backend: TokenBackend, name: str) -> TokenRole | None:
    if not name:
        return None
    role = await backend.deps.roles.get(name) if backend.deps.roles is not None else None
    if role is None:
        raise InvalidRequest(f"unknown role {name}")
    return role


async def _create_handler(backend: TokenBackend, request: Request, args: CreateArgs) -> Response:
    return await _create(backend, request, args, orphan_endpoint=False)


async def _create_orphan_handler(
    backend: TokenBackend, request: Request, args: CreateArgs
) -> Response:
    return await _create(backend, request, args, orphan_endpoint=True)


async def _lookup_self(backend: TokenBackend, request: Request, args: NoArgs) -> Response:
    entry = await _caller(backend, request)
    return Response(data=token_lookup_data(entry, request.client_token, backend.deps.now()))


async def _target(backend: TokenBackend, token: str) -> TokenEntry:
    if not token:
        raise InvalidRequest("missing token")
    entry = await backend.store.lookup(token)
    if entry is None:
        raise PermissionDenied("bad token")
    return entry


async def _target_accessor(backend: TokenBackend, accessor: str) -> TokenEntry:
    if not accessor:
        raise InvalidRequest("missing accessor")
    entry = await backend.store.lookup_accessor(accessor)
    if entry is None:
        raise InvalidRequest("invalid accessor")
    return entry


async def _lookup(backend: TokenBackend, request: Request, args: TokenArgs) -> Response:
    token = args.token or request.client_token
    entry = await _target(backend, token)
    return Response(data=token_lookup_data(entry, token, backend.deps.now()))


async def _lookup_accessor(backend: TokenBackend, request: Request, args: AccessorArgs) -> Response:
    entry = await _target_accessor(backend, args.accessor)
    return Response(data=token_lookup_data(entry, "", backend.deps.now()))


async def _renew_entry(
    backend: TokenBackend, token: str, entry: TokenEntry, increment: int, connection: Connection
) -> Response:
    if entry.type == "batch":
        raise InvalidRequest("batch tokens cannot be renewed")
    if backend.deps.renew_check is not None:
        await backend.deps.renew_check(entry, increment, connection)
    updated, warnings = await backend.store.renew(entry, increment)
    return Response(auth=token_auth_block(token, updated, backend.deps.now()), warnings=warnings)


async def _renew(backend: TokenBackend, request: Request, args: RenewArgs) -> Response:
    entry = await _target(backend, args.token)
    return await _renew_entry(backend, args.token, entry, int(args.increment), request.connection)


async def _renew_self(backend: TokenBackend, request: Request, args: RenewSelfArgs) -> Response:
    entry = await _caller(backend, request)
    return await _renew_entry(
        backend, request.client_token, entry, int(args.increment), request.connection
    )


async def _renew_accessor(
    backend: TokenBackend, request: Request, args: RenewAccessorArgs
) -> Response:
    entry = await _target_accessor(backend, args.accessor)
    response = await _renew_entry(backend, "", entry, int(args.increment), request.connection)
    return response


def _revocable(entry: TokenEntry) -> TokenEntry:
    if entry.type == "batch":
        raise InvalidRequest("batch tokens cannot be revoked")
    return entry


async def _revoke(backend: TokenBackend, request: Request, args: TokenArgs) -> None:
    await backend.store.revoke_tree(_revocable(await _target(backend, args.token)))


async def _revoke_self(backend: TokenBackend, request: Request, args: NoArgs) -> None:
    await backend.store.revoke_tree(_revocable(await _caller(backend, request)))


async def _revoke_accessor(backend: TokenBackend, request: Request, args: AccessorArgs) -> None:
    await backend.store.revoke_tree(await _target_accessor(backend, args.accessor))


async def _revoke_orphan(backend: TokenBackend, request: Request, args: TokenArgs) -> None:
    await backend.store.revoke_orphan(_revocable(await _target(backend, args.token)))


async def _accessors(backend: TokenBackend, request: Request, args: NoArgs) -> Response:
    return Response(data={"keys": await backend.store.list_accessors()})


async def _tidy(backend: TokenBackend, request: Request, args: NoArgs) -> Response:
    # Vault runs it in the background and answers 202 with a warning
    async def work() -> str:
        return f"revoked {await backend.store.sweep()} expired tokens"

    return backend.tidy_job.start(work)


_read, _update, _lst = Operation.READ, Operation.UPDATE, Operation.LIST

TABLE: list[Endpoint[TokenBackend]] = [
    Endpoint(r"create", {_update: _create_handler}, CreateArgs, synopsis="Create a token"),
    Endpoint(
        r"create/(?P<role_name>[^/]+)",
        {_update: _create_handler},
        CreateArgs,
        synopsis="Create a token against a token role",
    ),
    Endpoint(
        r"create-orphan",
        {_update: _create_orphan_handler},
        CreateArgs,
        synopsis="Create a token without a parent",
    ),
    Endpoint(r"lookup-self", {_read: _lookup_self}, synopsis="Look up the calling token"),
    Endpoint(r"lookup", {_read: _lookup, _update: _lookup}, TokenArgs, synopsis="Look up a token"),
    Endpoint(
        r"lookup-accessor",
        {_update: _lookup_accessor},
        AccessorArgs,
        synopsis="Look up a token by accessor",
    ),
    Endpoint(r"renew-self", {_update: _renew_self}, RenewSelfArgs, synopsis="Renew own token"),
    Endpoint(r"renew", {_update: _renew}, RenewArgs, synopsis="Renew a token"),
    Endpoint(
        r"renew-accessor",
        {_update: _renew_accessor},
        RenewAccessorArgs,
        synopsis="Renew a token by accessor",
    ),
    Endpoint(r"revoke-self", {_update: _revoke_self}, synopsis="Revoke own token and its children"),
    Endpoint(r"revoke", {_update: _revoke}, TokenArgs, synopsis="Revoke a token and its children"),
    Endpoint(
        r"revoke-accessor",
        {_update: _revoke_accessor},
        AccessorArgs,
        synopsis="Revoke a token by accessor",
    ),
    Endpoint(
        r"revoke-orphan",
        {_update: _revoke_orphan},
        TokenArgs,
        synopsis="Revoke a token, leaving its children as orphans",
    ),
    Endpoint(r"accessors/?", {_lst: _accessors}, synopsis="List token accessors"),
    Endpoint(r"tidy", {_update: _tidy}, synopsis="Clean up expired tokens"),
]


class TokenBackend(FrameworkBackend):
    """``auth/token/``: the module-level :data:`TABLE` bound to one token store (and the
    token roles' table to its role store)."""

    def __init__(self, deps: TokenBackendDeps) -> None:
        self.deps = deps
        self.store = deps.store
        self.tidy_job = BackgroundJob("auth/token/tidy")
        paths = [endpoint.bind(self) for endpoint in TABLE]
        if deps.roles is not None:
            # after create/<role>, as Vault lists them
            paths[2:2] = [endpoint.bind(deps.roles) for endpoint in ROLE_TABLE]
        super().__init__(
            kind=BackendKind.AUTH,
            paths=paths,
            help="The token store: create, look up, renew and revoke tokens.",
            root_paths=("revoke-orphan", "revoke-orphan/*", "accessors", "accessors/*"),
        )


def build_token_backend(deps: TokenBackendDeps) -> FrameworkBackend:
    return TokenBackend(deps)
