"""sys/raw/:path: the decrypted storage, below every mount and record format (Vault's
``raw_storage_endpoint``; the paths exist only when the config turns it on, as in Vault,
and dev mode does). Every path is sudo.

Reads answer ``{"value": <text>}`` (``encoding=base64`` for bytes that are not UTF-8
text); writes take ``value`` (and ``encoding``). The seal records (keyring, root key, seal
configuration) stay out of reach: the barrier refuses them. Compressed values
(``compression_type``) are not supported: nothing here stores compressed entries.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]


@dataclass(frozen=True, slots=True)
class RawArgs:
    path: str = ""
    value: str = ""  # as Vault, an absent value writes an empty entry
    encoding: str = ""
    compression_type: str = ""


# the seal records (Vault's protected paths): the barrier refuses them as well
_PROTECTED = ("core/keyring", "core/root-key", "core/seal-config", "core/master")


def _check(args: RawArgs) -> None:
    if any(args.path == p or args.path.startswith(p + "/") for p in _PROTECTED):
        raise InvalidRequest(f'cannot access "{args.path}"')
    if args.encoding not in ("", "base64"):
        raise InvalidRequest('encoding must be "base64" or empty')
    if args.compression_type:
        raise InvalidRequest("compressed values are not supported")


async def _read(ctx: SysContext, request: Request, args: RawArgs) -> Response | None:
    _check(args)
    if not args.path:
        raise InvalidRequest("missing path")
    value = await ctx.core.barrier.get(args.path)
    if value is None:
        return None
    if args.encoding == "base64":
        return Response(data={"value": base64.b64encode(value).decode()})
    try:
        return Response(data={"value": value.decode("utf-8")})
    except UnicodeDecodeError:
        raise InvalidRequest("the value is not UTF-8 text; read it with encoding=base64") from None


async def _write(ctx: SysContext, request: Request, args: RawArgs) -> None:
    _check(args)
    if not args.path:
        raise InvalidRequest("missing path")
    if args.encoding == "base64":
        try:
            value = base64.b64decode(args.value, validate=True)
        except binascii.Error:
            raise InvalidRequest("value is not valid base64") from None
    else:
        value = args.value.encode("utf-8")
    await ctx.core.barrier.put(args.path, value)


async def _delete(ctx: SysContext, request: Request, args: RawArgs) -> None:
    _check(args)
    if not args.path:
        raise InvalidRequest("missing path")
    await ctx.core.barrier.delete(args.path)


async def _listing(ctx: SysContext, request: Request, args: RawArgs) -> Response | None:
    keys = await ctx.core.barrier.list(args.path)
    return Response(data={"keys": keys}) if keys else None


_op = Operation


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(r"raw/?", {_op.LIST: _listing}, RawArgs, synopsis="Top-level raw storage keys"),
    Endpoint(
        r"raw/(?P<path>.+)",
        {
            _op.READ: _read,
            _op.UPDATE: _write,
            _op.CREATE: _write,
            _op.DELETE: _delete,
            _op.LIST: _listing,
        },
        RawArgs,
        synopsis="Raw (decrypted) storage entries (sudo)",
    ),
]
