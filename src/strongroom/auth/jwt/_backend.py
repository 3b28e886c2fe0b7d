"""The jwt/oidc factory, ``login`` and the renewal hook.

Login ``{role, jwt}`` (``role`` defaults to the config's ``default_role``):

1. the role must exist and be of type ``jwt``; its ``token_bound_cidrs`` must admit the caller;
2. the token must be a compact JWS whose ``alg`` is one of ``jwt_supported_algs`` (asymmetric
   only) and whose signature one of the configured keys verifies (see ``_keys`` for remote
   keys and rotation, ``strongroom.auth._jose`` for what is refused);
3. ``iss`` must equal ``bound_issuer`` (or, with discovery and no ``bound_issuer``, the
   discovered issuer); ``sub`` must equal ``bound_subject`` when set;
4. audience: with ``bound_audiences``, one ``aud`` value must be among them; *without*
   ``bound_audiences`` a token that carries any ``aud`` is refused (a token meant for another
   service must not log in here); ``aud`` as a string is treated exactly as a one-element list;
5. ``exp``/``nbf``/``iat`` with the role's leeways; then ``bound_claims``.

The identity alias name is the ``user_claim`` value, which is also the display name.
``claim_mappings`` become token metadata next to ``role``; the ``groups_claim`` values go to
``internal_data["groups"]`` for core's identity store (group aliases).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._common import storage_of
from strongroom.auth._jose import Leeways, audiences, check_times
from strongroom.auth._tokenfields import TokenParams, renewal_secrets
from strongroom.auth.jwt._claims import bound_claims_match, groups_of, mapped_metadata, user_of
from strongroom.auth.jwt._config import ConfigPaths, JWTConfig, load_config
from strongroom.auth.jwt._keys import KeyCache, verified_claims
from strongroom.auth.jwt._oidc import OIDCFlow
from strongroom.auth.jwt._roles import JWTRole, RolePaths, load_role
from strongroom.errors import InvalidRequest
from strongroom.framework import FrameworkBackend, Path
from strongroom.logical import Backend, BackendConfig, BackendKind, Operation, Request, Response

__all__ = ["LoginArgs", "factory"]


@dataclass(frozen=True, slots=True)
class LoginArgs:
    role: str = ""
    jwt: str = field(default="", repr=False)


class JWTLogin:
    def __init__(self, cache: KeyCache, now: Callable[[], float]) -> None:
        self.cache = cache
        self.now = now

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"login",
                args=LoginArgs,
                operations={Operation.UPDATE: self.login},
                synopsis="Log in with a signed JWT.",
                description=__doc__ or "",
            )
        ]

    async def _claims(self, config: JWTConfig, token: str) -> dict[str, Any]:
        claims, keys = await verified_claims(self.cache, config.source, token, config.algorithms)
        issuer = config.bound_issuer or keys.issuer
        if issuer and claims.get("iss") != issuer:
            raise InvalidRequest("invalid issuer (iss) claim")
        return claims

    async def login(self, request: Request, args: LoginArgs) -> Response:
        if not args.jwt:
            raise InvalidRequest("missing jwt")
        storage = storage_of(request)
        config = await load_config(storage)
        if config is None:
            raise InvalidRequest("could not load configuration")
        role_name = (args.role or config.default_role).lower()  # as Vault: case-insensitive
        if not role_name:
            raise InvalidRequest("missing role")
        role = await load_role(storage, role_name)
        if role is None:
            raise InvalidRequest(f'role "{role_name}" could not be found')
        if role.role_type != "jwt":
            raise InvalidRequest("role with oidc role_type is not allowed")
        role.token.check_remote(request)
        claims = await self._claims(config, args.jwt)
        _check_claims(role, claims, self.now())
        alias = user_of(claims, role.user_claim, role.user_claim_json_pointer)
        mapped = mapped_metadata(claims, role.claim_mappings)
        groups = groups_of(claims, role.groups_claim)
        return Response(auth=role.login_auth(role_name, alias, mapped, groups))

    async def renew_check(self, request: Request, internal: Mapping[str, Any]) -> TokenParams:
        role = await load_role(storage_of(request), str(internal.get("role", "")))
        if role is None:
            raise InvalidRequest("role no longer exists")
        return role.token


def _check_claims(role: JWTRole, claims: Mapping[str, Any], now: float) -> None:
    if role.bound_subject and claims.get("sub") != role.bound_subject:
        raise InvalidRequest("invalid subject (sub) claim")
    token_audiences = audiences(claims)
    if role.bound_audiences:
        if not any(aud in role.bound_audiences for aud in token_audiences):
            raise InvalidRequest("invalid audience (aud) claim: audience claim does not match")
    elif token_audiences:
        raise InvalidRequest("audience claim found in JWT but no audiences bound to the role")
    leeways = Leeways(
        clock_skew=role.clock_skew_leeway,
        expiration=role.expiration_leeway,
        not_before=role.not_before_leeway,
    )
    check_times(claims, now, leeways)
    bound_claims_match(claims, role.bound_claims, role.bound_claims_type)


async def factory(config: BackendConfig) -> Backend:
    """Build a jwt (or oidc: the same factory) auth backend for a mount.

    Args:
        config: the mount's configuration; its clock drives token time checks and the
            key cache.

    Returns:
        The backend; ``login`` is reachable without a token.
    """
    cache = KeyCache(config.system.now)
    login = JWTLogin(cache, config.system.now)
    flow = OIDCFlow(cache, config.system.now)
    return FrameworkBackend(
        kind=BackendKind.AUTH,
        paths=[*ConfigPaths(cache).paths(), *RolePaths().paths(), *login.paths(), *flow.paths()],
        help=_BACKEND_HELP,
        unauthenticated_paths=("login", "oidc/auth_url", "oidc/callback", "oidc/poll"),
        secrets=renewal_secrets(login.renew_check),
    )


_BACKEND_HELP = """\
The jwt auth method logs in clients that present a JWT signed by a configured key (PEM public
keys, a JWKS URL or OIDC discovery), checked against a role's bound audiences, subject, claims
and the token's validity times. With an OIDC client configured, people log in through their
browser with the OIDC authorization-code flow (oidc/auth_url, oidc/callback, oidc/poll)."""
