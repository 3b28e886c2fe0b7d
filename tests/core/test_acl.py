"""ACL evaluation: precedence, deny, LIST, parameters, wrapping, root, capabilities."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from strongroom.core.acl import ACL, ACLResult
from strongroom.core.policy import (
    CAPABILITIES,
    DEFAULT_POLICY_TEXT,
    ROOT_POLICY,
    PathRule,
    Policy,
    parse_policy,
)
from strongroom.logical import Operation

ALL_OPERATIONS = list(Operation)
NON_HELP = [op for op in Operation if op is not Operation.HELP]
EVERYTHING = '["create", "read", "update", "patch", "delete", "list"]'


def acl(*texts: str) -> ACL:
    return ACL([parse_policy(f"p{i}", text) for i, text in enumerate(texts)])


def rules(*blocks: tuple[str, str]) -> str:
    return "".join(f'path "{path}" {{ capabilities = {caps} }}\n' for path, caps in blocks)


# -- Vault's documented examples ---------------------------------------------------------------

DOC_POLICY = f"""
path "secret/*" {{
  capabilities = {EVERYTHING}
}}

path "secret/super-secret" {{
  capabilities = ["deny"]
}}

path "secret/restricted" {{
  capabilities = ["create"]
  allowed_parameters = {{
    "foo" = []
    "bar" = ["zip", "zap"]
  }}
}}
"""


@pytest.mark.parametrize(
    ("operation", "path", "data", "allowed"),
    [
        (Operation.READ, "secret/anything", None, True),
        (Operation.UPDATE, "secret/deep/er/path", None, True),
        (Operation.LIST, "secret/", None, True),
        # "Even though we allowed secret/*, this line explicitly denies secret/super-secret."
        (Operation.READ, "secret/super-secret", None, False),
        (Operation.DELETE, "secret/super-secret", None, False),
        # secret/restricted "can only contain foo (any value) and bar (one of zip or zap)"
        (Operation.CREATE, "secret/restricted", {"foo": "any value", "bar": "zip"}, True),
        (Operation.CREATE, "secret/restricted", {"bar": "zap"}, True),
        (Operation.CREATE, "secret/restricted", {"bar": "zop"}, False),
        (Operation.CREATE, "secret/restricted", {"other": "x"}, False),
        # the exact rule replaces secret/* for that path: only create is granted
        (Operation.READ, "secret/restricted", None, False),
    ],
)
def test_documented_detailed_policy(
    operation: Operation, path: str, data: dict[str, Any] | None, allowed: bool
) -> None:
    assert acl(DOC_POLICY).check(operation, path, data).allowed is allowed


DOC_GLOBS = rules(
    ("secret/foo", '["read"]'),
    ("secret/bar/*", '["read"]'),
    ("secret/zip-*", '["read"]'),
    ("secret/+/teamb", '["read"]'),
    ("secret/+/+/teamb", '["read"]'),
)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        # "Permit reading only secret/foo. An attached token cannot read secret/food or
        # secret/foo/bar."
        ("secret/foo", True),
        ("secret/food", False),
        ("secret/foo/bar", False),
        # "An attached token could read secret/bar/zip, secret/bar/zip/zap, but not
        # secret/bars/zip."
        ("secret/bar/zip", True),
        ("secret/bar/zip/zap", True),
        ("secret/bars/zip", False),
        # "could read secret/zip-zap or secret/zip-zap/zong, but not secret/zip/zap"
        ("secret/zip-zap", True),
        ("secret/zip-zap/zong", True),
        ("secret/zip/zap", False),
        # "+": "the teamb path under any top-level path under secret/"
        ("secret/foo/teamb", True),
        ("secret/bar/teamb", True),
        # "Permit reading secret/foo/bar/teamb, secret/bar/foo/teamb, etc."
        ("secret/foo/bar/teamb", True),
        ("secret/bar/foo/teamb", True),
        ("secret/a/b/c/teamb", False),
        ("secret/teamb", False),
    ],
)
def test_documented_glob_and_segment_examples(path: str, allowed: bool) -> None:
    assert acl(DOC_GLOBS).check(Operation.READ, path).allowed is allowed


def test_documented_prefix_example_secret_foo_star_matches_secret_foobar() -> None:
    assert acl(rules(("secret/foo*", '["read"]'))).check(Operation.READ, "secret/foobar").allowed


# (higher priority, lower priority, a path both match): the documented example, then the
# examples from the comments of Vault's CheckAllowedFromNonExactPaths
PRECEDENCE = [
    # "secret/*" vs "secret/+/+/foo/*": same first wildcard, both end in *, the latter has
    # two wildcard segments, so it has lower priority (rule 3).
    ("secret/*", "secret/+/+/foo/*", "secret/a/b/foo/c"),
    # rule 1: the first wildcard later wins
    ("foo/a*", "foo/+", "foo/ab"),
    ("foo/bar/+/baz", "foo/+/bar/baz", "foo/bar/bar/baz"),
    ("secret/a/*", "secret/*", "secret/a/b"),
    ("secret/foo*", "secret/*", "secret/foobar"),
    ("secret/+/x", "*", "secret/a/x"),
    # rule 2: not ending in * wins
    ("foo/+/bar", "foo/+/ba*", "foo/x/bar"),
    ("foo/+", "foo/*", "foo/x"),
    # rule 3: fewer + segments win
    ("foo/bar/+/baz", "foo/+/+/baz", "foo/bar/x/baz"),
    ("a/+/c/*", "a/+/+/*", "a/b/c/d"),
    # rule 4: longer wins
    ("foo/+/bar/ba*", "foo/+/bar/b*", "foo/x/bar/baz"),
    ("foo/+/bar/*", "foo/+/bar*", "foo/x/bar/y"),
]


@pytest.mark.parametrize(("winner", "loser", "path"), PRECEDENCE)
def test_precedence(winner: str, loser: str, path: str) -> None:
    # the order of rules and policies does not matter
    for texts in (
        (rules((winner, '["read"]'), (loser, '["deny"]')),),
        (rules((loser, '["deny"]'), (winner, '["read"]')),),
        (rules((loser, '["deny"]')), rules((winner, '["read"]'))),
    ):
        compiled = acl(*texts)
        assert compiled.rule_for(path) == winner
        assert compiled.check(Operation.READ, path).allowed
        assert compiled.capabilities(path) == ["read"]


def test_exact_match_beats_every_glob() -> None:
    compiled = acl(
        rules(
            ("secret/a/b", '["read"]'),
            ("secret/a/b*", '["deny"]'),
            ("secret/+/b", '["deny"]'),
            ("secret/*", '["deny"]'),
            ("*", '["deny"]'),
        )
    )
    assert compiled.rule_for("secret/a/b") == "secret/a/b"
    assert compiled.check(Operation.READ, "secret/a/b").allowed


def test_only_the_winning_rule_counts() -> None:
    # Vault does not add the capabilities of a less specific glob to a more specific one.
    compiled = acl(rules(("secret/*", '["read", "list"]'), ("secret/a/*", '["update"]')))
    assert compiled.capabilities("secret/a/x") == ["update"]
    assert not compiled.check(Operation.READ, "secret/a/x").allowed


# -- matching details --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("secret/+/foo", "secret/a/foo", True),
        ("secret/+/foo", "secret/a/b/foo", False),
        ("secret/+/foo", "secret/a/foo/", False),
        ("secret/+/foo", "secret/foo", False),
        ("secret/+/foo", "secret//foo", True),  # Vault: + matches an empty segment
        ("secret/+", "secret/a", True),
        ("secret/+", "secret/a/b", False),
        ("+", "anything", True),
        ("+", "any/thing", False),
        ("+/foo", "x/foo", True),
        ("secret/*", "secret/", True),
        ("secret/*", "secret/foo/bar", True),
        ("secret/*", "secret", False),
        ("secret*", "secret", True),
        ("secret*", "secrets/x", True),
        ("secret*", "secre", False),
        ("secret/+/foo/*", "secret/a/foo/", True),
        ("secret/+/foo/*", "secret/a/foo/b/c", True),
        ("secret/+/foo/*", "secret/a/foo", False),
        ("secret/+/fo*", "secret/a/foo/b", True),
        ("secret/+/fo*", "secret/a/b/foo", False),
        ("*", "", True),
        ("*", "any/thing/at/all", True),
        ("secret/foo", "secret/foo", True),
        ("secret/foo", "/secret/foo", True),  # leading slashes of the request are ignored
        ("secret/foo", "secret/foo/", False),
        ("secret/a.b", "secret/aXb", False),  # patterns are not regular expressions
        ("secret/(x)*", "secret/(x)y", True),
        ("secret/with space/+", "secret/with space/x", True),
        ("secret/*", "secret/line\nbreak", True),
    ],
)
def test_matching(pattern: str, path: str, matches: bool) -> None:
    compiled = acl(rules((pattern, '["read"]')))
    assert compiled.check(Operation.READ, path).allowed is matches
    assert (compiled.rule_for(path) == pattern) is matches


def test_unknown_paths_are_denied() -> None:
    compiled = acl(rules(("secret/foo", '["read"]')))
    result = compiled.check(Operation.READ, "other/path")
    assert result == ACLResult(False, False, frozenset(), result.reason)
    assert compiled.capabilities("other/path") == ["deny"]
    assert ACL([]).check(Operation.READ, "x").allowed is False
    assert ACL([]).capabilities("x") == ["deny"]


def test_templated_rules_grant_nothing_until_rendered() -> None:
    compiled = acl('path "identity/entity/id/{{identity.entity.id}}" { capabilities = ["read"] }')
    assert compiled.rules == ()
    assert not compiled.check(Operation.READ, "identity/entity/id/{{identity.entity.id}}").allowed


# -- operations and capabilities ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("capability", "operation"),
    [
        ("create", Operation.CREATE),
        ("read", Operation.READ),
        ("update", Operation.UPDATE),
        ("patch", Operation.PATCH),
        ("delete", Operation.DELETE),
        ("list", Operation.LIST),
    ],
)
def test_each_operation_needs_its_capability(capability: str, operation: Operation) -> None:
    compiled = acl(rules(("a", f'["{capability}"]')))
    for other in NON_HELP:
        assert compiled.check(other, "a").allowed is (other is operation)


def test_help_is_always_allowed() -> None:
    # Vault's ACL answers HELP without looking at capabilities (a token is still needed).
    compiled = acl(rules(("a", '["deny"]'), ("b", '["sudo"]')))
    for path in ("a", "b", "nowhere"):
        assert compiled.check(Operation.HELP, path).allowed


def test_sudo_is_reported_with_the_rule() -> None:
    compiled = acl(rules(("sys/audit/*", '["update", "sudo"]'), ("sys/mounts", '["read"]')))
    assert compiled.check(Operation.UPDATE, "sys/audit/file").sudo
    assert not compiled.check(Operation.READ, "sys/mounts").sudo
    # sudo alone grants no operation
    only_sudo = acl(rules(("x", '["sudo"]')))
    assert not only_sudo.check(Operation.READ, "x").allowed
    assert only_sudo.check(Operation.READ, "x").sudo


def test_capabilities_are_sorted() -> None:
    compiled = acl(rules(("a/*", '["update", "sudo", "create", "read", "list", "patch"]')))
    assert compiled.capabilities("a/b") == ["create", "list", "patch", "read", "sudo", "update"]
    assert acl(rules(("a", "[]"))).capabilities("a") == ["deny"]


# -- deny --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "texts",
    [
        (rules(("secret/x", EVERYTHING)), rules(("secret/x", '["deny"]'))),
        (rules(("secret/x", '["deny"]')), rules(("secret/x", EVERYTHING))),
        (rules(("secret/x", '["deny", "read", "sudo"]')),),
        ('path "secret/x" { policy = "sudo" }', 'path "secret/x" { policy = "deny" }'),
    ],
)
def test_deny_wins_over_any_other_grant_for_the_same_pattern(texts: tuple[str, ...]) -> None:
    compiled = acl(*texts)
    for operation in NON_HELP:
        result = compiled.check(operation, "secret/x")
        assert result.allowed is False
        assert result.sudo is False
        assert result.capabilities == {"deny"}
    assert compiled.capabilities("secret/x") == ["deny"]


def test_union_of_capabilities_across_policies() -> None:
    compiled = acl(rules(("secret/*", '["read"]')), rules(("secret/*", '["list", "sudo"]')))
    assert compiled.capabilities("secret/a") == ["list", "read", "sudo"]
    assert compiled.check(Operation.LIST, "secret/").allowed


# -- LIST --------------------------------------------------------------------------------------


def test_list_respects_deny() -> None:
    compiled = acl(
        rules(
            ("secret/*", '["read", "list"]'),
            ("secret/hidden/*", '["deny"]'),
            ("secret/private", '["deny"]'),
        )
    )
    assert compiled.check(Operation.LIST, "secret/").allowed
    assert compiled.check(Operation.LIST, "secret/open/").allowed
    assert not compiled.check(Operation.LIST, "secret/hidden/").allowed
    assert not compiled.check(Operation.LIST, "secret/hidden/deeper/").allowed
    # the exact rule "secret/private" governs a LIST of "secret/private/"
    assert not compiled.check(Operation.LIST, "secret/private/").allowed
    assert compiled.capabilities("secret/private/") == ["deny"]


def test_list_also_applies_rules_for_the_path_without_its_trailing_slash() -> None:
    # As in Vault: an exact rule for "a/b" governs a LIST of "a/b/" ...
    compiled = acl(rules(("secret/foo", '["list"]')))
    assert compiled.check(Operation.LIST, "secret/foo/").allowed
    assert compiled.capabilities("secret/foo/") == ["list"]
    assert not compiled.check(Operation.READ, "secret/foo/").allowed
    # ... even when a glob matches "a/b/" (exact beats glob) ...
    compiled = acl(rules(("secret/foo", '["list"]'), ("secret/foo/*", '["deny"]')))
    assert compiled.check(Operation.LIST, "secret/foo/").allowed
    # ... and so does a glob matching "a/b" (VAULT-3825)
    compiled = acl(rules(("+/sys/policies/acl", '["list"]')))
    assert compiled.check(Operation.LIST, "ns1/sys/policies/acl/").allowed
    compiled = acl(rules(("secret/fo*", '["list"]')))
    assert compiled.check(Operation.LIST, "secret/foo/").allowed
    compiled = acl(rules(("secret/foo/*", '["list"]')))
    assert compiled.check(Operation.LIST, "secret/foo/").allowed


@pytest.mark.parametrize(
    ("specific", "broader"),
    [
        (("secret/foo/*", '["deny"]'), ("secret/fo*", '["list"]')),
        (("secret/foo/*", '["deny"]'), ("secret/*", '["list"]')),
        (("secret/foo/*", '["deny"]'), ("secret/+", '["list"]')),
        (("secret/foo/*", '["list"]'), ("*", '["deny"]')),
        (("secret/foo/*", '["list"]'), ("secret/*", '["read"]')),
        (("secret/foo*", '["list"]'), ("secret/+", '["deny"]')),
    ],
)
def test_list_picks_the_most_specific_glob_of_either_form(
    specific: tuple[str, str], broader: tuple[str, str]
) -> None:
    # Deviation: Vault prefers any glob matching "secret/foo" (here the broader one) to
    # globs matching "secret/foo/"; we let Vault's priority rules pick among both.
    compiled = acl(rules(specific, broader))
    assert compiled.rule_for("secret/foo/", Operation.LIST) == specific[0]
    allowed = specific[1] == '["list"]'
    assert compiled.check(Operation.LIST, "secret/foo/").allowed is allowed
    assert compiled.capabilities("secret/foo/") == json.loads(specific[1])


# -- root --------------------------------------------------------------------------------------


def test_root_allows_everything() -> None:
    for compiled in (
        ACL([ROOT_POLICY]),
        ACL([parse_policy(" ROOT ", "")]),
        ACL([parse_policy("p", rules(("*", '["deny"]'))), ROOT_POLICY]),
    ):
        assert compiled.is_root
        for operation in ALL_OPERATIONS:
            result = compiled.check(operation, "sys/anything", {"x": 1}, wrap_ttl=None)
            assert result.allowed and result.sudo
            assert result.capabilities == {"root"}
        assert compiled.capabilities("any/path") == ["root"]
        assert compiled.has_access_under("any/")


def test_a_policy_named_like_root_is_root_only_when_normalised() -> None:
    assert not acl(rules(("*", EVERYTHING))).is_root
    assert ACL([Policy("root", ())]).is_root


# -- parameters --------------------------------------------------------------------------------


def param_acl(body: str, capabilities: str = '["create", "update", "read", "delete"]') -> ACL:
    return acl(f'path "p" {{\n  capabilities = {capabilities}\n{body}\n}}\n')


def json_param_acl(rule: dict[str, Any]) -> ACL:
    rule = {"capabilities": ["create", "update", "patch", "read"], **rule}
    return acl(json.dumps({"path": {"p": rule}}))


PARAMETER_CASES: list[tuple[str, dict[str, Any] | None, bool]] = [
    # allowed_parameters with values
    ('allowed_parameters = {\n "bar" = ["zip", "zap"]\n}', {"bar": "zip"}, True),
    ('allowed_parameters = {\n "bar" = ["zip", "zap"]\n}', {"bar": "zop"}, False),
    ('allowed_parameters = {\n "bar" = ["zip", "zap"]\n}', {"bar": "zip", "x": 1}, False),
    ('allowed_parameters = {\n "bar" = ["zip", "zap"]\n}', {}, True),
    ('allowed_parameters = {\n "bar" = ["zip", "zap"]\n}', None, True),
    # an empty list allows any value
    ('allowed_parameters = {\n "bar" = []\n}', {"bar": {"any": ["thing"]}}, True),
    ('allowed_parameters = {\n "bar" = []\n}', {"baz": 1}, False),
    # "*" allows every other parameter; listed ones keep their values
    ('allowed_parameters = {\n "bar" = ["zip"]\n "*" = []\n}', {"bar": "zip", "x": 1}, True),
    ('allowed_parameters = {\n "bar" = ["zip"]\n "*" = []\n}', {"bar": "zap", "x": 1}, False),
    ('allowed_parameters = {\n "*" = []\n}', {"anything": "goes"}, True),
    # names compare case-insensitively
    ('allowed_parameters = {\n "Bar" = ["zip"]\n}', {"BAR": "zip"}, True),
    ('allowed_parameters = {\n "bar" = ["zip"]\n}', {"Bar": "zap"}, False),
    # value globs: prefix, suffix, both; a lone "*" is literal
    ('allowed_parameters = {\n "bar" = ["foo-*"]\n}', {"bar": "foo-1"}, True),
    ('allowed_parameters = {\n "bar" = ["foo-*"]\n}', {"bar": "xfoo-1"}, False),
    ('allowed_parameters = {\n "bar" = ["*-foo"]\n}', {"bar": "1-foo"}, True),
    ('allowed_parameters = {\n "bar" = ["*-foo"]\n}', {"bar": "1-foox"}, False),
    ('allowed_parameters = {\n "bar" = ["*mid*"]\n}', {"bar": "a-mid-b"}, True),
    ('allowed_parameters = {\n "bar" = ["*"]\n}', {"bar": "*"}, True),
    ('allowed_parameters = {\n "bar" = ["*"]\n}', {"bar": "x"}, False),
    ('allowed_parameters = {\n "bar" = ["baz/*"]\n}', {"bar": "baz/quux"}, True),
    # lists and comma-separated strings: every element must be allowed
    ('allowed_parameters = {\n "p" = ["a", "b"]\n}', {"p": ["a", "b"]}, True),
    ('allowed_parameters = {\n "p" = ["a", "b"]\n}', {"p": ["a", "c"]}, False),
    ('allowed_parameters = {\n "p" = ["a", "b"]\n}', {"p": "a,b"}, True),
    ('allowed_parameters = {\n "p" = ["a", "b"]\n}', {"p": "a, c"}, False),
    ('allowed_parameters = {\n "p" = ["a", "b"]\n}', {"p": []}, True),
    ('allowed_parameters = {\n "p" = ["a", "b"]\n}', {"p": ""}, False),  # deviation
    ('allowed_parameters = {\n "p" = ["a", "b"]\n}', {"p": None}, False),
    ('allowed_parameters = {\n "p" = ["a", "b"]\n}', {"p": 1}, False),
    # denied_parameters
    ('denied_parameters = {\n "bar" = []\n}', {"bar": "anything"}, False),
    ('denied_parameters = {\n "bar" = []\n}', {"other": "x"}, True),
    ('denied_parameters = {\n "bar" = ["zip", "zap"]\n}', {"bar": "zip"}, False),
    ('denied_parameters = {\n "bar" = ["zip", "zap"]\n}', {"bar": "zop", "x": 1}, True),
    ('denied_parameters = {\n "*" = []\n}', {"x": 1}, False),
    ('denied_parameters = {\n "*" = []\n}', {}, True),
    ('denied_parameters = {\n "p" = ["admin"]\n}', {"p": ["dev", "admin"]}, False),
    ('denied_parameters = {\n "p" = ["admin"]\n}', {"p": "dev, admin"}, False),
    ('denied_parameters = {\n "p" = ["admin"]\n}', {"p": "dev,administrator"}, True),
    ('denied_parameters = {\n "P" = ["adm*"]\n}', {"p": "administrator"}, False),
    # denied wins over allowed
    (
        'allowed_parameters = {\n "bar" = []\n}\ndenied_parameters = {\n "bar" = ["zap"]\n}',
        {"bar": "zap"},
        False,
    ),
    (
        'allowed_parameters = {\n "bar" = []\n}\ndenied_parameters = {\n "bar" = ["zap"]\n}',
        {"bar": "zip"},
        True,
    ),
    (
        'allowed_parameters = {\n "*" = []\n}\ndenied_parameters = {\n "bar" = []\n}',
        {"bar": 1},
        False,
    ),
    # required parameters
    ('required_parameters = ["name", "id"]', {"name": "n", "id": 1}, True),
    ('required_parameters = ["name", "id"]', {"name": "n"}, False),
    ('required_parameters = ["name"]', {}, False),
    ('required_parameters = ["name"]', None, False),
    ('required_parameters = ["Name"]', {"NAME": ""}, True),
    (
        'required_parameters = ["no_store"]\n'
        'denied_parameters = {\n "no_store" = [false, "false"]\n}',
        {"value": "bar"},
        False,
    ),
]


@pytest.mark.parametrize(("body", "data", "allowed"), PARAMETER_CASES)
def test_parameter_constraints(body: str, data: dict[str, Any] | None, allowed: bool) -> None:
    compiled = param_acl(body)
    for operation in (Operation.CREATE, Operation.UPDATE, Operation.READ):
        result = compiled.check(operation, "p", data)
        assert result.allowed is allowed, result.reason


@pytest.mark.parametrize(
    ("values", "data", "allowed"),
    [
        # Vault's documented example: "no_store" cannot be false
        ([False, "false"], {"no_store": False}, False),
        ([False, "false"], {"no_store": "false"}, False),
        ([False, "false"], {"no_store": True}, True),
        ([False, "false"], {"no_store": 0}, True),  # a number is not a boolean
        ([False, "false"], {"value": "bar"}, True),  # defaults are not known to the ACL
        ([1, 2.5], {"n": 1}, False),
        ([1, 2.5], {"n": 1.0}, False),
        ([1, 2.5], {"n": 2.5}, False),
        ([1, 2.5], {"n": True}, True),
        ([1, 2.5], {"n": "1"}, True),
        ([None], {"n": None}, False),
        ([None], {"n": "null"}, True),
    ],
)
def test_denied_values_compare_by_type(
    values: list[Any], data: dict[str, Any], allowed: bool
) -> None:
    key = next(iter(data))
    compiled = json_param_acl({"denied_parameters": {key: values}})
    assert compiled.check(Operation.CREATE, "p", data).allowed is allowed


@pytest.mark.parametrize("operation", [Operation.DELETE, Operation.LIST])
def test_parameters_are_not_checked_for_delete_and_list(operation: Operation) -> None:
    compiled = param_acl(
        'denied_parameters = {\n "*" = []\n}\nrequired_parameters = ["x"]',
        '["delete", "list"]',
    )
    assert compiled.check(operation, "p", {"anything": 1}).allowed


def test_patch_checks_parameters() -> None:
    compiled = json_param_acl({"allowed_parameters": {"a": ["1"]}})
    assert compiled.check(Operation.PATCH, "p", {"a": "1"}).allowed
    assert not compiled.check(Operation.PATCH, "p", {"a": "2"}).allowed


def test_parameter_constraints_merge_across_policies() -> None:
    compiled = acl(
        'path "p" {\n capabilities = ["update"]\n allowed_parameters = {\n "a" = ["1"]\n }\n}',
        'path "p" {\n capabilities = ["update"]\n allowed_parameters = {\n "a" = ["2"]\n }\n}',
    )
    assert compiled.check(Operation.UPDATE, "p", {"a": "1"}).allowed
    assert compiled.check(Operation.UPDATE, "p", {"a": "2"}).allowed
    assert not compiled.check(Operation.UPDATE, "p", {"a": "3"}).allowed


def test_denial_reasons_name_parameters_but_never_values() -> None:
    compiled = json_param_acl(
        {"allowed_parameters": {"a": ["ok"], "b": []}, "denied_parameters": {"b": ["*bad*"]}}
    )
    secret = "hunter2-very-secret"
    for data in ({"a": secret}, {"b": f"bad{secret}"}, {"zz": secret}, {"a": [secret]}):
        result = compiled.check(Operation.UPDATE, "p", data)
        assert not result.allowed
        assert secret not in result.reason
        assert next(iter(data)) in result.reason


# -- response wrapping -------------------------------------------------------------------------

WRAPPED = """
path "auth/approle/role/my-role/secret-id" {
    capabilities = ["create", "update"]
    min_wrapping_ttl = "1s"
    max_wrapping_ttl = "90s"
}
path "only/max" {
    capabilities = ["read"]
    max_wrapping_ttl = "1m"
}
"""


@pytest.mark.parametrize(
    ("path", "wrap_ttl", "allowed"),
    [
        ("auth/approle/role/my-role/secret-id", None, False),  # wrapping is mandatory
        ("auth/approle/role/my-role/secret-id", 0, False),
        ("auth/approle/role/my-role/secret-id", 1, True),
        ("auth/approle/role/my-role/secret-id", 90, True),
        ("auth/approle/role/my-role/secret-id", 91, False),
        ("only/max", None, False),  # as in Vault, a maximum alone also requires wrapping
        ("only/max", 60, True),
        ("only/max", 61, False),
    ],
)
def test_wrapping_ttl_bounds(path: str, wrap_ttl: int | None, allowed: bool) -> None:
    operation = Operation.READ if path == "only/max" else Operation.UPDATE
    result = acl(WRAPPED).check(operation, path, None, wrap_ttl=wrap_ttl)
    assert result.allowed is allowed


def test_merged_wrapping_bounds_that_conflict_deny() -> None:
    compiled = acl(
        'path "p" {\n capabilities = ["read"]\n min_wrapping_ttl = 60\n}',
        'path "p" {\n capabilities = ["read"]\n max_wrapping_ttl = 30\n}',
    )
    for ttl in (None, 10, 45, 90):
        assert not compiled.check(Operation.READ, "p", wrap_ttl=ttl).allowed


def test_wrapping_bounds_do_not_open_missing_capabilities() -> None:
    compiled = acl(WRAPPED)
    assert not compiled.check(Operation.DELETE, "only/max", wrap_ttl=30).allowed


# -- the default policy ------------------------------------------------------------------------


def test_default_policy_grants_self_service_only() -> None:
    compiled = ACL([parse_policy("default", DEFAULT_POLICY_TEXT)])
    assert compiled.check(Operation.READ, "auth/token/lookup-self").allowed
    assert compiled.check(Operation.UPDATE, "auth/token/renew-self").allowed
    assert compiled.check(Operation.UPDATE, "sys/capabilities-self").allowed
    assert compiled.check(Operation.LIST, "cubbyhole/").allowed
    assert compiled.check(Operation.CREATE, "cubbyhole/mine").allowed
    assert compiled.check(Operation.UPDATE, "sys/wrapping/unwrap").allowed
    assert not compiled.check(Operation.READ, "secret/foo").allowed
    assert not compiled.check(Operation.LIST, "secret/").allowed
    assert not compiled.check(Operation.UPDATE, "sys/policy/default").allowed
    assert not compiled.check(Operation.READ, "auth/token/lookup-self").sudo
    assert compiled.capabilities("secret/") == ["deny"]


# -- mount discovery ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "capabilities", "mount", "expected"),
    [
        ("secret/foo", '["read"]', "secret/", True),
        ("secret/*", '["read"]', "secret/", True),
        ("sec*", '["read"]', "secret/", True),
        ("secret/+/x", '["read"]', "secret/", True),
        ("+/x", '["read"]', "secret/", True),
        ("+", '["read"]', "secret/", True),  # LIST rules: "+" governs "secret"
        ("+/+/x", '["read"]', "secret/", True),
        ("a/+", '["read"]', "secret/", False),
        ("kv/foo", '["read"]', "secret/", False),
        ("secret/foo", '["deny"]', "secret/", False),
        ("secret/foo", "[]", "secret/", False),
        ("secret", '["read"]', "secret/", True),  # LIST rules: "secret" governs "secret/"
        ("auth/userpass/login/*", '["create"]', "auth/userpass/", True),
        ("auth/+/login", '["create"]', "auth/userpass/", True),
        ("auth/+/login", '["create"]', "auth/userpass/extra/", False),
    ],
)
def test_has_access_under(pattern: str, capabilities: str, mount: str, expected: bool) -> None:
    assert acl(rules((pattern, capabilities))).has_access_under(mount) is expected


# -- properties --------------------------------------------------------------------------------

_segment = st.sampled_from(["a", "b", "ab", "+"])


@st.composite
def patterns(draw: st.DrawFn) -> str:
    body = "/".join(draw(st.lists(_segment, min_size=1, max_size=4)))
    if draw(st.booleans()):
        body += "/*" if body.endswith("+") else draw(st.sampled_from(["*", "/*"]))
    return body


paths = st.lists(st.sampled_from(["a", "b", "ab", "abc", "ba", ""]), min_size=1, max_size=5).map(
    "/".join
)


def _instance(pattern: str, fill: str, tail: str) -> str:
    """A path that the pattern matches."""
    body = pattern[:-1] if pattern.endswith("*") else pattern
    path = "/".join(fill if part == "+" else part for part in body.split("/"))
    return path + tail if pattern.endswith("*") else path


def _reference_matches(pattern: str, path: str) -> bool:
    """Vault's matching, transcribed independently of the compiled regex."""
    is_prefix = pattern.endswith("*")
    body = pattern[:-1] if is_prefix else pattern
    if "+" not in body.split("/"):
        return path.startswith(body) if is_prefix else path == body
    parts, given = body.split("/"), path.split("/")
    if len(given) < len(parts) or (not is_prefix and len(given) != len(parts)):
        return False
    for i, part in enumerate(parts):
        if part == "+" or part == given[i]:
            continue
        if is_prefix and i == len(parts) - 1 and given[i].startswith(part):
            continue
        return False
    return True


def _vault_less(p1: str, p2: str) -> int:
    """Vault's comparator: negative if p1 has lower priority than p2."""

    def describe(p: str) -> tuple[int, bool, int, str]:
        is_prefix = p.endswith("*")
        body = p[:-1] if is_prefix else p
        first = body.index("+") if "+" in body.split("/") else len(body)
        return first, is_prefix, body.split("/").count("+"), body

    f1, x1, w1, b1 = describe(p1)
    f2, x2, w2, b2 = describe(p2)
    if f1 != f2:
        return -1 if f1 < f2 else 1
    if x1 != x2:
        return -1 if x1 else 1
    if w1 != w2:
        return -1 if w1 > w2 else 1
    if len(b1) != len(b2):
        return -1 if len(b1) < len(b2) else 1
    return (b1 > b2) - (b1 < b2)


def _reference_select(pattern_list: list[str], path: str) -> str | None:
    path = path.lstrip("/")
    exact = [p for p in pattern_list if not p.endswith("*") and "+" not in p.split("/")]
    if path in exact:
        return path
    candidates = [p for p in set(pattern_list) - set(exact) if _reference_matches(p, path)]
    if not candidates:
        return None
    return max(candidates, key=functools.cmp_to_key(_vault_less))


@settings(max_examples=400, deadline=None)
@given(st.lists(patterns(), min_size=1, max_size=8), paths)
def test_selection_agrees_with_a_reference_transcription_of_vault(
    pattern_list: list[str], path: str
) -> None:
    compiled = acl(rules(*((p, '["read"]') for p in pattern_list)))
    assert compiled.rule_for(path) == _reference_select(pattern_list, path)


def _reference_select_list(pattern_list: list[str], path: str) -> str | None:
    """LIST: exact rules for the path, then for it without its trailing slash, then the
    highest-priority glob matching either form (our documented deviation from Vault)."""
    path = path.lstrip("/")
    if not path.endswith("/"):
        return _reference_select(pattern_list, path)
    exact = [p for p in pattern_list if not p.endswith("*") and "+" not in p.split("/")]
    for candidate in (path, path[:-1]):
        if candidate in exact:
            return candidate
    globs = set(pattern_list) - set(exact)
    candidates = [
        p for p in globs if _reference_matches(p, path) or _reference_matches(p, path[:-1])
    ]
    if not candidates:
        return None
    return max(candidates, key=functools.cmp_to_key(_vault_less))


@settings(max_examples=400, deadline=None)
@given(st.lists(patterns(), min_size=1, max_size=8), paths.map(lambda p: p + "/"))
def test_list_selection_agrees_with_the_reference(pattern_list: list[str], path: str) -> None:
    compiled = acl(rules(*((p, '["list"]') for p in pattern_list)))
    assert compiled.rule_for(path, Operation.LIST) == _reference_select_list(pattern_list, path)


@settings(max_examples=200, deadline=None)
@given(
    patterns(),
    st.lists(st.sampled_from(sorted(CAPABILITIES - {"deny"})), max_size=7),
    st.sampled_from(["a", "b", "zz"]),
    st.sampled_from(["", "x", "/y/z"]),
    st.booleans(),
)
def test_a_deny_rule_never_allows_anything_on_its_paths(
    pattern: str, other_capabilities: list[str], fill: str, tail: str, deny_first: bool
) -> None:
    deny = rules((pattern, '["deny"]'))
    grant = rules((pattern, json.dumps(other_capabilities)))
    compiled = acl(deny, grant) if deny_first else acl(grant, deny)
    path = _instance(pattern, fill, tail)
    for operation in NON_HELP:
        result = compiled.check(operation, path, {"k": "v"}, wrap_ttl=30)
        assert not result.allowed
        assert not result.sudo
    assert compiled.capabilities(path) == ["deny"]


@settings(max_examples=200, deadline=None)
@given(st.lists(patterns(), min_size=1, max_size=6), st.sampled_from(["a", "b"]), paths)
def test_an_exact_rule_beats_every_glob_that_matches(
    globs: list[str], fill: str, tail: str
) -> None:
    exact = _instance(globs[0], fill, tail).lstrip("/")
    assume("+" not in exact.split("/") and not exact.endswith("*") and exact not in globs)
    compiled = acl(rules(*((g, '["deny"]') for g in globs), (exact, '["read"]')))
    assert compiled.rule_for(exact) == exact
    assert compiled.check(Operation.READ, exact).allowed


_names = st.text("abcdefgh", min_size=1, max_size=8)
# values carry a character that no reason text or parameter name contains
_secrets = st.text(min_size=4, max_size=20).map(lambda s: "\u00a7" + s)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_names, st.one_of(_secrets, st.lists(_secrets, max_size=3)), min_size=1))
def test_reasons_never_contain_request_values(data: dict[str, Any]) -> None:
    compiled = json_param_acl(
        {
            "allowed_parameters": {"a": ["x*"], "b": [], "c": []},
            "denied_parameters": {"b": ["*y"], "c": []},
            "required_parameters": ["a"],
        }
    )
    result = compiled.check(Operation.UPDATE, "p", data)
    assert "\u00a7" not in result.reason


def test_large_groups_of_plain_globs_keep_vault_precedence() -> None:
    # past a threshold, plain globs are looked up by longest prefix instead of by regex
    blocks = [(f"secret/team-{i:03d}/*", '["read"]') for i in range(100)]
    blocks += [
        ("secret/team-007/x/*", '["deny"]'),
        ("secret/+/x/y", '["update"]'),
        ("secret/team-00*", '["list"]'),
        ("*", '["sudo"]'),
    ]
    compiled = acl(rules(*blocks))
    for path, pattern in [
        ("secret/team-042/a", "secret/team-042/*"),
        ("secret/team-007/x/y", "secret/team-007/x/*"),
        ("secret/team-008/x/y", "secret/team-008/*"),
        ("secret/other/x/y", "secret/+/x/y"),
        ("secret/team-00", "secret/team-00*"),
        ("secret/team-999/a", "*"),
        ("elsewhere", "*"),
    ]:
        assert compiled.rule_for(path) == pattern, path
        assert compiled.rule_for(path) == _reference_select([b[0] for b in blocks], path)


_plain_globs = st.lists(
    st.text("ab/", max_size=6).map(lambda body: f"s/{body}*"), min_size=40, max_size=60, unique=True
)


@settings(max_examples=100, deadline=None)
@given(
    _plain_globs,
    st.lists(patterns().map(lambda p: "s/" + p), max_size=5),
    st.text("ab/", max_size=8).map(lambda tail: "s/" + tail),
)
def test_selection_with_many_plain_globs_agrees_with_the_reference(
    globs: list[str], others: list[str], path: str
) -> None:
    pattern_list = globs + others
    compiled = acl(rules(*((p, '["read"]') for p in pattern_list)))
    assert compiled.rule_for(path) == _reference_select(pattern_list, path)


def test_pathrule_and_acl_reprs_are_short() -> None:
    compiled = acl(rules(*((f"p/{i}/*", '["read"]') for i in range(200))))
    assert len(repr(compiled)) < 60
    assert isinstance(compiled.rules[0], PathRule)
