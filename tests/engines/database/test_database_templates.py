"""Username templates, statement splitting and rendering, passwords: pure, no database."""

from __future__ import annotations

import base64
import json
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.engines.database._passwords import (
    PASSWORD_ALPHABET,
    generate_password,
    is_generated_password,
    random_alphanumeric,
)
from strongroom.engines.database._postgres import format_expiration, mask_url
from strongroom.engines.database._templates import (
    DEFAULT_USERNAME_TEMPLATE,
    USERNAME_SAFE,
    TemplateError,
    clean_field,
    compile_username_template,
    expand_statements,
    parse_statement_field,
    render_statement,
    split_statements,
)

NOW = 1614294836.0


def fixed_random(length: int) -> str:
    return ("jNFRlKsZZMxJEx60o66i" * 60)[:length]


def render(source: str, display: str = "token", role: str = "myrolename") -> str:
    return compile_username_template(source).render(
        {"DisplayName": display, "RoleName": role}, now=NOW, random=fixed_random
    )


# -- username templates -----------------------------------------------------------------------


def test_vault_default_template_examples():
    # the two examples of Vault's PostgreSQL plugin documentation
    assert render(DEFAULT_USERNAME_TEMPLATE) == "v-token-myrolena-jNFRlKsZZMxJEx60o66i-1614294836"
    assert (
        render(DEFAULT_USERNAME_TEMPLATE, "amuchlonger_dispname", "role-name-with-dashes")
        == "v-amuchlon-role-nam-jNFRlKsZZMxJEx60o66i-1614294836"
    )


def test_brief_shape_without_printf():
    source = (
        "v-{{.DisplayName | truncate 8}}-{{.RoleName | truncate 8}}-{{random 20}}-{{unix_time}}"
    )
    assert render(source) == render(DEFAULT_USERNAME_TEMPLATE)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{.RoleName | uppercase}}", "MYROLENAME"),
        ("{{ .DisplayName | uppercase | lowercase }}", "token"),
        ('{{.RoleName | replace "role" "R"}}', "myRname"),
        ('{{replace "-" "_" .DisplayName}}', "token"),
        ("{{ truncate 3 .RoleName }}", "myr"),
        ("a-{{- .DisplayName -}} -b", "a-token-b"),
        ("{{unix_time_millis}}", "1614294836000"),
        ('{{printf "%s_%d" .DisplayName 7}}', "token_7"),
        ("{{ .RoleName | truncate_sha256 12 }}", "myrolename"),
        ("{{ `raw` }}", "raw"),
        ('{{ (printf "%s%s" .DisplayName .RoleName) | truncate 6 }}', "tokenm"),
    ],
)
def test_functions(source: str, expected: str):
    assert render(source) == expected


def test_truncate_sha256_hashes_the_tail():
    out = render("{{ .RoleName | truncate_sha256 10 }}", role="a" * 30)
    assert len(out) == 10 and out.startswith("aa") and re.fullmatch(r"a{2}[0-9a-f]{8}", out)


def test_uuid_and_random_use_their_sources():
    out = compile_username_template("{{uuid}}").render({}, now=NOW, random=fixed_random)
    assert re.fullmatch(r"[0-9a-f-]{36}", out)
    assert render("{{random 5}}") == "jNFRl"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ nosuch 1 }}", "not defined"),
        ("{{ .Nope }}", "no field"),
        ('{{ truncate "8" .RoleName }}', "expected an integer"),
        ("{{ truncate 0 .RoleName }}", "> 0"),
        ("{{ .RoleName 3 }}", "non-function"),
        ("{{ (random 3 }}", "unclosed"),
        ("{{ random 3 ) }}", "unexpected"),
        ("{{ random 3 }", "unbalanced"),
        ("{{ random 0 }}", "between"),
        ("{{ truncate 8 }}", "wants 2"),
        ('{{ printf "%x" 3 }}', "only %s"),
        ('{{ printf "%s %s" "a" }}', "too few"),
        ("{{ .DisplayName }} and spaces", "unusable username"),
        ("{{ random 64 }}", "unusable username"),
        ('{{ "q\\"uote" }}', "unusable username"),
    ],
)
def test_template_errors(source: str, message: str):
    with pytest.raises(TemplateError, match=re.escape(message)):
        render(source)


_FIELD = st.text(alphabet=string.printable + "é€\x00", max_size=80)


@given(display=_FIELD, role=_FIELD, now=st.floats(min_value=0, max_value=4e9))
def test_default_template_always_makes_a_safe_username(display: str, role: str, now: float):
    username = compile_username_template(DEFAULT_USERNAME_TEMPLATE).render(
        {"DisplayName": clean_field(display), "RoleName": clean_field(role)},
        now=now,
        random=random_alphanumeric,
    )
    assert USERNAME_SAFE.fullmatch(username)
    assert len(username) <= 63 and username.startswith("v-")


@given(st.text(max_size=60))
def test_clean_field_keeps_only_the_safe_alphabet(value: str):
    cleaned = clean_field(value)
    assert re.fullmatch(r"[A-Za-z0-9_.@-]*", cleaned)
    assert all(char in value for char in cleaned)


# -- statements ---------------------------------------------------------------------------------


def test_split_respects_quotes_dollar_bodies_and_comments():
    text = (
        "CREATE ROLE \"a;b\" PASSWORD 'x;''y';"
        "DO $fn$ BEGIN PERFORM 1; END $fn$;"
        " -- a comment; with a semicolon\n"
        "SELECT E'\\';'; /* block; /* nested; */ */ SELECT 2;;"
    )
    assert split_statements(text) == [
        "CREATE ROLE \"a;b\" PASSWORD 'x;''y'",
        "DO $fn$ BEGIN PERFORM 1; END $fn$",
        "-- a comment; with a semicolon\nSELECT E'\\';'",
        "/* block; /* nested; */ */ SELECT 2",
    ]


_SAFE_TOKEN = st.text(alphabet=string.ascii_letters + string.digits + " _(),=*", min_size=1)
_QUOTED = st.text(alphabet=string.ascii_letters + ";, ", max_size=10).map(lambda s: f"'{s}'")
_STATEMENT = st.lists(st.one_of(_SAFE_TOKEN, _QUOTED), min_size=1, max_size=6).map(" ".join)


@given(st.lists(_STATEMENT.filter(lambda s: s.strip()), min_size=1, max_size=6))
def test_split_round_trips_joined_statements(statements: list[str]):
    assert split_statements(";\n".join(statements)) == [s.strip() for s in statements]


def test_expand_forms_vault_accepts():
    plain = 'CREATE ROLE "{{name}}"; GRANT SELECT ON t TO "{{name}}";'
    as_json = json.dumps(['CREATE ROLE "{{name}}"', 'GRANT SELECT ON t TO "{{name}}"'])
    expected = ['CREATE ROLE "{{name}}"', 'GRANT SELECT ON t TO "{{name}}"']
    assert expand_statements([plain]) == expected
    assert expand_statements([as_json]) == expected
    assert expand_statements([base64.b64encode(plain.encode()).decode()]) == expected
    assert expand_statements([base64.b64encode(as_json.encode()).decode()]) == expected
    assert expand_statements(['CREATE ROLE "{{name}}"', "  ", "GRANT x TO y; "]) == [
        'CREATE ROLE "{{name}}"',
        "GRANT x TO y",
    ]


def test_expand_keeps_an_end_body_whole():
    body = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END"
    assert expand_statements([body]) == [body]
    # "END" inside a string literal does not count
    assert expand_statements(["SELECT 'END'; SELECT 2"]) == ["SELECT 'END'", "SELECT 2"]


def test_parse_statement_field_is_vaults_string_slice():
    # a string is one entry: commas (GRANT a, b) stay inside it
    assert parse_statement_field("GRANT SELECT, INSERT ON t TO x", "s") == [
        "GRANT SELECT, INSERT ON t TO x"
    ]
    assert parse_statement_field(["a", " ", "b"], "s") == ["a", "b"]
    assert parse_statement_field(None, "s") == []
    with pytest.raises(TemplateError):
        parse_statement_field({"a": 1}, "s")


def test_render_statement_replaces_only_known_placeholders():
    query = "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}' {{other}} {{ name }}"
    assert render_statement(query, {"name": "v-x", "password": "pw"}) == (
        "CREATE ROLE \"v-x\" PASSWORD 'pw' {{other}} {{ name }}"
    )


# -- passwords, expirations, masking -------------------------------------------------------------


@given(st.integers(min_value=4, max_value=64))
def test_passwords_hold_every_class(length: int):
    password = generate_password(length)
    assert len(password) == length and is_generated_password(password)
    assert set(password) <= set(PASSWORD_ALPHABET)


def test_default_password_is_vaults_default_policy():
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) == 20 and is_generated_password(p) for p in passwords)
    with pytest.raises(ValueError):
        generate_password(3)


def test_expiration_format_is_utc():
    assert format_expiration(0) == "1970-01-01 00:00:00+00"
    assert format_expiration(1614294836.9) == "2021-02-25 23:13:56+00"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql://{{username}}:{{password}}@h/db",
            "postgresql://{{username}}:{{password}}@h/db",
        ),
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:xxxxx@h:5432/db"),
        ("host=h user=u password=s3cret dbname=d", "host=h user=u password=xxxxx dbname=d"),
        ("host=h password='a b' dbname=d", "host=h password=xxxxx dbname=d"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_mask_url(url: str, masked: str):
    assert mask_url(url) == masked
