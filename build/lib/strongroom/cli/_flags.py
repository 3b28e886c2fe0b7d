"""Vault-style command-line flags and ``key=value`` arguments.

Vault's CLI speaks Go's ``flag`` dialect: ``-name=value``, ``-name value``, bare booleans
(``-init``, ``-init=false``); we also accept ``--name``. Unlike Go we keep parsing known flags
after the first positional argument (``kv put secret/x a=b -cas=0``), stop at ``--``, and treat a
lone ``-`` as a positional (it means "read stdin"). Anything else that looks like a flag and is
not declared is a usage error, never silently a positional.

``parse_data`` turns ``key=value`` arguments into a request body the way Vault's kvbuilder
does: ``-`` reads a JSON object from stdin, ``@file`` a JSON object from a file,
``key=-`` and ``key=@file`` read one value, and a key given twice becomes a list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

import orjson

__all__ = [
    "Flag",
    "Options",
    "UsageError",
    "parse",
    "parse_data",
    "parse_map",
]

Kind = Literal["bool", "str", "int", "list", "multi", "duration"]

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
# Vault's parseutil.ParseDurationSecond: a bare number of seconds, or Go units plus "d".
_DURATION = re.compile(r"^(\d+|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d))+)$")
_HELP = frozenset({"h", "help"})


class UsageError(Exception):
    """A local mistake (bad flag, wrong number of arguments): exit code 1."""


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag a command accepts. ``list`` splits on commas and repeats; ``multi`` repeats."""

    name: str
    kind: Kind = "str"
    default: str | int | bool | None = None
    help: str = ""
    aliases: tuple[str, ...] = ()

    def usage(self) -> str:
        names = ", ".join(f"-{n}" for n in (self.name, *self.aliases))
        arg = "" if self.kind == "bool" else f"=<{self.kind}>"
        return f"  {names}{arg}\n      {self.help}" if self.help else f"  {names}{arg}"


@dataclass(slots=True)
class Options:
    """Parsed flag values; names are the canonical flag names."""

    values: dict[str, object] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)
    help: bool = False

    def is_set(self, name: str) -> bool:
        return name in self.given

    def text(self, name: str) -> str:
        value = self.values.get(name)
        return "" if value is None else str(value)

    def flag(self, name: str) -> bool:
        return bool(self.values.get(name, False))

    def number(self, name: str) -> int:
        value = self.values.get(name, 0)
        return value if isinstance(value, int) else 0

    def strings(self, name: str) -> list[str]:
        value = self.values.get(name)
        return [str(v) for v in value] if isinstance(value, list) else []


def _parse_bool(name: str, raw: str) -> bool:
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise UsageError(f'invalid boolean value "{raw}" for -{name}')


def _convert(spec: Flag, raw: str, previous: object) -> object:
    if spec.kind == "bool":
        return _parse_bool(spec.name, raw)
    if spec.kind == "int":
        try:
            return int(raw, 10)
        except ValueError:
            raise UsageError(f'invalid value "{raw}" for flag -{spec.name}: parse error') from None
    if spec.kind == "duration":
        if not _DURATION.match(raw.strip()):
            raise UsageError(f'invalid duration "{raw}" for flag -{spec.name}')
        return raw.strip()
    if spec.kind in ("list", "multi"):
        items = list(previous) if isinstance(previous, list) else []
        if spec.kind == "list":
            items.extend(part.strip() for part in raw.split(",") if part.strip())
        else:
            items.append(raw)
        return items
    return raw


def parse(args: Sequence[str], flags: Iterable[Flag]) -> tuple[Options, list[str]]:
    """Split ``args`` into flag values and positional arguments.

    Raises:
        UsageError: an undeclared flag, a missing or malformed flag value.
    """
    table: dict[str, Flag] = {}
    options = Options()
    for declared in flags:
        for name in (declared.name, *declared.aliases):
            table[name] = declared
        if declared.default is not None:
            options.values[declared.name] = declared.default
        elif declared.kind in ("list", "multi"):
            options.values[declared.name] = []
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        body = arg[2:] if arg.startswith("--") else arg[1:]
        name, eq, raw = body.partition("=")
        if name in _HELP and name not in table:
            options.help = True
            continue
        spec = table.get(name)
        if spec is None or not name:
            raise UsageError(f"flag provided but not defined: -{name}")
        if not eq:
            if spec.kind == "bool":
                raw = "true"
            elif i < len(args):
                raw = args[i]
                i += 1
            else:
                raise UsageError(f"flag needs an argument: -{name}")
        options.values[spec.name] = _convert(spec, raw, options.values.get(spec.name))
        options.given.add(spec.name)
    return options, positional


def _read_source(value: str, stdin: TextIO) -> str:
    if value == "-":
        return stdin.read()
    try:
        return Path(value[1:]).read_text()
    except OSError as exc:
        raise UsageError(f"error reading {value[1:]}: {exc.strerror}") from None


def _json_object(text: str, source: str) -> dict[str, object]:
    try:
        loaded = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"failed to parse JSON from {source}: {exc}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"JSON input from {source} must be an object")
    return loaded


def parse_data(args: Sequence[str], stdin: TextIO) -> dict[str, object]:
    """Build a request body from ``key=value`` arguments (Vault's kvbuilder rules).

    Raises:
        UsageError: an argument without ``=``, an unreadable file, bad JSON.
    """
    result: dict[str, object] = {}
    stdin_used = False

    def add(key: str, value: object) -> None:
        if key in result:
            existing = result[key]
            result[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            result[key] = value

    for arg in args:
        if arg == "-" or (arg.startswith("@") and "=" not in arg):
            if arg == "-":
                if stdin_used:
                    raise UsageError("stdin can only be read once")
                stdin_used = True
            source = "stdin" if arg == "-" else arg[1:]
            for key, value in _json_object(_read_source(arg, stdin), source).items():
                add(key, value)
            continue
        key, eq, value = arg.partition("=")
        if not eq or not key:
            raise UsageError(f'invalid key/value pair "{arg}": format must be key=value')
        if value == "-" or value.startswith("@"):
            if value == "-":
                if stdin_used:
                    raise UsageError("stdin can only be read once")
                stdin_used = True
            add(key, _read_source(value, stdin))
        else:
            add(key, value)
    return result


def parse_map(items: Sequence[str], flag_name: str) -> dict[str, str]:
    """``-metadata=k=v -metadata=k2=v2`` style repeated flags as a dict.

    Raises:
        UsageError: an item without ``=``.
    """
    result: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f'invalid value "{item}" for -{flag_name}: format must be key=value')
        result[key] = value
    return result
