"""ACL evaluation: compile a token's policies once, then answer "may this request go on?".

An :class:`ACL` is built from the parsed policies of one token (see
:mod:`strongroom.core.policy`) and is immutable afterwards, so core caches it per policy set
and shares it between concurrent requests. :meth:`ACL.check` runs on every request, so the
work is done at build time:

* rules for the same pattern are merged across policies (:func:`merge_path_rules`);
* exact patterns go into a dict;
* glob (``*``) and segment-wildcard (``+``) patterns are grouped by their literal first
  segment; each group is one compiled regular expression whose alternatives are sorted by
  Vault's priority, so the first alternative that matches the whole path *is* the best one
  (groups with many plain globs find those by longest prefix instead, see ``_WildSet``);
* the answer for each (rule, operation) pair is precomputed; only rules with parameter or
  response-wrapping constraints do more work per request.

The module is pure: no I/O, no clock. It trusts that its policies came from
:func:`parse_policy` (whose records re-validate themselves) and promises:

* deny by default: a path no rule matches is denied;
* ``deny`` wins: a pattern denied in any policy grants nothing, whatever other policies say
  about that pattern, because an explicit deny is the one statement an operator must be able
  to rely on;
* exactly one rule decides a request, the highest-priority matching pattern (Vault does not
  combine a glob with a more specific pattern), including for LIST, where a rule may match
  the listed path with or without its trailing slash (see ``ACL._select``);
* reasons never hold request data values (parameter names only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from strongroom.core.policy import (
    CREATE,
    DELETE,
    DENY,
    LIST,
    PATCH,
    READ,
    ROOT,
    ROOT_POLICY_NAME,
    SUDO,
    UPDATE,
    PathRule,
    Policy,
    merge_path_rules,
)
from strongroom.logical import Operation

__all__ = ["ACL", "ACLResult"]


@dataclass(frozen=True, slots=True)
class ACLResult:
    """The answer for one request.

    ``capabilities`` are those of the rule that decided (``{"deny"}`` for a deny rule, empty
    when no rule matched, ``{"root"}`` for root). ``sudo`` says whether that rule grants
    ``sudo``: core requires it, as well as ``allowed``, on a backend's root-protected paths
    (except for HELP, as Vault does). ``reason`` is for logs and audit, never for clients.
    """

    allowed: bool
    sudo: bool
    capabilities: frozenset[str]
    reason: str


_OPERATION_CAPABILITY: Final[Mapping[Operation, str]] = {
    Operation.CREATE: CREATE,
    Operation.READ: READ,
    Operation.UPDATE: UPDATE,
    Operation.PATCH: PATCH,
    Operation.DELETE: DELETE,
    Operation.LIST: LIST,
}
# Vault checks parameter constraints on the operations that carry request parameters.
_PARAMETER_OPERATIONS: Final = frozenset(
    {Operation.READ, Operation.CREATE, Operation.UPDATE, Operation.PATCH}
)
_LIST: Final = Operation.LIST
_HELP: Final = Operation.HELP
_DENY_SET: Final = frozenset({DENY})
_NOTHING: Final[frozenset[str]] = frozenset()
_ROOT_RESULT: Final = ACLResult(True, True, frozenset({ROOT}), "root policy")
_NO_MATCH: Final = ACLResult(False, False, _NOTHING, "no policy rule matches this path")
# Vault answers HELP without looking at capabilities (a token is still required).
_HELP_NO_MATCH: Final = ACLResult(True, False, _NOTHING, "help is always allowed")
_NAME_CHARS: Final = 64

# -- parameter values --------------------------------------------------------------------------

# A compiled policy value: (kind, operand). Strings use Vault's prefix/suffix globbing.
_EQUAL, _PREFIX, _SUFFIX, _CONTAINS, _SCALAR, _NULL = range(6)
_Matcher = tuple[int, Any]


def _compile_value(value: Any) -> _Matcher:
    if value is None:
        return (_NULL, None)
    if not isinstance(value, str):
        return (_SCALAR, value)
    if len(value) < 2:  # a lone "*" is a literal, as in Vault
        return (_EQUAL, value)
    starts, ends = value.startswith("*"), value.endswith("*")
    if starts and ends:
        return (_CONTAINS, value[1:-1])
    if starts:
        return (_SUFFIX, value[1:])
    if ends:
        return (_PREFIX, value[:-1])
    return (_EQUAL, value)


def _scalar_equal(expected: Any, value: Any) -> bool:
    # true/false never equal 1/0 (Python's bool is an int); numbers compare by value.
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(expected) is type(value) and expected == value
    if isinstance(value, (int, float)):
        return bool(expected == value)
    return False


def _in_list(value: Any, matchers: Sequence[_Matcher]) -> bool:
    for kind, operand in matchers:
        if kind == _NULL:
            if value is None:
                return True
        elif kind == _SCALAR:
            if _scalar_equal(operand, value):
                return True
        elif isinstance(value, str):
            if kind == _EQUAL:
                if value == operand:
                    return True
            elif kind == _PREFIX:
                if value.startswith(operand):
                    return True
            elif kind == _SUFFIX:
                if value.endswith(operand):
                    return True
            elif operand in value:
                return True
    return False


def _value_allowed(value: Any, matchers: Sequence[_Matcher]) -> bool:
    if not matchers:  # [] in the policy: any value
        return True
    if _in_list(value, matchers):
        return True
    # As in Vault, a list (or a comma-separated string, which many fields accept as a list)
    # is allowed when every element is. Deviation: "" is not treated as an empty list, so
    # it must itself be an allowed value; an empty string often means "reset to default".
    if isinstance(value, (list, tuple)):
        return all(_in_list(item, matchers) for item in value)
    if isinstance(value, str) and value:
        return all(_in_list(item.strip(), matchers) for item in value.split(","))
    return False


def _value_denied(value: Any, matchers: Sequence[_Matcher]) -> bool:
    if not matchers:  # [] in the policy: any value is denied
        return True
    if _in_list(value, matchers):
        return True
    # A list, or a comma-separated string, is denied when any element is.
    if isinstance(value, (list, tuple)):
        return any(_in_list(item, matchers) for item in value)
    if isinstance(value, str):
        return any(_in_list(item.strip(), matchers) for item in value.split(","))
    return False


def _param_name(name: str) -> str:
    shown = name if len(name) <= _NAME_CHARS else name[:_NAME_CHARS] + "..."
    return repr(shown)


# -- compiled rules ----------------------------------------------------------------------------


def _answers(capabilities: frozenset[str]) -> dict[Operation, ACLResult]:
    """The answer to each operation from a rule with these capabilities, before any
    parameter or wrapping constraint is applied."""
    sudo = SUDO in capabilities
    answers = {_HELP: ACLResult(True, sudo, capabilities, "help is always allowed")}
    for operation, capability in _OPERATION_CAPABILITY.items():
        if DENY in capabilities:
            answers[operation] = ACLResult(False, False, capabilities, "denied by policy")
        elif capability not in capabilities:
            reason = f"policy does not grant {capability!r}"
            answers[operation] = ACLResult(False, sudo, capabilities, reason)
        else:
            answers[operation] = ACLResult(True, sudo, capabilities, "allowed by policy")
    return answers


class _Grant:
    """One merged rule, compiled: precomputed answers and constraint tables."""

    __slots__ = (
        "allowed",
        "allowed_any_name",
        "allowed_only_star",
        "capabilities",
        "constrained",
        "denied",
        "denied_all",
        "is_deny",
        "max_ttl",
        "min_ttl",
        "pattern",
        "priority",
        "required",
        "results",
    )

    def __init__(
        self, rule: PathRule, results: dict[frozenset[str], dict[Operation, ACLResult]]
    ) -> None:
        self.pattern = rule.path
        self.priority = _priority(rule.path)
        self.is_deny = rule.is_deny
        self.capabilities = _DENY_SET if self.is_deny else rule.capabilities
        self.allowed = {
            name: tuple(_compile_value(v) for v in values)
            for name, values in rule.allowed_parameters.items()
        }
        self.allowed_any_name = "*" in self.allowed
        self.allowed_only_star = self.allowed_any_name and len(self.allowed) == 1
        self.denied = {
            name: tuple(_compile_value(v) for v in values)
            for name, values in rule.denied_parameters.items()
        }
        self.denied_all = "*" in self.denied
        self.required = rule.required_parameters
        self.min_ttl = rule.min_wrapping_ttl
        self.max_ttl = rule.max_wrapping_ttl
        # The plain answers depend on the capabilities only: rules share them.
        table = results.get(self.capabilities)
        if table is None:
            table = results[self.capabilities] = _answers(self.capabilities)
        self.results = table
        has_params = bool(self.allowed or self.denied or self.required)
        has_wrap = bool(self.min_ttl or self.max_ttl)
        self.constrained = frozenset(
            operation
            for operation, result in table.items()
            if result.allowed
            and operation is not _HELP
            and (has_wrap or (has_params and operation in _PARAMETER_OPERATIONS))
        )

    def deny(self, reason: str) -> ACLResult:
        return ACLResult(False, SUDO in self.capabilities, self.capabilities, reason)

    def wrapping_violation(self, wrap_ttl: int | None) -> str | None:
        # As in Vault, a bound makes wrapping mandatory: no wrapping at all is a violation.
        if self.min_ttl and self.max_ttl and self.max_ttl < self.min_ttl:
            return "conflicting wrapping TTL bounds from merged policies"
        if wrap_ttl is None:
            return "response wrapping is required on this path"
        if self.max_ttl and wrap_ttl > self.max_ttl:
            return "requested wrapping TTL exceeds the maximum allowed"
        if self.min_ttl and wrap_ttl < self.min_ttl:
            return "requested wrapping TTL is below the minimum allowed"
        return None

    def parameter_violation(self, data: Mapping[str, Any] | None) -> str | None:
        if self.required:
            present = {key.lower() for key in data if isinstance(key, str)} if data else set()
            for name in self.required:
                if name not in present:
                    return f"missing required parameter {_param_name(name)}"
        if not data:
            return None
        if self.denied:
            if self.denied_all:
                return "parameters are denied on this path"
            for key, value in data.items():
                if not isinstance(key, str):
                    return "parameter names must be strings"
                matchers = self.denied.get(key.lower())
                if matchers is not None and _value_denied(value, matchers):
                    return f"parameter {_param_name(key)} has a denied value"
        if not self.allowed or self.allowed_only_star:
            return None
        for key, value in data.items():
            if not isinstance(key, str):
                return "parameter names must be strings"
            matchers = self.allowed.get(key.lower())
            if matchers is None:
                if not self.allowed_any_name:
                    return f"parameter {_param_name(key)} is not allowed"
            elif not _value_allowed(value, matchers):
                return f"parameter {_param_name(key)} has a value that is not allowed"
        return None


# -- priority ----------------------------------------------------------------------------------


_MAX_PLAIN_IN_REGEX: Final = 32
_Priority = tuple[int, bool, int, int, str]
_LOWEST: Final[_Priority] = (-1, False, 0, 0, "")  # below any pattern's priority


def _priority(pattern: str) -> _Priority:
    """Vault's order between matching wildcard patterns; a greater key wins.

    In order: the first wildcard (``+``) or glob (``*``) later in the pattern; not ending in
    ``*``; fewer ``+`` segments; longer (without the ``*``); lexicographically greater.
    """
    is_prefix = pattern.endswith("*")
    body = pattern[:-1] if is_prefix else pattern
    plus = body.find("+")  # '+' only ever appears as a whole segment
    first = plus if plus != -1 else len(body)
    wildcards = body.split("/").count("+")
    return (first, not is_prefix, -wildcards, len(body), body)


def _pattern_regex(pattern: str) -> str:
    is_prefix = pattern.endswith("*")
    body = pattern[:-1] if is_prefix else pattern
    parts = ("[^/]*" if segment == "+" else re.escape(segment) for segment in body.split("/"))
    return "/".join(parts) + (".*" if is_prefix else "")


def _is_wildcard(pattern: str) -> bool:
    return pattern.endswith("*") or "+" in pattern.split("/")


def _first_literal(pattern: str) -> str | None:
    """The pattern's first segment if it is a whole literal segment, else ``None``.

    Such a pattern can only match paths whose first segment is that literal.
    """
    body = pattern[:-1] if pattern.endswith("*") else pattern
    head, slash, _ = body.partition("/")
    return head if slash and head != "+" else None


class _WildSet:
    """The wildcard rules that may match a group of paths, compiled for lookup.

    The rules are one regular expression whose alternatives are sorted by priority:
    ``fullmatch`` returns the first alternative that matches the whole path, the
    highest-priority one, and ``lastindex`` (one group per alternative) names it. A match
    costs about 0.2 us plus a few tens of ns per alternative, and compiling about 70 us per
    alternative, so when a group has many plain globs (``secret/team-1/*``...) they are
    found by longest prefix instead: one dict probe per distinct prefix length, longest
    first (among plain globs the longest prefix has the latest ``*``: the highest priority).
    The better of the two answers wins.
    """

    __slots__ = ("best_segment", "lengths", "prefixes", "regex", "segments")

    def __init__(self, grants: Iterable[_Grant]) -> None:
        self.prefixes: dict[str, _Grant] = {}
        segments: list[_Grant] = []
        plain: list[_Grant] = []
        for grant in grants:
            if grant.pattern.endswith("*") and "+" not in grant.pattern[:-1].split("/"):
                plain.append(grant)
            else:
                segments.append(grant)
        if len(plain) > _MAX_PLAIN_IN_REGEX:
            self.prefixes = {grant.pattern[:-1]: grant for grant in plain}
        else:
            segments += plain
        self.lengths = tuple(sorted({len(prefix) for prefix in self.prefixes}, reverse=True))
        segments.sort(key=lambda grant: grant.priority, reverse=True)
        self.segments = tuple(segments)
        self.best_segment = segments[0].priority if segments else _LOWEST
        self.regex = (
            re.compile("|".join(f"({_pattern_regex(g.pattern)})" for g in segments), re.DOTALL)
            if segments
            else None
        )

    def match(self, path: str) -> _Grant | None:
        best: _Grant | None = None
        size = len(path)
        for length in self.lengths:
            if length <= size:
                best = self.prefixes.get(path[:length])
                if best is not None:
                    break
        regex = self.regex
        if regex is None or (best is not None and best.priority > self.best_segment):
            return best
        found = regex.fullmatch(path)
        if found is None:
            return best
        index = found.lastindex
        if index is None:  # unreachable (every alternative is a group); fail closed anyway
            return None
        segment = self.segments[index - 1]
        return segment if best is None or segment.priority > best.priority else best


def _could_match_under(pattern: str, prefix: str) -> bool:
    """Whether some path that starts with ``prefix`` fully matches ``pattern``."""
    is_prefix = pattern.endswith("*")
    parts = (pattern[:-1] if is_prefix else pattern).split("/")
    given = prefix.split("/")  # the last element is a partial segment (often "")
    for index, segment in enumerate(given):
        partial = index == len(given) - 1
        if index >= len(parts):
            return False
        part = parts[index]
        if is_prefix and index == len(parts) - 1:
            # the glob's last segment: a literal start, then anything (slashes included)
            return part.startswith(segment) if partial else segment.startswith(part)
        if part == "+":
            continue
        if partial:
            return part.startswith(segment)
        if part != segment:
            return False
    return True


# -- the ACL -----------------------------------------------------------------------------------


class ACL:
    """The compiled permissions of one set of policies. Immutable; safe to share.

    Args:
        policies: parsed policies. If any is named ``root`` the ACL is the root ACL:
            everything is allowed, with ``sudo``. Rules whose path still holds an
            ``{{identity...}}`` placeholder (a templated policy that was not rendered for
            this token) are skipped: they grant nothing.
    """

    __slots__ = ("_buckets", "_exact", "_generic", "_is_root", "_rules", "_wild")

    def __init__(self, policies: Iterable[Policy]) -> None:
        merged: dict[str, PathRule] = {}
        is_root = False
        for policy in policies:
            if policy.name == ROOT_POLICY_NAME:
                is_root = True
            for rule in policy.rules:
                if rule.templated:
                    continue
                previous = merged.get(rule.path)
                merged[rule.path] = rule if previous is None else merge_path_rules(previous, rule)
        self._is_root = is_root
        self._rules: tuple[PathRule, ...] = tuple(merged.values())
        self._exact: dict[str, _Grant] = {}
        wild: list[_Grant] = []
        answers: dict[frozenset[str], dict[Operation, ACLResult]] = {}
        for rule in self._rules:
            grant = _Grant(rule, answers)
            if _is_wildcard(rule.path):
                wild.append(grant)
            else:
                self._exact[rule.path] = grant
        self._wild: tuple[_Grant, ...] = tuple(wild)
        # Wildcard rules are grouped by their literal first segment ("secret" for
        # "secret/+/x"), so a lookup only tries the rules that could match. Rules without
        # one ("*", "+/x", "sec*") could match any path: they join every group, and form
        # the group for paths whose first segment has none of its own.
        grouped: dict[str, list[_Grant]] = {}
        generic: list[_Grant] = []
        for grant in wild:
            head = _first_literal(grant.pattern)
            if head is None:
                generic.append(grant)
            else:
                grouped.setdefault(head, []).append(grant)
        self._buckets: dict[str, _WildSet] = {
            head: _WildSet(grants + generic) for head, grants in grouped.items()
        }
        self._generic: _WildSet | None = _WildSet(generic) if generic else None

    def __repr__(self) -> str:
        if self._is_root:
            return "ACL(root)"
        return f"ACL(exact={len(self._exact)}, wildcard={len(self._wild)})"

    @property
    def is_root(self) -> bool:
        return self._is_root

    @property
    def rules(self) -> tuple[PathRule, ...]:
        """The merged rules, one per pattern (templated rules excluded)."""
        return self._rules

    def _select(self, path: str, is_list: bool) -> _Grant | None:
        grant = self._exact.get(path)
        if grant is not None:
            return grant
        return self._select_inexact(path, is_list)

    def _wild_match(self, path: str) -> _Grant | None:
        slash = path.find("/")
        group = self._buckets.get(path if slash == -1 else path[:slash], self._generic)
        return None if group is None else group.match(path)

    def _select_inexact(self, path: str, is_list: bool) -> _Grant | None:
        if not (is_list and path.endswith("/")):
            return self._wild_match(path) if self._wild else None
        # LIST of "a/b/": as in Vault, an exact rule for "a/b" applies, and so does a glob
        # that matches "a/b" ("+/b" for "x/b/"). Vault then prefers any glob matching "a/b"
        # to one matching "a/b/", so "secret/*" (list) beat "secret/hidden/*" (deny) for
        # "secret/hidden/", and a catch-all "*" deny blocked every listing. Deviation: the
        # globs matching either form compete by Vault's priority, the most specific wins.
        trimmed = path[:-1]
        grant = self._exact.get(trimmed)
        if grant is not None or not self._wild:
            return grant
        short = self._wild_match(trimmed)
        full = self._wild_match(path)
        if short is None or full is None:
            return full if short is None else short
        return short if short.priority > full.priority else full

    def check(
        self,
        operation: Operation,
        path: str,
        data: Mapping[str, Any] | None = None,
        wrap_ttl: int | None = None,
    ) -> ACLResult:
        """Decide whether ``operation`` on ``path`` is allowed.

        Args:
            operation: the request's operation (core has already turned UPDATE into CREATE
                where the target does not exist).
            path: the full request path (mount point included); leading ``/`` ignored.
            data: the request parameters, for ``allowed_parameters``,
                ``denied_parameters`` and ``required_parameters`` (checked on READ, CREATE,
                UPDATE and PATCH, as Vault does).
            wrap_ttl: the response-wrapping TTL the client asked for, in seconds, or
                ``None`` when the response is not to be wrapped. A rule with a wrapping
                bound denies unwrapped requests (as Vault does).

        Returns:
            The decision. HELP is always allowed (Vault does the same), and only the root
            policy and rules with ``sudo`` report ``sudo``.
        """
        if self._is_root:
            return _ROOT_RESULT
        if path.startswith("/"):
            path = path.lstrip("/")
        grant = self._exact.get(path)
        if grant is None:
            if operation is _LIST:
                grant = self._select_inexact(path, True)
            elif self._wild:
                slash = path.find("/")
                group = self._buckets.get(path if slash == -1 else path[:slash], self._generic)
                grant = None if group is None else group.match(path)
            if grant is None:
                return _HELP_NO_MATCH if operation is _HELP else _NO_MATCH
        result = grant.results.get(operation)
        if result is None:  # RENEW/REVOKE come from core, never through the ACL
            return grant.deny("not a client operation")
        if operation not in grant.constrained:
            return result
        if grant.min_ttl or grant.max_ttl:
            reason = grant.wrapping_violation(wrap_ttl)
            if reason is not None:
                return grant.deny(reason)
        if operation in _PARAMETER_OPERATIONS:
            reason = grant.parameter_violation(data)
            if reason is not None:
                return grant.deny(reason)
        return result

    def capabilities(self, path: str) -> list[str]:
        """The capabilities on ``path``, for ``sys/capabilities``: sorted; ``["root"]`` for
        root; ``["deny"]`` when no rule matches, the rule denies, or it grants nothing.

        As in Vault, the lookup follows LIST rules, so ``a/b/`` is also governed by ``a/b``.
        """
        if self._is_root:
            return [ROOT]
        grant = self._select(path.lstrip("/"), True)
        if grant is None or grant.is_deny or not grant.capabilities:
            return [DENY]
        return sorted(grant.capabilities)

    def rule_for(self, path: str, operation: Operation = Operation.READ) -> str | None:
        """The pattern of the rule that decides ``operation`` on ``path``, if any (for
        debugging and for explaining a denial to an operator)."""
        grant = self._select(path.lstrip("/"), operation is Operation.LIST)
        return None if grant is None else grant.pattern

    def has_access_under(self, path: str) -> bool:
        """Whether anything at or below ``path`` is reachable with some capability.

        For mount discovery (``sys/internal/ui/mounts``), like Vault's mount-access check:
        true if ``path`` itself is not denied, or if some non-deny rule with capabilities
        could match a path starting with ``path``. It does not prove that such a path is not
        shadowed by a more specific deny; it only decides what a UI may list.
        """
        if self._is_root:
            return True
        path = path.lstrip("/")
        if self.capabilities(path) != [DENY]:
            return True
        for grant in (*self._exact.values(), *self._wild):
            if grant.is_deny or not grant.capabilities:
                continue
            if _could_match_under(grant.pattern, path):
                return True
        return False
