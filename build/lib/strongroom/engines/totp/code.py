"""code/<name>: GET generates the current code, POST validates one (once per time step)."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.engines.totp._store import USED_PREFIX, load_key, storage_of
from strongroom.engines.totp.keys import NAME
from strongroom.errors import InvalidRequest
from strongroom.framework import Path, UsedSteps
from strongroom.logical import Operation, Request, Response, SystemView

__all__ = ["CodePaths"]


@dataclass(frozen=True, slots=True)
class CodeArgs:
    name: str
    code: str = ""


class CodePaths:
    def __init__(self, system: SystemView) -> None:
        self.system = system
        self.used = UsedSteps()

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"code/" + NAME,
                args=CodeArgs,
                operations={Operation.READ: self.generate, Operation.UPDATE: self.validate},
                synopsis="Generate or validate a TOTP code",
                description=(
                    "GET returns the key's current code. POST with code answers "
                    '{"valid": true|false}; a code is accepted once: a second use within its '
                    "validity window is refused."
                ),
            )
        ]

    async def generate(self, request: Request, args: CodeArgs) -> Response | None:
        key = await load_key(storage_of(request), args.name)
        if key is None:
            raise InvalidRequest(f"unknown key: {args.name}")
        return Response(data={"code": key.now_code(self.system.now())})

    async def validate(self, request: Request, args: CodeArgs) -> Response | None:
        if not args.code:
            raise InvalidRequest("the code value is required")
        storage = storage_of(request)
        key = await load_key(storage, args.name)
        if key is None:
            raise InvalidRequest(f"unknown key: {args.name}")
        now = self.system.now()
        step = key.match(args.code, now)
        if step is None:
            return Response(data={"valid": False})
        claimed = await self.used.claim(
            storage, USED_PREFIX + args.name, step, key.used_until(step), now
        )
        if not claimed:
            raise InvalidRequest("code already used; wait until the next time period")
        return Response(data={"valid": True})
