"""ACL policies: parse Vault-style HCL or JSON policy text into immutable rules.

A policy is a named list of ``path "<pattern>" { ... }`` blocks. This module parses and
validates the text once (when a policy is written or loaded) so that
:mod:`strongroom.core.acl` can compile and evaluate it without re-checking anything.

The module is pure: no I/O, no clock, no storage. It trusts nothing in the policy text and
promises that every :class:`PathRule` it returns satisfies these invariants:

* ``path`` has no leading ``/``; a ``*`` appears only as its last character; a ``+`` appears
  only as a whole segment; ``{{identity...}}`` placeholders are kept verbatim.
* ``capabilities`` holds only known capability names; a rule with ``deny`` holds nothing
  else and carries no parameter or wrapping constraints.
* parameter names are lower-case; ``"*"`` maps to ``()``; values are JSON scalars.
* in each block, ``min_wrapping_ttl <= max_wrapping_ttl`` when both are set (non-zero).

Several blocks for the same pattern in one policy are merged with the same rules that merge
the same pattern across the policies of a token (:func:`merge_path_rules`). Merging keeps
the lowest of each wrapping bound, which can leave min above max: the ACL then denies.

Deviations from Vault, all deliberate and in the fail-closed direction:

* ``mfa_methods`` and ``control_group`` (Vault Enterprise) are rejected, not ignored: a policy
  that relies on them for protection must not silently lose it.
* JSON-pointer parameter keys (``"/a/b"``) are rejected, for the same reason.
* ``+`` inside a segment (``secret/c++``) is rejected instead of being a literal character.
* A ``"*"`` parameter key must map to ``[]`` (the only value Vault documents for it).

Limits of the HCL parser (pyhcl), none of which affect JSON policies: only the ``\\"`` and
``\\\\`` escapes are interpreted, and a list in which a string comes before a number or a
boolean does not parse.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final

import hcl.parser
import orjson

from strongroom.errors import InvalidRequest
from strongroom.framework import parse_duration

__all__ = [
    "CAPABILITIES",
    "CREATE",
    "DEFAULT_POLICY_NAME",
    "DEFAULT_POLICY_TEXT",
    "DELETE",
    "DENY",
    "LIST",
    "PATCH",
    "READ",
    "RESPONSE_WRAPPING_POLICY_NAME",
    "RESPONSE_WRAPPING_POLICY_TEXT",
    "ROOT",
    "ROOT_POLICY",
    "ROOT_POLICY_NAME",
    "SUDO",
    "UPDATE",
    "PathRule",
    "Policy",
    "is_templated",
    "merge_path_rules",
    "normalize_policy_name",
    "parse_policy",
    "render_policy",
]

# -- capabilities ------------------------------------------------------------------------------

CREATE: Final = "create"
READ: Final = "read"
UPDATE: Final = "update"
PATCH: Final = "patch"
DELETE: Final = "delete"
LIST: Final = "list"
SUDO: Final = "sudo"
DENY: Final = "deny"
# Never written in a policy: reported by ACL.capabilities() for the root policy only.
ROOT: Final = "root"

CAPABILITIES: Final[frozenset[str]] = frozenset(
    {CREATE, READ, UPDATE, PATCH, DELETE, LIST, SUDO, DENY}
)

# The pre-0.5 ``policy = "..."`` shorthand. "write" never included patch (it predates it).
_LEGACY_POLICIES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "deny": frozenset({DENY}),
        "read": frozenset({READ, LIST}),
        "write": frozenset({CREATE, READ, UPDATE, DELETE, LIST}),
        "sudo": frozenset({CREATE, READ, UPDATE, DELETE, LIST, SUDO}),
    }
)

# -- built-in policies -------------------------------------------------------------------------

ROOT_POLICY_NAME: Final = "root"
DEFAULT_POLICY_NAME: Final = "default"
RESPONSE_WRAPPING_POLICY_NAME: Final = "response-wrapping"

DEFAULT_POLICY_TEXT: Final = """\
# The built-in "default" policy. It is attached to every token unless the token was created
# with no_default_policy. Operators may edit it; it cannot be deleted.

# A token may look itself up, renew itself and revoke itself.
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

path "auth/token/renew-self" {
    capabilities = ["update"]
}

path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# A token may ask an OIDC provider for an authorization code for its own entity (Vault's).
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}

# A token may ask which capabilities it holds on a path.
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# A token may read its own identity entity, by ID or by name. These rules apply only once
# the placeholders have been filled in for a token that has an entity.
path "identity/entity/id/{{identity.entity.id}}" {
    capabilities = ["read"]
}

path "identity/entity/name/{{identity.entity.name}}" {
    capabilities = ["read"]
}

# A token may read the ACL that results from all of its policies (used by UIs).
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# A token may read the server's version (the web UI shows it).
path "sys/internal/ui/version" {
    capabilities = ["read"]
}

# A token may renew a lease it knows the ID of (old and new paths), and look one up.
# Knowing the lease ID is the credential; lookup reveals no secret.
path "sys/renew" {
    capabilities = ["update"]
}

path "sys/leases/renew" {
    capabilities = ["update"]
}

path "sys/leases/lookup" {
    capabilities = ["update"]
}

# A token owns its cubbyhole: the storage is private to the token.
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Response wrapping: wrap arbitrary data, and look up or unwrap a wrapping token.
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# General purpose tools: hashing and random bytes.
path "sys/tools/hash" {
    capabilities = ["update"]
}

path "sys/tools/hash/*" {
    capabilities = ["update"]
}

path "sys/tools/random" {
    capabilities = ["update"]
}

path "sys/tools/random/*" {
    capabilities = ["update"]
}
"""

# Attached to response-wrapping tokens only; not assignable and not modifiable.
RESPONSE_WRAPPING_POLICY_TEXT: Final = """\
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"""

# -- limits ------------------------------------------------------------------------------------

# Policy text is parsed by a pure-Python LALR parser: bound the work one write can cause.
_MAX_POLICY_CHARS: Final = 1 << 20
_MAX_PATH_CHARS: Final = 4096
_MAX_NAME_CHARS: Final = 256
_MAX_TEMPLATE_VALUE_CHARS: Final = 512
_SHOW_CHARS: Final = 80

# -- names -------------------------------------------------------------------------------------

_NAME_RE: Final = re.compile(r"[a-z0-9._\-/@ ]+")


def normalize_policy_name(name: str) -> str:
    """Return the canonical form of a policy name: stripped and lower-case.

    Every caller that stores, looks up or attaches a policy by name goes through this, so
    ``"ROOT"``, ``" root "`` and ``"root"`` are one name. That is what stops anyone from
    creating or editing a policy that *looks* like the root policy and being granted root
    by a case- or whitespace-insensitive comparison somewhere else (Vault lower-cases and
    trims the same way).

    The name is checked before it is lower-cased and must be ASCII, so no Unicode character
    can lower-case into an ASCII letter (the Kelvin sign becomes ``k``). Names become storage
    keys, so empty, ``.`` and ``..`` segments are refused.

    Args:
        name: a policy name as a client sent it.

    Raises:
        InvalidRequest: the name is empty, too long, or has a character outside
            ``[a-z0-9._-/@ ]`` (after lower-casing) or a bad ``/``-separated segment.

    Returns:
        The normalised name.
    """
    if not isinstance(name, str):
        raise InvalidRequest("policy name must be a string")
    cleaned = name.strip()
    if not cleaned:
        raise InvalidRequest("policy name must not be empty")
    if len(cleaned) > _MAX_NAME_CHARS:
        raise InvalidRequest(f"policy name must be at most {_MAX_NAME_CHARS} characters")
    if not cleaned.isascii():
        raise InvalidRequest("policy name may contain only ASCII letters, digits and ._-/@ ")
    lowered = cleaned.lower()
    if _NAME_RE.fullmatch(lowered) is None:
        raise InvalidRequest("policy name may contain only ASCII letters, digits and ._-/@ ")
    if any(seg in ("", ".", "..") for seg in lowered.split("/")):
        raise InvalidRequest("policy name must not have empty, '.' or '..' segments")
    return lowered


# -- records -----------------------------------------------------------------------------------

_EMPTY_PARAMS: Final[Mapping[str, tuple[Any, ...]]] = MappingProxyType({})


def _freeze_params(
    path: str, params: Mapping[str, tuple[Any, ...]]
) -> Mapping[str, tuple[Any, ...]]:
    for key in params:
        if not isinstance(key, str) or key != key.lower():
            raise InvalidRequest(f"path {_show(path)}: parameter names must be lower-case")
    if isinstance(params, MappingProxyType):
        return params
    return MappingProxyType({key: tuple(values) for key, values in params.items()})


@dataclass(frozen=True, slots=True)
class PathRule:
    """One path block of a policy, validated (see the module docstring for the invariants).

    ``allowed_parameters`` / ``denied_parameters`` map a lower-case parameter name (or
    ``"*"``) to the values allowed / denied; ``()`` means "any value". Wrapping TTLs are in
    seconds, 0 meaning "no bound". Build rules with :func:`parse_policy`; constructing one
    directly re-validates the path and the capabilities.
    """

    path: str
    capabilities: frozenset[str]
    allowed_parameters: Mapping[str, tuple[Any, ...]] = field(
        default_factory=lambda: _EMPTY_PARAMS, hash=False
    )
    denied_parameters: Mapping[str, tuple[Any, ...]] = field(
        default_factory=lambda: _EMPTY_PARAMS, hash=False
    )
    required_parameters: tuple[str, ...] = ()
    min_wrapping_ttl: int = 0
    max_wrapping_ttl: int = 0

    def __post_init__(self) -> None:
        checked = _check_path(self.path)
        if checked != self.path:
            raise InvalidRequest(f"path {_show(self.path)}: not in canonical form")
        unknown = self.capabilities - CAPABILITIES
        if unknown:
            raise InvalidRequest(
                f"path {_show(self.path)}: invalid capability {_show(min(unknown))}"
            )
        if DENY in self.capabilities:
            # deny carries nothing else: nothing may dilute or condition it
            object.__setattr__(self, "capabilities", frozenset({DENY}))
            object.__setattr__(self, "allowed_parameters", _EMPTY_PARAMS)
            object.__setattr__(self, "denied_parameters", _EMPTY_PARAMS)
            object.__setattr__(self, "required_parameters", ())
            object.__setattr__(self, "min_wrapping_ttl", 0)
            object.__setattr__(self, "max_wrapping_ttl", 0)
            return
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))
        allowed = _freeze_params(self.path, self.allowed_parameters)
        object.__setattr__(self, "allowed_parameters", allowed)
        denied = _freeze_params(self.path, self.denied_parameters)
        object.__setattr__(self, "denied_parameters", denied)

    @property
    def is_deny(self) -> bool:
        return DENY in self.capabilities

    @property
    def templated(self) -> bool:
        """True if the path still holds ``{{identity...}}`` placeholders."""
        return "{{" in self.path


@dataclass(frozen=True, slots=True, repr=False)
class Policy:
    """A named, parsed policy. ``text`` is the source, kept so it can be read back verbatim.

    Two policies are equal when their names and rules are: the text (HCL or JSON, comments,
    layout) does not take part.
    """

    name: str
    rules: tuple[PathRule, ...]
    text: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # The ACL recognises root by exact name: refuse names that were not normalised,
        # so Policy("ROOT", ...) cannot be mistaken for (or hide from) the root check.
        if normalize_policy_name(self.name) != self.name:
            raise InvalidRequest("policy name is not normalised")
        object.__setattr__(self, "rules", tuple(self.rules))

    def __repr__(self) -> str:  # the text may be large: never print it
        return f"Policy(name={self.name!r}, rules={len(self.rules)}, text_chars={len(self.text)})"

    @property
    def templated(self) -> bool:
        return any(rule.templated for rule in self.rules)


# The root policy has no rules: the ACL recognises it by name and allows everything.
ROOT_POLICY: Final = Policy(ROOT_POLICY_NAME, (), "")

# -- merging -----------------------------------------------------------------------------------


def _merge_params(
    existing: Mapping[str, tuple[Any, ...]], new: Mapping[str, tuple[Any, ...]]
) -> Mapping[str, tuple[Any, ...]]:
    # Vault: an empty list ("any value") on either side wins; otherwise the value lists add up.
    if not new:
        return existing
    if not existing:
        return new
    merged = dict(existing)
    for key, values in new.items():
        current = merged.get(key)
        if not values or (current is not None and not current):
            merged[key] = ()
        else:
            merged[key] = (current or ()) + values
    return MappingProxyType(merged)


def _min_nonzero(a: int, b: int) -> int:
    if a and b:
        return min(a, b)
    return a or b


def merge_path_rules(existing: PathRule, new: PathRule) -> PathRule:
    """Merge two rules for the same pattern, as Vault merges them across policies.

    * ``deny`` on either side wins outright and drops every other capability and constraint:
      an explicit deny is the one statement an operator can rely on no matter which other
      policies a token carries, so nothing may dilute it.
    * Otherwise capabilities are united; for each parameter name an empty value list (any
      value) wins, else the value lists are concatenated; required parameters are united.
      Note the Vault quirk this keeps: if only one side restricts parameters, the merged
      rule is restricted too.
    * Wrapping TTLs keep the lowest non-zero value of each bound (shortest lifetimes).

    Raises:
        InvalidRequest: the rules are for different patterns.
    """
    if existing.path != new.path:
        raise InvalidRequest("cannot merge rules for different paths")
    if existing.is_deny:
        return existing
    if new.is_deny:
        return PathRule(new.path, frozenset({DENY}))
    required = existing.required_parameters + tuple(
        name for name in new.required_parameters if name not in existing.required_parameters
    )
    return PathRule(
        path=existing.path,
        capabilities=existing.capabilities | new.capabilities,
        allowed_parameters=_merge_params(existing.allowed_parameters, new.allowed_parameters),
        denied_parameters=_merge_params(existing.denied_parameters, new.denied_parameters),
        required_parameters=required,
        min_wrapping_ttl=_min_nonzero(existing.min_wrapping_ttl, new.min_wrapping_ttl),
        max_wrapping_ttl=_min_nonzero(existing.max_wrapping_ttl, new.max_wrapping_ttl),
    )


# -- paths and templates -----------------------------------------------------------------------

# Selectors Vault documents for ACL templating. A name, ID or accessor part has no dot; a
# metadata key may. No part may hold a wildcard, a slash, a brace or whitespace.
_PART: Final = r"[^.{}\s*+/]+"
_KEY: Final = r"[^{}\s*+/]+"
_SELECTOR: Final = (
    r"identity\.(?:"
    rf"entity\.(?:id|name|metadata\.{_KEY}"
    rf"|aliases\.{_PART}\.(?:id|name|metadata\.{_KEY}|custom_metadata\.{_KEY}))"
    rf"|groups\.(?:ids|names)\.{_PART}\.(?:id|name|metadata\.{_KEY})"
    r")"
)
_TEMPLATE_RE: Final = re.compile(r"\{\{\s*(" + _SELECTOR + r")\s*\}\}")
_ANY_TEMPLATE_RE: Final = re.compile(r"\{\{\s*identity\.")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


def is_templated(text: str) -> bool:
    """True if ``text`` (a policy's source or one path) holds ``{{identity...}}`` placeholders."""
    return _ANY_TEMPLATE_RE.search(text) is not None


def _check_path(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidRequest(f"path {_show(raw)}: a path must be a string")
    # Request paths never start with "/" (the ACL strips them too), so neither do patterns.
    path = raw.lstrip("/")
    if len(path) > _MAX_PATH_CHARS:
        raise InvalidRequest(f"path {_show(path)}: longer than {_MAX_PATH_CHARS} characters")
    if _CONTROL_RE.search(path):
        raise InvalidRequest(f"path {_show(path)}: control characters are not allowed")
    # Placeholders are checked, then replaced by a neutral segment so the wildcard rules
    # below only ever look at the pattern itself.
    bare = _TEMPLATE_RE.sub("t", path)
    if "{{" in bare or "}}" in bare:
        raise InvalidRequest(f"path {_show(path)}: invalid {{{{identity...}}}} template")
    star = bare.find("*")
    if star != -1 and star != len(bare) - 1:
        raise InvalidRequest(f"path {_show(path)}: '*' is allowed only as the last character")
    for segment in bare.split("/"):
        if "+" in segment and segment != "+":
            raise InvalidRequest(
                f"path {_show(path)}: '+' must be a whole path segment ('+*' is forbidden)"
            )
    return path


def _safe_template_value(value: object) -> bool:
    # A placeholder's value comes from identity data, some of it user-controlled (alias
    # metadata from a JWT claim, an entity name). It must fill exactly one literal segment:
    # a "/" would reach into someone else's subtree, a "*" or "+" would become a wildcard.
    return (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_TEMPLATE_VALUE_CHARS
        and value not in (".", "..")
        and not any(ch in value for ch in "/*+{}")
        and _CONTROL_RE.search(value) is None
    )


def _render_path(path: str, values: Mapping[str, str]) -> str | None:
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match.group(1))
        if value is None or not _safe_template_value(value):
            missing = True
            return ""
        return value

    rendered = _TEMPLATE_RE.sub(fill, path)
    return None if missing else rendered


def render_identity_template(text: str, identity_values: Mapping[str, str]) -> str | None:
    """One string's ``{{identity...}}`` placeholders filled as a policy path's are (the same
    selectors and the same refusal of values that could widen a match); ``None`` if any
    cannot be filled. Engines reach it through ``SystemView.identity_template`` (SSH roles'
    templated users and extensions, PKI roles' ``allowed_domains_template``)."""
    if "{{" not in text:
        return text
    return _render_path(text, identity_values)


def render_policy(policy_text: str, identity_values: Mapping[str, str]) -> str | None:
    """Fill the ``{{identity...}}`` placeholders of a templated policy.

    ``identity_values`` maps a selector (``"identity.entity.id"``,
    ``"identity.groups.names.ops.id"``…) to its value for the token being evaluated. As in
    Vault, a path whose placeholders cannot all be filled is dropped (the rule grants
    nothing), never kept with a hole. A value that is empty, or holds ``/``, ``*``, ``+``,
    braces or control characters, counts as missing: it could otherwise widen the rule.

    Args:
        policy_text: the stored source of the policy (HCL or JSON).
        identity_values: selector → value for the caller's entity and groups.

    Raises:
        InvalidRequest: the text is not a valid policy.

    Returns:
        ``None`` if the text has no placeholders (use the policy as it is); otherwise the
        rendered policy as JSON text, for :func:`parse_policy`.
    """
    if not is_templated(policy_text):
        return None
    policy = parse_policy("templated", policy_text)
    merged: dict[str, PathRule] = {}
    for rule in policy.rules:
        rendered = rule
        if rule.templated:
            path = _render_path(rule.path, identity_values)
            if path is None:
                continue
            rendered = replace(rule, path=path)  # PathRule re-validates the new path
        previous = merged.get(rendered.path)
        merged[rendered.path] = (
            rendered if previous is None else merge_path_rules(previous, rendered)
        )
    return orjson.dumps(
        {"path": {path: _rule_json(rule) for path, rule in merged.items()}}
    ).decode()


def _rule_json(rule: PathRule) -> dict[str, Any]:
    out: dict[str, Any] = {"capabilities": sorted(rule.capabilities)}
    if rule.allowed_parameters:
        out["allowed_parameters"] = {k: list(v) for k, v in rule.allowed_parameters.items()}
    if rule.denied_parameters:
        out["denied_parameters"] = {k: list(v) for k, v in rule.denied_parameters.items()}
    if rule.required_parameters:
        out["required_parameters"] = list(rule.required_parameters)
    if rule.min_wrapping_ttl:
        out["min_wrapping_ttl"] = rule.min_wrapping_ttl
    if rule.max_wrapping_ttl:
        out["max_wrapping_ttl"] = rule.max_wrapping_ttl
    return out


# -- reading HCL and JSON ----------------------------------------------------------------------


class _Pairs:
    """An object's ``(key, value)`` pairs in source order, duplicate keys kept.

    pyhcl and ``json`` both fold duplicate keys silently (pyhcl merges two ``path "x"``
    blocks key by key, so a ``deny`` block followed by a ``read`` block for the same path
    would come out as ``read``). Keeping every pair lets us merge blocks the way Vault
    does and reject duplicate keys inside one block.
    """

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self.pairs = pairs


class _PairsParser(hcl.parser.HclParser):  # type: ignore[misc]  # pyhcl ships no types
    """pyhcl's parser, with objects kept as :class:`_Pairs` and booleans allowed in lists.

    pyhcl builds its LALR tables from the ``p_*`` methods of the instance, so a subclass can
    add a production. Without ``listitem : BOOL``, Vault's documented
    ``denied_parameters = { "no_store" = [false, "false"] }`` would not parse. (Lists where
    a string comes before a number or a boolean still do not; JSON has no such limit.)
    """

    start = "top"  # the grammar's start symbol, now that a rule is defined outside pyhcl

    def objectlist_flat(self, lt: list[tuple[Any, Any]], replace: bool) -> _Pairs:
        return _Pairs(list(lt))

    def p_listitem_bool(self, p: Any) -> None:
        "listitem : BOOL"
        p[0] = p[1]


# Building pyhcl's LALR tables takes tens of milliseconds: keep one parser per thread (a
# parser holds state while it runs, so it is not shared between threads).
_local = threading.local()


def _hcl_parser() -> _PairsParser:
    parser: _PairsParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _PairsParser()
        _local.parser = parser
    return parser


# pyhcl: "Line 3, column 35: unexpected RIGHTBRACE; expected ..." (the column is an offset)
_HCL_ERROR_RE: Final = re.compile(
    r"Line (\d+), column \d+(?:, index \d+)?: (.*?)(?:; expected .*)?$", re.S
)


def _fail(message: str) -> InvalidRequest:
    return InvalidRequest(f"failed to parse policy: {message}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _load(text: str) -> _Pairs:
    if text.lstrip().startswith("{"):
        try:
            tree = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise _fail(f"line {exc.lineno}: {exc.msg}") from None
        except RecursionError:
            raise _fail("nested too deeply") from None
        except ValueError as exc:
            raise _fail(str(exc)) from None
        if not isinstance(tree, _Pairs):
            raise _fail("does not contain a root object")
        return tree
    try:
        tree = _hcl_parser().parse(text)
    except Exception as exc:  # untrusted input into a third-party parser: any failure is a 400
        match = _HCL_ERROR_RE.match(str(exc))
        if match is not None:
            detail = _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", match.group(2))
            raise _fail(f"line {match.group(1)}: {detail}") from None
        if isinstance(exc, ValueError) and str(exc).startswith("Unexpected end of file"):
            raise _fail("unexpected end of file") from None
        raise _fail("invalid HCL") from None
    if not isinstance(tree, _Pairs):
        raise _fail("does not contain a root object")
    return tree


def _show(value: object) -> str:
    """Quote a name from the policy text for an error message, bounded in length."""
    text = value if isinstance(value, str) else type(value).__name__
    if len(text) > _SHOW_CHARS:
        text = text[:_SHOW_CHARS] + "..."
    return json.dumps(text)


def _pairs_of(value: object) -> list[tuple[Any, Any]] | None:
    if isinstance(value, _Pairs):
        return value.pairs
    if isinstance(value, dict):  # pyhcl builds `{}` and `path "a" "b" {...}` as dicts
        return list(value.items())
    return None


_RULE_KEYS: Final = frozenset(
    {
        "comment",
        "policy",
        "capabilities",
        "allowed_parameters",
        "denied_parameters",
        "required_parameters",
        "min_wrapping_ttl",
        "max_wrapping_ttl",
    }
)
_UNSUPPORTED_RULE_KEYS: Final = frozenset({"mfa_methods", "control_group"})


def _path_blocks(value: object) -> Iterator[PathRule]:
    if isinstance(value, list):  # JSON: "path": [{"a": {...}}, {"b": {...}}]
        for item in value:
            yield from _path_blocks(item)
        return
    pairs = _pairs_of(value)
    if pairs is None:
        raise _fail('"path" must be a block: path "<pattern>" { ... }')
    for raw_path, body in pairs:
        yield _parse_rule(raw_path, body)


def _string_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fail(f"{where} must be a list of strings")
    return value


def _scalar(value: object) -> bool:
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return value is None or isinstance(value, (str, int))


def _parameters(value: object, where: str) -> Mapping[str, tuple[Any, ...]]:
    pairs = _pairs_of(value)
    if pairs is None:
        raise _fail(f'{where} must be a map of parameter name to list, e.g. {{"name" = []}}')
    params: dict[str, tuple[Any, ...]] = {}
    for raw_key, values in pairs:
        if not isinstance(raw_key, str):
            raise _fail(f"{where}: parameter names must be strings")
        key = raw_key.lower()  # Vault compares parameter names case-insensitively
        if "*" in key and key != "*":
            raise _fail(f'{where}: parameter {_show(raw_key)}: only "*" may hold a wildcard')
        if key.startswith("/"):
            raise _fail(f"{where}: parameter {_show(raw_key)}: JSON-pointer keys are not supported")
        if not isinstance(values, list):
            raise _fail(f"{where}: parameter {_show(raw_key)} must map to a list")
        if not all(_scalar(item) for item in values):
            raise _fail(
                f"{where}: parameter {_show(raw_key)}: values must be strings, numbers or booleans"
            )
        if key == "*" and values:
            raise _fail(f'{where}: parameter "*" must map to [] (the only value allowed for it)')
        current = params.get(key)
        if current is None:
            params[key] = tuple(values)
        elif not current or not values:
            params[key] = ()
        else:
            params[key] = current + tuple(values)
    return MappingProxyType(params)


def _parse_rule(raw_path: object, body: object) -> PathRule:
    try:
        path = _check_path(raw_path)
    except InvalidRequest as exc:
        raise _fail(str(exc)) from None
    where = f"path {_show(path)}"
    pairs = _pairs_of(body)
    if pairs is None:
        raise _fail(f"{where}: expected a block {{ ... }}")

    seen: set[str] = set()
    capabilities: set[str] = set()
    allowed: Mapping[str, tuple[Any, ...]] = _EMPTY_PARAMS
    denied: Mapping[str, tuple[Any, ...]] = _EMPTY_PARAMS
    required: list[str] = []
    min_ttl = max_ttl = 0
    for key, value in pairs:
        if not isinstance(key, str) or key not in _RULE_KEYS:
            if key in _UNSUPPORTED_RULE_KEYS:
                raise _fail(f"{where}: {_show(key)} is not supported")
            raise _fail(f"{where}: invalid key {_show(key)}")
        if key in seen:
            raise _fail(f"{where}: duplicate key {_show(key)}")
        seen.add(key)
        if key == "comment":
            if not isinstance(value, str):
                raise _fail(f"{where}: comment must be a string")
        elif key == "policy":
            legacy = _LEGACY_POLICIES.get(value) if isinstance(value, str) else None
            if legacy is None:
                raise _fail(
                    f'{where}: invalid policy {_show(value)} (use "read", "write", '
                    '"deny" or "sudo")'
                )
            capabilities |= legacy
        elif key == "capabilities":
            for capability in _string_list(value, f"{where}: capabilities"):
                if capability not in CAPABILITIES:
                    raise _fail(f"{where}: invalid capability {_show(capability)}")
                capabilities.add(capability)
        elif key == "allowed_parameters":
            allowed = _parameters(value, f"{where}: allowed_parameters")
        elif key == "denied_parameters":
            denied = _parameters(value, f"{where}: denied_parameters")
        elif key == "required_parameters":
            for name in _string_list(value, f"{where}: required_parameters"):
                if "*" in name:
                    raise _fail(f"{where}: required_parameters: wildcards are not allowed")
                if name.lower() not in required:
                    required.append(name.lower())
        else:  # min_wrapping_ttl / max_wrapping_ttl
            try:
                seconds = int(parse_duration(value, key))
            except InvalidRequest as exc:
                raise _fail(f"{where}: {exc}") from None
            if key == "min_wrapping_ttl":
                min_ttl = seconds
            else:
                max_ttl = seconds

    if min_ttl and max_ttl and max_ttl < min_ttl:
        raise _fail(f"{where}: max_wrapping_ttl cannot be less than min_wrapping_ttl")
    if DENY in capabilities:
        # Everything above was still validated; a deny rule then carries nothing else.
        return PathRule(path, frozenset({DENY}))
    return PathRule(
        path=path,
        capabilities=frozenset(capabilities),
        allowed_parameters=allowed,
        denied_parameters=denied,
        required_parameters=tuple(required),
        min_wrapping_ttl=min_ttl,
        max_wrapping_ttl=max_ttl,
    )


def parse_policy(name: str, text: str) -> Policy:
    """Parse and validate policy text (HCL, or JSON, which Vault also accepts).

    Args:
        name: the policy's name; normalised with :func:`normalize_policy_name`.
        text: the policy source, kept verbatim in :attr:`Policy.text`.

    Raises:
        InvalidRequest: the name or the text is invalid. Messages start with
            ``failed to parse policy:`` and carry the line for syntax errors; they name
            paths, keys and capabilities, never parameter values.

    Returns:
        The policy, with blocks for the same pattern merged (first-appearance order).
    """
    normalized = normalize_policy_name(name)
    if not isinstance(text, str):
        raise _fail("policy text must be a string")
    if len(text) > _MAX_POLICY_CHARS:
        raise _fail(f"policy text is longer than {_MAX_POLICY_CHARS} characters")
    merged: dict[str, PathRule] = {}
    for key, value in _load(text).pairs:
        if key == "name":  # accepted as in Vault, and ignored: the name comes from the API
            if not isinstance(value, str):
                raise _fail('"name" must be a string')
        elif key == "path":
            for rule in _path_blocks(value):
                previous = merged.get(rule.path)
                merged[rule.path] = rule if previous is None else merge_path_rules(previous, rule)
        else:
            raise _fail(f'invalid key {_show(key)} at top level (expected "path" blocks)')
    return Policy(normalized, tuple(merged.values()), text)
