"""Cubbyhole: private storage for each token, destroyed with it.

Every record of a token lives under ``<cubbyhole_id>/`` in the mount's storage view.
``cubbyhole_id`` is a per-token identifier core puts in :class:`~strongroom.logical.TokenInfo`
(never the token itself, so storage keys reveal no token). The engine trusts core to set it
and to call :func:`destroy_token_storage` when the token is revoked; it refuses any request
without one, because an empty prefix would expose every token's cubbyhole.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from strongroom.errors import InternalError, InvalidPath, InvalidRequest, PermissionDenied
from strongroom.framework import FrameworkBackend, Path, list_all
from strongroom.logical import (
    Backend,
    BackendConfig,
    BackendKind,
    Operation,
    Request,
    Response,
    Storage,
    StorageOp,
)

__all__ = ["CubbyholeArgs", "destroy_token_storage", "factory"]

# deletes per transaction when a token's cubbyhole is destroyed
_DESTROY_BATCH = 500


@dataclass(frozen=True, slots=True)
class CubbyholeArgs:
    path: str


def _check_id(cubbyhole_id: str) -> None:
    # A "/" would let one token's prefix reach into another's; empty would reach them all.
    if not cubbyhole_id or "/" in cubbyhole_id or cubbyhole_id in (".", ".."):
        raise PermissionDenied()


def _check_segments(path: str) -> None:
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPath("invalid secret path: empty, '.' or '..' segment")


def _prefix(request: Request) -> str:
    """The caller's own folder in the storage view; refuses callers without a cubbyhole."""
    if request.token is None:
        raise PermissionDenied()
    if request.token.token_type == "batch":  # noqa: S105 (a token kind)
        raise InvalidRequest("cubbyhole operations are only supported by 'service' type tokens")
    _check_id(request.token.cubbyhole_id)
    return request.token.cubbyhole_id + "/"


def _storage(request: Request) -> Storage:
    if request.storage is None:
        raise InternalError("request carries no storage view")
    return request.storage


def _leaf(request: Request, path: str) -> str:
    prefix = _prefix(request)
    if path == "":
        raise InvalidRequest("missing path")
    if path.endswith("/"):
        raise InvalidPath("invalid secret path: must not end in '/'")
    _check_segments(path)
    return prefix + path


async def _exists(request: Request, args: CubbyholeArgs) -> bool:
    return await _storage(request).get(_leaf(request, args.path)) is not None


async def _read(request: Request, args: CubbyholeArgs) -> Response | None:
    raw = await _storage(request).get(_leaf(request, args.path))
    return None if raw is None else Response(data=orjson.loads(raw))


async def _write(request: Request, args: CubbyholeArgs) -> Response | None:
    key = _leaf(request, args.path)
    if not request.data:
        raise InvalidRequest("missing data fields")
    try:
        encoded = orjson.dumps(dict(request.data))
    except (orjson.JSONEncodeError, TypeError):
        raise InvalidRequest("data: contains a value that cannot be stored as JSON") from None
    await _storage(request).put(key, encoded)
    return None


async def _delete(request: Request, args: CubbyholeArgs) -> Response | None:
    await _storage(request).delete(_leaf(request, args.path))
    return None


async def _list(request: Request, args: CubbyholeArgs) -> Response | None:
    folder = args.path
    if folder and not folder.endswith("/"):
        folder += "/"
    if folder:
        _check_segments(folder[:-1])
    keys = await _storage(request).list(_prefix(request) + folder)
    return Response(data={"keys": keys}) if keys else None


async def destroy_token_storage(storage: Storage, cubbyhole_id: str) -> None:
    """Delete every record of one token's cubbyhole (core calls this on revocation).

    Args:
        storage: the cubbyhole mount's storage view.
        cubbyhole_id: the revoked token's ``TokenInfo.cubbyhole_id``.

    Raises:
        ValueError: ``cubbyhole_id`` is empty or contains "/", which would reach other tokens.
    """
    if not cubbyhole_id or "/" in cubbyhole_id or cubbyhole_id in (".", ".."):
        raise ValueError("invalid cubbyhole id")
    prefix = cubbyhole_id + "/"
    keys = await list_all(storage, prefix)
    for start in range(0, len(keys), _DESTROY_BATCH):
        batch = keys[start : start + _DESTROY_BATCH]
        await storage.transaction([StorageOp(prefix + key) for key in batch])


PATHS = [
    Path(
        pattern=r"(?P<path>.*)",
        args=CubbyholeArgs,
        raw_body=True,
        operations={
            Operation.READ: _read,
            Operation.CREATE: _write,
            Operation.UPDATE: _write,
            Operation.DELETE: _delete,
            Operation.LIST: _list,
        },
        existence_check=_exists,
        synopsis="Pass-through secret storage to a token-specific cubbyhole in the storage "
        "backend, allowing you to read/write arbitrary data into secret storage.",
        description="""\
The cubbyhole backend reads and writes arbitrary secrets to the storage backend. The secrets
are encrypted at rest, and each token sees only its own cubbyhole: no token, not even root,
can read another token's. The cubbyhole is destroyed when its token is revoked.""",
    )
]


async def factory(config: BackendConfig) -> Backend:
    """Build the cubbyhole backend for a mount.

    Args:
        config: the mount's configuration (the engine needs no options).

    Returns:
        The backend; every request must carry a ``TokenInfo`` with a ``cubbyhole_id``.
    """
    return FrameworkBackend(
        kind=BackendKind.SECRET,
        paths=PATHS,
        help="Per-token private secret storage, destroyed when the token is revoked.",
    )
