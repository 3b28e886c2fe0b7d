"""sys/wrapping/{lookup,unwrap,rewrap,wrap}."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.core.system._context import SysContext
from strongroom.core.wrapping import WRAPPING_POLICY, unwrap_token, wrap_response, wrapping_info
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response, Storage

if TYPE_CHECKING:
    from strongroom.core.tokens import TokenEntry

__all__ = ["TABLE"]


@dataclass(frozen=True, slots=True)
class TokenArgs:
    token: str = ""


def _cubbyhole(ctx: SysContext) -> Storage:
    route = ctx.core.router.get("cubbyhole/")
    if route is None:
        raise InvalidRequest("cubbyhole is not mounted")
    return route.storage


async def _target(ctx: SysContext, request: Request, args: TokenArgs) -> tuple[TokenEntry, bool]:
    """The wrapping token and whether it is the caller's own (header) token.

    A token given in the body is spent here, atomically in storage, before its
    response is read: of many concurrent unwraps, exactly one gets it (the header
    token was already spent by core's gate for this request).
    """
    own = not args.token or args.token == request.client_token
    token = request.client_token if own else args.token
    entry = await ctx.core.tokens.lookup(token, in_last_use=own) if token else None
    if entry is None or WRAPPING_POLICY not in entry.policies:
        raise InvalidRequest("wrapping token is not valid or does not exist")
    if not own:
        try:
            spent = await ctx.core.tokens.use(entry)
        except PermissionDenied:
            raise InvalidRequest("wrapping token is not valid or does not exist") from None
        if spent is not None:
            entry = spent
    return entry, own


async def _lookup(ctx: SysContext, request: Request, args: TokenArgs) -> Response:
    if not args.token:
        raise InvalidRequest("missing token")
    entry = await ctx.core.tokens.lookup(args.token)
    if entry is None:
        raise InvalidRequest("wrapping token is not valid or does not exist")
    return Response(data=await wrapping_info(_cubbyhole(ctx), entry), data_only=True)


async def _unwrap(ctx: SysContext, request: Request, args: TokenArgs) -> Response:
    entry, own = await _target(ctx, request, args)
    try:
        body = await unwrap_token(_cubbyhole(ctx), entry)
    finally:
        if not own:
            await ctx.core.tokens.revoke_tree(entry)  # single use, also when given in the body
    data: dict[str, Any] = body
    return Response(data=data, envelope=False)


async def _rewrap(ctx: SysContext, request: Request, args: TokenArgs) -> Response:
    entry, own = await _target(ctx, request, args)
    try:
        info = await wrapping_info(_cubbyhole(ctx), entry)
        body = await unwrap_token(_cubbyhole(ctx), entry)
        result = await wrap_response(
            ctx.core.tokens,
            _cubbyhole(ctx),
            body,
            ttl=int(info["creation_ttl"]),
            creation_path=str(info["creation_path"]),
        )
    finally:
        if not own:
            await ctx.core.tokens.revoke_tree(entry)
    response = Response()
    response.wrap_info = result.wrap_info(str(info["creation_path"]), int(info["creation_ttl"]))
    return response


async def _wrap(ctx: SysContext, request: Request, args: object) -> Response:
    if not request.headers.get("x-vault-wrap-ttl"):
        # Vault: this endpoint exists only to be wrapped, and wraps only when asked
        raise InvalidRequest("endpoint requires response wrapping to be used")
    if not request.data:
        raise InvalidRequest("no data provided to wrap")
    return Response(data=dict(request.data))


_update = Operation.UPDATE


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(r"wrapping/lookup", {_update: _lookup}, TokenArgs, synopsis="Look up wrapping info"),
    Endpoint(r"wrapping/unwrap", {_update: _unwrap}, TokenArgs, synopsis="Unwrap a response"),
    Endpoint(r"wrapping/rewrap", {_update: _rewrap}, TokenArgs, synopsis="Rewrap a response"),
    Endpoint(r"wrapping/wrap", {_update: _wrap}, raw_body=True, synopsis="Wrap arbitrary data"),
]
