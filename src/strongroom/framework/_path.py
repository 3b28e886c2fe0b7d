"""Declarative path tables.

A backend is a list of :class:`Path` entries. Each names a regular expression (anchored,
with named groups for URL parameters), a frozen *args dataclass* describing the fields it
accepts, and one async handler per operation::

    @dataclass(frozen=True, slots=True)
    class ConfigArgs:
        max_versions: int = 0
        cas_required: bool = False
        delete_version_after: Duration = Duration(0)

    Path(
        pattern=r"config",
        args=ConfigArgs,
        operations={Operation.READ: read_config, Operation.UPDATE: write_config},
        synopsis="Configure the engine",
    )

Handlers are ``async def handler(request, args) -> Response | None``. The framework builds
``args`` from the URL groups (which win) and the request body/query, coercing by annotation:
``str``, ``int``, ``bool``, ``float``, ``Duration``, ``list[str]``, ``dict[str, str]``,
``dict[str, Any]``, ``Any``, and ``X | None``. A field whose dataclass default is
``dataclasses.MISSING`` is required. ``request.data`` stays available to tell "absent" from
"default". Tables are checked when built: every named group must be a declared field.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from strongroom.errors import InvalidRequest
from strongroom.framework._types import (
    Duration,
    parse_bool,
    parse_duration,
    parse_int,
    parse_str,
    parse_str_list,
    parse_str_map,
)
from strongroom.logical import Operation, Request, Response

__all__ = ["ArgsBuilder", "Endpoint", "ExistenceCheck", "Handler", "NoArgs", "Path"]

Handler = Callable[[Request, Any], Awaitable[Response | None]]
ExistenceCheck = Callable[[Request, Any], Awaitable[bool]]

Owner = TypeVar("Owner")


@dataclass(frozen=True, slots=True)
class NoArgs:
    """For paths that take no fields."""


def _parser_for(annotation: Any, name: str) -> Callable[[Any], Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        base = _parser_for(inner[0], name) if len(inner) == 1 else (lambda v: v)
        return lambda v: None if v is None else base(v)
    if annotation is Duration:
        return lambda v: parse_duration(v, name)
    if annotation is bool:
        return lambda v: parse_bool(v, name)
    if annotation is int:
        return lambda v: parse_int(v, name)
    if annotation is float:

        def parse_float(v: Any) -> float:
            if isinstance(v, bool) or not isinstance(v, int | float | str):
                raise InvalidRequest(f"{name}: expected a number")
            try:
                return float(v)
            except ValueError:
                raise InvalidRequest(f"{name}: expected a number") from None

        return parse_float
    if annotation is str:
        return lambda v: parse_str(v, name)
    if origin is list:
        return lambda v: parse_str_list(v, name)
    if origin is dict:
        _key_t, val_t = typing.get_args(annotation)
        if val_t is str:
            return lambda v: parse_str_map(v, name)

        def parse_map(v: Any) -> dict[str, Any]:
            if v is None:
                return {}
            if not isinstance(v, dict):
                raise InvalidRequest(f"{name}: expected an object")
            return v

        return parse_map
    if annotation is Any or annotation is object:
        return lambda v: v
    raise TypeError(f"unsupported field type for {name!r}: {annotation!r}")


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    parse: Callable[[Any], Any]
    required: bool


class ArgsBuilder:
    """Builds an args dataclass from raw request values, validating each field's type."""

    def __init__(self, cls: type[Any]) -> None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        hints = typing.get_type_hints(cls)
        self.cls = cls
        self.fields: dict[str, _FieldSpec] = {}
        for f in dataclasses.fields(cls):
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            self.fields[f.name] = _FieldSpec(f.name, _parser_for(hints[f.name], f.name), required)

    def build(self, values: Mapping[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        for name, spec in self.fields.items():
            # JSON null means "not given" (clients such as hvac send null for unset fields)
            if values.get(name) is not None:
                kwargs[name] = spec.parse(values[name])
            elif spec.required:
                raise InvalidRequest(f"missing required field: {name}")
        return self.cls(**kwargs)


@dataclass(frozen=True)
class Path:
    pattern: str
    operations: Mapping[Operation, Handler]
    args: type[Any] = NoArgs
    existence_check: ExistenceCheck | None = None
    synopsis: str = ""
    description: str = ""
    # take the request body as-is (KV v1, cubbyhole): the handler reads request.data itself
    raw_body: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    builder: ArgsBuilder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.compile(r"\A(?:" + self.pattern + r")\Z")
        builder = ArgsBuilder(self.args)
        for group in regex.groupindex:
            if group not in builder.fields:
                raise TypeError(
                    f"path {self.pattern!r}: group {group!r} is not a field of {self.args}"
                )
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "builder", builder)

    def build_args(self, request: Request, match: re.Match[str]) -> Any:
        values: dict[str, Any] = {}
        if not self.raw_body:
            for key, value in request.query.items():
                if key in self.builder.fields:
                    values[key] = value
            values.update(request.data)
        for key, value in match.groupdict().items():
            if value is not None:
                values[key] = value
        return self.builder.build(values)


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[Owner]):
    """An entry of a module-level path table whose handlers take their owner first.

    Backends that serve other state than their storage view (sys/ over the core,
    auth/token/ over the token store) declare their tables at module level with handlers
    ``async def handler(owner, request, args)``; the backend binds the table to its owner
    once, when it is built (:meth:`bind`), and dispatches the resulting :class:`Path`
    entries like any other::

        TABLE = [Endpoint(r"mounts", {Operation.READ: list_mounts}, synopsis="List mounts")]
        paths = [endpoint.bind(context) for endpoint in TABLE]
    """

    pattern: str
    operations: Mapping[Operation, Callable[[Owner, Request, Any], Awaitable[Response | None]]]
    args: type[Any] = NoArgs
    existence_check: Callable[[Owner, Request, Any], Awaitable[bool]] | None = None
    synopsis: str = ""
    description: str = ""
    raw_body: bool = False

    def bind(self, owner: Owner) -> Path:
        check = self.existence_check
        return Path(
            pattern=self.pattern,
            operations={op: functools.partial(h, owner) for op, h in self.operations.items()},
            args=self.args,
            existence_check=None if check is None else functools.partial(check, owner),
            synopsis=self.synopsis,
            description=self.description,
            raw_body=self.raw_body,
        )
