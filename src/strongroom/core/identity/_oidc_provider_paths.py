"""identity/oidc/{scope,assignment,client,provider}/* and each provider's discovery,
authorize, token and userinfo endpoints (Vault as an OIDC provider; see _oidc_provider.py).

Discovery, token and userinfo are unauthenticated as in Vault: the token endpoint
authenticates the client (HTTP Basic or ``client_id``/``client_secret`` in the body, which
may be form-encoded), userinfo takes the access token as ``Authorization: Bearer``.
Authorize needs a Vault token with an entity. OAuth errors answer
``{"error": ..., "error_description": ...}``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar
from urllib.parse import unquote

from strongroom.core.identity._oidc_provider import (
    AuthorizeParams,
    OAuthError,
    ProviderStore,
    TokenParams,
)
from strongroom.core.identity._views import keys_response
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, Path
from strongroom.logical import Operation, Request, Response

__all__ = ["UNAUTHENTICATED", "ProviderPaths"]

UNAUTHENTICATED = (
    "oidc/provider/+/.well-known/*",
    "oidc/provider/+/token",
    "oidc/provider/+/userinfo",
)
_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?"
_PROVIDER = rf"oidc/provider/(?P<name>{_NAME})"


@dataclass(frozen=True, slots=True)
class NameArgs:
    name: str


@dataclass(frozen=True, slots=True)
class ScopeArgs:
    name: str
    template: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class AssignmentArgs:
    name: str
    entity_ids: list[str] | None = None
    group_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class ClientArgs:
    name: str
    key: str | None = None
    redirect_uris: list[str] | None = None
    assignments: list[str] | None = None
    client_type: str | None = None
    id_token_ttl: Duration | None = None
    access_token_ttl: Duration | None = None


@dataclass(frozen=True, slots=True)
class ProviderArgs:
    name: str
    issuer: str | None = None
    allowed_client_ids: list[str] | None = None
    scopes_supported: list[str] | None = None


_P = TypeVar("_P", AuthorizeParams, TokenParams)


@dataclass(frozen=True, slots=True)
class AuthorizeArgs:
    name: str
    scope: str = ""
    response_type: str = ""
    client_id: str = ""
    redirect_uri: str = ""
    state: str = ""
    nonce: str = ""
    max_age: int | None = None
    code_challenge: str = ""
    code_challenge_method: str = ""


@dataclass(frozen=True, slots=True)
class TokenArgs:
    name: str
    code: str = field(default="", repr=False)
    grant_type: str = ""
    redirect_uri: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    code_verifier: str = field(default="", repr=False)


def _params(kind: type[_P], args: object) -> _P:
    """The store's parameter record from a path's args: the same fields, less the name."""
    return kind(**{f.name: getattr(args, f.name) for f in fields(kind)})


def _oauth(error: OAuthError, state: str = "") -> Response:
    body: dict[str, Any] = {"error": error.error, "error_description": error.description}
    if state:
        body["state"] = state
    headers = {"WWW-Authenticate": f'Bearer error="{error.error}"'} if error.status == 401 else {}
    return Response(data=body, envelope=False, status=error.status, headers=headers)


def _authorization(request: Request) -> tuple[str, str]:
    """(scheme, credentials) of the Authorization header ('' when absent)."""
    value = request.headers.get("authorization", "")
    scheme, _, credentials = value.partition(" ")
    return scheme.lower(), credentials.strip()


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, credentials = _authorization(request)
    if scheme != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "client failed to authenticate", 401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "client failed to authenticate", 401)
    # RFC 6749 2.3.1: both parts are form-urlencoded before they are joined
    return unquote(client_id), unquote(secret)


class ProviderPaths:
    def __init__(self, store: ProviderStore) -> None:
        self.store = store

    # -- scopes ----------------------------------------------------------------------------
    async def scope_exists(self, request: Request, args: ScopeArgs) -> bool:
        return await self.store.scope(args.name) is not None

    async def read_scope(self, request: Request, args: ScopeArgs) -> Response | None:
        scope = await self.store.scope(args.name)
        if scope is None:
            return None
        return Response(data={"template": scope.template, "description": scope.description})

    async def write_scope(self, request: Request, args: ScopeArgs) -> Response | None:
        await self.store.write_scope(args.name, args.template, args.description)
        return None

    async def delete_scope(self, request: Request, args: ScopeArgs) -> Response | None:
        await self.store.delete_scope(args.name)
        return None

    async def list_scopes(self, request: Request, args: object) -> Response | None:
        return keys_response(await self.store.scope_names())

    # -- assignments -----------------------------------------------------------------------
    async def assignment_exists(self, request: Request, args: AssignmentArgs) -> bool:
        return await self.store.assignment(args.name) is not None

    async def read_assignment(self, request: Request, args: AssignmentArgs) -> Response | None:
        assignment = await self.store.assignment(args.name)
        if assignment is None:
            return None
        return Response(
            data={
                "entity_ids": list(assignment.entity_ids),
                "group_ids": list(assignment.group_ids),
            }
        )

    async def write_assignment(self, request: Request, args: AssignmentArgs) -> Response | None:
        await self.store.write_assignment(args.name, args.entity_ids, args.group_ids)
        return None

    async def delete_assignment(self, request: Request, args: AssignmentArgs) -> Response | None:
        await self.store.delete_assignment(args.name)
        return None

    async def list_assignments(self, request: Request, args: object) -> Response | None:
        return keys_response(await self.store.assignment_names())

    # -- clients ---------------------------------------------------------------------------
    async def client_exists(self, request: Request, args: ClientArgs) -> bool:
        return await self.store.client(args.name) is not None

    async def read_client(self, request: Request, args: ClientArgs) -> Response | None:
        client = await self.store.client(args.name)
        return None if client is None else Response(data=client.view())

    async def write_client(self, request: Request, args: ClientArgs) -> Response | None:
        await self.store.write_client(
            args.name,
            key=args.key,
            redirect_uris=args.redirect_uris,
            assignments=args.assignments,
            client_type=args.client_type,
            id_token_ttl=args.id_token_ttl,
            access_token_ttl=args.access_token_ttl,
        )
        return None

    async def delete_client(self, request: Request, args: ClientArgs) -> Response | None:
        await self.store.delete("client", args.name)
        return None

    async def list_clients(self, request: Request, args: object) -> Response | None:
        names = await self.store.client_names()
        info = {}
        for name in names:
            client = await self.store.client(name)
            if client is not None:
                view = client.view()
                view.pop("client_secret", None)
                info[name] = view
        return keys_response(names, info)

    # -- providers -------------------------------------------------------------------------
    async def provider_exists(self, request: Request, args: ProviderArgs) -> bool:
        return await self.store.provider(args.name) is not None

    async def read_provider(self, request: Request, args: ProviderArgs) -> Response | None:
        provider = await self.store.provider(args.name)
        if provider is None:
            return None
        return Response(
            data={
                "issuer": self.store.issuer_of(provider) if self.store_has_base(provider) else "",
                "allowed_client_ids": list(provider.allowed_client_ids),
                "scopes_supported": list(provider.scopes_supported),
            }
        )

    def store_has_base(self, provider: Any) -> bool:
        try:
            self.store.issuer_of(provider)
        except InvalidRequest:
            return False
        return True

    async def write_provider(self, request: Request, args: ProviderArgs) -> Response | None:
        await self.store.write_provider(
            args.name, args.issuer, args.allowed_client_ids, args.scopes_supported
        )
        return None

    async def delete_provider(self, request: Request, args: ProviderArgs) -> Response | None:
        await self.store.delete("provider", args.name)
        return None

    async def list_providers(self, request: Request, args: object) -> Response | None:
        names = await self.store.provider_names()
        info = {}
        for name in names:
            provider = await self.store.provider(name)
            if provider is not None:
                info[name] = {
                    "issuer": self.store.issuer_of(provider)
                    if self.store_has_base(provider)
                    else "",
                    "allowed_client_ids": list(provider.allowed_client_ids),
                    "scopes_supported": list(provider.scopes_supported),
                }
        return keys_response(names, info)

    # -- the flow --------------------------------------------------------------------------
    async def discovery(self, request: Request, args: NameArgs) -> Response | None:
        if await self.store.provider(args.name) is None:
            return None  # 404, as Vault
        return Response(data=await self.store.discovery(args.name), envelope=False)

    async def jwks(self, request: Request, args: NameArgs) -> Response | None:
        if await self.store.provider(args.name) is None:
            return None
        return Response(data=await self.store.jwks(args.name), envelope=False)

    async def authorize(self, request: Request, args: AuthorizeArgs) -> Response | None:
        token = request.token
        params = _params(AuthorizeParams, args)
        try:
            body = await self.store.authorize(
                args.name,
                entity_id=token.entity_id if token is not None else "",
                token_issued=token.creation_time if token is not None else 0.0,
                params=params,
            )
        except OAuthError as exc:
            return _oauth(exc, args.state)
        return Response(data=body, envelope=False)

    async def token(self, request: Request, args: TokenArgs) -> Response | None:
        params = _params(TokenParams, args)
        try:
            body = await self.store.token(args.name, params, _basic(request))
        except OAuthError as exc:
            return _oauth(exc)
        # every answer already carries Cache-Control: no-store (RFC 6749 5.1 asks for it)
        return Response(data=body, envelope=False, headers={"Pragma": "no-cache"})

    async def userinfo(self, request: Request, args: NameArgs) -> Response | None:
        # http/ takes "Authorization: Bearer" as the request's token; on this unauthenticated
        # path core hands it over unchecked (it is an access token, not a Vault token)
        try:
            body = await self.store.userinfo(args.name, request.client_token)
        except OAuthError as exc:
            return _oauth(exc)
        return Response(data=body, envelope=False)

    def paths(self) -> list[Path]:
        def crud(kind: str, args: type, exists: Any, read: Any, write: Any, delete: Any) -> Path:
            return Path(
                pattern=rf"oidc/{kind}/(?P<name>{_NAME})",
                args=args,
                existence_check=exists,
                operations={
                    Operation.READ: read,
                    Operation.UPDATE: write,
                    Operation.DELETE: delete,
                },
                synopsis=f"Manage an OIDC provider {kind}",
            )

        def listing(kind: str, handler: Callable[..., Awaitable[Response | None]]) -> Path:
            return Path(
                pattern=rf"oidc/{kind}/?",
                operations={Operation.LIST: handler},
                synopsis=f"List OIDC provider {kind}s",
            )

        return [
            listing("scope", self.list_scopes),
            crud(
                "scope",
                ScopeArgs,
                self.scope_exists,
                self.read_scope,
                self.write_scope,
                self.delete_scope,
            ),
            listing("assignment", self.list_assignments),
            crud(
                "assignment",
                AssignmentArgs,
                self.assignment_exists,
                self.read_assignment,
                self.write_assignment,
                self.delete_assignment,
            ),
            listing("client", self.list_clients),
            crud(
                "client",
                ClientArgs,
                self.client_exists,
                self.read_client,
                self.write_client,
                self.delete_client,
            ),
            listing("provider", self.list_providers),
            crud(
                "provider",
                ProviderArgs,
                self.provider_exists,
                self.read_provider,
                self.write_provider,
                self.delete_provider,
            ),
            Path(
                pattern=rf"{_PROVIDER}/\.well-known/openid-configuration",
                args=NameArgs,
                operations={Operation.READ: self.discovery},
                synopsis="A provider's OpenID configuration (unauthenticated)",
            ),
            Path(
                pattern=rf"{_PROVIDER}/\.well-known/keys",
                args=NameArgs,
                operations={Operation.READ: self.jwks},
                synopsis="A provider's public keys (unauthenticated)",
            ),
            Path(
                pattern=rf"{_PROVIDER}/authorize",
                args=AuthorizeArgs,
                operations={Operation.READ: self.authorize, Operation.UPDATE: self.authorize},
                synopsis="Authorization endpoint: a code for the caller's entity",
            ),
            Path(
                pattern=rf"{_PROVIDER}/token",
                args=TokenArgs,
                operations={Operation.UPDATE: self.token},
                synopsis="Token endpoint: an authorization code for ID and access tokens",
            ),
            Path(
                pattern=rf"{_PROVIDER}/userinfo",
                args=NameArgs,
                operations={Operation.READ: self.userinfo, Operation.UPDATE: self.userinfo},
                synopsis="UserInfo endpoint: claims for an access token (Bearer)",
            ),
        ]
