"""sys/mfa/validate: completes a login that answered ``auth.mfa_requirement`` (unauthenticated,
as in Vault). The codes are checked and the pending login consumed by ``core/mfa.py``; the
road's MFA gate then mints the token at the original login path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strongroom.core.mfa import VALIDATE_PATH, complete
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["mfa_paths"]


@dataclass(frozen=True, slots=True)
class ValidateArgs:
    mfa_request_id: str = ""
    mfa_payload: dict[str, Any] = field(default_factory=dict)


def mfa_paths(core: Core) -> list[Path]:
    async def validate(request: Request, args: ValidateArgs) -> Response:
        return Response(auth=await complete(core, args.mfa_request_id, args.mfa_payload))

    return [
        Path(
            pattern=VALIDATE_PATH,
            args=ValidateArgs,
            operations={Operation.UPDATE: validate},
            synopsis="Validate a login that is subject to MFA",
            description=(
                "mfa_request_id from the login's auth.mfa_requirement, and mfa_payload: "
                "method ID (or name) -> [passcode]. Answers the login's token."
            ),
        )
    ]
