"""identity/oidc/*: identity-token keys, roles, issuing, introspection and discovery.

``oidc/.well-known/*`` is unauthenticated (listed by the backend) so that any service can
fetch the public keys; everything else needs a token the ACL allows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from strongroom.core.identity._oidc import OIDCProvider
from strongroom.core.identity._views import keys_response
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, Path
from strongroom.logical import Operation, Request, Response

__all__ = ["UNAUTHENTICATED", "OIDCPaths"]

UNAUTHENTICATED = ("oidc/.well-known/*",)
_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?"


@dataclass(frozen=True, slots=True)
class ConfigArgs:
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class KeyArgs:
    name: str
    algorithm: str | None = None
    rotation_period: Duration | None = None
    verification_ttl: Duration | None = None
    allowed_client_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class RotateArgs:
    name: str
    verification_ttl: Duration | None = None


@dataclass(frozen=True, slots=True)
class RoleArgs:
    name: str
    key: str | None = None
    template: str | None = None
    client_id: str | None = None
    ttl: Duration | None = None


@dataclass(frozen=True, slots=True)
class NameArgs:
    name: str


@dataclass(frozen=True, slots=True)
class IntrospectArgs:
    token: str = ""
    client_id: str = ""


class OIDCPaths:
    def __init__(
        self,
        provider: OIDCProvider,
        key_users: Callable[[str], Awaitable[list[str]]] | None = None,
    ) -> None:
        self.provider = provider
        # the OIDC provider's clients that sign with a key (a used key cannot be deleted)
        self.key_users = key_users

    async def read_config(self, request: Request, args: ConfigArgs) -> Response | None:
        return Response(data={"issuer": await self.provider.configured_issuer()})

    async def write_config(self, request: Request, args: ConfigArgs) -> Response | None:
        if args.issuer is None:
            return None
        await self.provider.set_issuer(args.issuer)
        return Response(
            warnings=[
                'If "issuer" is set explicitly, all tokens must be validated against that '
                'address. Setting issuer to "" restores the default (the api_addr).'
            ]
        )

    # -- keys ------------------------------------------------------------------------------
    async def key_exists(self, request: Request, args: KeyArgs) -> bool:
        return await self.provider.key(args.name) is not None

    async def read_key(self, request: Request, args: KeyArgs) -> Response | None:
        key = await self.provider.key(args.name)
        if key is None:
            return None
        # settings only: the private key never leaves storage
        return Response(
            data={
                "algorithm": key.algorithm,
                "rotation_period": key.rotation_period,
                "verification_ttl": key.verification_ttl,
                "allowed_client_ids": list(key.allowed_client_ids),
            }
        )

    async def write_key(self, request: Request, args: KeyArgs) -> Response | None:
        await self.provider.write_key(
            args.name,
            algorithm=args.algorithm,
            rotation_period=args.rotation_period,
            verification_ttl=args.verification_ttl,
            allowed_client_ids=args.allowed_client_ids,
        )
        return None

    async def delete_key(self, request: Request, args: KeyArgs) -> Response | None:
        users = await self.key_users(args.name) if self.key_users is not None else []
        if users:
            raise InvalidRequest(
                f"unable to delete key {args.name!r}: referenced by clients {', '.join(users)}"
            )
        await self.provider.delete_key(args.name)
        return None

    async def list_keys(self, request: Request, args: object) -> Response | None:
        return keys_response(await self.provider.key_names())

    async def rotate(self, request: Request, args: RotateArgs) -> Response | None:
        await self.provider.rotate_key(args.name, args.verification_ttl)
        return None

    # -- roles -----------------------------------------------------------------------------
    async def role_exists(self, request: Request, args: RoleArgs) -> bool:
        return await self.provider.role(args.name) is not None

    async def read_role(self, request: Request, args: RoleArgs) -> Response | None:
        role = await self.provider.role(args.name)
        if role is None:
            return None
        return Response(
            data={
                "client_id": role.client_id,
                "key": role.key,
                "template": role.template,
                "ttl": role.ttl,
            }
        )

    async def write_role(self, request: Request, args: RoleArgs) -> Response | None:
        await self.provider.write_role(
            args.name, key=args.key, template=args.template, client_id=args.client_id, ttl=args.ttl
        )
        return None

    async def delete_role(self, request: Request, args: RoleArgs) -> Response | None:
        await self.provider.delete_role(args.name)
        return None

    async def list_roles(self, request: Request, args: object) -> Response | None:
        return keys_response(await self.provider.role_names())

    # -- tokens ----------------------------------------------------------------------------
    async def token(self, request: Request, args: NameArgs) -> Response | None:
        # Only ever for the caller's own entity: the entity comes from core's token lookup.
        entity_id = request.token.entity_id if request.token is not None else ""
        token, role = await self.provider.issue(args.name, entity_id)
        return Response(data={"client_id": role.client_id, "token": token, "ttl": role.ttl})

    async def introspect(self, request: Request, args: IntrospectArgs) -> Response | None:
        if not args.token:
            raise InvalidRequest("missing token")
        active, reason = await self.provider.introspect(args.token, args.client_id)
        body: dict[str, object] = {"active": active}
        if not active:
            body["error"] = reason
        return Response(data=body, envelope=False)

    async def discovery(self, request: Request, args: object) -> Response | None:
        return Response(data=await self.provider.discovery(), envelope=False)

    async def jwks(self, request: Request, args: object) -> Response | None:
        max_age = await self.provider.max_age()
        return Response(
            data=await self.provider.jwks(),
            envelope=False,
            headers={"Cache-Control": f"max-age={max_age}"},
        )

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"oidc/config",
                args=ConfigArgs,
                operations={Operation.READ: self.read_config, Operation.UPDATE: self.write_config},
                synopsis="Identity-token issuer configuration",
                description="issuer: the https://host[:port] tokens are issued from "
                "(default: api_addr); /v1/identity/oidc is appended.",
            ),
            Path(
                pattern=r"oidc/key/?",
                operations={Operation.LIST: self.list_keys},
                synopsis="List named signing keys",
            ),
            Path(
                pattern=rf"oidc/key/(?P<name>{_NAME})",
                args=KeyArgs,
                existence_check=self.key_exists,
                operations={
                    Operation.READ: self.read_key,
                    Operation.UPDATE: self.write_key,
                    Operation.DELETE: self.delete_key,
                },
                synopsis="Manage a named signing key",
                description=_KEY_HELP,
            ),
            Path(
                pattern=rf"oidc/key/(?P<name>{_NAME})/rotate",
                args=RotateArgs,
                operations={Operation.UPDATE: self.rotate},
                synopsis="Rotate a named signing key",
                description="A new key signs from now on; the old public key stays "
                "published for verification_ttl (this call's, or the key's).",
            ),
            Path(
                pattern=r"oidc/role/?",
                operations={Operation.LIST: self.list_roles},
                synopsis="List identity-token roles",
            ),
            Path(
                pattern=rf"oidc/role/(?P<name>{_NAME})",
                args=RoleArgs,
                existence_check=self.role_exists,
                operations={
                    Operation.READ: self.read_role,
                    Operation.UPDATE: self.write_role,
                    Operation.DELETE: self.delete_role,
                },
                synopsis="Manage an identity-token role",
                description=_ROLE_HELP,
            ),
            Path(
                pattern=rf"oidc/token/(?P<name>{_NAME})",
                args=NameArgs,
                operations={Operation.READ: self.token},
                synopsis="Issue a signed identity token for the caller's entity",
            ),
            Path(
                pattern=r"oidc/introspect",
                args=IntrospectArgs,
                operations={Operation.UPDATE: self.introspect},
                synopsis="Check whether an identity token is active (for client_id)",
            ),
            Path(
                pattern=r"oidc/\.well-known/openid-configuration",
                operations={Operation.READ: self.discovery},
                synopsis="OpenID provider configuration (unauthenticated)",
            ),
            Path(
                pattern=r"oidc/\.well-known/keys",
                operations={Operation.READ: self.jwks},
                synopsis="Public keys that verify identity tokens (unauthenticated)",
            ),
        ]


_KEY_HELP = """\
algorithm (RS256 default, RS384, RS512, ES256, ES384, ES512, EdDSA), rotation_period (24h),
verification_ttl (24h: how long a rotated-out public key stays published), and
allowed_client_ids (the role client IDs that may sign with it; "*" for all, none if empty).
A key used by a role cannot be deleted."""

_ROLE_HELP = """\
key (a named key), template (JSON, or base64 JSON, whose {{identity.entity...}} and
{{time.now...}} parameters become claims; standard claims cannot be overridden), client_id
(the token audience: generated if unset, unique per role) and ttl (24h, at most the key's
verification_ttl)."""
