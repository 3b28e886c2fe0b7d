"""A :class:`~strongroom.logical.Backend` made from a path table."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.errors import InvalidRequest, NotFound, UnsupportedOperation
from strongroom.framework._memo import remember
from strongroom.framework._path import Path
from strongroom.logical import BackendKind, Operation, Request, Response

__all__ = ["FrameworkBackend", "SecretType", "glob_match"]


def glob_match(patterns: Sequence[str], path: str) -> bool:
    """Vault's special-path matching: exact, or prefix when the pattern ends in ``*``; a
    ``+`` segment matches any one non-empty path segment (``issuer/+/pem``)."""
    if len(patterns) > _COMBINE_OVER and isinstance(patterns, tuple):
        # long tables (PKI's ~70 ACME paths) match with one compiled alternation
        return _combined_regex(patterns).match(path) is not None
    for pattern in patterns:
        if "+" in pattern:
            if _segment_regex(pattern).match(path):
                return True
        elif pattern.endswith("*"):
            if path.startswith(pattern[:-1]):
                return True
        elif path == pattern:
            return True
    return False


_SEGMENT_REGEXES: dict[str, re.Pattern[str]] = {}
_COMBINE_OVER = 8
_COMBINED: dict[tuple[str, ...], re.Pattern[str]] = {}


def _pattern_source(pattern: str) -> str:
    prefix = pattern.endswith("*")
    parts = (pattern[:-1] if prefix else pattern).split("/")
    body = "/".join("[^/]+" if part == "+" else re.escape(part) for part in parts)
    return body if prefix else body + r"\Z"


def _combined_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    regex = _COMBINED.get(patterns)
    if regex is None:
        alternation = "|".join(f"(?:{_pattern_source(p)})" for p in patterns)
        regex = _COMBINED[patterns] = re.compile(r"\A(?:" + alternation + ")")
    return regex


def _segment_regex(pattern: str) -> re.Pattern[str]:
    regex = _SEGMENT_REGEXES.get(pattern)
    if regex is None:
        regex = re.compile(r"\A" + _pattern_source(pattern))
        _SEGMENT_REGEXES[pattern] = regex  # patterns come from backends' code: bounded
    return regex


@dataclass(frozen=True, slots=True)
class SecretType:
    """How a backend renews and revokes the leased secrets of one type.

    ``renew`` returns a Response whose ``secret`` carries the new TTL (or raises);
    ``revoke`` must be idempotent: core retries it until it succeeds.
    """

    revoke: Callable[[Request], Awaitable[None]]
    renew: Callable[[Request], Awaitable[Response]] | None = None


_PLAIN_ARGS_LIMIT = 4096


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
        opaque_paths: Sequence[str] = (),
        initialize: Callable[[], Awaitable[None]] | None = None,
        cleanup: Callable[[], Awaitable[None]] | None = None,
        secrets: Mapping[str, SecretType] | None = None,
        resolve_role: Callable[[Request], Awaitable[str]] | None = None,
    ) -> None:
        self.kind = kind
        # the role a login request names (role quotas); None: the body's "role" field
        self.resolve_role = resolve_role
        self.paths = tuple(paths)
        self.help = help
        self.unauthenticated_paths = tuple(unauthenticated_paths)
        self.root_paths = tuple(root_paths)
        self.opaque_paths = tuple(opaque_paths)
        self._initialize = initialize
        self._cleanup = cleanup
        self.secrets = dict(secrets or {})
        # Parsed args of parameterless requests (reads), by path: args are frozen and
        # depend only on the path then. Bounded; cleared when full.
        self._plain_args: dict[str, tuple[Path, Any]] = {}
        # The args exists() built, for handle() of the very same request (a write runs
        # both); matched by identity, and holding the objects keeps the identities unique.
        self._last_args: tuple[str, object, object, Path, Any] | None = None

    def route(self, path: str) -> tuple[Path, re.Match[str]] | None:
        for entry in self.paths:
            match = entry.regex.match(path)
            if match is not None:
                return entry, match
        return None

    def _resolve(self, request: Request) -> tuple[Path, Any] | None:
        """The path entry and parsed args for a request (``None``: no path matches)."""
        path = request.path
        plain = not request.data and not request.query
        if plain:
            memo = self._plain_args.get(path)
            if memo is not None:
                return memo
        last = self._last_args
        if (
            last is not None
            and last[0] == path
            and last[1] is request.data
            and last[2] is request.query
        ):
            return last[3], last[4]
        found = self.route(path)
        if found is None:
            return None
        entry, match = found
        resolved = entry, entry.build_args(request, match)
        if plain:
            remember(self._plain_args, path, resolved, _PLAIN_ARGS_LIMIT)
        return resolved

    async def handle(self, request: Request) -> Response | None:
        operation = request.operation
        if operation is Operation.RENEW or operation is Operation.REVOKE:
            return await self._lease_operation(request)
        if operation is Operation.HELP:
            found = self.route(request.path)
            if found is None:
                raise NotFound("unsupported path")
            return Response(data=self._help_for(found[0]))
        resolved = self._resolve(request)
        if resolved is None:
            raise NotFound("unsupported path")
        entry, args = resolved
        handler = entry.operations.get(operation)
        if handler is None and operation is Operation.CREATE:
            handler = entry.operations.get(Operation.UPDATE)
        if handler is None:
            raise UnsupportedOperation()
        return await handler(request, args)

    async def _lease_operation(self, request: Request) -> Response | None:
        secret = request.secret
        kind = self.secrets.get(secret.type) if secret is not None else None
        if kind is None:
            raise InvalidRequest("no secret type for this lease")
        if request.operation is Operation.REVOKE:
            await kind.revoke(request)
            return None
        if kind.renew is None:
            raise InvalidRequest("lease is not renewable")
        return await kind.renew(request)

    async def exists(self, request: Request) -> bool | None:
        found = self.route(request.path)
        if found is None:
            return None
        entry, match = found
        if entry.existence_check is None:
            return None
        args = entry.build_args(request, match)
        self._last_args = (request.path, request.data, request.query, entry, args)
        return await entry.existence_check(request, args)

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
