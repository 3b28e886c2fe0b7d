"""userpass ``users/`` (LIST), ``users/<username>`` (create, read, update, delete),
``users/<username>/password`` and ``users/<username>/policies``.

Usernames are normalised once, here, for every path: surrounding whitespace is stripped and
the name lower-cased (Vault lower-cases userpass names), then checked against Vault's
character rules. Storage, login, lockout counting and the identity alias all use the
normalised name, so "Alice", " alice" and "alice" are one user with one lockout counter.

Storage: ``user/<name>`` → ``{"password_hash": "$argon2id$…", "token": {…token params…}}``.
The password is never stored or returned; reads show the token settings only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._common import storage_of
from strongroom.auth._tokenfields import TokenFieldArgs, TokenParams
from strongroom.auth.userpass._passwords import check_password_hash, hash_password
from strongroom.errors import InvalidRequest
from strongroom.framework import KeyLocks, NoArgs, Path, get_json, put_json
from strongroom.logical import Operation, Request, Response, Storage

__all__ = [
    "USER_PREFIX",
    "UserArgs",
    "UserPaths",
    "load_user",
    "normalize_username",
    "valid_username",
]

USER_PREFIX = "user/"
_NAME = re.compile(r"[a-z0-9_.\-]+")


def normalize_username(raw: str) -> str:
    """Strip and lower-case: the one spelling of a username everywhere."""
    return raw.strip().lower()


def valid_username(name: str) -> bool:
    """Vault's rule: alphanumerics, ``_``, ``-``, ``.``; no leading ``-``; no leading or
    trailing ``.`` (which also rules out the ``.``/``..`` storage segments)."""
    return (
        _NAME.fullmatch(name) is not None
        and not name.startswith("-")
        and not name.startswith(".")
        and not name.endswith(".")
    )


def _checked(raw: str) -> str:
    name = normalize_username(raw)
    if not valid_username(name):
        raise InvalidRequest(
            "username: only letters, digits, '_', '-' and '.' are allowed; it cannot begin "
            "with '-' nor begin or end with '.'"
        )
    return name


async def load_user(storage: Storage, name: str) -> dict[str, Any] | None:
    record: dict[str, Any] | None = await get_json(storage, USER_PREFIX + name)
    return record


@dataclass(frozen=True, slots=True)
class UserArgs(TokenFieldArgs):
    username: str
    password: str | None = field(default=None, repr=False)
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PasswordArgs:
    username: str
    password: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class PoliciesArgs:
    username: str
    token_policies: list[str] | None = None
    policies: list[str] | None = None


class UserPaths:
    def __init__(self) -> None:
        self._locks = KeyLocks()

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"users/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_users},
                synopsis="List the users of this mount.",
                description="Returns the (normalised, lower-case) usernames.",
            ),
            Path(
                pattern=r"users/(?P<username>[^/]+)/password",
                args=PasswordArgs,
                operations={Operation.UPDATE: self.set_password},
                synopsis="Change a user's password.",
                description="The user must exist. The password is hashed with argon2id.",
            ),
            Path(
                pattern=r"users/(?P<username>[^/]+)/policies",
                args=PoliciesArgs,
                operations={Operation.UPDATE: self.set_policies},
                synopsis="Change the policies of a user's tokens.",
                description="Sets token_policies (or the deprecated 'policies').",
            ),
            Path(
                pattern=r"users/(?P<username>[^/]+)",
                args=UserArgs,
                operations={
                    Operation.CREATE: self.write_user,
                    Operation.UPDATE: self.write_user,
                    Operation.READ: self.read_user,
                    Operation.DELETE: self.delete_user,
                },
                existence_check=self.user_exists,
                synopsis="Manage one user.",
                description=_USER_HELP,
            ),
        ]

    async def list_users(self, request: Request, args: NoArgs) -> Response | None:
        keys = [key for key in await storage_of(request).list(USER_PREFIX) if "/" not in key]
        return Response(data={"keys": keys}) if keys else None

    async def user_exists(self, request: Request, args: UserArgs) -> bool:
        name = normalize_username(args.username)
        return valid_username(name) and await load_user(storage_of(request), name) is not None

    async def read_user(self, request: Request, args: UserArgs) -> Response | None:
        name = _checked(args.username)
        record = await load_user(storage_of(request), name)
        if record is None:
            return None
        return Response(data=TokenParams.from_record(record.get("token")).describe())

    async def write_user(self, request: Request, args: UserArgs) -> None:
        name = _checked(args.username)
        if args.password is not None and args.password_hash is not None:
            raise InvalidRequest("only one of password or password_hash can be given")
        storage = storage_of(request)
        async with self._locks.hold(name):
            record = await load_user(storage, name)
            if record is None and not args.password and not args.password_hash:
                raise InvalidRequest("missing password")
            if args.password is not None and args.password == "":
                raise InvalidRequest("password: must not be empty")
            params = TokenParams.from_record(record.get("token") if record else None)
            params = params.updated(args)
            encoded = record["password_hash"] if record else ""
            if args.password:
                encoded = await hash_password(args.password)
            elif args.password_hash:
                encoded = check_password_hash(args.password_hash)
            await put_json(
                storage,
                USER_PREFIX + name,
                {"password_hash": encoded, "token": params.to_record()},
            )

    async def delete_user(self, request: Request, args: UserArgs) -> None:
        name = _checked(args.username)
        async with self._locks.hold(name):
            await storage_of(request).delete(USER_PREFIX + name)

    async def set_password(self, request: Request, args: PasswordArgs) -> None:
        name = _checked(args.username)
        if not args.password:
            raise InvalidRequest("missing password")
        storage = storage_of(request)
        encoded = await hash_password(args.password)
        async with self._locks.hold(name):
            record = await load_user(storage, name)
            if record is None:
                raise InvalidRequest("username does not exist")
            await put_json(storage, USER_PREFIX + name, {**record, "password_hash": encoded})

    async def set_policies(self, request: Request, args: PoliciesArgs) -> None:
        name = _checked(args.username)
        chosen = args.token_policies if args.token_policies is not None else args.policies
        storage = storage_of(request)
        async with self._locks.hold(name):
            record = await load_user(storage, name)
            if record is None:
                raise InvalidRequest("username does not exist")
            params = TokenParams.from_record(record.get("token"))
            params = params.updated(TokenFieldArgs(token_policies=chosen or []))
            await put_json(storage, USER_PREFIX + name, {**record, "token": params.to_record()})


_USER_HELP = """\
POST creates or updates a user: 'password' (required on create; or 'password_hash', an
argon2id PHC string) and the token_* fields (token_policies, token_ttl, token_max_ttl,
token_period, token_explicit_max_ttl, token_num_uses, token_no_default_policy,
token_bound_cidrs, token_type). GET returns the token settings, never the password. Usernames
are case-insensitive: they are stripped of surrounding spaces and lower-cased."""
