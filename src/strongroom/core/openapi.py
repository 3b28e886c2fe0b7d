"""An OpenAPI 3 document generated from the path tables of every mounted backend.

Each ``framework.Path`` carries what a spec needs: its pattern (named groups are URL
parameters), its args dataclass (typed body fields), its operations, synopsis and
description. Patterns are expanded into OpenAPI path templates by walking the regular
expression's parse tree: a named group becomes ``{name}``, an optional part or an
alternation yields one template per branch, and a trailing ``/?`` is dropped. Fields that
are URL parameters are left out of the body schema.

Operations map as Vault's generator does: READ → get, LIST → get with ``list=true``,
CREATE/UPDATE → post, DELETE → delete, PATCH → patch. Pure: it reads path tables only.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.framework import Duration, Path
from strongroom.logical import Operation

__all__ = ["MountSpec", "build_document", "path_templates"]

_parser: Any = getattr(re, "_parser")  # noqa: B009  # the stdlib's regex parser (sre_parse)
_constants: Any = getattr(re, "_constants")  # noqa: B009
_MAX_TEMPLATES = 16


@dataclass(frozen=True, slots=True)
class MountSpec:
    """One mounted backend: where it is, what it is, its path table."""

    mount_point: str  # "secret/", "auth/token/", "sys/"
    mount_type: str
    paths: Sequence[Path]
    unauthenticated: Sequence[str] = ()
    root_paths: Sequence[str] = ()
    extra: Sequence[tuple[str, Sequence[str], str]] = ()  # (template, methods, synopsis)


def _expand(items: Any) -> list[tuple[str, tuple[str, ...]]]:
    """(template, parameters) for every way a parsed regex sequence can be spelled."""
    results: list[tuple[str, tuple[str, ...]]] = [("", ())]
    for op, av in items:
        options: list[tuple[str, tuple[str, ...]]]
        if op is _constants.LITERAL:
            options = [(chr(av), ())]
        elif op is _constants.SUBPATTERN:
            group, _, _, sub = av
            name = _group_name(group)
            options = [("{" + name + "}", (name,))] if name else _expand(sub)
        elif op is _constants.BRANCH:
            options = [opt for branch in av[1] for opt in _expand(branch)]
        elif op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT):
            low, high, sub = av
            inner = _expand(sub)
            if low == 0 and high == 1:
                options = [("", ()), *inner]
            elif all(t in ("/", "") for t, _ in inner):
                options = [("", ())]  # "/*" or "/?" style slack: no template of its own
            else:
                options = [("{path}", ("path",))]
        elif op is _constants.AT:
            options = [("", ())]
        else:
            options = [("{path}", ("path",))]  # a free-form class outside a named group
        results = [
            (prefix + text, params + tuple(p for p in extra if p not in params))
            for prefix, params in results
            for text, extra in options
        ][:_MAX_TEMPLATES]
    return results


_GROUP_NAMES: dict[int, str] = {}


def _group_name(group: int | None) -> str:
    return _GROUP_NAMES.get(group or -1, "")


def path_templates(pattern: str) -> list[tuple[str, tuple[str, ...]]]:
    """The OpenAPI templates of one path pattern, with their parameter names."""
    parsed = _parser.parse(pattern)
    _GROUP_NAMES.clear()
    for name, index in parsed.state.groupdict.items():
        _GROUP_NAMES[index] = name
    seen: dict[str, tuple[str, tuple[str, ...]]] = {}
    for template, params in _expand(parsed):
        template = template.rstrip("/")
        # OpenAPI: templates that differ only in parameter names are the same path
        shape = re.sub(r"\{[^}]+\}", "{}", template)
        if shape not in seen and len(params) == len(set(params)):
            seen[shape] = (template, params)
    return list(seen.values())


def _schema_for(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _schema_for(inner[0]) if len(inner) == 1 else {}
    if annotation is Duration:
        return {"type": "string", "format": "duration"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if annotation is str:
        return {"type": "string"}
    if origin is list:
        return {"type": "array", "items": {"type": "string"}}
    if origin is dict:
        return {"type": "object"}
    return {}


def _fields(args: type[Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    hints = typing.get_type_hints(args)
    for f in dataclasses.fields(args):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        # an args class may type a field it keeps unparsed (Any) through its metadata
        declared = f.metadata.get("openapi")
        yield f.name, dict(declared) if declared else _schema_for(hints[f.name]), required


def _glob(patterns: Sequence[str], relative: str) -> bool:
    for pattern in patterns:
        if pattern.endswith("*") and relative.startswith(pattern[:-1]):
            return True
        if relative == pattern:
            return True
    return False


def _operation_id(mount_type: str, method: str, template: str) -> str:
    words = re.sub(r"[^a-zA-Z0-9]+", "-", f"{mount_type}-{method}-{template}").strip("-")
    return words.lower()


_METHODS = {
    Operation.READ: "get",
    Operation.LIST: "get",
    Operation.CREATE: "post",
    Operation.UPDATE: "post",
    Operation.DELETE: "delete",
    Operation.PATCH: "patch",
}


def _responses(methods: Iterable[str]) -> dict[str, Any]:
    return {
        "200": {"description": "OK"},
        "204": {"description": "empty body"},
        "default": {
            "description": "an error",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
                    }
                }
            },
        },
    }


def _path_items(spec: MountSpec) -> Iterator[tuple[str, dict[str, Any]]]:
    mount = spec.mount_point.rstrip("/")
    for entry in spec.paths:
        methods: dict[str, list[Operation]] = {}
        for operation in entry.operations:
            method = _METHODS.get(operation)
            if method is not None:
                methods.setdefault(method, []).append(operation)
        if not methods:
            continue
        fields = list(_fields(entry.args))
        for template, params in path_templates(entry.pattern):
            relative = template
            full = "/" + mount + ("/" + template if template else "")
            item: dict[str, Any] = {"description": entry.synopsis or entry.description}
            parameters = [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": name,
                }
                for name in params
            ]
            if parameters:
                item["parameters"] = parameters
            probe = re.sub(r"\{[^}]+\}", "x", relative)
            if _glob(spec.unauthenticated, probe):
                item["x-vault-unauthenticated"] = True
            if _glob(spec.root_paths, probe):
                item["x-vault-sudo"] = True
            body_fields = [(n, s, r) for n, s, r in fields if n not in params]
            for method, operations in methods.items():
                op: dict[str, Any] = {
                    "operationId": _operation_id(spec.mount_type, method, full),
                    "summary": entry.synopsis or entry.pattern,
                    "tags": [spec.mount_type or "system"],
                    "responses": _responses([method]),
                }
                if entry.description:
                    op["description"] = entry.description
                if method == "get":
                    query = [
                        {"name": n, "in": "query", "schema": s, "required": False}
                        for n, s, _ in body_fields
                        if s.get("type") in ("string", "integer", "boolean", "number")
                    ]
                    if Operation.LIST in operations:
                        query.append(
                            {
                                "name": "list",
                                "in": "query",
                                "required": Operation.READ not in operations,
                                "schema": {"type": "string", "enum": ["true"]},
                                "description": "Return a list if `true`",
                            }
                        )
                    if query:
                        op["parameters"] = query
                elif method in ("post", "patch") and body_fields and not entry.raw_body:
                    required = [n for n, _, r in body_fields if r]
                    schema: dict[str, Any] = {
                        "type": "object",
                        "properties": {n: s for n, s, _ in body_fields},
                    }
                    if required:
                        schema["required"] = required
                    content_type = (
                        "application/merge-patch+json" if method == "patch" else "application/json"
                    )
                    op["requestBody"] = {
                        "required": bool(required),
                        "content": {content_type: {"schema": schema}},
                    }
                elif method in ("post", "patch"):
                    op["requestBody"] = {
                        "required": False,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                item[method] = op
            yield full, item
    for template, methods_, synopsis in spec.extra:
        full = "/" + mount + "/" + template
        item = {"description": synopsis, "x-vault-unauthenticated": True}
        for method in methods_:
            item[method] = {
                "operationId": _operation_id(spec.mount_type, method, full),
                "summary": synopsis,
                "tags": [spec.mount_type or "system"],
                "responses": _responses([method]),
            }
            if method in ("post", "put"):
                item[method]["requestBody"] = {
                    "required": False,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
        yield full, item


def build_document(
    mounts: Sequence[MountSpec], version: str, visible: Callable[[str], bool] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.0 document of these mounts (first path wins on a duplicate template).

    ``visible(path)`` (a request path, parameters filled with ``x``) keeps only the paths
    the caller's ACL allows something on.
    """
    paths: dict[str, Any] = {}
    shapes: dict[str, str] = {}
    for spec in sorted(mounts, key=lambda m: m.mount_point):
        for template, item in _path_items(spec):
            if visible is not None and not item.get("x-vault-unauthenticated"):
                if not visible(re.sub(r"\{[^}]+\}", "x", template).lstrip("/")):
                    continue
            shape = re.sub(r"\{[^}]+\}", "{}", template)
            first = shapes.setdefault(shape, template)
            if first in paths:
                for key, value in item.items():
                    if key not in ("parameters",):
                        paths[first].setdefault(key, value)
            else:
                paths[first] = item
    return {
        "openapi": "3.0.2",
        "info": {
            "title": "Strongroom API",
            "description": "HashiCorp Vault's HTTP API, as this server serves it.",
            "version": version,
            "license": {"name": "MPL-2.0", "url": "https://www.mozilla.org/en-US/MPL/2.0"},
        },
        "servers": [{"url": "/v1"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "vaultToken": {"type": "apiKey", "in": "header", "name": "X-Vault-Token"}
            }
        },
        "security": [{"vaultToken": []}],
    }
