"""KV version 1: an unversioned key/value store at arbitrary paths.

A write stores the whole JSON body at the path (replacing what was there); a read returns it;
LIST returns the children of a folder (folders end in ``/``). Each secret is one storage record
at its own path in the mount's view.

A ``ttl`` member is stored and returned like any other; it is Vault's advisory
``lease_duration`` hint, which core (not this engine) turns into the response's lease duration.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from strongroom.errors import InternalError, InvalidPath, InvalidRequest
from strongroom.framework import FrameworkBackend, Path
from strongroom.logical import BackendKind, Operation, Request, Response, Storage

__all__ = ["V1Args", "V1Paths", "build_v1"]


@dataclass(frozen=True, slots=True)
class V1Args:
    path: str


def _storage(request: Request) -> Storage:
    if request.storage is None:
        raise InternalError("request carries no storage view")
    return request.storage


def _check_segments(path: str) -> None:
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPath("invalid secret path: empty, '.' or '..' segment")


def _leaf(path: str) -> str | None:
    """The record a read/delete names, or ``None`` when the path cannot name one."""
    if path == "" or path.endswith("/"):
        return None
    _check_segments(path)
    return path


class V1Paths:
    """The single catch-all path of a KV v1 mount."""

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"(?P<path>.*)",
                args=V1Args,
                raw_body=True,
                operations={
                    Operation.READ: self.read,
                    Operation.CREATE: self.write,
                    Operation.UPDATE: self.write,
                    Operation.DELETE: self.delete,
                    Operation.LIST: self.list_keys,
                },
                existence_check=self.exists,
                synopsis="Pass-through secret storage to the mount's storage view.",
                description=_V1_HELP,
            )
        ]

    async def exists(self, request: Request, args: V1Args) -> bool:
        key = _leaf(args.path)
        return key is not None and await _storage(request).get(key) is not None

    async def read(self, request: Request, args: V1Args) -> Response | None:
        key = _leaf(args.path)
        if key is None:
            return None
        raw = await _storage(request).get(key)
        if raw is None:
            return None
        return Response(data=orjson.loads(raw))

    async def write(self, request: Request, args: V1Args) -> Response | None:
        if args.path == "":
            raise InvalidRequest("missing path")
        if args.path.endswith("/"):
            raise InvalidPath("invalid secret path: must not end in '/'")
        _check_segments(args.path)
        if not request.data:
            raise InvalidRequest("missing data fields")
        try:
            encoded = orjson.dumps(dict(request.data))
        except (orjson.JSONEncodeError, TypeError):
            raise InvalidRequest("data: contains a value that cannot be stored as JSON") from None
        await _storage(request).put(args.path, encoded)
        return None

    async def delete(self, request: Request, args: V1Args) -> Response | None:
        key = _leaf(args.path)
        if key is not None:
            await _storage(request).delete(key)
        return None

    async def list_keys(self, request: Request, args: V1Args) -> Response | None:
        prefix = args.path
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if prefix:
            _check_segments(prefix[:-1])
        keys = await _storage(request).list(prefix)
        return Response(data={"keys": keys}) if keys else None


def build_v1() -> FrameworkBackend:
    return FrameworkBackend(kind=BackendKind.SECRET, paths=V1Paths().paths(), help=_BACKEND_HELP)


_V1_HELP = """\
Stores the request body as the secret at the path, returning it on read. Writing replaces the
whole secret. A "ttl" member is kept and reported as the advisory lease duration of reads; no
lease is created. LIST returns the keys under a folder; folders end in "/"."""

_BACKEND_HELP = """\
The kv backend (version 1) reads and writes arbitrary secrets to the mount's encrypted storage.
Secrets are unversioned: a write replaces the previous value."""
