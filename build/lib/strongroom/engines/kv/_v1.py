"""KV version 1: an unversioned key/value store at arbitrary paths.

A write stores the whole JSON body at the path (replacing what was there); a read returns it;
LIST returns the children of a folder (folders end in ``/``). Each secret is one storage record
at its own path in the mount's view.

A ``ttl`` (or legacy ``lease``) member is stored and returned like any other, and is also
Vault's advisory ``lease_duration`` of reads: a read answers with a non-renewable Secret whose
TTL is that member or else the mount's default lease TTL, marked ``leased=False`` so core
registers no lease for it (as Vault does for ``kv`` mounts); clients such as
consul-template use the duration as their refresh interval. A write whose ``ttl`` cannot be
parsed is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.errors import InternalError, InvalidPath, InvalidRequest
from strongroom.framework import FrameworkBackend, Path, parse_duration
from strongroom.logical import (
    BackendKind,
    Operation,
    Request,
    Response,
    Secret,
    Storage,
    SystemView,
)

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


def _ttl_hint(data: dict[str, Any]) -> Any:
    """The advisory TTL member of a secret, if it has one (``ttl``, else ``lease``)."""
    return data.get("ttl", data.get("lease"))


class V1Paths:
    """The single catch-all path of a KV v1 mount."""

    def __init__(self, system: SystemView) -> None:
        self.system = system

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
        data = orjson.loads(raw)
        ttl = self.system.default_lease_ttl()
        hint = _ttl_hint(data)
        if hint is not None:
            try:
                ttl = int(parse_duration(hint, "ttl"))
            except InvalidRequest:
                pass  # stored before it was validated: the mount's default stands, as in Vault
        return Response(data=data, secret=Secret(type="kv", ttl=ttl, renewable=False, leased=False))

    async def write(self, request: Request, args: V1Args) -> Response | None:
        if args.path == "":
            raise InvalidRequest("missing path")
        if args.path.endswith("/"):
            raise InvalidPath("invalid secret path: must not end in '/'")
        _check_segments(args.path)
        if not request.data:
            raise InvalidRequest("missing data fields")
        hint = _ttl_hint(dict(request.data))
        if hint is not None:
            try:
                parse_duration(hint, "ttl")
            except InvalidRequest:
                raise InvalidRequest("failed to parse ttl for entry") from None
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


def build_v1(system: SystemView) -> FrameworkBackend:
    return FrameworkBackend(
        kind=BackendKind.SECRET, paths=V1Paths(system).paths(), help=_BACKEND_HELP
    )


_V1_HELP = """\
Stores the request body as the secret at the path, returning it on read. Writing replaces the
whole secret. A "ttl" member is kept and reported as the advisory lease duration of reads; no
lease is created. LIST returns the keys under a folder; folders end in "/"."""

_BACKEND_HELP = """\
The kv backend (version 1) reads and writes arbitrary secrets to the mount's encrypted storage.
Secrets are unversioned: a write replaces the previous value."""
