"""Claims of a verified JWT against a role: bound claims, claim mappings, user and groups.

Claim names starting with ``/`` are JSON pointers (RFC 6901) into nested claims, as in
Vault (``/https:~1~1vault~1user/team``); other names are top-level claim names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.auth._common import glob_match
from strongroom.errors import InvalidRequest

__all__ = [
    "bound_claims_match",
    "check_bound_claims_config",
    "get_claim",
    "groups_of",
    "mapped_metadata",
    "user_of",
]

_MISSING = object()


def get_claim(claims: Mapping[str, Any], name: str) -> Any:
    """The claim's value, or ``None`` when absent. ``/a/b`` walks nested objects and lists."""
    if not name.startswith("/"):
        return claims.get(name)
    node: Any = claims
    for raw in name[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping):
            node = node.get(token, _MISSING)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
        if node is _MISSING:
            return None
    return node


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return None


def check_bound_claims_config(bound: Mapping[str, Any], claims_type: str) -> None:
    """Vault's rules for ``bound_claims`` values: a string, number or boolean, or a list of
    them; with ``bound_claims_type: glob`` strings only.

    Raises:
        InvalidRequest: another type.
    """
    if claims_type not in ("string", "glob"):
        raise InvalidRequest('bound_claims_type: must be "string" or "glob"')
    for key, expected in bound.items():
        values = expected if isinstance(expected, list) else [expected]
        for value in values:
            if claims_type == "glob" and not isinstance(value, str):
                raise InvalidRequest(f"bound_claims: value for {key!r} must be a string for glob")
            if _scalar_text(value) is None:
                raise InvalidRequest(
                    f"bound_claims: value for {key!r} must be a string, number, boolean or list"
                )


def bound_claims_match(
    claims: Mapping[str, Any], bound: Mapping[str, Any], claims_type: str
) -> None:
    """Every bound claim must be present and one of its values must equal (or, for
    ``glob``, match) one of the expected values.

    Raises:
        InvalidRequest: a claim is missing or no value matches (the message names the
            claim, not its value).
    """
    for key, expected in bound.items():
        actual = get_claim(claims, key)
        if actual is None:
            raise InvalidRequest(f"claim {key!r} is missing")
        actual_values = actual if isinstance(actual, list) else [actual]
        expected_values = expected if isinstance(expected, list) else [expected]
        actual_texts = [t for t in map(_scalar_text, actual_values) if t is not None]
        matched = False
        for want in expected_values:
            text = _scalar_text(want)
            if text is None:
                continue
            if claims_type == "glob":
                matched = any(glob_match(text, have) for have in actual_texts)
            else:
                matched = text in actual_texts
            if matched:
                break
        if not matched:
            raise InvalidRequest(f"claim {key!r} does not match any associated bound claim values")


def mapped_metadata(claims: Mapping[str, Any], mappings: Mapping[str, str]) -> dict[str, str]:
    """Token metadata from ``claim_mappings`` (claim → metadata key); absent claims are skipped.

    Raises:
        InvalidRequest: a mapped claim is not a string, number or boolean.
    """
    out: dict[str, str] = {}
    for claim, key in mappings.items():
        value = get_claim(claims, claim)
        if value is None:
            continue
        text = _scalar_text(value)
        if text is None:
            raise InvalidRequest(f"error converting claim {claim!r} to string")
        out[key] = text
    return out


def user_of(claims: Mapping[str, Any], user_claim: str, json_pointer: bool) -> str:
    """The identity alias name: the ``user_claim`` value, which must be a non-empty string.

    Raises:
        InvalidRequest: missing or not a string.
    """
    value = get_claim(claims, user_claim) if json_pointer else claims.get(user_claim)
    if value is None:
        raise InvalidRequest(f"claim {user_claim!r} not found in token")
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"claim {user_claim!r} could not be converted to string")
    return value


def groups_of(claims: Mapping[str, Any], groups_claim: str) -> list[str]:
    """Group names from ``groups_claim``: a list of strings, or one string.

    Raises:
        InvalidRequest: the claim is missing or holds something else.
    """
    if not groups_claim:
        return []
    value = get_claim(claims, groups_claim)
    if value is None:
        raise InvalidRequest(f"{groups_claim!r} claim not found in token")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise InvalidRequest(f"{groups_claim!r} claim must be a list of strings")
