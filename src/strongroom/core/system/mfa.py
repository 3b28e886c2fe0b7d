"""sys/mfa/validate: completes a login that answered ``auth.mfa_requirement`` (unauthenticated,
as in Vault). The codes are checked and the pending login consumed by ``core/mfa.py``; the
road's MFA gate then mints the token at the original login path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.core.mfa import VALIDATE_PATH, complete
from strongroom.core.system._context import SysContext
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]


@dataclass(frozen=True, slots=True)
class ValidateArgs:
    mfa_request_id: str = ""
    mfa_payload: dict[str, Any] = field(default_factory=dict)


async def _validate(ctx: SysContext, request: Request, args: ValidateArgs) -> Response:
    return Response(auth=await complete(ctx.core, args.mfa_request_id, args.mfa_payload))


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        pattern=VALIDATE_PATH,
        args=ValidateArgs,
        operations={Operation.UPDATE: _validate},
        synopsis="Validate a login that is subject to MFA",
        description=(
            "mfa_request_id from the login's auth.mfa_requirement, and mfa_payload: "
            "method ID (or name) -> [passcode]. Answers the login's token."
        ),
    )
]
