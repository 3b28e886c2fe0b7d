"""A :class:`~strongroom.logical.Backend` made from a path table."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from strongroom.errors import NotFound, UnsupportedOperation
from strongroom.framework._path import Path
from strongroom.logical import BackendKind, Operation, Request, Response

__all__ = ["FrameworkBackend", "glob_match"]


def glob_match(patterns: Sequence[str], path: str) -> bool:
    """Vault's special-path matching: exact, or prefix when the pattern ends in ``*``."""
    for pattern in patterns:
        if pattern.endswith("*"):
            if path.startswith(pattern[:-1]):
                return True
        elif path == pattern:
            return True
    return False


class FrameworkBackend:
    """Dispatches a request to the first path whose pattern matches the whole path."""

    def __init__(
        self,
        *,
        kind: BackendKind,
        paths: Sequence[Path],
        help: str = "",
        unauthenticated_paths: Sequence[str] = (),
        root_paths: Sequence[str] = (),
        initialize: Callable[[], Awaitable[None]] | None = None,
        cleanup: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.kind = kind
        self.paths = tuple(paths)
        self.help = help
        self.unauthenticated_paths = tuple(unauthenticated_paths)
        self.root_paths = tuple(root_paths)
        self._initialize = initialize
        self._cleanup = cleanup

    def route(self, path: str) -> tuple[Path, re.Match[str]] | None:
        for entry in self.paths:
            match = entry.regex.match(path)
            if match is not None:
                return entry, match
        return None

    async def handle(self, request: Request) -> Response | None:
        found = self.route(request.path)
        if found is None:
            raise NotFound("unsupported path")
        entry, match = found
        if request.operation is Operation.HELP:
            return Response(data=self._help_for(entry))
        handler = entry.operations.get(request.operation)
        if handler is None and request.operation is Operation.CREATE:
            handler = entry.operations.get(Operation.UPDATE)
        if handler is None:
            raise UnsupportedOperation()
        return await handler(request, entry.build_args(request, match))

    async def exists(self, request: Request) -> bool | None:
        found = self.route(request.path)
        if found is None:
            return None
        entry, match = found
        if entry.existence_check is None:
            return None
        return await entry.existence_check(request, entry.build_args(request, match))

    async def initialize(self) -> None:
        if self._initialize is not None:
            await self._initialize()

    async def cleanup(self) -> None:
        if self._cleanup is not None:
            await self._cleanup()

    def describe_help(self, path: str) -> dict[str, Any]:
        found = self.route(path)
        if found is None:
            return {"help": self.help}
        return self._help_for(found[0])

    def _help_for(self, entry: Path) -> dict[str, Any]:
        return {
            "help": f"{entry.synopsis}\n\n{entry.description}".strip(),
            "see_also": [],
        }
