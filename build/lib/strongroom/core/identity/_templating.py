"""Identity templating: the values that fill ``{{identity...}}`` ACL policy placeholders, and
the JSON claims templates of identity-token roles. Pure.

ACL values (:func:`acl_values`) are a flat map from Vault's selectors (without braces) to
strings, exactly what :func:`strongroom.core.policy.render_policy` takes. That function
refuses values that could widen a rule (``/``, ``*``, ``+``...); here we make sure no
selector can be *answered by the wrong object*: a name, ID or accessor that holds a dot is
left out, since the selector grammar cannot address it and a dotted group name such as
``ops.metadata.team`` would otherwise answer a question about group ``ops``.

Claims templates (:func:`render_claims`) are JSON in which a placeholder stands for a
whole JSON value: each is replaced by the JSON encoding of its value, so identity data can
never break out of a value (a metadata value with quotes stays one string). A missing
value becomes ``""``, ``{}`` or ``[]`` according to its kind, as in Vault.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from strongroom.core.identity._records import Entity, Group
from strongroom.errors import InvalidRequest
from strongroom.framework import parse_duration

__all__ = [
    "RESERVED_CLAIMS",
    "ClaimsContext",
    "acl_values",
    "check_claims_template",
    "render_claims",
]

# Claims the issuer sets; a template may not set them (Vault refuses the same list).
RESERVED_CLAIMS: Final = frozenset(
    {"iat", "aud", "exp", "iss", "sub", "namespace", "nonce", "auth_time", "at_hash", "c_hash"}
)
_MAX_TEMPLATE: Final = 64 * 1024
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


def _addressable(part: str) -> bool:
    return bool(part) and not any(ch in part for ch in ".{}*+/ \t\r\n")


def acl_values(entity: Entity, groups: Sequence[Group]) -> dict[str, str]:
    """The ACL template parameters of ``entity``, which belongs to ``groups`` (directly or
    through nested groups)."""
    values = {"identity.entity.id": entity.id, "identity.entity.name": entity.name}
    for key, value in entity.metadata.items():
        values[f"identity.entity.metadata.{key}"] = value
    for alias in entity.aliases:
        if not _addressable(alias.mount_accessor):
            continue
        base = f"identity.entity.aliases.{alias.mount_accessor}"
        values[f"{base}.id"] = alias.id
        values[f"{base}.name"] = alias.name
        for key, value in alias.metadata.items():
            values[f"{base}.metadata.{key}"] = value
        for key, value in alias.custom_metadata.items():
            values[f"{base}.custom_metadata.{key}"] = value
    for group in groups:
        if _addressable(group.id):
            by_id = f"identity.groups.ids.{group.id}"
            values[f"{by_id}.name"] = group.name
            for key, value in group.metadata.items():
                values[f"{by_id}.metadata.{key}"] = value
        if _addressable(group.name):
            by_name = f"identity.groups.names.{group.name}"
            values[f"{by_name}.id"] = group.id
            for key, value in group.metadata.items():
                values[f"{by_name}.metadata.{key}"] = value
    return values


# -- identity-token claims templates ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimsContext:
    """What a claims template can see: the caller's entity (None when only validating),
    its groups, and the issue time."""

    entity: Entity | None
    groups: Sequence[Group]
    now: int


def _alias_param(ctx: ClaimsContext, rest: str) -> Any:
    accessor, _, field = rest.partition(".")
    alias = ctx.entity.alias_on(accessor) if ctx.entity is not None else None
    if field in ("id", "name"):
        return "" if alias is None else getattr(alias, field)
    for kind in ("metadata", "custom_metadata"):
        source: Mapping[str, str] = {} if alias is None else getattr(alias, kind)
        if field == kind:
            return dict(source)
        if field.startswith(kind + "."):
            return source.get(field[len(kind) + 1 :], "")
    raise InvalidRequest(f"template: unknown parameter for aliases.{accessor}")


def _param(name: str, ctx: ClaimsContext) -> Any:
    entity = ctx.entity
    if name == "time.now":
        return ctx.now
    for sign, prefix in ((1, "time.now.plus."), (-1, "time.now.minus.")):
        if name.startswith(prefix):
            return ctx.now + sign * parse_duration(name[len(prefix) :], "template duration")
    if not name.startswith("identity.entity."):
        raise InvalidRequest(f"template: unknown parameter {name[:80]!r}")
    rest = name[len("identity.entity.") :]
    if rest in ("id", "name"):
        return "" if entity is None else getattr(entity, rest)
    if rest == "groups.ids":
        return [group.id for group in ctx.groups]
    if rest == "groups.names":
        return [group.name for group in ctx.groups]
    if rest == "metadata":
        return {} if entity is None else dict(entity.metadata)
    if rest.startswith("metadata."):
        return "" if entity is None else entity.metadata.get(rest[len("metadata.") :], "")
    if rest.startswith("aliases."):
        return _alias_param(ctx, rest[len("aliases.") :])
    raise InvalidRequest(f"template: unknown parameter {name[:80]!r}")


def render_claims(template: str, ctx: ClaimsContext) -> dict[str, Any]:
    """The claims a template adds for ``ctx``.

    Raises:
        InvalidRequest: an unknown parameter, text that is not a JSON object once filled in,
            or a top-level key that is a reserved claim.
    """
    if not template.strip():
        return {}

    def fill(match: re.Match[str]) -> str:
        return orjson.dumps(_param(match.group(1), ctx)).decode()

    try:
        claims = orjson.loads(_PLACEHOLDER.sub(fill, template))
    except orjson.JSONDecodeError:
        raise InvalidRequest("template: not valid JSON once its parameters are filled") from None
    if not isinstance(claims, dict):
        raise InvalidRequest("template: must be a JSON object")
    reserved = sorted(RESERVED_CLAIMS.intersection(claims))
    if reserved:
        raise InvalidRequest(f"template: top-level key {reserved[0]!r} is a reserved claim")
    return claims


def check_claims_template(text: str) -> str:
    """Validate a role's template (JSON, or base64 of JSON) and return it as JSON text.

    Raises:
        InvalidRequest: as :func:`render_claims`, or the text is too large or undecodable.
    """
    if len(text) > _MAX_TEMPLATE:
        raise InvalidRequest("template: too large")
    stripped = text.strip()
    if stripped and not stripped.startswith("{"):
        try:
            stripped = base64.b64decode(stripped, validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidRequest("template: must be JSON or base64-encoded JSON") from None
    render_claims(stripped, ClaimsContext(entity=None, groups=(), now=0))
    return stripped
