"""sys/policies/password/:name (read, write, delete), LIST, and …/:name/generate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.core.password_policy import (
    PasswordPolicyStore,
    decode_policy_text,
    parse_password_policy,
)
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import NoArgs, Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["password_policy_paths", "password_policy_store"]


@dataclass(frozen=True, slots=True)
class PolicyArgs:
    name: str
    policy: str = ""


def password_policy_store(core: Core) -> PasswordPolicyStore:
    return core.password_policies()


def password_policy_paths(core: Core) -> list[Path]:
    def name_of(args: PolicyArgs) -> str:
        name = args.name.strip()
        if not name:
            raise InvalidRequest("missing policy name")
        return name

    async def list_policies(request: Request, args: NoArgs) -> Response:
        return Response(data={"keys": await password_policy_store(core).names()})

    async def read(request: Request, args: PolicyArgs) -> Response:
        text = await password_policy_store(core).text(name_of(args))
        if text is None:
            raise NotFound("policy does not exist")
        return Response(data={"policy": text})

    async def write(request: Request, args: PolicyArgs) -> None:
        name = name_of(args)
        if not args.policy.strip():
            raise InvalidRequest("missing policy")
        policy = parse_password_policy(args.policy)
        policy.generate()  # Vault proves a policy by generating once before storing it
        # stored decoded, so a read answers the HCL/JSON even when base64 was sent
        await password_policy_store(core).put(name, decode_policy_text(args.policy))

    async def delete(request: Request, args: PolicyArgs) -> None:
        await password_policy_store(core).delete(name_of(args))

    async def generate(request: Request, args: PolicyArgs) -> Response:
        password = await password_policy_store(core).generate(name_of(args))
        return Response(data={"password": password})

    op = Operation
    name = r"(?P<name>[^/]+)"
    return [
        Path(
            r"policies/password/?",
            {op.LIST: list_policies},
            synopsis="List password policies",
        ),
        Path(
            r"policies/password/" + name,
            {op.READ: read, op.CREATE: write, op.UPDATE: write, op.DELETE: delete},
            PolicyArgs,
            synopsis="Read, write or delete a password policy",
            description='A policy is Vault\'s HCL: length and rule "charset" blocks.',
        ),
        Path(
            r"policies/password/" + name + r"/generate",
            {op.READ: generate},
            PolicyArgs,
            synopsis="Generate a password from a password policy",
        ),
    ]
