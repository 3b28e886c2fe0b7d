"""The kubernetes factory, ``login`` and the renewal hook.

Login ``{role, jwt}``:

1. the role's ``token_bound_cidrs`` must admit the caller;
2. with ``pem_keys``: the signature (asymmetric algorithms only, see ``strongroom.auth._jose``),
   ``exp``/``nbf``/``iat`` when present (legacy secret-based tokens carry none) with 60 s of
   clock skew, and ``iss`` unless ``disable_iss_validation``;
3. the service account is read from the claims, in either shape: legacy
   (``kubernetes.io/serviceaccount/namespace``, ``…/service-account.name``,
   ``…/service-account.uid``, ``…/secret.name``) or projected (``kubernetes.io: {namespace,
   serviceaccount: {name, uid}}``); the role's ``audience``, when set, must be in ``aud``;
4. its namespace and name must match the role's globs (403 otherwise) *before* the API is
   asked, so unauthorised accounts never cost a TokenReview;
5. with ``kubernetes_host``: a TokenReview must say the token is authenticated, for exactly
   this account (``system:serviceaccount:<ns>:<name>``, same UID). Without ``pem_keys`` the
   claims were read unverified and this answer is what vouches for them.

Alias name: the account's UID, or ``<namespace>/<name>`` with ``alias_name_source:
serviceaccount_name``. Display name ``<namespace>-<name>``; metadata as in Vault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from strongroom.auth._common import glob_match_any, storage_of
from strongroom.auth._http import request_json
from strongroom.auth._jose import (
    ASYMMETRIC_ALGS,
    Leeways,
    audiences,
    cached_pem_keys,
    check_times,
    read_header,
    unverified_claims,
    verify_signature,
)
from strongroom.auth._tokenfields import TokenParams, renewal_secrets
from strongroom.auth.kubernetes._config import DEFAULT_ISSUER, ConfigPaths, K8sConfig, load_config
from strongroom.auth.kubernetes._roles import K8sRole, RolePaths, load_role
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import FrameworkBackend, Path
from strongroom.logical import Backend, BackendConfig, BackendKind, Operation, Request, Response

__all__ = ["LOCAL_CA_PATH", "LOCAL_JWT_PATH", "LoginArgs", "ServiceAccount", "factory"]

LOCAL_CA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
LOCAL_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
_LEGACY = "kubernetes.io/serviceaccount/"
_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
# go-jose's default leeway, which Vault's kubernetes method uses for exp/nbf/iat
_CLOCK_SKEW = 60


@dataclass(frozen=True, slots=True)
class LoginArgs:
    role: str = ""
    jwt: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    namespace: str
    name: str
    uid: str
    secret_name: str = ""

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> ServiceAccount:
        """Raises PermissionDenied when the claims name no service account."""
        projected = claims.get("kubernetes.io")
        if isinstance(projected, Mapping):
            account = projected.get("serviceaccount")
            account = account if isinstance(account, Mapping) else {}
            values = (projected.get("namespace"), account.get("name"), account.get("uid"), "")
        else:
            values = (
                claims.get(_LEGACY + "namespace"),
                claims.get(_LEGACY + "service-account.name"),
                claims.get(_LEGACY + "service-account.uid"),
                claims.get(_LEGACY + "secret.name") or "",
            )
        if not all(isinstance(v, str) for v in values) or not all(values[:3]):
            raise PermissionDenied("could not parse service account from the JWT claims")
        namespace, name, uid, secret = (str(v) for v in values)
        return cls(namespace, name, uid, secret)

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


async def _read_local(path: str) -> str:
    def read() -> str:
        file = FilePath(path)
        return file.read_text() if file.is_file() else ""

    return await asyncio.to_thread(read)


class K8sLogin:
    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"login",
                args=LoginArgs,
                operations={Operation.UPDATE: self.login},
                synopsis="Log in with a Kubernetes service-account token.",
                description=__doc__ or "",
            )
        ]

    def _verify_locally(self, config: K8sConfig, token: str) -> dict[str, Any]:
        try:
            keys = cached_pem_keys(config.pem_keys, "pem_keys")
            claims = verify_signature(token, read_header(token), keys, ASYMMETRIC_ALGS)
            check_times(claims, self.now(), Leeways(clock_skew=_CLOCK_SKEW), allow_missing=True)
        except InvalidRequest as error:
            raise PermissionDenied(*error.messages) from None
        if not config.disable_iss_validation:
            if claims.get("iss") != (config.issuer or DEFAULT_ISSUER):
                raise PermissionDenied("invalid issuer (iss) claim")
        return claims

    async def _review(
        self, config: K8sConfig, token: str, role: K8sRole, account: ServiceAccount
    ) -> None:
        """Ask the API server's TokenReview whether ``token`` is this account's, now."""
        ca_pem = config.kubernetes_ca_cert
        bearer = config.token_reviewer_jwt
        if not config.disable_local_ca_jwt:
            ca_pem = ca_pem or await _read_local(LOCAL_CA_PATH)
            bearer = bearer or (await _read_local(LOCAL_JWT_PATH)).strip()
        # Vault's fallback: without a reviewer token, the client's own token asks about
        # itself (which works when service accounts may create TokenReviews)
        bearer = bearer or token
        spec: dict[str, Any] = {"token": token}
        if role.audience:
            spec["audiences"] = [role.audience]
        status, answer = await request_json(
            "POST",
            config.kubernetes_host + _REVIEW_PATH,
            what="TokenReview",
            ca_pem=ca_pem,
            headers={"Authorization": f"Bearer {bearer}"},
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec},
        )
        if status in (401, 403):
            raise PermissionDenied("lookup failed: the TokenReview API refused the reviewer")
        if status not in (200, 201) or not isinstance(answer, Mapping):
            raise InvalidRequest("lookup failed: unexpected TokenReview response")
        result = answer.get("status")
        result = result if isinstance(result, Mapping) else {}
        if result.get("authenticated") is not True:
            raise PermissionDenied(
                "lookup failed: service account unauthorized; this could mean it has been "
                "deleted or recreated with a new token"
            )
        user = result.get("user")
        user = user if isinstance(user, Mapping) else {}
        if user.get("username") != account.username:
            raise PermissionDenied("lookup failed: JWT names did not match")
        if user.get("uid") not in (None, "", account.uid):
            raise PermissionDenied("lookup failed: JWT UIDs did not match")
        reviewed = result.get("audiences")
        if role.audience and isinstance(reviewed, list) and role.audience not in reviewed:
            raise PermissionDenied("invalid audience (aud) claim")

    async def login(self, request: Request, args: LoginArgs) -> Response:
        if not args.role:
            raise InvalidRequest("missing role")
        if not args.jwt:
            raise InvalidRequest("missing jwt")
        storage = storage_of(request)
        config = await load_config(storage)
        if config is None:
            raise InvalidRequest("could not load backend configuration")
        role = await load_role(storage, args.role)
        if role is None:
            raise InvalidRequest(f'invalid role name "{args.role}"')
        role.token.check_remote(request)
        if config.pem_keys:
            claims = self._verify_locally(config, args.jwt)
        else:
            try:
                claims = unverified_claims(args.jwt)  # vouched for by the TokenReview below
            except InvalidRequest as error:
                raise PermissionDenied(*error.messages) from None
        account = ServiceAccount.from_claims(claims)
        if role.audience and role.audience not in audiences(claims):
            raise PermissionDenied("invalid audience (aud) claim")
        if not glob_match_any(role.bound_service_account_namespaces, account.namespace):
            raise PermissionDenied("namespace not authorized")
        if not glob_match_any(role.bound_service_account_names, account.name):
            raise PermissionDenied("service account name not authorized")
        if config.kubernetes_host:
            await self._review(config, args.jwt, role, account)
        alias = (
            account.uid
            if role.alias_name_source == "serviceaccount_uid"
            else f"{account.namespace}/{account.name}"
        )
        return Response(
            auth=role.token.auth(
                alias_name=alias,
                display_name=f"{account.namespace}-{account.name}",
                metadata={
                    "role": args.role,
                    "service_account_name": account.name,
                    "service_account_namespace": account.namespace,
                    "service_account_secret_name": account.secret_name,
                    "service_account_uid": account.uid,
                },
                internal_data={"role": args.role},
            )
        )

    async def renew_check(self, request: Request, internal: Mapping[str, Any]) -> TokenParams:
        role = await load_role(storage_of(request), str(internal.get("role", "")))
        if role is None:
            raise InvalidRequest("role no longer exists")
        return role.token


async def factory(config: BackendConfig) -> Backend:
    """Build a kubernetes auth backend for a mount.

    Args:
        config: the mount's configuration; its clock drives token time checks.

    Returns:
        The backend; ``login`` is reachable without a token.
    """
    login = K8sLogin(config.system.now)
    return FrameworkBackend(
        kind=BackendKind.AUTH,
        paths=[*ConfigPaths().paths(), *RolePaths().paths(), *login.paths()],
        help=_BACKEND_HELP,
        unauthenticated_paths=("login",),
        secrets=renewal_secrets(login.renew_check),
    )


_BACKEND_HELP = """\
The kubernetes auth method logs in pods with their service-account token, confirmed by the
cluster's TokenReview API and/or the service-account signing keys, and bound to roles by
service account name and namespace."""
