"""``policy …``: ACL policies on ``sys/policies/acl/<name>``, and ``policy fmt``.

``policy fmt`` works like Vault's (hclwrite.Format): it re-indents and re-spaces the tokens
of the file, so comments, blank lines and repeated ``path`` stanzas survive. It first parses
the file with pyhcl (rejecting what is not a policy) and afterwards checks that the formatted
text parses to the same value, so formatting can never change what a policy grants.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import hcl

from ._client import CommandError, remote
from ._command import Command, Context, expect_args
from ._flags import Options, UsageError
from ._generic import list_keys
from ._output import render

__all__ = ["COMMANDS", "format_hcl"]

_TOKENS = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
    | (?P<nl>\n)
    | (?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)
    | (?P<heredoc><<-?(?P<tag>[A-Za-z_]\w*)\n.*?\n[ \t]*(?P=tag)(?=\n|$))
    | (?P<string>"(?:[^"\\\n]|\\.)*")
    | (?P<punct>[{}\[\],=])
    | (?P<word>[^\s{}\[\],="\#/]+|/)
    """,
    re.S | re.X,
)
_OPENERS, _CLOSERS = frozenset("{["), frozenset("}]")
_TOP_LEVEL = frozenset({"path", "name"})

Token = tuple[str, str]


def _lines(text: str) -> list[list[Token]]:
    lines: list[list[Token]] = [[]]
    pos = 0
    while pos < len(text):
        match = _TOKENS.match(text, pos)
        if match is None:
            raise CommandError(f"Error formatting policy: unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        if kind == "tag":  # the heredoc's inner group; the whole match is the heredoc
            kind = "heredoc"
        pos = match.end()
        if kind == "nl":
            lines.append([])
        elif kind != "ws":
            lines[-1].append((kind, match.group(0)))
    return lines


def _join(tokens: list[Token]) -> str:
    out = ""
    previous = ""
    for _kind, text in tokens:
        tight = (
            not out or text in (",", "]") or previous == "[" or (previous == "{" and text == "}")
        )
        out += text if tight else " " + text
        previous = text
    return out


def _is_attribute(tokens: list[Token]) -> bool:
    """A one-line ``key = value``; one that opens a multi-line value is not aligned."""
    if len(tokens) < 2 or tokens[0][0] not in ("word", "string") or tokens[1][1] != "=":
        return False
    return sum(t[1] in _OPENERS for t in tokens) == sum(t[1] in _CLOSERS for t in tokens)


def format_hcl(text: str) -> str:
    """Re-indent (two spaces a level), re-space and align ``=`` of consecutive attributes."""
    rendered: list[tuple[int, list[Token]]] = []
    depth = 0
    for tokens in _lines(text):
        closers = 0
        while closers < len(tokens) and tokens[closers][1] in _CLOSERS:
            closers += 1
        indent = max(depth - closers, 0) if tokens else 0
        depth = max(
            depth + sum(t[1] in _OPENERS for t in tokens) - sum(t[1] in _CLOSERS for t in tokens),
            0,
        )
        rendered.append((indent, tokens))
    out: list[str] = []
    i = 0
    while i < len(rendered):
        indent, tokens = rendered[i]
        if _is_attribute(tokens):
            group = [i]
            while (
                i + len(group) < len(rendered)
                and rendered[i + len(group)][0] == indent
                and _is_attribute(rendered[i + len(group)][1])
            ):
                group.append(i + len(group))
            width = max(len(rendered[j][1][0][1]) for j in group)
            for j in group:
                attribute = rendered[j][1]
                key = attribute[0][1].ljust(width)
                out.append("  " * indent + key + " = " + _join(attribute[2:]))
            i += len(group)
            continue
        out.append("  " * indent + _join(tokens) if tokens else "")
        i += 1
    squeezed: list[str] = []
    for text_line in out:
        if text_line or (squeezed and squeezed[-1]):
            squeezed.append(text_line)
    while squeezed and not squeezed[-1]:
        squeezed.pop()
    return "\n".join(squeezed) + "\n"


def _parse_policy(text: str, source: str) -> object:
    try:
        parsed = hcl.loads(text)
    except Exception as exc:  # pyhcl raises ValueError and its own lexer/parser errors
        raise CommandError(f"Error parsing policy {source}: {exc}") from None
    if not isinstance(parsed, dict):
        raise CommandError(f"Error parsing policy {source}: not an HCL object")
    unknown = sorted(set(parsed) - _TOP_LEVEL)
    if unknown:
        raise CommandError(f'Error parsing policy {source}: invalid key "{unknown[0]}"')
    return parsed


def _fmt(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    path = Path(args[0])
    try:
        text = path.read_text()
    except OSError as exc:
        raise CommandError(f"Error opening policy file: {exc.strerror}") from None
    before = _parse_policy(text, str(path))
    formatted = format_hcl(text)
    if _parse_policy(formatted, str(path)) != before:
        raise CommandError(f"Error formatting policy {path}: the result would parse differently")
    if formatted != text:
        tmp = path.with_name(f".{path.name}.fmt-tmp")
        try:
            tmp.write_text(formatted)
            os.chmod(tmp, path.stat().st_mode & 0o7777)
            os.replace(tmp, path)
        except OSError as exc:
            raise CommandError(f"Error writing formatted policy: {exc.strerror}") from None
    ctx.print(f"Success! Formatted policy: {path}")
    return 0


def _name(raw: str) -> str:
    # Vault lowercases policy names on the client.
    name = raw.strip().lower()
    if not name:
        raise UsageError("A policy name is required")
    return name


def _write(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 2)
    name = _name(args[0])
    if args[1] == "-":
        text = ctx.stdin.read()
    else:
        try:
            text = Path(args[1]).read_text()
        except OSError as exc:
            raise CommandError(f"Error opening policy file: {exc.strerror}") from None
    client = ctx.client()
    with remote(f"uploading policy {name}"):
        client.write(f"sys/policies/acl/{name}", {"policy": text})
    ctx.print(f"Success! Uploaded policy: {name}")
    return 0


def _read(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    name = _name(args[0])
    client = ctx.client()
    with remote(f"reading policy named {name}"):
        secret = client.read(f"sys/policies/acl/{name}")
    data = secret.get("data") if secret else None
    if not isinstance(data, dict) or "policy" not in data:
        raise CommandError(f"No policy named: {name}", 2)
    if ctx.format != "table":
        ctx.print(render(secret, ctx.format))
    else:
        ctx.print(str(data["policy"]).rstrip("\n"))
    return 0


def _list(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0)
    client = ctx.client()
    with remote("listing policies"):
        keys = list_keys(client.list("sys/policies/acl")) or []
    if ctx.format != "table":
        ctx.print(render(keys, ctx.format))
    else:
        for key in keys:
            ctx.print(str(key))
    return 0


def _delete(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    name = _name(args[0])
    client = ctx.client()
    with remote(f"deleting {name}"):
        client.delete(f"sys/policies/acl/{name}")
    ctx.print(f"Success! Deleted policy: {name}")
    return 0


COMMANDS: dict[tuple[str, ...], Command] = {
    ("policy", "write"): Command(
        "Uploads a named policy from a file",
        'Usage: strongroom policy write [options] NAME PATH\n\n  PATH "-" reads stdin.',
        _write,
        output=False,
    ),
    ("policy", "read"): Command(
        "Prints the contents of a policy", "Usage: strongroom policy read [options] NAME", _read
    ),
    ("policy", "list"): Command(
        "Lists the installed policies", "Usage: strongroom policy list [options]", _list
    ),
    ("policy", "delete"): Command(
        "Deletes a policy by name",
        "Usage: strongroom policy delete [options] NAME",
        _delete,
        output=False,
    ),
    ("policy", "fmt"): Command(
        "Formats a policy on disk",
        "Usage: strongroom policy fmt [options] PATH\n\n"
        "  Rewrites the file in canonical HCL style (comments are kept).",
        _fmt,
        http=False,
        output=False,
    ),
}
