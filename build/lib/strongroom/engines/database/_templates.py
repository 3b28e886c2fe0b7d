"""Username templates and SQL statement templating. Pure: no I/O, no clock of its own.

Username templates are the subset of Go's text/template that Vault's username templating
uses: text with ``{{ pipeline }}`` actions (``{{-``/``-}}`` trim markers included), where a
pipeline is ``command | command …``, a command a function call or a single operand, and an
operand a field (``.DisplayName``, ``.RoleName``), a string, an integer or ``( pipeline )``.
The piped value becomes a function's last argument, as in Go. Functions: Vault's ``random``,
``truncate``, ``truncate_sha256``, ``uppercase``, ``lowercase``, ``replace``, ``sha256``,
``base64``, ``unix_time``, ``unix_time_millis``, ``uuid``, and Go's ``printf`` (``%s %d %v %%``).

Statements follow Vault's PostgreSQL plugin: each configured statement may be a base64 text, a
JSON array of statements, or text holding several statements separated by ``;``. We split on
``;`` only outside quotes, dollar-quoted bodies and comments (Vault splits on every ``;``), and
keep a statement whole when its text holds the keyword ``END`` outside quotes, as Vault does.
``{{name}}``-style placeholders are then replaced verbatim: the values come from our own
generators (usernames checked against :data:`USERNAME_SAFE`, passwords from a safe alphabet).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_USERNAME_TEMPLATE",
    "USERNAME_SAFE",
    "TemplateError",
    "UsernameTemplate",
    "clean_field",
    "compile_username_template",
    "expand_statements",
    "parse_statement_field",
    "render_statement",
    "split_statements",
]

DEFAULT_USERNAME_TEMPLATE = (
    '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) '
    "(random 20) (unix_time) | truncate 63 }}"
)
# What a generated username may contain: it lands inside "quoted" identifiers and '…' literals
# of user-written statements, so no quote, backslash, semicolon, space or control character.
USERNAME_SAFE = re.compile(r"[A-Za-z0-9_.@-]{1,63}")
_FIELD_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")
_MAX_RANDOM = 1024


class TemplateError(ValueError):
    """A template that does not parse or does not evaluate. The message names no values."""


def clean_field(value: str) -> str:
    """Drop every character a username may not hold (display names come from token metadata)."""
    return _FIELD_UNSAFE.sub("", value)


# -- username templates ----------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<pipe>\|) | (?P<open>\() | (?P<close>\)) |
        (?P<field>\.[A-Za-z_][A-Za-z0-9_]*) |
        (?P<string>"(?:[^"\\\n]|\\.)*") | (?P<raw>`[^`]*`) |
        (?P<number>-?\d+) |
        (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r"}


@dataclass(frozen=True, slots=True)
class _Operand:
    kind: str  # "field", "const", "func", "pipe"
    value: Any


_Command = tuple[_Operand, ...]
_Pipeline = tuple[_Command, ...]


@dataclass(frozen=True, slots=True)
class _Context:
    fields: Mapping[str, str]
    now: float
    random: Callable[[int], str]


def _unquote(text: str) -> str:
    out: list[str] = []
    i = 1
    while i < len(text) - 1:
        char = text[i]
        if char == "\\":
            nxt = text[i + 1]
            if nxt not in _ESCAPES:
                raise TemplateError("unsupported escape in a string literal")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(source):
            if source[pos:].strip() == "":
                break
            match = _TOKEN.match(source, pos)
            if match is None or match.lastgroup is None:
                raise TemplateError(f"unexpected character at offset {pos} of an action")
            self.tokens.append((match.lastgroup, match.group(match.lastgroup)))
            pos = match.end()
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else "end"

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def pipeline(self) -> _Pipeline:
        commands = [self.command()]
        while self.peek() == "pipe":
            self.take()
            commands.append(self.command())
        return tuple(commands)

    def command(self) -> _Command:
        operands: list[_Operand] = []
        while self.peek() not in ("pipe", "close", "end"):
            operands.append(self.operand())
        if not operands:
            raise TemplateError("empty command")
        return tuple(operands)

    def operand(self) -> _Operand:
        kind, text = self.take()
        if kind == "field":
            return _Operand("field", text[1:])
        if kind == "string":
            return _Operand("const", _unquote(text))
        if kind == "raw":
            return _Operand("const", text[1:-1])
        if kind == "number":
            return _Operand("const", int(text))
        if kind == "ident":
            if text not in _FUNCS:
                raise TemplateError(f"function {text!r} not defined")
            return _Operand("func", text)
        if kind == "open":
            inner = self.pipeline()
            if self.peek() != "close":
                raise TemplateError("unclosed parenthesis")
            self.take()
            return _Operand("pipe", inner)
        raise TemplateError(f"unexpected {text!r}")


def _eval_pipeline(pipeline: _Pipeline, ctx: _Context) -> Any:
    value: Any = None
    for index, command in enumerate(pipeline):
        value = _eval_command(command, ctx, piped=index > 0, value=value)
    return value


def _eval_command(command: _Command, ctx: _Context, *, piped: bool, value: Any) -> Any:
    head, rest = command[0], command[1:]
    if head.kind == "func":
        args = [_eval_operand(op, ctx) for op in rest]
        if piped:
            args.append(value)
        return _FUNCS[head.value](ctx, *args)
    if rest or piped:
        raise TemplateError("can't give an argument to a non-function")
    return _eval_operand(head, ctx)


def _eval_operand(op: _Operand, ctx: _Context) -> Any:
    if op.kind == "field":
        if op.value not in ctx.fields:
            raise TemplateError(f"no field {op.value!r} (fields: DisplayName, RoleName)")
        return ctx.fields[op.value]
    if op.kind == "pipe":
        return _eval_pipeline(op.value, ctx)
    if op.kind == "func":
        return _FUNCS[op.value](ctx)
    return op.value


def _want(value: Any, kind: type, func: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TemplateError(f"{func}: expected {'an integer' if kind is int else 'a string'}")
    return value


def _arity(func: str, args: tuple[Any, ...], count: int) -> None:
    if len(args) != count:
        raise TemplateError(f"{func}: wants {count} argument(s), got {len(args)}")


def _truncate(ctx: _Context, *args: Any) -> str:
    _arity("truncate", args, 2)
    limit, text = _want(args[0], int, "truncate"), _want(args[1], str, "truncate")
    if limit <= 0:
        raise TemplateError("truncate: max length must be > 0")
    return str(text[:limit])


def _truncate_sha256(ctx: _Context, *args: Any) -> str:
    _arity("truncate_sha256", args, 2)
    limit, text = _want(args[0], int, "truncate_sha256"), _want(args[1], str, "truncate_sha256")
    if limit <= 8:
        raise TemplateError("truncate_sha256: max length must be > 8")
    if len(text) <= limit:
        return str(text)
    cut = limit - 8
    return str(text[:cut]) + hashlib.sha256(text[cut:].encode()).hexdigest()[:8]


def _random(ctx: _Context, *args: Any) -> str:
    _arity("random", args, 1)
    length = _want(args[0], int, "random")
    if not 0 < length <= _MAX_RANDOM:
        raise TemplateError(f"random: length must be between 1 and {_MAX_RANDOM}")
    return ctx.random(length)


def _unary(name: str, fn: Callable[[str], str]) -> Callable[..., str]:
    def call(ctx: _Context, *args: Any) -> str:
        _arity(name, args, 1)
        return fn(_want(args[0], str, name))

    return call


def _replace(ctx: _Context, *args: Any) -> str:
    _arity("replace", args, 3)
    find, repl, text = (_want(arg, str, "replace") for arg in args)
    return str(text).replace(find, repl)


def _nullary(name: str, fn: Callable[[_Context], Any]) -> Callable[..., Any]:
    def call(ctx: _Context, *args: Any) -> Any:
        _arity(name, args, 0)
        return fn(ctx)

    return call


def _printf(ctx: _Context, *args: Any) -> str:
    if not args:
        raise TemplateError("printf: wants a format")
    fmt, values = _want(args[0], str, "printf"), list(args[1:])
    out: list[str] = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char != "%":
            out.append(char)
            i += 1
            continue
        verb = fmt[i + 1] if i + 1 < len(fmt) else ""
        i += 2
        if verb == "%":
            out.append("%")
        elif verb in ("s", "v", "d"):
            if not values:
                raise TemplateError("printf: too few arguments")
            value = values.pop(0)
            if verb == "d":
                _want(value, int, "printf %d")
            out.append(str(value))
        else:
            raise TemplateError("printf: only %s, %d, %v and %% are supported")
    if values:
        raise TemplateError("printf: too many arguments")
    return "".join(out)


_FUNCS: dict[str, Callable[..., Any]] = {
    "truncate": _truncate,
    "truncate_sha256": _truncate_sha256,
    "random": _random,
    "uppercase": _unary("uppercase", str.upper),
    "lowercase": _unary("lowercase", str.lower),
    "replace": _replace,
    "sha256": _unary("sha256", lambda s: hashlib.sha256(s.encode()).hexdigest()),
    "base64": _unary("base64", lambda s: base64.b64encode(s.encode()).decode()),
    "unix_time": _nullary("unix_time", lambda ctx: int(ctx.now)),
    "unix_time_millis": _nullary("unix_time_millis", lambda ctx: int(ctx.now * 1000)),
    "uuid": _nullary("uuid", lambda ctx: str(uuid.uuid4())),
    "printf": _printf,
}

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


@dataclass(frozen=True, slots=True)
class UsernameTemplate:
    """A compiled template: literal text and pipelines, alternating."""

    parts: tuple[str | _Pipeline, ...]

    def render(self, fields: Mapping[str, str], *, now: float, random: Callable[[int], str]) -> str:
        """Evaluate with ``fields`` (DisplayName, RoleName), the time and a random source.

        Raises:
            TemplateError: a function failed, or the result is not a safe username (1-63
                characters of ``A-Z a-z 0-9 _ . @ -``).
        """
        ctx = _Context(fields, now, random)
        out = [
            part if isinstance(part, str) else str(_eval_pipeline(part, ctx)) for part in self.parts
        ]
        username = "".join(out)
        if USERNAME_SAFE.fullmatch(username) is None:
            raise TemplateError(
                "username_template produced an unusable username: it must be 1-63 characters "
                "of letters, digits, '_', '.', '@' and '-'"
            )
        return username


@functools.lru_cache(maxsize=64)
def compile_username_template(source: str) -> UsernameTemplate:
    """Parse a template once (cached by text).

    Raises:
        TemplateError: the template does not parse.
    """
    parts: list[str | _Pipeline] = []
    pos = 0
    pending_trim = False
    for match in _ACTION.finditer(source):
        text = source[pos : match.start()]
        if pending_trim:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        if text:
            parts.append(text)
        parser = _Parser(match.group(2))
        pipeline = parser.pipeline()
        if parser.peek() != "end":
            raise TemplateError("unexpected ')' in an action")
        parts.append(pipeline)
        pending_trim = bool(match.group(3))
        pos = match.end()
    tail = source[pos:]
    if "{{" in tail or "}}" in tail:
        raise TemplateError("unbalanced '{{' / '}}'")
    if pending_trim:
        tail = tail.lstrip()
    if tail:
        parts.append(tail)
    return UsernameTemplate(tuple(parts))


# -- statements ------------------------------------------------------------------------------


def parse_statement_field(value: Any, name: str) -> list[str]:
    """A role's statement field as Vault's TypeStringSlice reads it: a string is ONE entry
    (commas and semicolons stay inside it), a list is taken item by item.

    Raises:
        TemplateError: neither a string nor a list of strings.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item.strip()]
    raise TemplateError(f"{name}: expected a string or a list of strings")


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_END_WORD = re.compile(r"\bEND\b", re.IGNORECASE)


def _scan(text: str) -> tuple[list[str], str]:
    """Split ``text`` on top-level ``;`` and return (pieces, text with quoted parts blanked)."""
    pieces: list[str] = []
    bare: list[str] = []
    start = i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "'" or (
            char in "eE" and text[i + 1 : i + 2] == "'" and not _word_before(text, i)
        ):
            escapes = char != "'"
            i += 2 if escapes else 1
            while i < n:
                if escapes and text[i] == "\\":
                    i += 2
                    continue
                if text[i] == "'":
                    if text[i + 1 : i + 2] == "'":
                        i += 2
                        continue
                    break
                i += 1
            i += 1
            bare.append(" ")
            continue
        if char == '"':
            close = i + 1
            while True:
                close = text.find('"', close)
                if close == -1 or text[close + 1 : close + 2] != '"':
                    break
                close += 2
            i = n if close == -1 else close + 1
            bare.append(" ")
            continue
        if char == "$" and not _word_before(text, i):
            tag = _DOLLAR_TAG.match(text, i)
            if tag is not None:
                close = text.find(tag.group(0), tag.end())
                i = n if close == -1 else close + len(tag.group(0))
                bare.append(" ")
                continue
        if text.startswith("--", i):
            newline = text.find("\n", i)
            i = n if newline == -1 else newline
            continue
        if text.startswith("/*", i):
            i = _skip_block_comment(text, i)
            bare.append(" ")
            continue
        if char == ";":
            pieces.append(text[start:i])
            start = i + 1
        bare.append(char)
        i += 1
    pieces.append(text[start:])
    return pieces, "".join(bare)


def _word_before(text: str, i: int) -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_$")


def _skip_block_comment(text: str, i: int) -> int:
    depth, i = 1, i + 2
    while i < len(text) and depth:
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def split_statements(text: str) -> list[str]:
    """Top-level ``;``-separated statements, stripped, empty ones dropped."""
    pieces, _bare = _scan(text)
    return [piece.strip() for piece in pieces if piece.strip()]


def _decode_arbitrary(text: str) -> str | list[str]:
    """Vault's ParseArbitraryStringSlice: base64 first, then a JSON array, else the text."""
    stripped = text.strip()
    try:
        decoded = base64.b64decode(stripped, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        decoded = None
    if decoded is not None and stripped:
        stripped = decoded.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
            return parsed
    return stripped


def _statements_of(text: str) -> list[str]:
    _pieces, bare = _scan(text)
    if _END_WORD.search(bare):
        # a body with its own semicolons (BEGIN ATOMIC … END): executed as written
        return [text.strip()] if text.strip() else []
    return split_statements(text)


def expand_statements(stored: Sequence[str]) -> list[str]:
    """The single SQL statements to execute, in order, for a role's stored statement list."""
    out: list[str] = []
    for entry in stored:
        decoded = _decode_arbitrary(entry)
        for text in decoded if isinstance(decoded, list) else [decoded]:
            out.extend(_statements_of(text))
    return out


def render_statement(query: str, values: Mapping[str, str]) -> str:
    """Replace each ``{{key}}`` verbatim (Vault's QueryHelper); unknown placeholders stay."""
    for key, value in values.items():
        query = query.replace("{{" + key + "}}", value)
    return query
