"""The template language: lexer, parser and evaluator, checked against examples from Vault
Agent's and consul-template's documentation and Go's text/template behaviour."""

from __future__ import annotations

import base64
import datetime
import json
import os
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from strongroom.agent.template import (
    Dependency,
    SecretValue,
    TemplateExecError,
    TemplateSyntaxError,
    compile_template,
    go_sprintf,
    go_time_format,
)


class Secrets:
    """A resolver over a fixed table of paths (the real one is tested end to end)."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table
        self.asked: list[Dependency] = []

    def resolve(self, dependency: Dependency) -> Any:
        self.asked.append(dependency)
        body = self.table.get(dependency.path)
        if body is None:
            return None
        if dependency.kind == "secrets":
            return body
        return SecretValue(body)


KV2 = {
    "secret/data/my-secret": {
        "data": {
            "data": {"foo": "bar", "password": "p@ss", "port": 5432, "tags": ["a", "b"]},
            "metadata": {"version": 3},
        },
        "lease_duration": 0,
    },
    "secret/my-v1": {"data": {"user": "admin", "nested": {"k": "v"}}, "lease_duration": 2764800},
    "database/creds/readonly": {
        "lease_id": "database/creds/readonly/abc",
        "lease_duration": 3600,
        "renewable": True,
        "data": {"username": "v-user", "password": "pw"},
    },
}


def render(text: str, table: dict[str, Any] | None = None, **kwargs: Any) -> str:
    result = compile_template(text, "t").render(Secrets(table or KV2), **kwargs)
    assert result.complete
    return result.text


# -- examples from Vault Agent's and consul-template's docs ----------------------------------


def test_vault_agent_doc_kv2_example() -> None:
    text = '{{ with secret "secret/my-secret" }}\n{{ .Data.data.foo }}\n{{ end }}'
    # KV v2 paths in templates carry data/ themselves
    assert render(text.replace("my-secret", "data/my-secret")) == "\nbar\n"


def test_vault_agent_doc_trimmed_example() -> None:
    text = '{{- with secret "secret/data/my-secret" -}}\n{{ .Data.data.foo }}\n{{- end -}}'
    assert render(text) == "bar"


def test_consul_template_secret_v1_and_range() -> None:
    text = (
        '{{ with secret "secret/my-v1" }}{{ range $k, $v := .Data }}'
        "{{ $k }}={{ $v }};{{ end }}{{ end }}"
    )
    assert render(text) == "nested=map[k:v];user=admin;"


def test_database_creds_fields() -> None:
    text = (
        '{{ with secret "database/creds/readonly" }}'
        "postgresql://{{ .Data.username }}:{{ .Data.password }}@db/app"
        " lease={{ .LeaseID }} ttl={{ .LeaseDuration }} renewable={{ .Renewable }}{{ end }}"
    )
    assert render(text) == (
        "postgresql://v-user:pw@db/app lease=database/creds/readonly/abc ttl=3600 renewable=true"
    )


def test_secret_with_write_arguments_is_a_distinct_dependency() -> None:
    resolver = Secrets({"pki/issue/web": {"data": {"certificate": "CERT"}}})
    template = compile_template(
        '{{ with secret "pki/issue/web" "common_name=a.example.com" "ttl=1h" }}'
        "{{ .Data.certificate }}{{ end }}"
    )
    result = template.render(resolver)
    assert result.text == "CERT"
    assert resolver.asked == [
        Dependency("secret", "pki/issue/web", (("common_name", "a.example.com"), ("ttl", "1h")))
    ]


def test_secrets_lists_keys() -> None:
    table = {"secret/metadata/apps": ["one", "two/"], **KV2}
    text = '{{ range secrets "secret/metadata/apps" }}<{{ . }}>{{ end }}'
    assert render(text, table) == "<one><two/>"


def test_missing_secret_marks_render_incomplete() -> None:
    template = compile_template('A{{ with secret "nope" }}{{ .Data.x }}{{ end }}B')
    result = template.render(Secrets({}))
    assert result.text == "AB"
    assert not result.complete
    assert result.dependencies == [Dependency("secret", "nope")]


def test_consul_template_functions() -> None:
    assert render('{{ "a,b,c" | split "," | join ";" }}') == "a;b;c"
    assert render('{{ "  x \\n" | trimSpace }}') == "x"
    assert render('{{ "foo-bar" | replaceAll "-" "_" }}') == "foo_bar"
    assert render('{{ "hello" | base64Encode }}') == base64.b64encode(b"hello").decode()
    assert render('{{ "aGVsbG8=" | base64Decode }}') == "hello"
    assert render('{{ "Hi" | toUpper }}{{ "Hi" | toLower }}') == "HIhi"
    assert render("{{ 3 | add 4 }} {{ 10 | subtract 3 }} {{ 4 | multiply 5 }}") == "7 7 20"
    assert render("{{ 10 | divide 2 }} {{ 7 | modulo 3 }}") == "5 1"
    assert render('{{ "x" | contains "y" }} {{ "abc" | regexMatch "b." }}') == "false true"
    assert render('{{ "a1b22" | regexReplaceAll "[0-9]+" "#" }}') == "a#b#"
    assert render('{{ parseInt "42" | add 1 }} {{ parseBool "true" }}') == "43 true"
    assert render("{{ range loop 3 }}{{ . }}{{ end }}") == "012"
    assert render('{{ "line1\\nline2" | indent 2 }}') == "  line1\n  line2"
    assert render('{{ "abc" | sha256Hex }}').startswith("ba7816bf")
    assert render('{{ (parseJSON "{\\"a\\": [1, 2]}").a }}') == "[1 2]"


def test_to_json_yaml() -> None:
    text = '{{ with secret "secret/data/my-secret" }}{{ .Data.data | toJSON }}{{ end }}'
    assert json.loads(render(text)) == KV2["secret/data/my-secret"]["data"]["data"]
    pretty = render(text.replace("toJSON", "toJSONPretty"))
    assert pretty.startswith("{\n  ")
    as_yaml = render(text.replace("toJSON", "toYAML"))
    assert yaml.safe_load(as_yaml) == KV2["secret/data/my-secret"]["data"]["data"]


def test_env_and_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_TEST_VAR", "from-env")
    path = tmp_path / "f.txt"
    path.write_text("from-file")
    assert render('{{ env "AGENT_TEST_VAR" }}') == "from-env"
    assert render(f'{{{{ file "{path}" }}}}') == "from-file"
    assert render('{{ env "AGENT_TEST_UNSET_VAR" }}') == ""
    assert os.environ["AGENT_TEST_VAR"] == "from-env"


def test_timestamp() -> None:
    year = str(datetime.datetime.now(datetime.UTC).year)
    assert render("{{ timestamp }}").startswith(year)
    assert render('{{ timestamp "2006" }}') == year
    moment = datetime.datetime(2024, 3, 7, 9, 5, 2, 123456, tzinfo=datetime.UTC)
    assert go_time_format(moment, "2006-01-02T15:04:05Z07:00") == "2024-03-07T09:05:02Z"
    assert go_time_format(moment, "Jan _2 3:04PM .000") == "Mar  7 9:05AM .123"
    assert go_time_format(moment, "Monday, 02-Jan-06") == "Thursday, 07-Mar-24"


# -- Go's text/template semantics ------------------------------------------------------------------


def test_if_else_chain_and_comparisons() -> None:
    text = (
        '{{ with secret "secret/data/my-secret" }}{{ $p := .Data.data.port }}'
        "{{ if lt $p 1000 }}low{{ else if eq $p 5432 }}pg{{ else }}other{{ end }}{{ end }}"
    )
    assert render(text) == "pg"
    assert render('{{ if and 1 0 }}y{{ else }}n{{ end }}{{ or 0 "" "z" }}') == "nz"
    assert render('{{ if not "" }}empty{{ end }}{{ eq 1 2 3 1 }}') == "emptytrue"
    assert render('{{ ne "a" "b" }} {{ ge 2 2 }} {{ gt 1.5 2.5 }}') == "true true false"


def test_range_forms() -> None:
    text = (
        '{{ with secret "secret/data/my-secret" }}'
        "{{ range $i, $t := .Data.data.tags }}{{ $i }}{{ $t }}{{ end }}|"
        "{{ range .Data.data.tags }}{{ . }}{{ else }}none{{ end }}|"
        "{{ range .Data.data.empty }}x{{ else }}none{{ end }}{{ end }}"
    )
    assert render(text) == "0a1b|ab|none"
    assert (
        render("{{ range $i := loop 5 }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ $i }}{{ end }}")
        == "012"
    )
    assert (
        render("{{ range loop 4 }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ . }}{{ end }}") == "023"
    )


def test_variables_assign_and_scope() -> None:
    text = '{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ $y := "c" }}{{ $y }}{{ end }}{{ $x }}'
    assert render(text) == "cb"
    with pytest.raises(TemplateSyntaxError, match="undefined variable"):
        compile_template("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}")


def test_printf_and_print() -> None:
    assert render('{{ printf "%s=%d %05.2f %q %v %t %x %%" "a" 7 3.14159 "q" 1.5 true 255 }}') == (
        'a=7 03.14 "q" 1.5 true ff %'
    )
    assert go_sprintf("%-4s|%4s|", "ab", "cd") == "ab  |  cd|"
    assert go_sprintf("%d") == "%!d(MISSING)"
    assert render('{{ print "a" 1 2 "b" }}') == "a1 2b"
    assert render('{{ "x" | printf "%s-%s" "y" }}') == "y-x"


def test_index_len_slice_and_printing() -> None:
    text = (
        '{{ with secret "secret/data/my-secret" }}{{ index .Data.data "foo" }} '
        '{{ index .Data.data.tags 1 }} {{ len .Data.data.tags }} {{ slice "abcdef" 1 3 }} '
        "{{ .Data.data.tags }} {{ .Data.metadata }}{{ end }}"
    )
    assert render(text) == "bar b 2 bc [a b] map[version:3]"


def test_missing_keys() -> None:
    text = '{{ with secret "secret/data/my-secret" }}[{{ .Data.data.nope }}]{{ end }}'
    assert render(text) == "[<no value>]"
    with pytest.raises(TemplateExecError, match='map has no entry for key "nope"') as info:
        render(text, error_on_missing_key=True)
    assert "p@ss" not in str(info.value)
    with pytest.raises(TemplateExecError, match="nil pointer evaluating"):
        render('{{ with secret "secret/data/my-secret" }}{{ .Data.data.nope.deeper }}{{ end }}')


def test_trim_markers_comments_and_delimiters() -> None:
    assert render("a  {{- 1 -}}  b") == "a1b"
    assert render("a {{/* a comment */}} b") == "a  b"
    assert render("a {{- /* trimmed */ -}} b") == "ab"
    template = compile_template("[[ 1 | add 2 ]] {{ not a tag }}", "t", "[[", "]]")
    assert template.render(Secrets({})).text == "3 {{ not a tag }}"


def test_define_and_template() -> None:
    text = '{{ define "greet" }}hi {{ . }}{{ end }}{{ template "greet" "bob" }}!'
    assert render(text) == "hi bob!"
    assert render('{{ block "b" 2 }}[{{ . }}]{{ end }}') == "[2]"


def test_string_literals() -> None:
    assert render(r'{{ "tab\there\u0041\x42" }}') == "tab\thereAB"
    assert render("{{ `raw\\n` }}") == "raw\\n"
    assert render("{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ -2 }}") == "97 31 1000 -2"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{{ with secret "x" }}\nno end', 2, "unexpected EOF"),
        ("ok\n{{ if }}{{ end }}", 2, "missing value for if"),
        ("{{ end }}", 1, "unexpected {{end}}"),
        ("a\nb\n{{ nosuchfunc 1 }}", 3, 'function "nosuchfunc" not defined'),
        ('{{ "unterminated }}', 1, "unterminated quoted string"),
        ("{{ .Foo", 1, "unclosed action"),
        ("{{ $undefined }}", 1, "undefined variable"),
        ("{{ break }}", 1, "outside {{range}}"),
        ("{{ 1 | }}", 1, "missing command after |"),
        ("{{ (1 }}", 1, "unexpected"),
        ("{{/* open", 1, "unclosed comment"),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_template(text, "name")
    assert info.value.line == line
    assert message in str(info.value)


def test_function_errors_are_exec_errors() -> None:
    with pytest.raises(TemplateExecError, match="error calling base64Decode"):
        render('{{ "!!!" | base64Decode }}')
    with pytest.raises(TemplateExecError, match="not available"):
        render('{{ key "consul/key" }}')


# -- properties ------------------------------------------------------------------------

_plain_text = st.text(st.characters(blacklist_characters="{}", codec="utf-8"))


@given(_plain_text)
def test_text_without_actions_renders_unchanged(text: str) -> None:
    assert render(text) == text


@given(st.text(alphabet=st.characters(codec="utf-8", blacklist_categories=["Cs"])))
def test_quoted_string_literal_round_trips(value: str) -> None:
    literal = json.dumps(value, ensure_ascii=False)  # a valid Go interpreted string literal
    if "\\/" in literal:
        return
    assert render("{{ " + literal + " }}") == value


@given(st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=5), max_size=6))
def test_split_join_round_trip(parts: list[str]) -> None:
    joined = ",".join(parts)
    text = "{{ " + json.dumps(joined) + ' | split "," | join "," }}'
    assert render(text) == joined


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=-9, max_value=9))
def test_arithmetic_matches_python(a: int, b: int) -> None:
    assert render(f"{{{{ {a} | add {b} }}}}") == str(a + b)
    assert render(f"{{{{ lt {a} {b} }}}}") == ("true" if a < b else "false")


# -- generated templates: text made from a random tree, rendered, against the tree's value ----


@st.composite
def _expr(draw: st.DrawFn) -> tuple[str, str]:
    """(template source of an expression, what it prints)."""
    kind = draw(st.sampled_from(["str", "int", "add", "printf", "upper", "join", "paren"]))
    if kind == "str":
        value = draw(st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=8))
        return json.dumps(value), value
    if kind == "int":
        value = draw(st.integers(-1000, 1000))
        return str(value), str(value)
    if kind == "add":
        a, b = draw(st.integers(-99, 99)), draw(st.integers(-99, 99))
        return f"{a} | add {b}", str(a + b)
    if kind == "printf":
        a = draw(st.integers(0, 999))
        return f'printf "<%03d>" {a}', f"<{a:03d}>"
    if kind == "upper":
        value = draw(st.text(st.sampled_from("abcxyz"), max_size=6))
        return f'"{value}" | toUpper', value.upper()
    if kind == "join":
        parts = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4))
        return f'"{",".join(parts)}" | split "," | join "-"', "-".join(parts)
    inner, shown = draw(_expr())
    return f"({inner})", shown


@st.composite
def _nodes(draw: st.DrawFn, depth: int = 0) -> tuple[str, str]:
    """(template source of a sequence of nodes, what it renders)."""
    source, out = [], []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(
            st.sampled_from(
                ["text", "print", "if", "range", "with", "var"] if depth < 2 else ["text", "print"]
            )
        )
        if kind == "text":
            text = draw(
                st.text(st.characters(blacklist_characters="{}", codec="utf-8"), max_size=10)
            )
            source.append(text)
            out.append(text)
        elif kind == "print":
            expr, shown = draw(_expr())
            source.append("{{ " + expr + " }}")
            out.append(shown)
        elif kind == "if":
            cond = draw(st.booleans())
            body, body_out = draw(_nodes(depth + 1))
            other, other_out = draw(_nodes(depth + 1))
            source.append(
                f"{{{{ if {str(cond).lower()} }}}}{body}{{{{ else }}}}{other}{{{{ end }}}}"
            )
            out.append(body_out if cond else other_out)
        elif kind == "range":
            count = draw(st.integers(0, 3))
            body, body_out = draw(_nodes(depth + 1))
            source.append(f"{{{{ range $i := loop {count} }}}}[{{{{ $i }}}}]{body}{{{{ end }}}}")
            out.append("".join(f"[{i}]{body_out}" for i in range(count)))
        elif kind == "with":
            expr, shown = draw(_expr())
            body, body_out = draw(_nodes(depth + 1))
            source.append(f"{{{{ with {expr} }}}}<{{{{ . }}}}>{body}{{{{ end }}}}")
            out.append(f"<{shown}>{body_out}" if shown not in ("", "0") else "")
        else:
            expr, shown = draw(_expr())
            source.append(f"{{{{ $v := {expr} }}}}{{{{ $v }}}}")
            out.append(shown)
    return "".join(source), "".join(out)


@given(_nodes())
def test_generated_templates_render_as_their_tree_says(case: tuple[str, str]) -> None:
    source, expected = case
    assert render(source) == expected
