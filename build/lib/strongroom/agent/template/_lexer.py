"""The lexer for Go's text/template language as consul-template uses it.

Text outside actions is passed through; inside ``{{ … }}`` it yields tokens. Trim markers
(``{{- `` and `` -}}``) remove the whitespace next to an action, as Go does; a comment
``{{/* … */}}`` yields nothing. Every token carries its line, for error messages.
"""

from __future__ import annotations

import enum
from collections.abc import Generator
from dataclasses import dataclass

__all__ = ["KEYWORDS", "Kind", "TemplateSyntaxError", "Token", "tokenize"]


class TemplateSyntaxError(ValueError):
    """The template does not parse. ``line`` is 1-based within the template text."""

    def __init__(self, name: str, line: int, message: str) -> None:
        super().__init__(f"template: {name}:{line}: {message}")
        self.name = name
        self.line = line
        self.detail = message


class Kind(enum.Enum):
    TEXT = "text"
    LEFT = "{{"
    RIGHT = "}}"
    IDENT = "identifier"
    KEYWORD = "keyword"
    FIELD = "field"  # .Name; value is the name
    DOT = "."
    VARIABLE = "variable"  # $ or $name; value includes the $
    STRING = "string"  # value is the decoded string
    CHAR = "character"  # value is the decoded character
    NUMBER = "number"  # value is the literal text
    BOOL = "bool"
    NIL = "nil"
    PIPE = "|"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    DECLARE = ":="
    ASSIGN = "="
    EOF = "EOF"


KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    value: str
    line: int
    spaced: bool = False  # whitespace came right before it (separates operands)


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}


class _Lexer:
    def __init__(self, text: str, name: str, left: str, right: str) -> None:
        self.text = text
        self.name = name
        self.left = left or "{{"
        self.right = right or "}}"
        self.pos = 0
        self.line = 1

    def fail(self, message: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(self.name, self.line, message)

    def tokens(self) -> Generator[Token, None, None]:
        text, left = self.text, self.left
        trim_next_text = False
        while self.pos < len(text):
            start = text.find(left, self.pos)
            end = len(text) if start < 0 else start
            chunk = text[self.pos : end]
            trim_before = (
                start >= 0
                and text.startswith("-", start + len(left))
                and start + len(left) + 1 < len(text)
                and text[start + len(left) + 1] in " \t\r\n"
            )
            if trim_next_text:
                chunk = chunk.lstrip(" \t\r\n")
            if trim_before:
                chunk = chunk.rstrip(" \t\r\n")
            if chunk:
                yield Token(Kind.TEXT, chunk, self.line)
            self.line += text.count("\n", self.pos, end)
            if start < 0:
                self.pos = len(text)
                break
            self.pos = start + len(left) + (2 if trim_before else 0)
            trim_next_text = yield from self.action()
        yield Token(Kind.EOF, "", self.line)

    def action(self) -> Generator[Token, None, bool]:
        """Lex one action after its left delimiter; returns whether it ends with ``-}}``."""
        text, right = self.text, self.right
        # a comment: /* … */ right after the delimiter (and its trim marker)
        if text.startswith("/*", self.pos):
            close = text.find("*/", self.pos + 2)
            if close < 0:
                raise self.fail("unclosed comment")
            self.line += text.count("\n", self.pos, close)
            self.pos = close + 2
            trimmed = False
            if text.startswith(" -" + right, self.pos):
                self.pos += 2
                trimmed = True
            if not text.startswith(right, self.pos):
                raise self.fail("comment ends before closing delimiter")
            self.pos += len(right)
            return trimmed
        start_line = self.line
        yield Token(Kind.LEFT, self.left, self.line)
        spaced = False
        parens = 0
        while True:
            if self.pos >= len(text):
                self.line = start_line
                raise self.fail("unclosed action")
            if text.startswith(right, self.pos) and parens == 0:
                self.pos += len(right)
                yield Token(Kind.RIGHT, right, self.line)
                return False
            char = text[self.pos]
            if char in " \t\r\n":
                if text.startswith("-" + right, self.pos + 1) and parens == 0 and char in " \t\r\n":
                    self.line += char == "\n"
                    self.pos += 2 + len(right)
                    yield Token(Kind.RIGHT, right, self.line)
                    return True
                self.line += char == "\n"
                self.pos += 1
                spaced = True
                continue
            token = self.one(char, spaced)
            if token.kind is Kind.LPAREN:
                parens += 1
            elif token.kind is Kind.RPAREN:
                parens -= 1
                if parens < 0:
                    raise self.fail("unexpected right paren")
            yield token
            spaced = False

    def one(self, char: str, spaced: bool) -> Token:
        text = self.text
        line = self.line
        simple = {"|": Kind.PIPE, "(": Kind.LPAREN, ")": Kind.RPAREN, ",": Kind.COMMA}
        if char in simple:
            self.pos += 1
            return Token(simple[char], char, line, spaced)
        if text.startswith(":=", self.pos):
            self.pos += 2
            return Token(Kind.DECLARE, ":=", line, spaced)
        if char == "=":
            self.pos += 1
            return Token(Kind.ASSIGN, "=", line, spaced)
        if char == '"':
            return Token(Kind.STRING, self.quoted('"'), line, spaced)
        if char == "'":
            value = self.quoted("'")
            if len(value) != 1:
                raise self.fail("malformed character constant")
            return Token(Kind.CHAR, value, line, spaced)
        if char == "`":
            close = text.find("`", self.pos + 1)
            if close < 0:
                raise self.fail("unterminated raw quoted string")
            value = text[self.pos + 1 : close]
            self.line += value.count("\n")
            self.pos = close + 1
            return Token(Kind.STRING, value, line, spaced)
        if char == "$":
            end = self.word_end(self.pos + 1)
            value = text[self.pos : end]
            self.pos = end
            return Token(Kind.VARIABLE, value, line, spaced)
        if char == ".":
            if self.pos + 1 < len(text) and text[self.pos + 1].isdigit():
                return self.number(line, spaced)
            end = self.word_end(self.pos + 1)
            if end == self.pos + 1:
                self.pos += 1
                return Token(Kind.DOT, ".", line, spaced)
            value = text[self.pos + 1 : end]
            self.pos = end
            return Token(Kind.FIELD, value, line, spaced)
        if char.isdigit() or (
            char in "+-" and self.pos + 1 < len(text) and text[self.pos + 1] in "0123456789."
        ):
            return self.number(line, spaced)
        if char.isalpha() or char == "_":
            end = self.word_end(self.pos)
            word = text[self.pos : end]
            self.pos = end
            if word in ("true", "false"):
                return Token(Kind.BOOL, word, line, spaced)
            if word == "nil":
                return Token(Kind.NIL, word, line, spaced)
            if word in KEYWORDS:
                return Token(Kind.KEYWORD, word, line, spaced)
            return Token(Kind.IDENT, word, line, spaced)
        raise self.fail(f"unexpected {char!r} in command")

    def word_end(self, pos: int) -> int:
        text = self.text
        while pos < len(text) and (text[pos].isalnum() or text[pos] == "_"):
            pos += 1
        return pos

    def number(self, line: int, spaced: bool) -> Token:
        text = self.text
        end = self.pos
        if text[end] in "+-":
            end += 1
        while end < len(text) and (text[end].isalnum() or text[end] in "._"):
            if text[end] in "eEpP" and end + 1 < len(text) and text[end + 1] in "+-":
                end += 1
            end += 1
        value = text[self.pos : end]
        self.pos = end
        return Token(Kind.NUMBER, value, line, spaced)

    def quoted(self, quote: str) -> str:
        text = self.text
        pos = self.pos + 1
        out: list[str] = []
        while True:
            if pos >= len(text) or text[pos] == "\n":
                raise self.fail("unterminated quoted string")
            char = text[pos]
            if char == quote:
                self.pos = pos + 1
                return "".join(out)
            if char == "\\":
                pos += 1
                if pos >= len(text):
                    raise self.fail("unterminated quoted string")
                esc = text[pos]
                if esc in _ESCAPES:
                    out.append(_ESCAPES[esc])
                    pos += 1
                elif esc in "xuU":
                    width = {"x": 2, "u": 4, "U": 8}[esc]
                    digits = text[pos + 1 : pos + 1 + width]
                    try:
                        out.append(chr(int(digits, 16)))
                    except ValueError:
                        raise self.fail("invalid escape in quoted string") from None
                    pos += 1 + width
                elif esc in "01234567":
                    digits = text[pos : pos + 3]
                    try:
                        out.append(chr(int(digits, 8)))
                    except ValueError:
                        raise self.fail("invalid escape in quoted string") from None
                    pos += 3
                else:
                    raise self.fail("invalid escape in quoted string")
                continue
            out.append(char)
            pos += 1


def tokenize(text: str, name: str = "", left: str = "{{", right: str = "}}") -> list[Token]:
    """All tokens of ``text`` (ending with an EOF token).

    Raises:
        TemplateSyntaxError: an unclosed action, string or comment, or a stray character.
    """
    return list(_Lexer(text, name, left, right).tokens())
