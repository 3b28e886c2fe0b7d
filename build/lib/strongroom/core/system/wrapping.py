"""sys/wrapping/{lookup,unwrap,rewrap,wrap}."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.core.wrapping import WRAPPING_POLICY, unwrap_token, wrap_response, wrapping_info
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response, Storage

if TYPE_CHECKING:
    from strongroom.core.core import Core
    from strongroom.core.tokens import TokenEntry

__all__ = ["wrapping_paths"]


@dataclass(frozen=True, slots=True)
class TokenArgs:
    token: str = ""


def wrapping_paths(core: Core) -> list[Path]:
    def cubbyhole() -> Storage:
        route = core.router.get("cubbyhole/")
        if route is None:
            raise InvalidRequest("cubbyhole is not mounted")
        return route.storage

    async def target(request: Request, args: TokenArgs) -> tuple[TokenEntry, bool]:
        """The wrapping token and whether it is the caller's own (header) token.

        A token given in the body is spent here, atomically in storage, before its
        response is read: of many concurrent unwraps, exactly one gets it (the header
        token was already spent by core's gate for this request).
        """
        own = not args.token or args.token == request.client_token
        token = request.client_token if own else args.token
        entry = await core.tokens.lookup(token, in_last_use=own) if token else None
        if entry is None or WRAPPING_POLICY not in entry.policies:
            raise InvalidRequest("wrapping token is not valid or does not exist")
        if not own:
            try:
                spent = await core.tokens.use(entry)
            except PermissionDenied:
                raise InvalidRequest("wrapping token is not valid or does not exist") from None
            if spent is not None:
                entry = spent
        return entry, own

    async def lookup(request: Request, args: TokenArgs) -> Response:
        if not args.token:
            raise InvalidRequest("missing token")
        entry = await core.tokens.lookup(args.token)
        if entry is None:
            raise InvalidRequest("wrapping token is not valid or does not exist")
        return Response(data=await wrapping_info(cubbyhole(), entry), data_only=True)

    async def unwrap(request: Request, args: TokenArgs) -> Response:
        entry, own = await target(request, args)
        try:
            body = await unwrap_token(cubbyhole(), entry)
        finally:
            if not own:
                await core.tokens.revoke_tree(entry)  # single use, also when given in the body
        data: dict[str, Any] = body
        return Response(data=data, envelope=False)

    async def rewrap(request: Request, args: TokenArgs) -> Response:
        entry, own = await target(request, args)
        try:
            info = await wrapping_info(cubbyhole(), entry)
            body = await unwrap_token(cubbyhole(), entry)
            result = await wrap_response(
                core.tokens,
                cubbyhole(),
                body,
                ttl=int(info["creation_ttl"]),
                creation_path=str(info["creation_path"]),
            )
        finally:
            if not own:
                await core.tokens.revoke_tree(entry)
        response = Response()
        response.wrap_info = result.wrap_info(str(info["creation_path"]), int(info["creation_ttl"]))
        return response

    async def wrap(request: Request, args: object) -> Response:
        if not request.headers.get("x-vault-wrap-ttl"):
            # Vault: this endpoint exists only to be wrapped, and wraps only when asked
            raise InvalidRequest("endpoint requires response wrapping to be used")
        if not request.data:
            raise InvalidRequest("no data provided to wrap")
        return Response(data=dict(request.data))

    update = Operation.UPDATE
    return [
        Path(r"wrapping/lookup", {update: lookup}, TokenArgs, synopsis="Look up wrapping info"),
        Path(r"wrapping/unwrap", {update: unwrap}, TokenArgs, synopsis="Unwrap a response"),
        Path(r"wrapping/rewrap", {update: rewrap}, TokenArgs, synopsis="Rewrap a response"),
        Path(r"wrapping/wrap", {update: wrap}, raw_body=True, synopsis="Wrap arbitrary data"),
    ]
