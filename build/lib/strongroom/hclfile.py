"""Vault-style HCL (HCL1) files: parsing that keeps repeated top-level stanzas apart, syntax
errors with a true line and column, and the line where each stanza starts.

A leaf module (pyhcl only), shared by the server's configuration and the agent's, which must
not import each other.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import defaultdict
from typing import Any

from hcl.lexer import Lexer
from hcl.parser import HclParser

__all__ = ["HclSyntaxError", "load_hcl", "stanza_lines"]

Top = dict[str, list[Any]]


class HclSyntaxError(ValueError):
    """The text is not HCL; the message carries the line and column, never a value."""


_HCL_LOCK = threading.Lock()  # a ply parser keeps its state on itself while parsing
_PARSE_ERROR_AT = re.compile(r"^Line (\d+), column (\d+): ")


@functools.cache
def _hcl_parser() -> Any:
    parser = HclParser()  # builds its LALR tables: ~30 ms, so once per process
    flatten = parser.objectlist_flat

    # pyhcl's loads() merges repeated top-level blocks key by key, so two listeners would
    # silently become one; keep each occurrence instead (nested objects keep pyhcl's rules)
    def top_level(items: list[tuple[Any, Any]], replace: bool) -> Any:
        if not replace:
            return flatten(items, replace)
        top: Top = {}
        for key, value in items:
            top.setdefault(key, []).append(value)
        return top

    parser.objectlist_flat = top_level
    return parser


def load_hcl(text: str) -> Top:
    """Parse HCL text into ``{top-level key: [each occurrence's value]}``.

    Raises:
        HclSyntaxError: the text does not parse (the message has line and column).
    """
    try:
        with _HCL_LOCK:
            result = _hcl_parser().parse(text)
    except Exception as exc:  # pyhcl raises ValueError, and the odd IndexError on bad input
        detail = _hcl_error(text, exc) if isinstance(exc, ValueError) else "unexpected input"
        raise HclSyntaxError(f"HCL syntax error: {detail}") from None
    if not isinstance(result, dict):
        raise HclSyntaxError("HCL syntax error: expected key = value settings and stanzas")
    for key in result:
        if not isinstance(key, str):
            raise HclSyntaxError("HCL syntax error: arithmetic in a key name")
    return result


def _hcl_error(text: str, exc: ValueError) -> str:
    """pyhcl's parser reports the offset into the file as the "column": make it a column."""
    message = str(exc)
    match = _PARSE_ERROR_AT.match(message)
    if match is None:
        return message  # lexer errors already carry a true column
    offset = int(match.group(2))
    column = offset - text.rfind("\n", 0, offset)
    return f"Line {match.group(1)}, column {column}: {message[match.end() :]}"


def stanza_lines(text: str) -> dict[tuple[str, ...], list[int]]:
    """The line of each occurrence of each key, by its path of enclosing keys.

    ``template { ... }`` twice gives ``{("template",): [first line, second line]}``; a key
    inside ``auto_auth { method "x" { ... } }`` is under ``("auto_auth", "method", "x", key)``.
    Labels count as path parts. Text that does not lex gives what was seen before the fault.
    """
    lines: dict[tuple[str, ...], list[int]] = defaultdict(list)
    lexer = Lexer()
    lexer.input(text)
    stack: list[tuple[str, ...]] = []
    pending: list[str] = []  # the names at the start of the current statement
    expecting_key = True
    brackets = 0
    try:
        while (token := lexer.token()) is not None:
            kind = token.type
            if brackets:
                brackets += (kind == "LEFTBRACKET") - (kind == "RIGHTBRACKET")
                continue
            if kind in ("IDENTIFIER", "STRING") and expecting_key:
                name = str(token.value)
                pending.append(name)
                path = tuple(part for frame in stack for part in frame) + tuple(pending)
                lines[path].append(int(token.lineno))
            elif kind == "EQUAL":
                expecting_key = False
            elif kind == "LEFTBRACE":
                stack.append(tuple(pending))
                pending, expecting_key = [], True
            elif kind == "RIGHTBRACE":
                if stack:
                    stack.pop()
                pending, expecting_key = [], True
            elif kind == "LEFTBRACKET":
                brackets = 1
            elif kind == "COMMA" or not expecting_key:
                pending, expecting_key = [], True
    except Exception:  # noqa: S110 - a lexing fault: the parser reports it with its line
        pass
    return dict(lines)
