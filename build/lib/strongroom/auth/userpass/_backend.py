"""The userpass factory, ``login/<username>`` and the renewal hook.

Login, in order, all under a per-username lock (so parallel guesses queue behind each other
and the lockout counter is exact):

1. the username is normalised (strip, lower-case), exactly as ``users/`` stores it;
2. a locked-out name is refused at once (403), without looking at the password;
3. the password is verified with argon2id in the hashing pool: against the user's hash, or
   against a dummy hash of the same cost when there is no such user;
4. a failure counts towards the lockout (for unknown names too) and answers 400 "invalid
   username or password" whatever went wrong; a success resets the counter;
5. ``token_bound_cidrs`` is checked against the caller's address (403 outside them).

The token's identity alias name is the normalised username.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._common import storage_of
from strongroom.auth._lockout import Lockout
from strongroom.auth._tokenfields import TokenParams, renewal_secrets
from strongroom.auth.userpass._passwords import hash_password, needs_rehash, verify_password
from strongroom.auth.userpass._users import (
    USER_PREFIX,
    UserPaths,
    load_user,
    normalize_username,
    valid_username,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import FrameworkBackend, Path, put_json
from strongroom.logical import Backend, BackendConfig, BackendKind, Operation, Request, Response

__all__ = ["LoginArgs", "factory"]

_INVALID = "invalid username or password"


@dataclass(frozen=True, slots=True)
class LoginArgs:
    username: str
    password: str = field(default="", repr=False)


class UserpassLogin:
    def __init__(self, config: BackendConfig) -> None:
        self.lockout = Lockout(config.system.now)

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"login/(?P<username>[^/]+)",
                args=LoginArgs,
                operations={Operation.UPDATE: self.login},
                synopsis="Log in with a username and password.",
                description=_LOGIN_HELP,
            ),
            *self.lockout.paths(),
        ]

    async def login(self, request: Request, args: LoginArgs) -> Response:
        if not args.password:
            raise InvalidRequest("missing password")
        name = normalize_username(args.username)
        known_name = valid_username(name)
        storage = storage_of(request)
        async with self.lockout.hold(name):
            config = await self.lockout.config(storage)
            if known_name:
                await self.lockout.check(storage, name, config)
            record = await load_user(storage, name) if known_name else None
            encoded: str | None = record["password_hash"] if record else None
            matched = await verify_password(encoded, args.password)
            if not matched or record is None or encoded is None:
                if known_name:
                    await self.lockout.failed(storage, name, config)
                raise InvalidRequest(_INVALID)
            await self.lockout.succeeded(storage, name)
            if needs_rehash(encoded):
                # parameters changed since this hash was made: upgrade it now that we
                # hold the password
                rehashed = await hash_password(args.password)
                await put_json(storage, USER_PREFIX + name, {**record, "password_hash": rehashed})
        params = TokenParams.from_record(record.get("token"))
        params.check_remote(request)
        return Response(
            auth=params.auth(
                alias_name=name,
                display_name=name,
                metadata={"username": name},
                internal_data={"username": name},
            )
        )

    async def renew_check(self, request: Request, internal: Mapping[str, Any]) -> TokenParams:
        record = await load_user(storage_of(request), str(internal.get("username", "")))
        if record is None:
            raise InvalidRequest("user no longer exists")
        return TokenParams.from_record(record.get("token"))


async def factory(config: BackendConfig) -> Backend:
    """Build a userpass auth backend for a mount.

    Args:
        config: the mount's configuration (its clock drives lockout times).

    Returns:
        The backend; ``login/*`` is reachable without a token.
    """
    login = UserpassLogin(config)
    return FrameworkBackend(
        kind=BackendKind.AUTH,
        paths=[*UserPaths().paths(), *login.paths()],
        help=_BACKEND_HELP,
        unauthenticated_paths=("login/*",),
        secrets=renewal_secrets(login.renew_check),
    )


_LOGIN_HELP = """\
POST {"password": "..."} to login/<username>. Answers an auth block with the user's token
settings. Wrong username and wrong password give the same answer in the same time; after
lockout_threshold failures the username is locked out for lockout_duration (see
config/lockout)."""

_BACKEND_HELP = """\
The userpass auth method authenticates users by username and password. Passwords are stored
as argon2id hashes (m=19 MiB, t=2, p=1). Usernames are case-insensitive."""
