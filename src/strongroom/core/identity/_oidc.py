"""Identity tokens: a small OIDC provider that signs JWTs about the caller's entity.

Named keys sign, roles say what a token holds and for whom (``aud`` = the role's
``client_id``), and the public keys are published (unauthenticated) so any service can
verify. Storage (the identity view)::

    oidc/config        {"issuer": ...}
    oidc/key/<name>    settings, the current private key, retired public keys
    oidc/role/<name>   key, template, client_id, ttl

Security decisions:

* **Audience.** Each role has its own ``client_id`` (two roles may not share one), and a
  token's ``aud`` is that one client ID. Introspection with a ``client_id`` accepts only
  tokens whose ``aud`` is that client *and* that were signed by the key of that client's
  role, so a token obtained for service A is refused by service B (no confused deputy).
* **Keys allow clients explicitly** (``allowed_client_ids``; empty allows none, ``*`` all).
* **Rotation keeps verification working**: a rotated-out key's public half stays published
  for ``verification_ttl``, and a role's ``ttl`` may not exceed it, so every token can be
  verified for its whole life and not a second longer than that window.
* Disabled or deleted entities get no tokens, and their tokens introspect as inactive.
"""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from strongroom.clock import Clock
from strongroom.core.identity._oidc_keys import (
    ALGORITHMS,
    PublicKey,
    SigningKey,
    TokenError,
    generate,
    peek_kid,
    public_jwk,
    sign,
    verify,
)
from strongroom.core.identity._store import IdentityStore
from strongroom.core.identity._templating import ClaimsContext, check_claims_template, render_claims
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.logical import Storage

__all__ = ["NamedKey", "OIDCProvider", "Role"]

ISSUER_PATH: Final = "/v1/identity/oidc"
DEFAULT_PERIOD: Final = 24 * 3600
_MIN_ROTATION: Final = 60
_CLOCK_SKEW: Final = 60
_BASE62: Final = string.ascii_letters + string.digits
_CONFIG_KEY: Final = "oidc/config"
_KEY_PREFIX: Final = "oidc/key/"
_ROLE_PREFIX: Final = "oidc/role/"


@dataclass(frozen=True, slots=True)
class NamedKey:
    name: str
    algorithm: str = "RS256"
    rotation_period: int = DEFAULT_PERIOD
    verification_ttl: int = DEFAULT_PERIOD
    allowed_client_ids: tuple[str, ...] = ()
    signing: SigningKey | None = field(default=None, repr=False)
    retired: tuple[PublicKey, ...] = ()
    next_rotation: float = 0.0

    def allows(self, client_id: str) -> bool:
        return "*" in self.allowed_client_ids or client_id in self.allowed_client_ids

    def public_keys(self, now: float) -> list[tuple[str, str, dict[str, Any]]]:
        """``(kid, algorithm, jwk)`` of the current key and the unexpired retired ones."""
        out = []
        if self.signing is not None:
            out.append((self.signing.kid, self.algorithm, public_jwk(self.signing)))
        out += [(p.kid, p.algorithm, dict(p.jwk)) for p in self.retired if p.expires > now]
        return out


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    key: str
    client_id: str
    template: str = ""
    ttl: int = DEFAULT_PERIOD


def _encode_key(key: NamedKey) -> bytes:
    signing = key.signing
    return orjson.dumps(
        {
            "name": key.name,
            "algorithm": key.algorithm,
            "rotation_period": key.rotation_period,
            "verification_ttl": key.verification_ttl,
            "allowed_client_ids": list(key.allowed_client_ids),
            "signing": None
            if signing is None
            else {"kid": signing.kid, "algorithm": signing.algorithm, "jwk": signing.private_jwk},
            "retired": [
                {"kid": p.kid, "algorithm": p.algorithm, "jwk": p.jwk, "expires": p.expires}
                for p in key.retired
            ],
            "next_rotation": key.next_rotation,
        }
    )


def _decode_key(raw: bytes) -> NamedKey:
    doc = orjson.loads(raw)
    signing = doc.get("signing")
    return NamedKey(
        name=doc["name"],
        algorithm=doc["algorithm"],
        rotation_period=int(doc["rotation_period"]),
        verification_ttl=int(doc["verification_ttl"]),
        allowed_client_ids=tuple(doc.get("allowed_client_ids") or ()),
        signing=None
        if not signing
        else SigningKey(signing["kid"], signing["algorithm"], signing["jwk"]),
        retired=tuple(
            PublicKey(p["kid"], p["algorithm"], p["jwk"], float(p["expires"]))
            for p in doc.get("retired") or ()
        ),
        next_rotation=float(doc.get("next_rotation", 0.0)),
    )


class OIDCProvider:
    """Identity tokens over the identity storage view.

    Args:
        storage: the identity view (the same one the :class:`IdentityStore` uses).
        clock: issue and expiry times, rotation.
        identity: the entities tokens are about.
        issuer_base: returns the server's ``api_addr`` (``https://host:8200``), used when
            ``identity/oidc/config`` sets no issuer.
    """

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        identity: IdentityStore,
        issuer_base: Callable[[], str],
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._identity = identity
        self._issuer_base = issuer_base
        self._lock = asyncio.Lock()
        self._loaded = False
        self._issuer = ""
        self._keys: dict[str, NamedKey] = {}
        self._roles: dict[str, Role] = {}
        self._imported: dict[str, Any] = {}  # kid -> joserfc key, for signing

    async def load(self) -> None:
        """Read config, keys and roles (done lazily on first use if not called)."""
        async with self._lock:
            await self._load_locked()

    async def _load_locked(self) -> None:
        raw = await self._storage.get(_CONFIG_KEY)
        self._issuer = str(orjson.loads(raw).get("issuer", "")) if raw else ""
        self._keys, self._roles, self._imported = {}, {}, {}
        for name in await self._storage.list(_KEY_PREFIX):
            raw = await self._storage.get(_KEY_PREFIX + name)
            if raw is not None:
                self._keys[name] = _decode_key(raw)
        for name in await self._storage.list(_ROLE_PREFIX):
            raw = await self._storage.get(_ROLE_PREFIX + name)
            if raw is not None:
                self._roles[name] = Role(**orjson.loads(raw))
        self._loaded = True

    async def _ready(self) -> None:
        if not self._loaded:
            await self.load()

    # -- issuer ----------------------------------------------------------------------------
    async def configured_issuer(self) -> str:
        await self._ready()
        return self._issuer

    async def issuer(self) -> str:
        """The ``iss`` of tokens: (configured issuer or api_addr) + ``/v1/identity/oidc``."""
        await self._ready()
        base = self._issuer or self._issuer_base().rstrip("/")
        if not base:
            raise InvalidRequest("no issuer: set identity/oidc/config issuer or api_addr")
        return base + ISSUER_PATH

    async def set_issuer(self, issuer: str) -> None:
        issuer = issuer.strip().rstrip("/")
        if issuer:
            parts = urlsplit(issuer)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InvalidRequest("issuer must be an http(s) URL with a host")
            if parts.query or parts.fragment or parts.path:
                raise InvalidRequest("issuer must not have a path, query or fragment")
        async with self._lock:
            await self._storage.put(_CONFIG_KEY, orjson.dumps({"issuer": issuer}))
            self._issuer = issuer

    # -- keys ------------------------------------------------------------------------------
    async def key(self, name: str) -> NamedKey | None:
        await self._ready()
        return self._keys.get(name)

    async def key_names(self) -> list[str]:
        await self._ready()
        return sorted(self._keys)

    async def write_key(
        self,
        name: str,
        *,
        algorithm: str | None = None,
        rotation_period: int | None = None,
        verification_ttl: int | None = None,
        allowed_client_ids: Sequence[str] | None = None,
    ) -> NamedKey:
        await self._ready()
        if algorithm is not None and algorithm not in ALGORITHMS:
            raise InvalidRequest(f"unknown algorithm; use one of {', '.join(ALGORITHMS)}")
        async with self._lock:
            old = self._keys.get(name) or NamedKey(name=name)
            key = replace(
                old,
                algorithm=algorithm or old.algorithm,
                rotation_period=old.rotation_period if rotation_period is None else rotation_period,
                verification_ttl=old.verification_ttl
                if verification_ttl is None
                else verification_ttl,
                allowed_client_ids=old.allowed_client_ids
                if allowed_client_ids is None
                else tuple(dict.fromkeys(allowed_client_ids)),
            )
            if key.rotation_period < _MIN_ROTATION:
                raise InvalidRequest("rotation_period must be at least one minute")
            if key.verification_ttl > 10 * key.rotation_period:
                raise InvalidRequest("verification_ttl cannot be longer than 10x rotation_period")
            for role in self._roles.values():
                if role.key == name and role.ttl > key.verification_ttl:
                    raise InvalidRequest(
                        f"role {role.name!r} has a ttl longer than this verification_ttl"
                    )
            if key.signing is None or key.algorithm != old.algorithm:
                key = await self._rotated(key, key.verification_ttl)
            elif key.rotation_period != old.rotation_period:
                # the next rotation is one (new) period after the last one
                last = old.next_rotation - old.rotation_period
                key = replace(key, next_rotation=last + key.rotation_period)
            await self._save_key(key)
            return key

    async def _rotated(self, key: NamedKey, verification_ttl: int) -> NamedKey:
        now = self._clock.now()
        fresh = await asyncio.to_thread(generate, key.algorithm)  # RSA keygen is slow
        retired = [p for p in key.retired if p.expires > now]
        if key.signing is not None:
            old = key.signing
            retired.append(
                PublicKey(old.kid, old.algorithm, public_jwk(old), now + verification_ttl)
            )
        return replace(
            key, signing=fresh, retired=tuple(retired), next_rotation=now + key.rotation_period
        )

    async def _save_key(self, key: NamedKey) -> None:
        await self._storage.put(_KEY_PREFIX + key.name, _encode_key(key))
        self._keys[key.name] = key

    async def rotate_key(self, name: str, verification_ttl: int | None = None) -> None:
        await self._ready()
        async with self._lock:
            key = self._keys.get(name)
            if key is None:
                raise InvalidRequest(f"no named key found at {name!r}")
            ttl = key.verification_ttl if verification_ttl is None else verification_ttl
            await self._save_key(await self._rotated(key, ttl))

    async def delete_key(self, name: str) -> None:
        await self._ready()
        async with self._lock:
            users = sorted(role.name for role in self._roles.values() if role.key == name)
            if users:
                raise InvalidRequest(
                    f"unable to delete key {name!r}: referenced by roles {', '.join(users)}"
                )
            await self._storage.delete(_KEY_PREFIX + name)
            self._keys.pop(name, None)

    async def periodic(self) -> None:
        """Rotate keys whose rotation period has passed and drop expired public keys.
        Core may call this from its sweeper; signing also rotates a due key."""
        await self._ready()
        async with self._lock:
            now = self._clock.now()
            for key in list(self._keys.values()):
                if now >= key.next_rotation:
                    await self._save_key(await self._rotated(key, key.verification_ttl))
                elif any(p.expires <= now for p in key.retired):
                    kept = tuple(p for p in key.retired if p.expires > now)
                    await self._save_key(replace(key, retired=kept))

    # -- roles -----------------------------------------------------------------------------
    async def role(self, name: str) -> Role | None:
        await self._ready()
        return self._roles.get(name)

    async def role_names(self) -> list[str]:
        await self._ready()
        return sorted(self._roles)

    async def write_role(
        self,
        name: str,
        *,
        key: str | None = None,
        template: str | None = None,
        client_id: str | None = None,
        ttl: int | None = None,
    ) -> Role:
        await self._ready()
        async with self._lock:
            old = self._roles.get(name)
            key_name = key if key is not None else (old.key if old else "")
            if not key_name:
                raise InvalidRequest("the key parameter is required")
            named = self._keys.get(key_name)
            if named is None:
                raise InvalidRequest(f"key {key_name!r} does not exist")
            role = Role(
                name=name,
                key=key_name,
                client_id=client_id or (old.client_id if old else _new_client_id()),
                template=check_claims_template(template)
                if template is not None
                else (old.template if old else ""),
                ttl=ttl if ttl is not None else (old.ttl if old else DEFAULT_PERIOD),
            )
            if role.ttl > named.verification_ttl:
                raise InvalidRequest(
                    "a role's token ttl cannot be longer than the key's verification_ttl"
                )
            for other in self._roles.values():
                if other.name != name and other.client_id == role.client_id:
                    # two roles sharing an audience would accept each other's tokens
                    raise InvalidRequest("client_id is already used by another role")
            await self._storage.put(
                _ROLE_PREFIX + name,
                orjson.dumps(
                    {
                        "name": role.name,
                        "key": role.key,
                        "client_id": role.client_id,
                        "template": role.template,
                        "ttl": role.ttl,
                    }
                ),
            )
            self._roles[name] = role
            return role

    async def delete_role(self, name: str) -> None:
        await self._ready()
        async with self._lock:
            await self._storage.delete(_ROLE_PREFIX + name)
            self._roles.pop(name, None)

    # -- tokens ----------------------------------------------------------------------------
    async def issue(self, role_name: str, entity_id: str) -> tuple[str, Role]:
        """Sign a token for the caller's entity under ``role_name``.

        Raises:
            InvalidRequest: no such role or key, no entity, or the key does not allow the
                role's client ID.
            PermissionDenied: the entity is disabled.
        """
        await self._ready()
        role = self._roles.get(role_name)
        if role is None:
            raise InvalidRequest(f"no role named {role_name!r}")
        if not entity_id:
            raise InvalidRequest("no entity associated with the request's token")
        entity = self._identity.entity(entity_id)
        if entity is None:
            raise InvalidRequest("no entity associated with the request's token")
        if entity.disabled:
            raise PermissionDenied()
        issuer = await self.issuer()
        async with self._lock:
            key = self._keys.get(role.key)
            if key is None:
                raise InvalidRequest(f"key {role.key!r} does not exist")
            if not key.allows(role.client_id):
                raise InvalidRequest(
                    f"the key {key.name!r} does not list the client ID of the role "
                    f"{role.name!r} as an allowed client ID"
                )
            if key.signing is None or self._clock.now() >= key.next_rotation:
                key = await self._rotated(key, key.verification_ttl)
                await self._save_key(key)
        signing = key.signing
        if signing is None:  # unreachable: _rotated always sets one
            raise InvalidRequest("key has no signing material")
        now = int(self._clock.now())
        claims = render_claims(
            role.template, ClaimsContext(entity, self._identity.groups_of(entity.id), now)
        )
        claims.update(
            iss=issuer,
            sub=entity.id,
            aud=role.client_id,
            iat=now,
            exp=now + role.ttl,
            namespace="root",
        )
        return sign(signing, claims, self._imported), role

    async def introspect(self, token: str, client_id: str = "") -> tuple[bool, str]:
        """Whether ``token`` is an active identity token (for ``client_id`` if given);
        the second value is a generic reason when it is not."""
        await self._ready()
        now = self._clock.now()
        kid = peek_kid(token)
        found = None
        for key in self._keys.values():
            for key_kid, algorithm, public in key.public_keys(now):
                if kid is not None and key_kid == kid:
                    found = (key, algorithm, public)
        if found is None:
            return False, "unable to verify the token's signature"
        key, algorithm, public = found
        try:
            claims = verify(token, public, algorithm)
        except TokenError:
            return False, "unable to verify the token's signature"
        if claims.get("iss") != await self.issuer():
            return False, "the token was not issued by this server"
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int) or exp <= now:
            return False, "the token is expired"
        if iat > now + _CLOCK_SKEW:
            return False, "the token was issued in the future"
        audience = claims.get("aud")
        roles = [r for r in self._roles.values() if r.key == key.name and key.allows(r.client_id)]
        if client_id:
            roles = [r for r in roles if r.client_id == client_id]
        if not any(_aud_is(audience, r.client_id) for r in roles):
            return False, "the token's audience does not match"
        entity = self._identity.entity(str(claims.get("sub", "")))
        if entity is None or entity.disabled:
            return False, "the token's entity is not active"
        return True, ""

    # -- for the OIDC provider (_oidc_provider.py): its clients sign with named keys --------
    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def clock(self) -> Clock:
        return self._clock

    def api_base(self) -> str:
        """The server's ``api_addr`` (no trailing slash; may be empty)."""
        return self._issuer_base().rstrip("/")

    async def ensure_default_key(self) -> None:
        """Vault's ``default`` key (all clients allowed), made on first need."""
        await self._ready()
        if "default" not in self._keys:
            await self.write_key("default", allowed_client_ids=["*"])

    async def sign_with(self, key_name: str, client_id: str, claims: dict[str, Any]) -> str:
        """Sign ``claims`` with the named key (rotated first if due) for ``client_id``.

        Raises:
            InvalidRequest: no such key, or it does not allow the client.
        """
        await self._ready()
        async with self._lock:
            key = self._keys.get(key_name)
            if key is None:
                raise InvalidRequest(f"key {key_name!r} does not exist")
            if not key.allows(client_id):
                raise InvalidRequest(f"the key {key_name!r} does not allow this client ID")
            if key.signing is None or self._clock.now() >= key.next_rotation:
                key = await self._rotated(key, key.verification_ttl)
                await self._save_key(key)
        signing = key.signing
        if signing is None:  # unreachable: _rotated always sets one
            raise InvalidRequest("key has no signing material")
        return sign(signing, claims, self._imported)

    async def verify_with(self, key_names: Sequence[str], token: str) -> dict[str, Any]:
        """The claims of ``token`` if one of the named keys signed it (any unexpired public
        half); only the signature is checked here.

        Raises:
            TokenError: no such key signed it.
        """
        await self._ready()
        now = self._clock.now()
        kid = peek_kid(token)
        for name in key_names:
            key = self._keys.get(name)
            for key_kid, algorithm, public in key.public_keys(now) if key else ():
                if kid is not None and key_kid == kid:
                    return verify(token, public, algorithm)
        raise TokenError("unable to verify the token's signature")

    async def public_keys_of(self, key_names: Sequence[str]) -> list[dict[str, Any]]:
        await self._ready()
        now = self._clock.now()
        out = []
        for name in dict.fromkeys(key_names):
            key = self._keys.get(name)
            out += [public for _, _, public in key.public_keys(now)] if key else []
        return out

    # -- discovery -------------------------------------------------------------------------
    async def jwks(self) -> dict[str, Any]:
        await self._ready()
        now = self._clock.now()
        keys = [public for key in self._keys.values() for _, _, public in key.public_keys(now)]
        return {"keys": keys}

    async def discovery(self) -> dict[str, Any]:
        issuer = await self.issuer()
        return {
            "issuer": issuer,
            "jwks_uri": issuer + "/.well-known/keys",
            "authorization_endpoint": "",
            "token_endpoint": "",
            "response_types_supported": None,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ALGORITHMS),
            "scopes_supported": None,
            "token_endpoint_auth_methods_supported": None,
            "claims_supported": None,
        }

    async def max_age(self) -> int:
        """Seconds until the next scheduled rotation (for Cache-Control on the JWKS)."""
        await self._ready()
        now = self._clock.now()
        due = [key.next_rotation - now for key in self._keys.values()]
        return max(0, int(min(due))) if due else 0


def _aud_is(audience: Any, client_id: str) -> bool:
    # one audience only: a token listing several could be replayed at each of them
    if isinstance(audience, list):
        return audience == [client_id]
    return isinstance(audience, str) and audience == client_id


def _new_client_id() -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(26))
