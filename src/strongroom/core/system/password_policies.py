"""sys/policies/password/:name (read, write, delete), LIST, and …/:name/generate."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.core.password_policy import (
    PasswordPolicyStore,
    decode_policy_text,
    parse_password_policy,
)
from strongroom.core.system._context import SysContext, SystemCore
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Endpoint, NoArgs
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE", "password_policy_store"]


@dataclass(frozen=True, slots=True)
class PolicyArgs:
    name: str
    policy: str = ""


def password_policy_store(core: SystemCore) -> PasswordPolicyStore:
    return core.password_policies()


def _name_of(args: PolicyArgs) -> str:
    name = args.name.strip()
    if not name:
        raise InvalidRequest("missing policy name")
    return name


async def _list_policies(ctx: SysContext, request: Request, args: NoArgs) -> Response:
    return Response(data={"keys": await password_policy_store(ctx.core).names()})


async def _read(ctx: SysContext, request: Request, args: PolicyArgs) -> Response:
    text = await password_policy_store(ctx.core).text(_name_of(args))
    if text is None:
        raise NotFound("policy does not exist")
    return Response(data={"policy": text})


async def _write(ctx: SysContext, request: Request, args: PolicyArgs) -> None:
    name = _name_of(args)
    if not args.policy.strip():
        raise InvalidRequest("missing policy")
    policy = parse_password_policy(args.policy)
    policy.generate()  # Vault proves a policy by generating once before storing it
    # stored decoded, so a read answers the HCL/JSON even when base64 was sent
    await password_policy_store(ctx.core).put(name, decode_policy_text(args.policy))


async def _delete(ctx: SysContext, request: Request, args: PolicyArgs) -> None:
    await password_policy_store(ctx.core).delete(_name_of(args))


async def _generate(ctx: SysContext, request: Request, args: PolicyArgs) -> Response:
    password = await password_policy_store(ctx.core).generate(_name_of(args))
    return Response(data={"password": password})


_op = Operation


_NAME = r"(?P<name>[^/]+)"


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"policies/password/?",
        {_op.LIST: _list_policies},
        synopsis="List password policies",
    ),
    Endpoint(
        r"policies/password/" + _NAME,
        {_op.READ: _read, _op.CREATE: _write, _op.UPDATE: _write, _op.DELETE: _delete},
        PolicyArgs,
        synopsis="Read, write or delete a password policy",
        description='A policy is Vault\'s HCL: length and rule "charset" blocks.',
    ),
    Endpoint(
        r"policies/password/" + _NAME + r"/generate",
        {_op.READ: _generate},
        PolicyArgs,
        synopsis="Generate a password from a password policy",
    ),
]
