"""The evaluator: runs a parsed tree against data and functions, printing as Go's fmt does."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._parser import (
    Action,
    Branch,
    Command,
    Control,
    Include,
    Loop,
    Node,
    Operand,
    Pipeline,
    Text,
    Tree,
)

__all__ = ["NO_VALUE", "TemplateExecError", "execute", "go_format", "truth"]

NO_VALUE = "<no value>"


class TemplateExecError(ValueError):
    """Executing the template failed: a missing key (with ``error_on_missing_key``), a
    function's error, a type mismatch. The message names the template and line, and carries
    no secret value."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Fielded:
    """A record templates can read fields of (``.Data``, ``.LeaseID`` …): subclasses list
    them in ``template_fields``."""

    template_fields: tuple[str, ...] = ()


class _Missing:
    """A map lookup that found nothing: prints as ``<no value>``; a field of it is an error."""

    __slots__ = ()

    def __repr__(self) -> str:
        return NO_VALUE


MISSING: Any = _Missing()


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, and empty strings, lists and maps are false."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        return len(value) > 0
    return True


def go_format(value: Any, top: bool = True) -> str:
    """``fmt.Sprint``'s rendering of a value (``%v``)."""
    if value is MISSING or (value is None and top):
        return NO_VALUE
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, bytes):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_format(item, False) for item in value) + "]"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{k}:{go_format(v, False)}" for k, v in items) + "]"
    if isinstance(value, Fielded):
        parts = [go_format(getattr(value, name), False) for name in value.template_fields]
        return "{" + " ".join(parts) + "}"
    return str(value)


def _go_float(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = exponent[0] if exponent[0] in "+-" else "+"
        digits = exponent.lstrip("+-").rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    return text


@dataclass
class _State:
    tree: Tree
    funcs: Mapping[str, Callable[..., Any]]
    missing_key_error: bool
    out: list[str] = field(default_factory=list)
    scopes: list[dict[str, Any]] = field(default_factory=list)
    depth: int = 0

    def fail(self, line: int, message: str) -> TemplateExecError:
        return TemplateExecError(f"template: {self.tree.name}:{line}: executing: {message}")

    # -- variables --------------------------------------------------------------------------

    def lookup(self, name: str, line: int) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise self.fail(line, f"undefined variable: {name}")

    def assign(self, name: str, value: Any, line: int) -> None:
        for scope in reversed(self.scopes):
            if name in scope:
                scope[name] = value
                return
        raise self.fail(line, f"undefined variable: {name}")

    # -- nodes ----------------------------------------------------------------------------------

    def walk(self, nodes: list[Node], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipeline(node.pipe, dot)
                if not node.pipe.declare:
                    self.out.append(go_format(value))
            elif isinstance(node, Branch):
                self.branch(node, dot)
            elif isinstance(node, Loop):
                self.loop(node, dot)
            elif isinstance(node, Include):
                self.include(node, dot)
            elif isinstance(node, Control):
                raise _Break() if node.keyword == "break" else _Continue()

    def branch(self, node: Branch, dot: Any) -> None:
        self.scopes.append({})
        try:
            value = self.pipeline(node.pipe, dot)
            if truth(value):
                self.walk(node.body, value if node.keyword == "with" else dot)
            else:
                self.walk(node.orelse, dot)
        finally:
            self.scopes.pop()

    def loop(self, node: Loop, dot: Any) -> None:
        self.scopes.append({})
        try:
            names = node.pipe.declare
            pipe = Pipeline(node.pipe.commands, (), False, node.pipe.line)
            value = self.pipeline(pipe, dot)
            items: list[tuple[Any, Any]]
            if value is None or value is MISSING:
                items = []
            elif isinstance(value, Mapping):
                items = [(k, value[k]) for k in sorted(value, key=str)]
            elif isinstance(value, list | tuple):
                items = list(enumerate(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                items = [(i, i) for i in range(value)]
            else:
                raise self.fail(node.line, f"range can't iterate over {go_format(value)}")
            if not items:
                self.walk(node.orelse, dot)
                return
            for key, item in items:
                scope = self.scopes[-1]
                if len(names) == 1:
                    scope[names[0]] = item
                elif len(names) == 2:
                    scope[names[0]], scope[names[1]] = key, item
                try:
                    self.walk(node.body, item)
                except _Continue:
                    continue
                except _Break:
                    break
        finally:
            self.scopes.pop()

    def include(self, node: Include, dot: Any) -> None:
        body = self.tree.defines.get(node.name)
        if body is None:
            raise self.fail(node.line, f'no such template "{node.name}"')
        if self.depth > 100:
            raise self.fail(node.line, "exceeded maximum template depth (100)")
        value = self.pipeline(node.pipe, dot) if node.pipe is not None else None
        saved = self.scopes
        self.scopes = [{"$": value}]
        self.depth += 1
        try:
            self.walk(body, value)
        finally:
            self.depth -= 1
            self.scopes = saved

    # -- pipelines --------------------------------------------------------------------------

    def pipeline(self, pipe: Pipeline, dot: Any) -> Any:
        value: Any = None
        piped = False
        for command in pipe.commands:
            value = self.command(command, dot, value, piped)
            piped = True
        for name in pipe.declare:
            if pipe.assign:
                self.assign(name, value, pipe.line)
            else:
                self.scopes[-1][name] = value
        return value

    def command(self, command: Command, dot: Any, last: Any, piped: bool) -> Any:
        first = command.args[0]
        if first.kind == "ident":
            if first.value in ("and", "or"):
                return self.logic(str(first.value), command.args[1:], dot, last, piped)
            args = [self.operand(arg, dot) for arg in command.args[1:]]
            if piped:
                args.append(last)
            function = self.funcs.get(str(first.value))
            if function is None:
                raise self.fail(first.line, f'function "{first.value}" not defined')
            try:
                result = function(*args)
            except TemplateExecError:
                raise
            except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError) as exc:
                raise self.fail(first.line, f"error calling {first.value}: {exc}") from None
            return result
        if len(command.args) > 1 or piped:
            if first.fields:
                raise self.fail(first.line, f"{first.fields[-1]} has arguments but is a field")
            raise self.fail(first.line, f"can't give argument to non-function {first.value}")
        return self.operand(first, dot)

    def logic(self, name: str, operands: list[Operand], dot: Any, last: Any, piped: bool) -> Any:
        # Go evaluates and/or lazily, returning the deciding argument
        if not operands and not piped:
            raise self.fail(0, f"wrong number of args for {name}: want at least 1 got 0")
        result: Any = None
        for arg in operands:
            result = self.operand(arg, dot)
            if (name == "and") != truth(result):
                return result
        return last if piped else result

    def operand(self, arg: Operand, dot: Any) -> Any:
        kind = arg.kind
        if kind == "dot":
            value = dot
        elif kind == "variable":
            value = self.lookup(str(arg.value), arg.line)
        elif kind == "pipeline":
            assert isinstance(arg.value, Pipeline)
            value = self.pipeline(arg.value, dot)
        elif kind == "ident":
            function = self.funcs.get(str(arg.value))
            if function is None:
                raise self.fail(arg.line, f'function "{arg.value}" not defined')
            value = function()
        else:
            value = arg.value
        for name in arg.fields:
            value = self.field(value, name, arg.line)
        return value

    def field(self, value: Any, name: str, line: int) -> Any:
        if isinstance(value, Mapping):
            if name in value:
                return value[name]
            if self.missing_key_error:
                raise self.fail(line, f'map has no entry for key "{name}"')
            return MISSING
        if isinstance(value, Fielded):
            if name in value.template_fields:
                return getattr(value, name)
            raise self.fail(line, f"can't evaluate field {name} in type {type(value).__name__}")
        if value is None or value is MISSING:
            raise self.fail(line, f"nil pointer evaluating interface {{}}.{name}")
        raise self.fail(line, f"can't evaluate field {name} in type {type(value).__name__}")


def execute(
    tree: Tree,
    data: Any,
    funcs: Mapping[str, Callable[..., Any]],
    *,
    missing_key_error: bool = False,
) -> str:
    """Render ``tree`` with ``data`` as dot.

    Raises:
        TemplateExecError: the template cannot be executed (the message has the line).
    """
    state = _State(tree, funcs, missing_key_error)
    state.scopes.append({"$": data})
    state.walk(tree.root, data)
    return "".join(state.out)
