"""The Vault-style flag parser and key=value argument builder."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from strongroom.cli._flags import Flag, UsageError, parse, parse_data, parse_map

FLAGS = (
    Flag("field"),
    Flag("init", "bool"),
    Flag("key-shares", "int", default=5, aliases=("n",)),
    Flag("policy", "list"),
    Flag("metadata", "multi"),
    Flag("ttl", "duration"),
)


def test_single_and_double_dash_with_equals_or_separate_value() -> None:
    opts, args = parse(["-field=a", "--key-shares", "3", "path"], FLAGS)
    assert opts.text("field") == "a"
    assert opts.number("key-shares") == 3
    assert args == ["path"]
    opts, _ = parse(["--field", "b"], FLAGS)
    assert opts.text("field") == "b"


def test_defaults_and_aliases() -> None:
    opts, _ = parse([], FLAGS)
    assert opts.number("key-shares") == 5
    assert not opts.is_set("key-shares")
    assert opts.strings("policy") == []
    opts, _ = parse(["-n=7"], FLAGS)
    assert opts.number("key-shares") == 7
    assert opts.is_set("key-shares")


def test_bool_flags_take_no_separate_value() -> None:
    opts, args = parse(["-init", "KEY"], FLAGS)
    assert opts.flag("init") is True
    assert args == ["KEY"]
    opts, _ = parse(["-init=false"], FLAGS)
    assert opts.flag("init") is False
    with pytest.raises(UsageError, match="invalid boolean"):
        parse(["-init=maybe"], FLAGS)


def test_list_flags_repeat_and_split_on_commas_multi_only_repeat() -> None:
    opts, _ = parse(["-policy=a", "-policy=b,c", "-metadata=k=v,w", "-metadata", "x=y"], FLAGS)
    assert opts.strings("policy") == ["a", "b", "c"]
    assert opts.strings("metadata") == ["k=v,w", "x=y"]
    assert parse_map(opts.strings("metadata"), "metadata") == {"k": "v,w", "x": "y"}
    with pytest.raises(UsageError):
        parse_map(["novalue"], "metadata")


def test_flags_after_positionals_dash_and_double_dash() -> None:
    opts, args = parse(["secret/x", "a=b", "-field=f", "-", "--", "-init"], FLAGS)
    assert opts.text("field") == "f"
    assert args == ["secret/x", "a=b", "-", "-init"]
    assert not opts.flag("init")


def test_errors_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="flag provided but not defined: -nope"):
        parse(["-nope"], FLAGS)
    with pytest.raises(UsageError, match="needs an argument"):
        parse(["-field"], FLAGS)
    with pytest.raises(UsageError, match="parse error"):
        parse(["-key-shares=x"], FLAGS)
    with pytest.raises(UsageError, match="invalid duration"):
        parse(["-ttl=soon"], FLAGS)


def test_durations_accept_vault_forms() -> None:
    for value in ("1h", "30m", "90", "1h30m", "1.5h", "7d", "500ms"):
        opts, _ = parse([f"-ttl={value}"], FLAGS)
        assert opts.text("ttl") == value


def test_help_flags() -> None:
    opts, _ = parse(["-h"], FLAGS)
    assert opts.help
    opts, _ = parse(["--help"], FLAGS)
    assert opts.help


def test_parse_data_pairs_lists_files_and_stdin(tmp_path: Path) -> None:
    value_file = tmp_path / "v.txt"
    value_file.write_text("from-file")
    assert parse_data(["a=1", "b=x=y", "a=2", f"c=@{value_file}"], io.StringIO()) == {
        "a": ["1", "2"],
        "b": "x=y",
        "c": "from-file",
    }
    assert parse_data(["value=-"], io.StringIO("piped")) == {"value": "piped"}
    assert parse_data(["-"], io.StringIO('{"n": 1, "s": "t"}')) == {"n": 1, "s": "t"}
    json_file = tmp_path / "d.json"
    json_file.write_text('{"k": true}')
    assert parse_data([f"@{json_file}", "@key=v"], io.StringIO()) == {"k": True, "@key": "v"}


def test_parse_data_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="key=value"):
        parse_data(["novalue"], io.StringIO())
    with pytest.raises(UsageError, match="must be an object"):
        parse_data(["-"], io.StringIO("[1]"))
    with pytest.raises(UsageError, match="failed to parse JSON"):
        parse_data(["-"], io.StringIO("{"))
    with pytest.raises(UsageError, match="error reading"):
        parse_data([f"a=@{tmp_path / 'missing'}"], io.StringIO())
    with pytest.raises(UsageError, match="once"):
        parse_data(["a=-", "b=-"], io.StringIO("x"))
