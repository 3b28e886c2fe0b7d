"""The parser: tokens → a tree of nodes, following Go's text/template grammar.

list     := (text | action | if | range | with | template | define | block | break
             | continue)*
pipeline := [ variables (":=" | "=") ] command ("|" command)*
command  := operand operand*
operand  := term field*            (fields chain only without spaces between them)
term     := literal | nil | "." | .Field | $var | identifier | "(" pipeline ")"
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._lexer import Kind, TemplateSyntaxError, Token, tokenize

__all__ = [
    "Action",
    "Branch",
    "Command",
    "Define",
    "Loop",
    "Node",
    "Operand",
    "Pipeline",
    "Text",
    "parse",
]


@dataclass(slots=True)
class Operand:
    """A term and the fields chained onto it. ``kind`` names the term."""

    kind: str  # "dot" | "field" | "variable" | "ident" | "string" | "number" | "bool" | "nil"
    #            | "pipeline" | "char"
    value: object
    fields: tuple[str, ...] = ()
    line: int = 0


@dataclass(slots=True)
class Command:
    args: list[Operand]
    line: int


@dataclass(slots=True)
class Pipeline:
    commands: list[Command]
    declare: tuple[str, ...] = ()  # variable names on the left of := or =
    assign: bool = False  # "=" rather than ":="
    line: int = 0


@dataclass(slots=True)
class Text:
    text: str
    line: int = 0


@dataclass(slots=True)
class Action:
    pipe: Pipeline
    line: int = 0


@dataclass(slots=True)
class Branch:
    """``if`` and ``with``: a body, and an else (which may itself be a Branch: else if)."""

    keyword: str
    pipe: Pipeline
    body: list[Node]
    orelse: list[Node] = field(default_factory=list)
    line: int = 0


@dataclass(slots=True)
class Loop:
    pipe: Pipeline
    body: list[Node]
    orelse: list[Node] = field(default_factory=list)
    line: int = 0


@dataclass(slots=True)
class Include:
    """``{{ template "name" pipeline }}``."""

    name: str
    pipe: Pipeline | None
    line: int = 0


@dataclass(slots=True)
class Define:
    name: str
    body: list[Node]
    line: int = 0


@dataclass(slots=True)
class Control:
    keyword: str  # "break" | "continue"
    line: int = 0


Node = Text | Action | Branch | Loop | Include | Control


class _Parser:
    def __init__(self, tokens: list[Token], name: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.name = name
        self.defines: dict[str, list[Node]] = {}
        self.loops = 0
        self.vars: list[set[str]] = [{"$"}]

    def fail(self, token: Token, message: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(self.name, token.line, message)

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def expect(self, kind: Kind, context: str) -> Token:
        token = self.take()
        if token.kind is not kind:
            raise self.fail(token, f"unexpected {_describe(token)} in {context}")
        return token

    # -- lists and control structures ---------------------------------------------------

    def parse_list(self, ends: tuple[str, ...]) -> tuple[list[Node], str, Token]:
        """Nodes up to one of ``ends`` keywords (``{{end}}``, ``{{else}}``); returns the
        nodes, the keyword met (``""`` at EOF) and its token."""
        nodes: list[Node] = []
        while True:
            token = self.take()
            if token.kind is Kind.EOF:
                if ends:
                    raise self.fail(token, f"unexpected EOF (missing {{{{{ends[0]}}}}})")
                return nodes, "", token
            if token.kind is Kind.TEXT:
                nodes.append(Text(token.value, token.line))
                continue
            # a left delimiter
            word = self.peek()
            if word.kind is Kind.KEYWORD:
                if word.value in ends:
                    self.take()
                    return nodes, word.value, word
                if word.value in ("end", "else"):
                    raise self.fail(word, f"unexpected {{{{{word.value}}}}}")
                self.take()
                node = self.keyword(word)
                if node is not None:
                    nodes.append(node)
                continue
            pipe = self.pipeline("command", allow_declare=True)
            self.expect(Kind.RIGHT, "command")
            nodes.append(Action(pipe, token.line))

    def keyword(self, word: Token) -> Node | None:
        if word.value in ("if", "with"):
            return self.branch(word)
        if word.value == "range":
            return self.loop(word)
        if word.value in ("break", "continue"):
            if not self.loops:
                raise self.fail(word, f"{{{{{word.value}}}}} outside {{{{range}}}}")
            self.expect(Kind.RIGHT, word.value)
            return Control(word.value, word.line)
        if word.value == "template":
            name = self.take()
            if name.kind is not Kind.STRING:
                raise self.fail(name, "template name must be a quoted string")
            pipe = None
            if self.peek().kind is not Kind.RIGHT:
                pipe = self.pipeline("template clause")
            self.expect(Kind.RIGHT, "template clause")
            return Include(name.value, pipe, word.line)
        if word.value in ("define", "block"):
            name = self.take()
            if name.kind is not Kind.STRING:
                raise self.fail(name, f"{word.value} name must be a quoted string")
            pipe = None
            if word.value == "block":
                pipe = self.pipeline("block clause")
            self.expect(Kind.RIGHT, f"{word.value} clause")
            self.vars.append({"$"})
            body, _, _ = self.parse_list(("end",))
            self.vars.pop()
            self.expect(Kind.RIGHT, "end")
            self.defines[name.value] = body
            if word.value == "block":
                return Include(name.value, pipe, word.line)
            return None
        raise self.fail(word, f"unexpected {{{{{word.value}}}}}")

    def branch(self, word: Token) -> Branch:
        self.vars.append(set())
        pipe = self.pipeline(word.value, allow_declare=True)
        self.expect(Kind.RIGHT, word.value)
        body, end, _ = self.parse_list(("end", "else"))
        orelse: list[Node] = []
        if end == "else":
            nested = self.peek()
            if nested.kind is Kind.KEYWORD and nested.value in ("if", "with"):
                # {{else if …}} / {{else with …}}: a nested branch sharing our {{end}}
                self.take()
                orelse = [self.branch(nested)]
                self.vars.pop()
                return Branch(word.value, pipe, body, orelse, word.line)
            self.expect(Kind.RIGHT, "else")
            orelse, _, _ = self.parse_list(("end",))
        self.expect(Kind.RIGHT, "end")
        self.vars.pop()
        return Branch(word.value, pipe, body, orelse, word.line)

    def loop(self, word: Token) -> Loop:
        self.vars.append(set())
        pipe = self.pipeline("range", allow_declare=True, loop=True)
        self.expect(Kind.RIGHT, "range")
        self.loops += 1
        body, end, _ = self.parse_list(("end", "else"))
        self.loops -= 1
        orelse: list[Node] = []
        if end == "else":
            self.expect(Kind.RIGHT, "else")
            orelse, _, _ = self.parse_list(("end",))
        self.expect(Kind.RIGHT, "end")
        self.vars.pop()
        return Loop(pipe, body, orelse, word.line)

    # -- pipelines ------------------------------------------------------------------------

    def pipeline(self, context: str, allow_declare: bool = False, loop: bool = False) -> Pipeline:
        start = self.peek()
        declare: tuple[str, ...] = ()
        assign = False
        if allow_declare and start.kind is Kind.VARIABLE:
            names = [start.value]
            offset = 1
            if loop and self.peek(1).kind is Kind.COMMA and self.peek(2).kind is Kind.VARIABLE:
                names.append(self.peek(2).value)
                offset = 3
            marker = self.peek(offset)
            if marker.kind in (Kind.DECLARE, Kind.ASSIGN):
                for _ in range(offset + 1):
                    self.take()
                declare = tuple(names)
                assign = marker.kind is Kind.ASSIGN
                for name in declare:
                    if assign and not self.known(name):
                        raise self.fail(marker, f"undefined variable: {name}")
        commands: list[Command] = []
        while True:
            commands.append(self.command(context))
            if self.peek().kind is Kind.PIPE:
                pipe = self.take()
                if self.peek().kind in (Kind.RIGHT, Kind.RPAREN, Kind.EOF):
                    raise self.fail(pipe, f"missing command after | in {context}")
                continue
            break
        if declare and not assign:
            self.vars[-1].update(declare)
        return Pipeline(commands, declare, assign, start.line)

    def known(self, name: str) -> bool:
        return any(name in scope for scope in self.vars)

    def command(self, context: str) -> Command:
        args: list[Operand] = []
        start = self.peek()
        while True:
            token = self.peek()
            if token.kind in (Kind.RIGHT, Kind.PIPE, Kind.RPAREN, Kind.EOF):
                break
            if args and not token.spaced and token.kind is not Kind.LPAREN:
                raise self.fail(token, f"missing space before {_describe(token)}")
            args.append(self.operand(context))
        if not args:
            raise self.fail(start, f"missing value for {context}")
        return Command(args, start.line)

    def operand(self, context: str) -> Operand:
        token = self.take()
        kind = token.kind
        term: Operand
        if kind is Kind.DOT:
            term = Operand("dot", None, line=token.line)
        elif kind is Kind.FIELD:
            term = Operand("dot", None, (token.value,), token.line)
        elif kind is Kind.VARIABLE:
            if not self.known(token.value):
                raise self.fail(token, f"undefined variable {token.value!r}")
            term = Operand("variable", token.value, line=token.line)
        elif kind is Kind.IDENT:
            term = Operand("ident", token.value, line=token.line)
        elif kind is Kind.STRING:
            term = Operand("string", token.value, line=token.line)
        elif kind is Kind.CHAR:
            term = Operand("number", ord(token.value), line=token.line)  # a rune
        elif kind is Kind.NUMBER:
            term = Operand("number", _number(token, self.name), line=token.line)
        elif kind is Kind.BOOL:
            term = Operand("bool", token.value == "true", line=token.line)
        elif kind is Kind.NIL:
            term = Operand("nil", None, line=token.line)
        elif kind is Kind.LPAREN:
            inner = self.pipeline("parenthesized pipeline")
            self.expect(Kind.RPAREN, "parenthesized pipeline")
            term = Operand("pipeline", inner, line=token.line)
        else:
            raise self.fail(token, f"unexpected {_describe(token)} in {context}")
        fields = list(term.fields)
        while self.peek().kind is Kind.FIELD and not self.peek().spaced:
            if term.kind in ("ident", "string", "number", "bool", "nil", "char"):
                raise self.fail(self.peek(), f"unexpected . after term {_describe(token)}")
            fields.append(self.take().value)
        term.fields = tuple(fields)
        return term


def _number(token: Token, name: str) -> int | float:
    text = token.value.replace("_", "")
    try:
        lowered = text.lower().lstrip("+-")
        sign = -1 if text.startswith("-") else 1
        if lowered.startswith(("0x", "0o", "0b")):
            return sign * int(lowered, 0)
        if lowered.startswith("0") and lowered.isdigit() and len(lowered) > 1:
            return sign * int(lowered, 8)
        if any(c in lowered for c in ".e") and not lowered.startswith("0x"):
            return float(text)
        return int(text)
    except ValueError:
        raise TemplateSyntaxError(name, token.line, f"bad number syntax: {token.value!r}") from None


def _describe(token: Token) -> str:
    if token.kind is Kind.EOF:
        return "EOF"
    if token.kind in (Kind.IDENT, Kind.KEYWORD, Kind.NUMBER, Kind.VARIABLE, Kind.BOOL):
        return f"<{token.value}>"
    if token.kind is Kind.FIELD:
        return f"<.{token.value}>"
    if token.kind is Kind.STRING:
        return "quoted string"
    return f'"{token.value}"'


@dataclass(slots=True)
class Tree:
    name: str
    root: list[Node]
    defines: dict[str, list[Node]]


def parse(text: str, name: str = "", left: str = "{{", right: str = "}}") -> Tree:
    """Parse a template.

    Raises:
        TemplateSyntaxError: with the template name and the 1-based line of the fault.
    """
    parser = _Parser(tokenize(text, name, left, right), name)
    root, _, _ = parser.parse_list(())
    return Tree(name, root, parser.defines)
