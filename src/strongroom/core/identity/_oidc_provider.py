"""Vault as an OpenID Connect provider (``identity/oidc/{scope,client,assignment,provider}``):
the authorization code flow with PKCE for applications that log their users in with Vault.

Records live in the identity view, read from storage on every use (so a standby never
serves a stale one)::

    oidc_provider/scope/<name>        template (claims), description
    oidc_provider/assignment/<name>   entity_ids, group_ids (who may use a client)
    oidc_provider/client/<name>       client_id, client_secret, key, redirect_uris, ...
    oidc_provider/provider/<name>     issuer, allowed_client_ids, scopes_supported
    oidc_provider/code/<sha256(code)> one pending authorization code (five minutes)

Vault's defaults exist without being written: the ``default`` provider (every client
allowed), the ``allow_all`` assignment (everyone; it cannot be changed), and the ``default``
key (made on first need by the client that names it).

Security decisions:

* **Codes are single use across processes**: redemption deletes the code in a storage
  transaction guarded on the value read; of two concurrent redemptions one fails the guard
  and gets ``invalid_grant``. Only the code's SHA-256 is stored.
* A code is bound to its client, provider, ``redirect_uri`` and PKCE challenge; public
  clients must use PKCE; client secrets are compared in constant time.
* **Access tokens are JWTs** signed with the client's key (``token_use: access``, audience
  the client); the userinfo endpoint accepts only those, never an ID token, and only while
  the entity is enabled and the client still exists and is still assigned to it. Vault's
  are batch tokens; both are opaque to clients.
* The entity must be allowed by one of the client's assignments at authorization and again
  at redemption (an assignment removed in between stops the flow).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from strongroom.clock import Clock
from strongroom.core.identity._oidc import OIDCProvider
from strongroom.core.identity._oidc_keys import TokenError
from strongroom.core.identity._store import IdentityStore
from strongroom.core.identity._templating import ClaimsContext, check_claims_template, render_claims
from strongroom.errors import InvalidRequest, StorageConflict
from strongroom.logical import Storage, StorageOp

__all__ = [
    "Assignment",
    "Client",
    "OAuthError",
    "ProviderRecord",
    "ProviderStore",
    "Scope",
]

DAY: Final = 24 * 3600
CODE_TTL: Final = 300
DEFAULT_PROVIDER: Final = "default"
ALLOW_ALL: Final = "allow_all"
_PREFIX: Final = "oidc_provider/"
_BASE62: Final = string.ascii_letters + string.digits
_PROVIDER_PATH: Final = "/v1/identity/oidc/provider/"
_INVALID_GRANT: Final = "authorization grant is invalid or expired"


class OAuthError(Exception):
    """An OAuth 2.0 error answer: ``error`` code, description and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class Scope:
    name: str
    template: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Assignment:
    name: str
    entity_ids: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    key: str = "default"
    redirect_uris: tuple[str, ...] = ()
    assignments: tuple[str, ...] = ()
    client_type: str = "confidential"
    id_token_ttl: int = DAY
    access_token_ttl: int = DAY

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client_id": self.client_id,
            "key": self.key,
            "redirect_uris": list(self.redirect_uris),
            "assignments": list(self.assignments),
            "client_type": self.client_type,
            "id_token_ttl": self.id_token_ttl,
            "access_token_ttl": self.access_token_ttl,
        }
        if self.client_type == "confidential":
            out["client_secret"] = self.client_secret
        return out


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    name: str
    issuer: str = ""
    allowed_client_ids: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()

    def allows(self, client_id: str) -> bool:
        return "*" in self.allowed_client_ids or client_id in self.allowed_client_ids


@dataclass(frozen=True, slots=True)
class _Code:
    provider: str
    client_id: str
    entity_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    nonce: str
    code_challenge: str
    code_challenge_method: str
    auth_time: int
    expires: float


def _random(n: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(n))


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _half_hash(value: str, algorithm: str) -> str:
    """OIDC's at_hash/c_hash: the left half of the token's hash, base64url."""
    digest = {"384": hashlib.sha384, "512": hashlib.sha512}.get(algorithm[-3:], hashlib.sha256)
    if algorithm == "EdDSA":
        digest = hashlib.sha512
    raw = digest(value.encode()).digest()
    return base64.urlsafe_b64encode(raw[: len(raw) // 2]).rstrip(b"=").decode()


def _check_issuer(issuer: str) -> str:
    issuer = issuer.strip().rstrip("/")
    if issuer:
        parts = urlsplit(issuer)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidRequest("invalid issuer: must be an http(s) URL with a host")
        if parts.query or parts.fragment or parts.path:
            raise InvalidRequest("invalid issuer: must not have a path, query or fragment")
    return issuer


class ProviderStore:
    """Scopes, assignments, clients and providers, and the authorization code flow."""

    def __init__(
        self, storage: Storage, clock: Clock, identity: IdentityStore, tokens: OIDCProvider
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._identity = identity
        self._tokens = tokens

    # -- records ---------------------------------------------------------------------------
    async def _get(self, kind: str, name: str) -> dict[str, Any] | None:
        raw = await self._storage.get(f"{_PREFIX}{kind}/{name}")
        return None if raw is None else dict(orjson.loads(raw))

    async def _put(self, kind: str, name: str, record: Any) -> None:
        await self._storage.put(f"{_PREFIX}{kind}/{name}", orjson.dumps(asdict(record)))

    async def _names(self, kind: str) -> list[str]:
        return sorted(n for n in await self._storage.list(f"{_PREFIX}{kind}/") if "/" not in n)

    async def delete(self, kind: str, name: str) -> None:
        await self._storage.delete(f"{_PREFIX}{kind}/{name}")

    async def scope(self, name: str) -> Scope | None:
        doc = await self._get("scope", name)
        return None if doc is None else Scope(**doc)

    async def scope_names(self) -> list[str]:
        return await self._names("scope")

    async def write_scope(self, name: str, template: str | None, description: str | None) -> None:
        if name == "openid":
            raise InvalidRequest('the "openid" scope name is reserved')
        old = await self.scope(name) or Scope(name)
        await self._put(
            "scope",
            name,
            Scope(
                name,
                check_claims_template(template) if template is not None else old.template,
                old.description if description is None else description,
            ),
        )

    async def delete_scope(self, name: str) -> None:
        users = [p.name for p in await self._providers() if name in p.scopes_supported]
        if users:
            raise InvalidRequest(
                f'unable to delete scope "{name}" because it is currently referenced by '
                f"these providers: {', '.join(users)}"
            )
        await self.delete("scope", name)

    async def assignment(self, name: str) -> Assignment | None:
        if name == ALLOW_ALL:
            return Assignment(ALLOW_ALL, ("*",), ("*",))
        doc = await self._get("assignment", name)
        return (
            None
            if doc is None
            else Assignment(name, tuple(doc["entity_ids"]), tuple(doc["group_ids"]))
        )

    async def assignment_names(self) -> list[str]:
        return sorted({ALLOW_ALL, *await self._names("assignment")})

    async def write_assignment(
        self, name: str, entity_ids: Sequence[str] | None, group_ids: Sequence[str] | None
    ) -> None:
        if name == ALLOW_ALL:
            raise InvalidRequest(f'modification of assignment "{ALLOW_ALL}" not allowed')
        # as Vault, IDs are not checked: an entity or group made later is covered then
        old = await self.assignment(name) or Assignment(name)
        await self._put(
            "assignment",
            name,
            Assignment(
                name,
                old.entity_ids if entity_ids is None else tuple(dict.fromkeys(entity_ids)),
                old.group_ids if group_ids is None else tuple(dict.fromkeys(group_ids)),
            ),
        )

    async def delete_assignment(self, name: str) -> None:
        if name == ALLOW_ALL:
            raise InvalidRequest(f'deletion of assignment "{ALLOW_ALL}" not allowed')
        users = [c.name for c in await self._clients() if name in c.assignments]
        if users:
            raise InvalidRequest(
                f'unable to delete assignment "{name}" because it is currently referenced '
                f"by these clients: {', '.join(users)}"
            )
        await self.delete("assignment", name)

    async def client(self, name: str) -> Client | None:
        doc = await self._get("client", name)
        if doc is None:
            return None
        for key in ("redirect_uris", "assignments"):
            doc[key] = tuple(doc[key])
        return Client(**doc)

    async def client_names(self) -> list[str]:
        return await self._names("client")

    async def _clients(self) -> list[Client]:
        out = []
        for name in await self.client_names():
            client = await self.client(name)
            if client is not None:
                out.append(client)
        return out

    async def client_by_id(self, client_id: str) -> Client | None:
        for client in await self._clients():
            if hmac.compare_digest(client.client_id, client_id):
                return client
        return None

    async def clients_using_key(self, key: str) -> list[str]:
        return [c.name for c in await self._clients() if c.key == key]

    async def write_client(
        self,
        name: str,
        *,
        key: str | None,
        redirect_uris: Sequence[str] | None,
        assignments: Sequence[str] | None,
        client_type: str | None,
        id_token_ttl: int | None,
        access_token_ttl: int | None,
    ) -> None:
        old = await self.client(name)
        if old is not None and key is not None and key != old.key:
            raise InvalidRequest("key modification is not allowed")
        if old is not None and client_type is not None and client_type != old.client_type:
            raise InvalidRequest("client_type modification is not allowed")
        kind = client_type or (old.client_type if old else "confidential")
        if kind not in ("confidential", "public"):
            raise InvalidRequest("invalid client_type: must be confidential or public")
        key_name = key or (old.key if old else "default")
        if key_name == "default":
            await self._tokens.ensure_default_key()
        named = await self._tokens.key(key_name)
        if named is None:
            raise InvalidRequest(f'key "{key_name}" does not exist')
        for assignment in assignments or ():
            if await self.assignment(assignment) is None:
                raise InvalidRequest(f'assignment "{assignment}" does not exist')
        for uri in redirect_uris or ():
            parts = urlsplit(uri)
            if not parts.scheme or not parts.netloc or parts.fragment:
                raise InvalidRequest(f"invalid redirect_uri {uri!r}: absolute URL, no fragment")
        client_id = old.client_id if old else _random(32)
        client = Client(
            name=name,
            client_id=client_id,
            client_secret=old.client_secret
            if old
            else ("hvo_secret_" + _random(64) if kind == "confidential" else ""),
            key=key_name,
            redirect_uris=tuple(redirect_uris)
            if redirect_uris is not None
            else (old.redirect_uris if old else ()),
            assignments=tuple(assignments)
            if assignments is not None
            else (old.assignments if old else ()),
            client_type=kind,
            id_token_ttl=id_token_ttl
            if id_token_ttl is not None
            else (old.id_token_ttl if old else DAY),
            access_token_ttl=access_token_ttl
            if access_token_ttl is not None
            else (old.access_token_ttl if old else DAY),
        )
        if client.id_token_ttl > named.verification_ttl:
            raise InvalidRequest(
                "a client's id_token_ttl cannot be longer than the verification_ttl of its key"
            )
        if not named.allows(client_id):
            raise InvalidRequest(f'the key "{key_name}" does not allow this client\'s client_id')
        await self._put("client", name, client)

    async def provider(self, name: str) -> ProviderRecord | None:
        doc = await self._get("provider", name)
        if doc is None:
            return (
                ProviderRecord(DEFAULT_PROVIDER, "", ("*",)) if name == DEFAULT_PROVIDER else None
            )
        return ProviderRecord(
            name, doc["issuer"], tuple(doc["allowed_client_ids"]), tuple(doc["scopes_supported"])
        )

    async def provider_names(self) -> list[str]:
        return sorted({DEFAULT_PROVIDER, *await self._names("provider")})

    async def _providers(self) -> list[ProviderRecord]:
        out = []
        for name in await self.provider_names():
            provider = await self.provider(name)
            if provider is not None:
                out.append(provider)
        return out

    async def write_provider(
        self,
        name: str,
        issuer: str | None,
        allowed_client_ids: Sequence[str] | None,
        scopes_supported: Sequence[str] | None,
    ) -> None:
        old = await self.provider(name) or ProviderRecord(name)
        for scope in scopes_supported or ():
            if await self.scope(scope) is None:
                raise InvalidRequest(f'scope "{scope}" does not exist')
        await self._put(
            "provider",
            name,
            ProviderRecord(
                name,
                old.issuer if issuer is None else _check_issuer(issuer),
                old.allowed_client_ids
                if allowed_client_ids is None
                else tuple(dict.fromkeys(allowed_client_ids)),
                old.scopes_supported
                if scopes_supported is None
                else tuple(dict.fromkeys(scopes_supported)),
            ),
        )

    # -- discovery -------------------------------------------------------------------------
    def issuer_of(self, provider: ProviderRecord) -> str:
        base = provider.issuer or self._tokens.api_base()
        if not base:
            raise InvalidRequest("no issuer: set the provider's issuer or api_addr")
        return base + _PROVIDER_PATH + provider.name

    async def _provider(self, name: str) -> ProviderRecord:
        provider = await self.provider(name)
        if provider is None:
            raise OAuthError("invalid_request", "provider not found")
        return provider

    async def discovery(self, name: str) -> dict[str, Any]:
        provider = await self._provider(name)
        issuer = self.issuer_of(provider)
        base = provider.issuer or self._tokens.api_base()
        return {
            "issuer": issuer,
            "jwks_uri": issuer + "/.well-known/keys",
            "authorization_endpoint": f"{base}/ui/vault/identity/oidc/provider/{name}/authorize",
            "token_endpoint": issuer + "/token",
            "userinfo_endpoint": issuer + "/userinfo",
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "id_token_signing_alg_values_supported": [
                "RS256",
                "RS384",
                "RS512",
                "ES256",
                "ES384",
                "ES512",
                "EdDSA",
            ],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", *provider.scopes_supported],
            "claims_supported": [],
            "subject_types_supported": ["public"],
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["plain", "S256"],
        }

    async def jwks(self, name: str) -> dict[str, Any]:
        provider = await self._provider(name)
        keys = [c.key for c in await self._clients() if provider.allows(c.client_id)]
        return {"keys": await self._tokens.public_keys_of(keys)}

    # -- the authorization code flow -------------------------------------------------------
    async def _is_assigned(self, client: Client, entity_id: str) -> bool:
        if ALLOW_ALL in client.assignments:
            return True
        groups = {g.id for g in self._identity.groups_of(entity_id)}
        for name in client.assignments:
            assignment = await self.assignment(name)
            if assignment is None:
                continue
            if entity_id in assignment.entity_ids or groups.intersection(assignment.group_ids):
                return True
        return False

    async def authorize(
        self,
        name: str,
        *,
        entity_id: str,
        token_issued: float,
        params: AuthorizeParams,
    ) -> dict[str, str]:
        # the client and its redirect_uri first (Vault's current order): until both are
        # known good the UI's authorization page shows an error instead of redirecting
        if not params.client_id:
            raise OAuthError("invalid_client_id", "client_id parameter is required")
        client = await self.client_by_id(params.client_id)
        if client is None:
            raise OAuthError("invalid_client_id", "client with client_id not found")
        if not params.redirect_uri:
            raise OAuthError("invalid_request", "redirect_uri parameter is required")
        if params.redirect_uri not in client.redirect_uris:
            raise OAuthError("invalid_redirect_uri", "redirect_uri is not allowed for the client")
        provider = await self._provider(name)
        if not provider.allows(client.client_id):
            raise OAuthError("unauthorized_client", "client is not authorized to use the provider")
        scopes = params.scope.split()
        if "openid" not in scopes:
            raise OAuthError("invalid_request", 'scope parameter must contain the "openid" value')
        if params.response_type != "code":
            raise OAuthError("unsupported_response_type", "unsupported response_type value")
        entity = self._identity.entity(entity_id) if entity_id else None
        if entity is None:
            raise OAuthError("access_denied", "identity entity must be associated with the request")
        if entity.disabled:
            raise OAuthError("access_denied", "identity entity is disabled")
        if not await self._is_assigned(client, entity.id):
            raise OAuthError("access_denied", "identity entity not authorized by client assignment")
        now = self._clock.now()
        if (
            params.max_age is not None
            and params.max_age >= 0
            and now - token_issued > params.max_age
        ):
            raise OAuthError("max_age_violation", "active re-authentication is required by max_age")
        method = params.code_challenge_method or "plain"
        if params.code_challenge:
            if method not in ("plain", "S256"):
                raise OAuthError("invalid_request", "invalid code_challenge_method")
            if not 43 <= len(params.code_challenge) <= 128:
                raise OAuthError("invalid_request", "invalid code_challenge")
        elif client.client_type == "public":
            raise OAuthError("invalid_request", "PKCE is required for public clients")
        code = _random(32)
        record = _Code(
            provider=name,
            client_id=client.client_id,
            entity_id=entity.id,
            redirect_uri=params.redirect_uri,
            scopes=tuple(
                s for s in dict.fromkeys(scopes) if s == "openid" or s in provider.scopes_supported
            ),
            nonce=params.nonce,
            code_challenge=params.code_challenge,
            code_challenge_method=method if params.code_challenge else "",
            auth_time=int(token_issued),
            expires=now + CODE_TTL,
        )
        await self._storage.put(f"{_PREFIX}code/{_hash(code)}", orjson.dumps(asdict(record)))
        out = {"code": code}
        if params.state:
            out["state"] = params.state
        return out

    async def _client_auth(self, params: TokenParams, basic: tuple[str, str] | None) -> Client:
        client_id, secret = basic if basic else (params.client_id, params.client_secret)
        if not client_id:
            raise OAuthError("invalid_request", "client_id parameter is required")
        client = await self.client_by_id(client_id)
        if client is None:
            raise OAuthError("invalid_client", "client failed to authenticate", 401)
        if client.client_type == "confidential" and not hmac.compare_digest(
            client.client_secret.encode(), secret.encode()
        ):
            raise OAuthError("invalid_client", "client failed to authenticate", 401)
        return client

    async def _redeem(self, code: str) -> _Code:
        key = f"{_PREFIX}code/{_hash(code)}"
        raw = await self._storage.get(key)
        if raw is None:
            raise OAuthError("invalid_grant", _INVALID_GRANT)
        try:
            # single use across processes: delete only if nobody redeemed it meanwhile
            await self._storage.transaction([StorageOp(key, raw, check=True), StorageOp(key, None)])
        except StorageConflict:
            raise OAuthError("invalid_grant", _INVALID_GRANT) from None
        doc = orjson.loads(raw)
        doc["scopes"] = tuple(doc["scopes"])
        record = _Code(**doc)
        if record.expires <= self._clock.now():
            raise OAuthError("invalid_grant", _INVALID_GRANT)
        return record

    async def token(
        self, name: str, params: TokenParams, basic: tuple[str, str] | None
    ) -> dict[str, Any]:
        provider = await self._provider(name)
        client = await self._client_auth(params, basic)
        if not provider.allows(client.client_id):
            raise OAuthError("invalid_client", "client is not authorized to use the provider", 401)
        if params.grant_type != "authorization_code":
            raise OAuthError(
                "unsupported_grant_type", "unsupported grant_type or parameter is empty value"
            )
        if not params.code:
            raise OAuthError("invalid_request", "code parameter is required")
        if not params.redirect_uri:
            raise OAuthError("invalid_request", "redirect_uri parameter is required")
        record = await self._redeem(params.code)
        if record.client_id != client.client_id or record.provider != name:
            raise OAuthError("invalid_grant", _INVALID_GRANT)
        if record.redirect_uri != params.redirect_uri:
            raise OAuthError("invalid_grant", _INVALID_GRANT)
        if record.code_challenge:
            if not params.code_verifier:
                raise OAuthError("invalid_request", "PKCE code_verifier is required")
            derived = params.code_verifier
            if record.code_challenge_method == "S256":
                digest = hashlib.sha256(params.code_verifier.encode()).digest()
                derived = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not hmac.compare_digest(derived.encode(), record.code_challenge.encode()):
                raise OAuthError("invalid_grant", "failed to verify the PKCE code_verifier")
        elif params.code_verifier:
            raise OAuthError("invalid_request", "unexpected code_verifier for token exchange")
        entity = self._identity.entity(record.entity_id)
        if entity is None or entity.disabled or not await self._is_assigned(client, entity.id):
            raise OAuthError("invalid_grant", "identity entity is no longer authorized")
        issuer = self.issuer_of(provider)
        now = int(self._clock.now())
        access = await self._tokens.sign_with(
            client.key,
            client.client_id,
            {
                "iss": issuer,
                "sub": entity.id,
                "aud": client.client_id,
                "iat": now,
                "exp": now + client.access_token_ttl,
                "scope": " ".join(record.scopes),
                "token_use": "access",
            },
        )
        named = await self._tokens.key(client.key)
        algorithm = named.algorithm if named else "RS256"
        claims = await self._scope_claims(record.scopes, entity.id, now)
        claims.update(
            iss=issuer,
            sub=entity.id,
            aud=client.client_id,
            iat=now,
            exp=now + client.id_token_ttl,
            auth_time=record.auth_time,
            at_hash=_half_hash(access, algorithm),
            c_hash=_half_hash(params.code, algorithm),
            namespace="root",
        )
        if record.nonce:
            claims["nonce"] = record.nonce
        id_token = await self._tokens.sign_with(client.key, client.client_id, claims)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": client.access_token_ttl,
            "id_token": id_token,
        }

    async def _scope_claims(
        self, scopes: Sequence[str], entity_id: str, now: int
    ) -> dict[str, Any]:
        entity = self._identity.entity(entity_id)
        claims: dict[str, Any] = {}
        for name in scopes:
            scope = await self.scope(name) if name != "openid" else None
            if scope is not None and scope.template:
                ctx = ClaimsContext(entity, self._identity.groups_of(entity_id), now)
                claims.update(render_claims(scope.template, ctx))
        return claims

    async def userinfo(self, name: str, bearer: str) -> dict[str, Any]:
        provider = await self._provider(name)
        if not bearer:
            raise OAuthError("invalid_token", "missing access token", 401)
        keys = [c.key for c in await self._clients() if provider.allows(c.client_id)]
        try:
            claims = await self._tokens.verify_with(keys, bearer)
        except TokenError:
            raise OAuthError("invalid_token", "the access token is not valid", 401) from None
        now = self._clock.now()
        exp = claims.get("exp")
        if claims.get("token_use") != "access" or claims.get("iss") != self.issuer_of(provider):
            raise OAuthError("invalid_token", "the access token is not valid", 401)
        if not isinstance(exp, int) or exp <= now:
            raise OAuthError("invalid_token", "the access token is expired", 401)
        client = await self.client_by_id(str(claims.get("aud", "")))
        entity = self._identity.entity(str(claims.get("sub", "")))
        if client is None or entity is None or entity.disabled:
            raise OAuthError("invalid_token", "the access token is not valid", 401)
        if not await self._is_assigned(client, entity.id):
            raise OAuthError("invalid_token", "the access token is not valid", 401)
        out = await self._scope_claims(str(claims.get("scope", "")).split(), entity.id, int(now))
        out["sub"] = entity.id
        return out


@dataclass(frozen=True, slots=True)
class AuthorizeParams:
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
class TokenParams:
    code: str = ""
    grant_type: str = ""
    redirect_uri: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    code_verifier: str = field(default="", repr=False)
