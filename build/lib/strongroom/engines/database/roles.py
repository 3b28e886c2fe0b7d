"""roles/<name> and roles/ (LIST): dynamic roles, read by creds/<name>.

A role names its connection (``db_name``), the statements that create a user
(``creation_statements``, required; ``{{name}}``, ``{{username}}``, ``{{password}}`` and
``{{expiration}}`` are substituted), revoke it, roll back a failed creation and renew it, and
the lease TTLs (``default_ttl``/``max_ttl``; 0 means the mount's). Statement fields take a
string (one entry, which may hold several ``;``-separated statements) or a list, as Vault's
do; each entry may also be base64 or a JSON array. Updates merge with the stored role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strongroom.engines.database._records import (
    NAME,
    ROLE_PREFIX,
    Role,
    check_credential_type,
    load_role,
    load_static,
    save,
    storage_of,
)
from strongroom.engines.database._templates import TemplateError, parse_statement_field
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, NoArgs, Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.database._backend import DatabaseState

__all__ = ["RoleArgs", "RolePaths"]

_STATEMENT_FIELDS = (
    "creation_statements",
    "revocation_statements",
    "rollback_statements",
    "renew_statements",
)


@dataclass(frozen=True, slots=True)
class RoleArgs:
    name: str
    db_name: str = ""
    creation_statements: Any = None
    revocation_statements: Any = None
    rollback_statements: Any = None
    renew_statements: Any = None
    default_ttl: Duration = Duration(0)
    max_ttl: Duration = Duration(0)
    credential_type: str = "password"
    credential_config: dict[str, Any] = field(default_factory=dict)


def _statements(args: RoleArgs, given: set[str], old: Role | None) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for key in _STATEMENT_FIELDS:
        if key in given or old is None:
            try:
                out[key] = tuple(parse_statement_field(getattr(args, key), key))
            except TemplateError as exc:
                raise InvalidRequest(str(exc)) from None
        else:
            out[key] = getattr(old, key)
    return out


def role_data(role: Role) -> dict[str, Any]:
    return {
        "db_name": role.db_name,
        "creation_statements": list(role.creation_statements),
        "revocation_statements": list(role.revocation_statements),
        "rollback_statements": list(role.rollback_statements),
        "renew_statements": list(role.renew_statements),
        "default_ttl": role.default_ttl,
        "max_ttl": role.max_ttl,
        "credential_type": role.credential_type,
    }


class RolePaths:
    """roles/ and roles/<name>."""

    def __init__(self, state: DatabaseState) -> None:
        self.state = state

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"roles/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_roles},
                synopsis="List the dynamic roles.",
                description="Returns the names of the roles defined at roles/<name>.",
            ),
            Path(
                pattern=rf"roles/(?P<name>{NAME})",
                args=RoleArgs,
                operations={
                    Operation.READ: self.read,
                    Operation.CREATE: self.write,
                    Operation.UPDATE: self.write,
                    Operation.DELETE: self.delete,
                },
                existence_check=self.exists,
                synopsis="Manage the roles that creds/<name> generates credentials from.",
                description=_ROLE_HELP,
            ),
        ]

    async def exists(self, request: Request, args: RoleArgs) -> bool:
        return await load_role(storage_of(request), args.name) is not None

    async def list_roles(self, request: Request, args: NoArgs) -> Response | None:
        keys = await storage_of(request).list(ROLE_PREFIX)
        return Response(data={"keys": keys}) if keys else None

    async def read(self, request: Request, args: RoleArgs) -> Response | None:
        role = await load_role(storage_of(request), args.name)
        return None if role is None else Response(data=role_data(role))

    async def write(self, request: Request, args: RoleArgs) -> Response | None:
        storage = storage_of(request)
        given = {key for key, value in request.data.items() if value is not None}
        async with self.state.role_locks.hold(args.name):
            if await load_static(storage, args.name) is not None:
                raise InvalidRequest("Role and Static Role names must be unique")
            old = await load_role(storage, args.name)
            db_name = args.db_name if "db_name" in given or old is None else old.db_name
            if not db_name:
                raise InvalidRequest("empty database name attribute")
            statements = _statements(args, given, old)
            if not statements["creation_statements"]:
                raise InvalidRequest("creation_statements are required")
            default_ttl = int(
                args.default_ttl if "default_ttl" in given or old is None else old.default_ttl
            )
            max_ttl = int(args.max_ttl if "max_ttl" in given or old is None else old.max_ttl)
            if max_ttl and default_ttl > max_ttl:
                raise InvalidRequest("ttl cannot be greater than max_ttl")
            credential_type = check_credential_type(
                args.credential_type
                if "credential_type" in given or old is None
                else old.credential_type
            )
            role = Role(
                name=args.name,
                db_name=db_name,
                default_ttl=default_ttl,
                max_ttl=max_ttl,
                credential_type=credential_type,
                **statements,
            )
            await save(storage, role)
        return None

    async def delete(self, request: Request, args: RoleArgs) -> Response | None:
        # Leases already issued keep their db_name and revocation statements, so they can
        # still be revoked once the role is gone (as in Vault).
        async with self.state.role_locks.hold(args.name):
            await storage_of(request).delete(ROLE_PREFIX + args.name)
        return None


_ROLE_HELP = """\
Fields: db_name (required), creation_statements (required), revocation_statements,
rollback_statements, renew_statements (each a string or a list; {{name}}, {{username}},
{{password}} and {{expiration}} are substituted), default_ttl, max_ttl (0: the mount's), and
credential_type ("password"). Without revocation_statements a revoked user's sessions are
ended, its objects are handed to the connection's user, its privileges dropped and the role
dropped. Without renew_statements renewal runs ALTER ROLE … VALID UNTIL."""
