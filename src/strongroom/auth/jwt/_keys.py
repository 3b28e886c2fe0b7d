"""Where the jwt method's verification keys come from, and how long they are kept.

Three sources, exactly one per mount (Vault's rule): ``jwt_validation_pubkeys`` (PEM, parsed
once and kept), ``jwks_url`` (a JWK Set fetched over HTTPS, verified with ``jwks_ca_pem``) or
``oidc_discovery_url`` (``<url>/.well-known/openid-configuration``, whose ``issuer`` must be
the URL itself, then its ``jwks_uri``, both verified with ``oidc_discovery_ca_pem``).

Remote keys are cached in memory per mount, keyed by the source's configuration (so a config
change on another node is noticed without invalidation messages), and fetched again after an
hour, or sooner when a token names a ``kid`` the cache does not know or no cached key verifies
it (key rotation). Such forced fetches happen at most once every 10 s, so a stream of tokens
with made-up key IDs cannot turn logins into a flood of requests to the provider. Fetches are
single-flight: concurrent logins wait for one fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._http import request_json
from strongroom.auth._jose import (
    VerifyKey,
    candidates,
    keys_from_jwks,
    load_pem_keys,
    read_header,
    verify_signature,
)
from strongroom.errors import InvalidRequest

__all__ = ["Endpoints", "KeyCache", "KeySet", "SourceConfig", "verified_claims"]

REFRESH_AFTER_SECONDS = 3600.0
MIN_FORCED_REFRESH_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """The key-source part of the mount's config (hashable: it keys the cache)."""

    jwt_validation_pubkeys: tuple[str, ...] = field(default=(), repr=False)
    jwks_url: str = ""
    jwks_ca_pem: str = field(default="", repr=False)
    oidc_discovery_url: str = ""
    oidc_discovery_ca_pem: str = field(default="", repr=False)

    @property
    def remote(self) -> bool:
        return bool(self.jwks_url or self.oidc_discovery_url)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What a discovery document says about the OIDC authorization-code flow."""

    authorization: str = ""
    token: str = ""
    userinfo: str = ""
    token_auth_methods: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: tuple[VerifyKey, ...]
    # the issuer the discovery document declared ("" for other sources)
    issuer: str = ""
    endpoints: Endpoints = field(default_factory=Endpoints)


def _url(document: dict[str, object], name: str) -> str:
    value = document.get(name)
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value
    return ""


async def _fetch_jwks(url: str, ca_pem: str, what: str) -> list[VerifyKey]:
    status, document = await request_json("GET", url, what=what, ca_pem=ca_pem)
    if status != 200 or document is None:
        raise InvalidRequest(f"{what}: unexpected response")
    return keys_from_jwks(document)


async def _discover(url: str, ca_pem: str) -> KeySet:
    base = url.rstrip("/")
    status, document = await request_json(
        "GET",
        base + "/.well-known/openid-configuration",
        what="oidc_discovery_url",
        ca_pem=ca_pem,
    )
    if status != 200 or not isinstance(document, dict):
        raise InvalidRequest("oidc_discovery_url: unexpected response")
    issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
    if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
        raise InvalidRequest("oidc_discovery_url: discovery document lacks issuer or jwks_uri")
    # OpenID Connect Discovery 1.0 section 4.3: the issuer must be the URL we asked
    if issuer.rstrip("/") != base:
        raise InvalidRequest("oidc_discovery_url: issuer in discovery document does not match")
    keys = await _fetch_jwks(jwks_uri, ca_pem, "oidc_discovery_url (jwks_uri)")
    methods = document.get("token_endpoint_auth_methods_supported")
    endpoints = Endpoints(
        authorization=_url(document, "authorization_endpoint"),
        token=_url(document, "token_endpoint"),
        userinfo=_url(document, "userinfo_endpoint"),
        token_auth_methods=tuple(m for m in methods if isinstance(m, str))
        if isinstance(methods, list)
        else (),
    )
    return KeySet(tuple(keys), issuer, endpoints)


async def load(source: SourceConfig) -> KeySet:
    """Fetch (or parse) the keys of ``source`` now.

    Raises:
        InvalidRequest: the source is unreachable or answers something unusable.
    """
    if source.oidc_discovery_url:
        return await _discover(source.oidc_discovery_url, source.oidc_discovery_ca_pem)
    if source.jwks_url:
        keys = await _fetch_jwks(source.jwks_url, source.jwks_ca_pem, "jwks_url")
        return KeySet(tuple(keys))
    return KeySet(tuple(load_pem_keys(source.jwt_validation_pubkeys, "jwt_validation_pubkeys")))


class KeyCache:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = asyncio.Lock()
        self._source: SourceConfig | None = None
        self._keys = KeySet(())
        self._fetched_at = 0.0
        self._attempted_at = 0.0

    def put(self, source: SourceConfig, keys: KeySet) -> None:
        """Seed the cache (the config path fetches once to validate the source)."""
        now = self._now()
        self._source, self._keys = source, keys
        self._fetched_at = self._attempted_at = now

    async def get(self, source: SourceConfig, *, force: bool = False) -> KeySet:
        """The keys for ``source``; ``force`` asks for a fresh fetch (rate-limited).

        When a refresh fails, the keys already cached for the same source keep being used
        (the provider being down should not stop logins; go-oidc keeps its keys likewise),
        and the next attempt waits at least 10 s.

        Raises:
            InvalidRequest: nothing is cached for ``source`` and it cannot be loaded.
        """
        async with self._lock:
            now = self._now()
            same = self._source == source
            if same and not source.remote:
                return self._keys
            if same:
                stale = now - self._fetched_at >= REFRESH_AFTER_SECONDS
                may_fetch = now - self._attempted_at >= MIN_FORCED_REFRESH_SECONDS
                if not may_fetch or not (stale or force):
                    return self._keys
            self._attempted_at = now
            try:
                keys = await load(source)
            except InvalidRequest:
                if same:
                    return self._keys
                raise
            self.put(source, keys)
            return keys


async def verified_claims(
    cache: KeyCache, source: SourceConfig, token: str, algorithms: tuple[str, ...]
) -> tuple[dict[str, Any], KeySet]:
    """The claims of ``token`` once a key of ``source`` verifies its signature, and the key
    set used. A remote source is fetched again (rate-limited) when the token names a key ID
    the cache does not know or no cached key verifies it: the provider may have rotated.

    Raises:
        InvalidRequest: no configured key verifies the token.
    """
    header = read_header(token)
    keys = await cache.get(source)
    unknown_kid = header.kid is not None and not candidates(keys.keys, header)
    if source.remote and unknown_kid:
        keys = await cache.get(source, force=True)
    try:
        return verify_signature(token, header, keys.keys, algorithms), keys
    except InvalidRequest:
        if not source.remote or unknown_kid:
            raise
        keys = await cache.get(source, force=True)
        return verify_signature(token, header, keys.keys, algorithms), keys
