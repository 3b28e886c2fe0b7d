"""jwt/oidc ``role/`` (LIST) and ``role/<name>`` (create, read, update, delete).

Vault's rules on write: ``user_claim`` is required; a ``jwt`` role needs at least one of
``bound_audiences``, ``bound_subject``, ``bound_claims`` and ``token_bound_cidrs``; an ``oidc``
role (the default type) needs ``allowed_redirect_uris``. Leeways take seconds or a duration
string; 0 means the default (clock skew 60 s, expiration and not-before 150 s) and -1 none.
``claim_mappings`` may not target the reserved ``role`` metadata key nor one key twice.

``callback_mode`` (oidc roles) is ``client`` (the default: the client that asked for the auth
URL completes the login at ``oidc/callback``) or ``direct`` (the provider sends the browser to
``oidc/callback``, and the client collects the token at ``oidc/poll`` every ``poll_interval``
seconds); Vault's ``device`` mode is refused. ``max_age`` (seconds or a duration) is sent to
the provider and checked against the ID token's ``auth_time``.

``verbose_oidc_logging`` is refused: this server never logs tokens or claims.

Role names are case-insensitive, as in Vault and OpenBao: stored, listed and reported (the
token's ``role`` metadata) in lower case; ``role/MyRole``, a login's ``role`` and the
config's ``default_role`` are lower-cased before use.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._common import RoleTablePaths, given, storage_of
from strongroom.auth._tokenfields import TOKEN_FIELD_NAMES, TokenFieldArgs, TokenParams
from strongroom.auth.jwt._claims import check_bound_claims_config
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, get_json, parse_duration, put_json
from strongroom.logical import Auth, Request, Storage

__all__ = ["ROLE_PREFIX", "JWTRole", "RoleArgs", "RolePaths", "load_role"]

ROLE_PREFIX = "role/"
_NAME = re.compile(r"[\w.@\-]+")
_RESERVED_METADATA = ("role",)
_LEEWAYS = ("clock_skew_leeway", "expiration_leeway", "not_before_leeway")


def _leeway(value: Any, name: str) -> int:
    """Signed seconds: an int, a digit string, or a duration string; -1 disables."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = int(value)
    elif isinstance(value, str) and value.strip().startswith("-"):
        seconds = -parse_duration(value.strip()[1:], name)
    else:
        seconds = parse_duration(value, name)
    if seconds < -1:
        raise InvalidRequest(f"{name}: must be -1 (disabled), 0 (default) or positive")
    return seconds


@dataclass(frozen=True, slots=True)
class JWTRole:
    role_type: str = "oidc"
    user_claim: str = ""
    user_claim_json_pointer: bool = False
    bound_audiences: tuple[str, ...] = ()
    bound_subject: str = ""
    bound_claims: Mapping[str, Any] = field(default_factory=dict)
    bound_claims_type: str = "string"
    claim_mappings: Mapping[str, str] = field(default_factory=dict)
    groups_claim: str = ""
    clock_skew_leeway: int = 60
    expiration_leeway: int = 150
    not_before_leeway: int = 150
    allowed_redirect_uris: tuple[str, ...] = ()
    oidc_scopes: tuple[str, ...] = ()
    callback_mode: str = "client"
    poll_interval: int = 0
    max_age: int = 0
    token: TokenParams = field(default_factory=TokenParams)

    def to_record(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("bound_audiences", "allowed_redirect_uris", "oidc_scopes"):
            record[name] = list(record[name])
        record["bound_claims"] = dict(self.bound_claims)
        record["claim_mappings"] = dict(self.claim_mappings)
        record["token"] = self.token.to_record()
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> JWTRole:
        values = dict(record)
        for name in ("bound_audiences", "allowed_redirect_uris", "oidc_scopes"):
            values[name] = tuple(values.get(name, ()))
        values["token"] = TokenParams.from_record(values.get("token"))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def describe(self) -> dict[str, Any]:
        record = self.to_record()
        del record["token"]
        record["verbose_oidc_logging"] = False  # never on here (see the module docstring)
        if not self.poll_interval:
            del record["poll_interval"]  # Vault shows it only when set
        return {**record, **self.token.describe()}

    def login_auth(
        self, name: str, alias: str, mapped: Mapping[str, str], groups: list[str]
    ) -> Auth:
        """The login answer: alias and display name from the user claim, ``role`` plus the
        claim mappings as metadata, groups for core's identity store (group aliases)."""
        return self.token.auth(
            alias_name=alias,
            display_name=alias,
            metadata={"role": name, **mapped},
            internal_data={"role": name, "groups": list(groups)},
        )


async def load_role(storage: Storage, name: str) -> JWTRole | None:
    record = await get_json(storage, ROLE_PREFIX + name.lower())
    return None if record is None else JWTRole.from_record(record)


@dataclass(frozen=True, slots=True)
class RoleArgs(TokenFieldArgs):
    name: str
    role_type: str | None = None
    user_claim: str | None = None
    user_claim_json_pointer: bool | None = None
    bound_audiences: list[str] | None = None
    bound_subject: str | None = None
    bound_claims: dict[str, Any] | None = None
    bound_claims_type: str | None = None
    claim_mappings: dict[str, str] | None = None
    groups_claim: str | None = None
    clock_skew_leeway: Any = None
    expiration_leeway: Any = None
    not_before_leeway: Any = None
    allowed_redirect_uris: list[str] | None = None
    oidc_scopes: list[str] | None = None
    verbose_oidc_logging: bool | None = None
    max_age: Duration | None = None
    callback_mode: str | None = None
    poll_interval: int | None = None


def _role_name(raw: str) -> str:
    if _NAME.fullmatch(raw) is None or set(raw) == {"."}:
        raise InvalidRequest("name: letters, digits, '_', '-', '.' and '@' only")
    return raw.lower()  # Vault's jwt method keeps role names in lower case


def _validate(role: JWTRole) -> None:
    if role.role_type not in ("jwt", "oidc"):
        raise InvalidRequest('role_type: must be "jwt" or "oidc"')
    if not role.user_claim:
        raise InvalidRequest("a user claim must be defined on the role")
    if role.role_type == "jwt" and not (
        role.bound_audiences or role.bound_subject or role.bound_claims or role.token.bound_cidrs
    ):
        raise InvalidRequest(
            "must have at least one bound constraint when creating/updating a role: "
            "bound_audiences, bound_subject, bound_claims or token_bound_cidrs"
        )
    if role.callback_mode not in ("client", "direct"):
        raise InvalidRequest(
            'callback_mode: must be "client" or "direct" (the device flow is not supported)'
        )
    if role.poll_interval < 0 or role.max_age < 0:
        raise InvalidRequest("poll_interval and max_age may not be negative")
    if role.role_type == "oidc" and not role.allowed_redirect_uris:
        raise InvalidRequest("'allowed_redirect_uris' must be set if 'role_type' is 'oidc'")
    check_bound_claims_config(role.bound_claims, role.bound_claims_type)
    targets = list(role.claim_mappings.values())
    for target in targets:
        if target in _RESERVED_METADATA:
            raise InvalidRequest(f"metadata key {target!r} is reserved and may not be a mapping")
    if len(set(targets)) != len(targets):
        raise InvalidRequest("claim_mappings: a metadata key is mapped from more than one claim")


class RolePaths(RoleTablePaths):
    role_args = RoleArgs
    synopsis = "Manage a role: which tokens may log in, and the token they get."
    description = __doc__ or ""

    def role_name(self, raw: str) -> str:
        return _role_name(raw)

    async def load(self, storage: Storage, name: str) -> JWTRole | None:
        return await load_role(storage, name)

    async def write_role(self, request: Request, args: RoleArgs) -> None:
        name = _role_name(args.name)
        if args.verbose_oidc_logging:
            raise InvalidRequest("verbose_oidc_logging is not supported: tokens are never logged")
        storage = storage_of(request)
        role = await load_role(storage, name) or JWTRole()
        changes = given(
            args,
            exclude=("name", "verbose_oidc_logging", *TOKEN_FIELD_NAMES, *_LEEWAYS),
        )
        for key in ("bound_audiences", "allowed_redirect_uris", "oidc_scopes"):
            if key in changes:
                changes[key] = tuple(changes[key])
        for key in _LEEWAYS:
            value = getattr(args, key)
            if value is not None:
                changes[key] = _leeway(value, key)
        role = dataclasses.replace(role, **changes, token=role.token.updated(args))
        _validate(role)
        await put_json(storage, ROLE_PREFIX + name, role.to_record())
