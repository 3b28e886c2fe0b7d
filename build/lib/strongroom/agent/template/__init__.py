"""consul-template's template language (Go's text/template plus functions), as Vault Agent
renders it: a lexer, a parser to a tree, and an evaluator. No regular expressions parse
templates.

``compile_template`` checks syntax and function names (as Go does at parse time);
``Template.render`` runs it with a :class:`Resolver` that answers ``secret`` and ``secrets``
from what the agent has fetched. A secret not fetched yet renders as nil and marks the
result incomplete, so the caller fetches it and renders again (consul-template's two passes)
and never writes an incomplete file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._exec import MISSING, NO_VALUE, Fielded, TemplateExecError, execute, go_format, truth
from ._funcs import BUILTINS, go_sprintf, go_time_format
from ._lexer import TemplateSyntaxError, tokenize
from ._parser import Action, Branch, Include, Loop, Node, Operand, Pipeline, Tree, parse

__all__ = [
    "MISSING",
    "NO_VALUE",
    "Dependency",
    "Fielded",
    "RenderResult",
    "Resolver",
    "SecretValue",
    "Template",
    "TemplateExecError",
    "TemplateSyntaxError",
    "compile_template",
    "go_format",
    "go_sprintf",
    "go_time_format",
    "tokenize",
    "truth",
]

DEPENDENCY_FUNCS = frozenset({"secret", "secrets", "pkiCert"})


@dataclass(frozen=True, slots=True)
class Dependency:
    """What a template asked the server for: ``secret`` (read, or write with ``data``) or
    ``secrets`` (list)."""

    kind: str  # "secret" | "secrets" | "pkiCert"
    path: str
    data: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # data can hold values a template sends: keep them out
        return f"Dependency({self.kind} {self.path!r})"


class SecretValue(Fielded):
    """A Vault API response as templates see it (``.Data``, ``.LeaseID`` …)."""

    template_fields = (
        "RequestID",
        "LeaseID",
        "LeaseDuration",
        "Renewable",
        "Data",
        "Warnings",
        "Auth",
        "WrapInfo",
    )
    __slots__ = template_fields

    def __init__(self, body: dict[str, Any]) -> None:
        self.RequestID = body.get("request_id", "")
        self.LeaseID = body.get("lease_id", "")
        self.LeaseDuration = body.get("lease_duration", 0)
        self.Renewable = bool(body.get("renewable", False))
        self.Data = body.get("data") or {}
        self.Warnings = body.get("warnings") or []
        self.Auth = body.get("auth")
        self.WrapInfo = body.get("wrap_info")

    def __repr__(self) -> str:
        return f"SecretValue(lease_id={self.LeaseID!r})"


class Resolver(Protocol):
    """Answers a template's dependencies from what has been fetched; None: not yet."""

    def resolve(self, dependency: Dependency) -> Any: ...


@dataclass(slots=True)
class RenderResult:
    text: str
    complete: bool
    dependencies: list[Dependency] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    tree: Tree

    def render(self, resolver: Resolver, *, error_on_missing_key: bool = False) -> RenderResult:
        """Render once. ``complete`` is False if some dependency was not available yet.

        Raises:
            TemplateExecError: the template failed (a missing key with
                ``error_on_missing_key``, a function error).
        """
        used: list[Dependency] = []
        complete = True

        def fetch(dependency: Dependency) -> Any:
            nonlocal complete
            if dependency not in used:
                used.append(dependency)
            value = resolver.resolve(dependency)
            if value is None:
                complete = False
            return value

        def secret(path: str, *pairs: str) -> Any:
            return fetch(Dependency("secret", str(path).strip("/"), _pairs(pairs)))

        def secrets(path: str) -> Any:
            value = fetch(Dependency("secrets", str(path).strip("/")))
            return [] if value is None else value

        def pki_cert(path: str, *pairs: str) -> Any:
            return fetch(Dependency("pkiCert", str(path).strip("/"), _pairs(pairs)))

        funcs: dict[str, Callable[..., Any]] = {
            **BUILTINS,
            "secret": secret,
            "secrets": secrets,
            "pkiCert": pki_cert,
        }
        text = execute(self.tree, None, funcs, missing_key_error=error_on_missing_key)
        return RenderResult(text, complete, used)


def _pairs(pairs: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    data: list[tuple[str, str]] = []
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        if not sep:
            raise ValueError('expected "key=value", got an argument without "="')
        data.append((key, value))
    return tuple(data)


def compile_template(text: str, name: str = "", left: str = "", right: str = "") -> Template:
    """Parse ``text`` and check every function it calls exists.

    Raises:
        TemplateSyntaxError: with the 1-based line of the fault within ``text``.
    """
    tree = parse(text, name, left or "{{", right or "}}")
    known = set(BUILTINS) | DEPENDENCY_FUNCS | {"and", "or"}
    for operand in _operands(tree):
        if operand.kind == "ident" and operand.value not in known:
            raise TemplateSyntaxError(name, operand.line, f'function "{operand.value}" not defined')
    return Template(name, tree)


def _operands(tree: Tree) -> Iterator[Operand]:
    def pipes(nodes: list[Node]) -> Iterator[Pipeline]:
        for node in nodes:
            if isinstance(node, Action):
                yield node.pipe
            elif isinstance(node, Branch | Loop):
                yield node.pipe
                yield from pipes(node.body)
                yield from pipes(node.orelse)
            elif isinstance(node, Include) and node.pipe is not None:
                yield node.pipe

    def walk(pipe: Pipeline) -> Iterator[Operand]:
        for command in pipe.commands:
            for operand in command.args:
                yield operand
                if operand.kind == "pipeline" and isinstance(operand.value, Pipeline):
                    yield from walk(operand.value)

    bodies = [tree.root, *tree.defines.values()]
    for body in bodies:
        for pipe in pipes(body):
            yield from walk(pipe)
