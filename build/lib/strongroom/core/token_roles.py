"""Token roles: ``auth/token/roles/:name`` and the rules ``auth/token/create/:role`` applies.

A role lets a caller mint tokens whose policies come from the role's allow-list rather
than from the caller's own policies, optionally as orphans, with a fixed path suffix (so a
role's tokens can be revoked by prefix), bound CIDRs, a period and an explicit max TTL.

Roles live in the token store's view under ``roles/<name>`` (Vault's layout). The
policy rules follow Vault's token store:

* a role with allowed/disallowed policies (or their globs) decides the policy set on its
  own: the caller's policies do not bound it;
* requested policies must all be allowed (by name or glob), none disallowed;
* without requested policies, the role's allowed list (or the parent's policies when the
  role only disallows) is used;
* ``default`` is added unless the request or the role says not to, or the role disallows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from strongroom.auth._common import glob_match, glob_match_any, parse_cidrs
from strongroom.core.policy import normalize_policy_name
from strongroom.errors import InvalidRequest
from strongroom.framework import (
    KeyLocks,
    parse_bool,
    parse_duration,
    parse_int,
    parse_str_list,
)
from strongroom.logical import Storage, StorageOp

__all__ = [
    "ROLE_FIELDS",
    "RoleLimits",
    "RolePolicies",
    "TokenRole",
    "TokenRoleStore",
    "check_entity_alias",
    "parse_role_update",
    "role_limits",
    "role_policies",
    "role_token_type",
]

TOKEN_TYPES = ("service", "batch", "default-service", "default-batch", "default")


@dataclass(frozen=True, slots=True)
class TokenRole:
    name: str
    allowed_policies: tuple[str, ...] = ()
    disallowed_policies: tuple[str, ...] = ()
    allowed_policies_glob: tuple[str, ...] = ()
    disallowed_policies_glob: tuple[str, ...] = ()
    allowed_entity_aliases: tuple[str, ...] = ()
    orphan: bool = False
    renewable: bool = True
    path_suffix: str = ""
    token_type: str = "default-service"  # noqa: S105 (a token kind)
    period: int = 0
    explicit_max_ttl: int = 0
    token_bound_cidrs: tuple[str, ...] = ()
    token_no_default_policy: bool = False
    token_num_uses: int = 0

    def to_json(self) -> dict[str, Any]:
        """The read response, in Vault's shape (legacy and ``token_*`` names both)."""
        data: dict[str, Any] = {
            "name": self.name,
            "allowed_policies": list(self.allowed_policies),
            "disallowed_policies": list(self.disallowed_policies),
            "allowed_policies_glob": list(self.allowed_policies_glob),
            "disallowed_policies_glob": list(self.disallowed_policies_glob),
            "allowed_entity_aliases": list(self.allowed_entity_aliases),
            "orphan": self.orphan,
            "renewable": self.renewable,
            "path_suffix": self.path_suffix,
            "token_type": self.token_type,
            "period": self.period,
            "token_period": self.period,
            "explicit_max_ttl": self.explicit_max_ttl,
            "token_explicit_max_ttl": self.explicit_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
        }
        # as Vault: these two only when set
        if self.token_num_uses:
            data["token_num_uses"] = self.token_num_uses
        if self.token_bound_cidrs:
            data["token_bound_cidrs"] = list(self.token_bound_cidrs)
        return data

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes) -> TokenRole:
        doc = orjson.loads(raw)
        for key, value in doc.items():
            if isinstance(value, list):
                doc[key] = tuple(value)
        return cls(**doc)


# Every field a role write accepts (the legacy names map onto the token_* ones).
ROLE_FIELDS = (
    "allowed_policies",
    "disallowed_policies",
    "allowed_policies_glob",
    "disallowed_policies_glob",
    "allowed_entity_aliases",
    "orphan",
    "renewable",
    "path_suffix",
    "token_type",
    "period",
    "token_period",
    "explicit_max_ttl",
    "token_explicit_max_ttl",
    "bound_cidrs",
    "token_bound_cidrs",
    "token_no_default_policy",
    "token_num_uses",
)


def _policy_list(value: Any, name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(normalize_policy_name(p) for p in parse_str_list(value, name)))


def parse_role_update(name: str, current: TokenRole | None, data: dict[str, Any]) -> TokenRole:
    """Apply a role write to the stored role (or the defaults): absent fields are kept.

    Raises:
        InvalidRequest: a field of the wrong type, a bad token type, CIDR or path suffix.
    """
    role = current or TokenRole(name=name)
    changes: dict[str, Any] = {}

    def pick(*names: str) -> Any:
        # As in Vault, the token_* name wins when both are sent.
        for key in names:
            if data.get(key) is not None:
                return data[key]
        return None

    for key in ("allowed_policies", "disallowed_policies"):
        if (value := data.get(key)) is not None:
            changes[key] = _policy_list(value, key)
    for key in ("allowed_policies_glob", "disallowed_policies_glob"):
        if (value := data.get(key)) is not None:
            globs = (p.lower() for p in parse_str_list(value, key))
            changes[key] = tuple(dict.fromkeys(globs))
    if (value := data.get("allowed_entity_aliases")) is not None:
        changes["allowed_entity_aliases"] = tuple(
            dict.fromkeys(parse_str_list(value, "allowed_entity_aliases"))
        )
    for key in ("orphan", "renewable", "token_no_default_policy"):
        if (value := data.get(key)) is not None:
            changes[key] = parse_bool(value, key)
    if (value := data.get("path_suffix")) is not None:
        suffix = str(value).strip().strip("/")
        if ".." in suffix:
            raise InvalidRequest("'..' present in path_suffix")
        changes["path_suffix"] = suffix
    if (value := data.get("token_type")) is not None:
        kind = str(value).strip().lower()
        if kind not in TOKEN_TYPES:
            raise InvalidRequest(f"invalid 'token_type' value {kind!r}")
        changes["token_type"] = "default-service" if kind == "default" else kind
    if (value := pick("token_period", "period")) is not None:
        changes["period"] = int(parse_duration(value, "token_period"))
    if (value := pick("token_explicit_max_ttl", "explicit_max_ttl")) is not None:
        changes["explicit_max_ttl"] = int(parse_duration(value, "token_explicit_max_ttl"))
    if (value := pick("token_bound_cidrs", "bound_cidrs")) is not None:
        changes["token_bound_cidrs"] = parse_cidrs(
            parse_str_list(value, "token_bound_cidrs"), "token_bound_cidrs"
        )
    if (value := data.get("token_num_uses")) is not None:
        uses = parse_int(value, "token_num_uses")
        if uses < 0:
            raise InvalidRequest("token_num_uses cannot be negative")
        changes["token_num_uses"] = uses
    merged = TokenRole(**(asdict(role) | changes))
    if merged.token_type in ("batch",) and merged.period:
        raise InvalidRequest(
            "'token_type' cannot be 'batch' when role is set to generate periodic tokens"
        )
    if merged.token_type in ("batch",) and merged.token_num_uses:
        raise InvalidRequest("'token_type' cannot be 'batch' when 'token_num_uses' is set")
    return merged


@dataclass(frozen=True, slots=True)
class RolePolicies:
    policies: tuple[str, ...]
    # False when the role decided the policy set (then the parent's policies don't bound it)
    bounded_by_parent: bool = True
    warnings: list[str] = field(default_factory=list)


def _allowed(policy: str, names: Sequence[str], globs: Sequence[str]) -> bool:
    return policy in names or glob_match_any(globs, policy)


def role_policies(
    role: TokenRole,
    requested: Sequence[str],
    parent_policies: Sequence[str],
    *,
    no_default_policy: bool,
) -> RolePolicies | None:
    """The policy set of a token created against ``role``, or None to use the plain rules.

    Raises:
        InvalidRequest: a requested policy the role does not allow or explicitly disallows.
    """
    if not (
        role.allowed_policies
        or role.allowed_policies_glob
        or role.disallowed_policies
        or role.disallowed_policies_glob
    ):
        return None
    add_default = not no_default_policy and not role.token_no_default_policy
    if add_default and (
        "default" in role.disallowed_policies
        or any(glob_match(g, "default") for g in role.disallowed_policies_glob)
    ):
        add_default = False
    final = [normalize_policy_name(p) for p in requested]
    if role.allowed_policies or role.allowed_policies_glob:
        if not final:
            final = list(role.allowed_policies)
        else:
            allowed = list(role.allowed_policies) + (["default"] if add_default else [])
            for policy in final:
                if not _allowed(policy, allowed, role.allowed_policies_glob):
                    raise InvalidRequest(
                        f"token policies ({sorted(set(final))}) must be subset of the role's "
                        f"allowed policies ({list(role.allowed_policies)}) or glob policies "
                        f"({list(role.allowed_policies_glob)})"
                    )
    elif not final:
        final = list(parent_policies)
    if add_default:
        final.append("default")
    for policy in final:
        if _allowed(policy, role.disallowed_policies, role.disallowed_policies_glob):
            raise InvalidRequest(f"token policy {policy!r} is disallowed by this role")
    policies = tuple(sorted(set(p for p in final if p)))
    if no_default_policy or role.token_no_default_policy:
        policies = tuple(p for p in policies if p != "default")
    return RolePolicies(policies=policies, bounded_by_parent=False)


def role_token_type(role: TokenRole, requested: str) -> str:
    """The token type a role-based create yields: fixed types win, defaults yield to the request."""
    if role.token_type in ("service", "batch"):
        if requested not in ("", "default", role.token_type):
            raise InvalidRequest(
                f"requested token type {requested!r} does not match role's token type "
                f"{role.token_type!r}"
            )
        return role.token_type
    if requested in ("", "default"):
        return "batch" if role.token_type in ("default-batch",) else "service"
    return requested


class TokenRoleStore:
    """Roles in the token store's view, under ``roles/<name>``."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.locks = KeyLocks()  # held across a role's read-modify-write

    async def get(self, name: str) -> TokenRole | None:
        raw = await self._storage.get("roles/" + name)
        return TokenRole.decode(raw) if raw is not None else None

    async def put(self, role: TokenRole) -> None:
        await self._storage.put("roles/" + role.name, role.encode())

    async def delete(self, name: str) -> None:
        await self._storage.transaction([StorageOp("roles/" + name)])

    async def names(self) -> list[str]:
        return sorted(await self._storage.list("roles/"))


@dataclass(frozen=True, slots=True)
class RoleLimits:
    period: int
    explicit_max_ttl: int
    num_uses: int
    warnings: list[str]


def role_limits(role: TokenRole, period: int, explicit_max_ttl: int, num_uses: int) -> RoleLimits:
    """The lesser of the request's and the role's period, explicit max TTL and use count."""
    warnings: list[str] = []
    if role.explicit_max_ttl:
        if explicit_max_ttl:
            explicit_max_ttl = min(explicit_max_ttl, role.explicit_max_ttl)
            warnings.append(
                "Explicit max TTL specified both during creation call and in role; "
                f"using the lesser value of {explicit_max_ttl} seconds"
            )
        else:
            explicit_max_ttl = role.explicit_max_ttl
    if role.period:
        if period:
            period = min(period, role.period)
            warnings.append(
                "Period specified both during creation call and in role; "
                f"using the lesser value of {period} seconds"
            )
        else:
            period = role.period
    if role.token_num_uses and (num_uses == 0 or role.token_num_uses < num_uses):
        num_uses = role.token_num_uses
    return RoleLimits(period, explicit_max_ttl, num_uses, warnings)


def check_entity_alias(role: TokenRole | None, alias: str) -> None:
    """Vault's rules for ``entity_alias`` on create.

    Raises:
        InvalidRequest: an alias without a role, or one the role does not allow.
    """
    if not alias:
        return
    if role is None:
        raise InvalidRequest("'entity_alias' is only allowed in combination with token role")
    if not glob_match_any(role.allowed_entity_aliases, alias):
        raise InvalidRequest("invalid 'entity_alias' value")
