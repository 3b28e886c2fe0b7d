"""creds/<role> and the ``creds`` lease type (renew, revoke).

Reading creds/<role> makes a username (the config's ``username_template``, or Vault's
default for PostgreSQL) and a password, runs the role's creation statements in one
transaction with ``{{expiration}}`` set to the lease's end, and returns them with a
:class:`~strongroom.logical.Secret` core turns into a lease. ``internal_data`` carries what
renew and revoke need: ``username``, ``role``, ``db_name`` and the role's
``revocation_statements`` (so a lease stays revocable after its role is deleted, as in Vault).

TTLs follow Vault's ``framework.CalculateTTL``: the lease's maximum is the role's
``max_ttl`` capped by the mount's; the TTL is the increment asked for (renewal), else the
role's ``default_ttl``, else the mount's default, and never reaches past issue time + max.
The database-side expiry (``VALID UNTIL``) is set 5 seconds past the lease's end, as Vault
does, so the user never expires before the lease is revoked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.engines.database._passwords import random_alphanumeric
from strongroom.engines.database._postgres import format_expiration
from strongroom.engines.database._records import NAME, Role, load_role, storage_of
from strongroom.engines.database._templates import (
    DEFAULT_USERNAME_TEMPLATE,
    TemplateError,
    clean_field,
    compile_username_template,
)
from strongroom.errors import InternalError, InvalidRequest, PermissionDenied
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response, Secret, SystemView

if TYPE_CHECKING:
    from strongroom.engines.database._backend import DatabaseState

__all__ = ["SECRET_TYPE", "CredsArgs", "CredsPaths", "lease_ttls", "renewal_ttl"]

SECRET_TYPE = "creds"  # noqa: S105 (a lease type, not a secret)
EXPIRY_GRACE = 5  # seconds the database user outlives its lease (Vault's buffer)


@dataclass(frozen=True, slots=True)
class CredsArgs:
    name: str


def lease_ttls(system: SystemView, role: Role) -> tuple[int, int]:
    """(ttl, max_ttl) of a new lease for ``role``."""
    max_ttl = system.max_lease_ttl()
    if role.max_ttl > 0 and (max_ttl <= 0 or role.max_ttl < max_ttl):
        max_ttl = role.max_ttl
    ttl = role.default_ttl or system.default_lease_ttl()
    if max_ttl > 0:
        ttl = min(ttl, max_ttl)
    return ttl, max_ttl


def renewal_ttl(
    *, increment: int, default_ttl: int, max_ttl: int, issue_time: float, now: float
) -> int:
    """The TTL of a renewed lease: the increment (or default), cut at issue_time + max_ttl.

    Raises:
        InvalidRequest: the lease is already past its maximum TTL.
    """
    ttl = increment if increment > 0 else default_ttl
    if max_ttl > 0:
        start = int(issue_time) if issue_time else int(now)
        remaining = start + max_ttl - int(now)
        if remaining <= 0:
            raise InvalidRequest("past the max TTL, cannot renew")
        ttl = min(ttl, remaining)
    return ttl


def _secret(request: Request) -> Secret:
    if request.secret is None:
        raise InvalidRequest("no secret attached to this lease operation")
    return request.secret


def _internal(secret: Secret, key: str) -> str:
    value = secret.internal_data.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"secret is missing {key} internal data")
    return value


def _statements(data: Mapping[str, Any]) -> tuple[str, ...]:
    raw = data.get("revocation_statements") or ()
    return tuple(item for item in raw if isinstance(item, str))


class CredsPaths:
    """creds/<role> and the creds lease type."""

    def __init__(self, state: DatabaseState) -> None:
        self.state = state

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=rf"creds/(?P<name>{NAME})",
                args=CredsArgs,
                operations={Operation.READ: self.read},
                synopsis="Generate credentials from a role.",
                description=_CREDS_HELP,
            )
        ]

    async def read(self, request: Request, args: CredsArgs) -> Response | None:
        storage = storage_of(request)
        role = await load_role(storage, args.name)
        if role is None:
            raise InvalidRequest(f"unknown role: {args.name}")
        config, plugin = await self.state.connect(storage, role.db_name)
        if not config.allows(args.name):
            raise PermissionDenied(f'"{args.name}" is not an allowed role')
        system = self.state.system
        now = system.now()
        ttl, max_ttl = lease_ttls(system, role)
        display = request.token.display_name if request.token else ""
        try:
            template = compile_username_template(
                config.username_template or DEFAULT_USERNAME_TEMPLATE
            )
            username = template.render(
                {"DisplayName": clean_field(display), "RoleName": clean_field(role.name)},
                now=now,
                random=random_alphanumeric,
            )
        except TemplateError as exc:
            raise InvalidRequest(f"unable to generate username: {exc}") from None
        password = await self.state.password(config)
        await plugin.create_user(
            statements=role.creation_statements,
            rollback_statements=role.rollback_statements,
            username=username,
            password=password,
            expiration=format_expiration(now + ttl + EXPIRY_GRACE),
        )
        return Response(
            data={"username": username, "password": password},
            secret=Secret(
                type=SECRET_TYPE,
                ttl=ttl,
                max_ttl=max_ttl,
                renewable=True,
                internal_data={
                    "username": username,
                    "role": role.name,
                    "db_name": role.db_name,
                    "revocation_statements": list(role.revocation_statements),
                },
            ),
        )

    async def renew(self, request: Request) -> Response:
        """RENEW from core: push the user's VALID UNTIL to now + the new TTL (+ grace).

        Raises:
            InvalidRequest: malformed internal data, the role is gone, or the lease is past
                its maximum TTL (renewal is refused; the lease still expires normally).
            InternalError: the database is unreachable.
        """
        secret = _secret(request)
        username = _internal(secret, "username")
        role_name = _internal(secret, "role")
        storage = storage_of(request)
        role = await load_role(storage, role_name)
        if role is None:
            raise InvalidRequest(f'error during renew: could not find role with name "{role_name}"')
        system = self.state.system
        now = system.now()
        default_ttl, max_ttl = lease_ttls(system, role)
        ttl = renewal_ttl(
            increment=secret.increment,
            default_ttl=default_ttl,
            max_ttl=max_ttl,
            issue_time=secret.issue_time,
            now=now,
        )
        _config, plugin = await self.state.connect(storage, role.db_name)
        await plugin.renew_user(
            username=username,
            statements=role.renew_statements,
            expiration=format_expiration(now + ttl + EXPIRY_GRACE),
        )
        return Response(secret=dataclasses.replace(secret, ttl=ttl, max_ttl=max_ttl))

    async def revoke(self, request: Request) -> None:
        """REVOKE from core: drop the user. Idempotent (a user already gone is revoked);
        any failure raises, so core keeps the lease and retries.

        Raises:
            InvalidRequest: malformed internal data.
            InternalError: the database is unreachable, or its config is gone.
        """
        secret = _secret(request)
        username = _internal(secret, "username")
        role_name = _internal(secret, "role")
        storage = storage_of(request)
        role = await load_role(storage, role_name)
        if role is not None:
            db_name, statements = role.db_name, role.revocation_statements
        else:
            db_name = _internal(secret, "db_name")
            statements = _statements(secret.internal_data)
        try:
            _config, plugin = await self.state.connect(storage, db_name)
        except InvalidRequest:
            raise InternalError(
                f'cannot revoke: database configuration "{db_name}" does not exist'
            ) from None
        await plugin.revoke_user(username=username, statements=statements)


_CREDS_HELP = """\
Creates a database user from the role's creation statements and returns its username and
password under a renewable lease. Renewing moves the user's expiry; revoking (or the lease
expiring) drops the user."""
