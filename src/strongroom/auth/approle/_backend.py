"""The AppRole factory, ``login`` and the renewal hook.

Login ``{role_id, secret_id}``:

1. the role is found by the HMAC of its role ID (404-free: an unknown role ID and a wrong
   secret ID both answer 400 "invalid role or secret ID");
2. ``secret_id_bound_cidrs`` of the role, then (with ``bind_secret_id``) the secret ID: it
   must exist under this role, be unexpired, and its own ``cidr_list`` must admit the caller;
3. the token's bound CIDRs (the secret ID's, else the role's) must admit the caller. All
   address checks run *before* a use is consumed, so a refused login costs no use;
4. a limited secret ID loses one use under a per-secret-ID lock; the last use deletes it
   (entry and accessor in one transaction), so two concurrent logins can never both spend
   the final use.

The identity alias name is the role ID (Vault's default); token metadata is the secret ID's
metadata plus ``role_name``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.auth._common import remote_in, storage_of
from strongroom.auth._tokenfields import TokenParams, renewal_secrets
from strongroom.auth.approle._records import ROLE_ID_PREFIX, AppRoleState, Role, SecretIDEntry
from strongroom.auth.approle._roles import RolePaths
from strongroom.auth.approle._secret_ids import SecretIDPaths, delete_ops
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import KEEP, FrameworkBackend, Path, Swap, get_json, swap
from strongroom.logical import (
    Backend,
    BackendConfig,
    BackendKind,
    Operation,
    Request,
    Response,
    Storage,
)

__all__ = ["LoginArgs", "factory"]

_INVALID = "invalid role or secret ID"


@dataclass(frozen=True, slots=True)
class LoginArgs:
    role_id: str = field(default="", repr=False)
    secret_id: str = field(default="", repr=False)


class AppRoleLogin:
    def __init__(self, state: AppRoleState) -> None:
        self.state = state

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"login",
                args=LoginArgs,
                operations={Operation.UPDATE: self.login},
                synopsis="Log in with a role ID and secret ID.",
                description=__doc__ or "",
            )
        ]

    async def _role_by_id(self, storage: Storage, role_id: str) -> Role | None:
        index = await get_json(storage, ROLE_ID_PREFIX + await self.state.hmac(role_id))
        if index is None:
            return None
        role = await self.state.load_role(storage, str(index["name"]))
        # the index could be stale after a concurrent role-id change: trust the role record
        if role is None or role.role_id != role_id:
            return None
        return role

    async def login(self, request: Request, args: LoginArgs) -> Response:
        if not args.role_id:
            raise InvalidRequest("missing role_id")
        storage = storage_of(request)
        role = await self._role_by_id(storage, args.role_id)
        if role is None:
            raise InvalidRequest(_INVALID)
        remote = request.connection.remote_addr
        if not remote_in(role.secret_id_bound_cidrs, remote):
            raise InvalidRequest(
                "source address unauthorized through CIDR restrictions on the role"
            )
        metadata: dict[str, str] = {}
        token_cidrs = role.token.bound_cidrs
        accessor = ""
        if role.bind_secret_id:
            if not args.secret_id:
                raise InvalidRequest("missing secret_id")
            entry = await self._spend_secret_id(storage, role, args.secret_id, remote)
            metadata.update(entry.metadata)
            token_cidrs = entry.token_bound_cidrs or token_cidrs
            accessor = entry.accessor
        elif not remote_in(token_cidrs, remote):
            raise PermissionDenied()
        metadata["role_name"] = role.name
        return Response(
            auth=role.token.auth(
                alias_name=role.role_id,
                metadata=metadata,
                internal_data={"role_name": role.name, "secret_id_accessor": accessor},
                bound_cidrs=token_cidrs,
            )
        )

    async def _spend_secret_id(
        self, storage: Storage, role: Role, secret_id: str, remote: str
    ) -> SecretIDEntry:
        digest = await self.state.hmac(secret_id)
        key = self.state.secret_key(role.name, digest)
        now = self.state.now()

        # a guarded read-modify-write: of concurrent logins (in any process sharing the
        # storage) at most ``num_uses`` spend the secret ID
        async def change(raw: bytes | None) -> Swap[SecretIDEntry | None]:
            if raw is None:
                raise InvalidRequest(_INVALID)
            entry = SecretIDEntry.from_record(orjson.loads(raw))
            if entry.expired(now):
                return Swap(KEEP, None, delete_ops(role.name, digest, entry.accessor))
            if not remote_in(entry.cidr_list, remote):
                raise InvalidRequest(
                    "source address unauthorized through CIDR restrictions on the secret ID"
                )
            if not remote_in(entry.token_bound_cidrs or role.token.bound_cidrs, remote):
                raise PermissionDenied()
            if entry.num_uses == 1:
                return Swap(KEEP, entry, delete_ops(role.name, digest, entry.accessor))
            if entry.num_uses > 1:
                spent = dataclasses.replace(
                    entry, num_uses=entry.num_uses - 1, last_updated_time=now
                )
                return Swap(orjson.dumps(spent.to_record()), entry)
            return Swap(KEEP, entry)

        async with self.state.secret_locks.hold(f"{role.name}/{digest}"):
            spent = await swap(storage, key, change)
        if spent is None:
            raise InvalidRequest(_INVALID)
        return spent

    async def resolve_role(self, request: Request) -> str:
        """The role a login names through its role ID ("" if none): role quotas."""
        role_id = request.data.get("role_id")
        if not isinstance(role_id, str) or not role_id:
            return ""
        role = await self._role_by_id(storage_of(request), role_id)
        return role.name if role is not None else ""

    async def renew_check(self, request: Request, internal: Mapping[str, Any]) -> TokenParams:
        role = await self.state.load_role(storage_of(request), str(internal.get("role_name", "")))
        if role is None:
            raise InvalidRequest("role no longer exists")
        return role.token


async def factory(config: BackendConfig) -> Backend:
    """Build an AppRole auth backend for a mount.

    Args:
        config: the mount's configuration; ``initialize()`` loads (or makes) the HMAC key.

    Returns:
        The backend; ``login`` is reachable without a token.
    """
    state = AppRoleState(config.storage, config.system.now)
    login = AppRoleLogin(state)
    return FrameworkBackend(
        kind=BackendKind.AUTH,
        paths=[*SecretIDPaths(state).paths(), *RolePaths(state).paths(), *login.paths()],
        help=_BACKEND_HELP,
        unauthenticated_paths=("login",),
        initialize=state.initialize,
        secrets=renewal_secrets(login.renew_check),
        resolve_role=login.resolve_role,
    )


_BACKEND_HELP = """\
The AppRole auth method: machines log in with a role ID (like a username) and a secret ID
(like a password, generated per instance, optionally limited in uses, time and source
address). Secret IDs are stored only as HMACs."""
