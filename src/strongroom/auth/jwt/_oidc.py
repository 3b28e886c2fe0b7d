"""The OIDC authorization-code flow: ``oidc/auth_url``, ``oidc/callback``, ``oidc/poll``.

1. ``POST oidc/auth_url {role, redirect_uri, client_nonce}`` (no token): the role must be of
   type ``oidc`` and list the ``redirect_uri`` in ``allowed_redirect_uris`` (exact match,
   case-insensitive; for loopback hosts the port is ignored, RFC 8252 7.3). A pending login is
   stored (``_oidc_state``) and the answer is the provider's authorization URL with
   ``client_id``, ``redirect_uri``, ``response_type=code``, ``scope`` (``openid`` plus the
   role's ``oidc_scopes``), ``state``, ``nonce``, PKCE's ``code_challenge`` (S256 of a
   verifier kept here) and, when configured, ``response_mode=form_post`` and ``max_age``.
   In ``direct`` callback mode the answer also carries ``state`` and ``poll_interval``.
2. The provider sends the browser back to ``redirect_uri`` with ``code`` and ``state``; the
   client calls ``GET oidc/callback?state=…&code=…[&client_nonce=…]``. The state is spent
   first (single use), then the code is exchanged at the discovered token endpoint
   (``client_secret_basic``, or ``client_secret_post`` when the provider only offers that,
   with the PKCE ``code_verifier``), and the ID token is verified: signature by the
   discovered JWKS (``jwt_supported_algs``, RS256 by default), ``iss`` the discovered issuer,
   ``aud`` holding ``oidc_client_id`` (and one of the role's ``bound_audiences`` if set),
   ``azp`` the client when present, ``exp``/``iat``, the stored ``nonce``, ``at_hash``
   against the access token when present, ``auth_time`` against ``max_age``. Then
   ``bound_subject``, claims from the userinfo endpoint merged in (a failure there does not
   fail the login, as in Vault), user and groups claims, claim mappings and ``bound_claims``,
   and the login answer.
3. ``form_post``: the provider POSTs ``state`` and ``code`` to ``/v1/auth/<mount>/oidc/callback``
   (``auth_url`` rewrites ``/ui/vault/`` to ``/v1/`` in the redirect URI, as Vault does); the
   code is kept with the state and the browser is sent (303) to the UI's callback page with
   ``code=no_code``, which completes the login with a GET as above.
4. ``direct`` mode: the browser itself reaches ``GET oidc/callback``, which answers a small
   HTML page and keeps the login's result; the client collects it once with
   ``POST oidc/poll {state, client_nonce}`` (``authorization_pending`` until then).

Errors start with Vault's "Vault login failed." and never include a code, token or secret.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
import secrets
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._common import storage_of
from strongroom.auth._http import post_form, request_json
from strongroom.auth._jose import Leeways, audiences, check_times, read_header
from strongroom.auth.jwt._claims import bound_claims_match, groups_of, mapped_metadata, user_of
from strongroom.auth.jwt._config import JWTConfig, load_config
from strongroom.auth.jwt._keys import Endpoints, KeyCache, KeySet, verified_claims
from strongroom.auth.jwt._oidc_state import STATE_TTL_SECONDS, FlowState, StateStore
from strongroom.auth.jwt._roles import JWTRole, load_role
from strongroom.errors import InvalidRequest, UnsupportedOperation
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response, Storage

__all__ = ["OIDCFlow", "valid_redirect"]

log = logging.getLogger("strongroom.auth.jwt")

LOGIN_FAILED = "Vault login failed."
NO_CODE = "no_code"
DEFAULT_POLL_INTERVAL = 5
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_LOOPBACK_NAMES = ("localhost",)
# claims the userinfo endpoint may not replace (they were verified in the ID token)
_PROTECTED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp"})
_SUCCESS_HTML = (
    b"<!doctype html><html lang=en><meta charset=utf-8><title>Signed in</title>"
    b"<p>Signed in. You may close this window and return to your client.</p></html>"
)


def _failed(detail: str) -> InvalidRequest:
    return InvalidRequest(f"{LOGIN_FAILED} {detail}")


@dataclass(frozen=True, slots=True)
class AuthURLArgs:
    role: str = ""
    redirect_uri: str = ""
    client_nonce: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class CallbackArgs:
    state: str = field(default="", repr=False)
    code: str = field(default="", repr=False)
    id_token: str = field(default="", repr=False)
    client_nonce: str = field(default="", repr=False)
    error: str = ""
    error_description: str = ""


@dataclass(frozen=True, slots=True)
class PollArgs:
    state: str = field(default="", repr=False)
    client_nonce: str = field(default="", repr=False)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _without_port(parts: urllib.parse.SplitResult) -> tuple[str, ...]:
    host = parts.hostname or ""
    return (parts.scheme.lower(), host, parts.path, parts.query, parts.fragment)


def valid_redirect(uri: str, allowed: Sequence[str]) -> bool:
    """Vault's rule: an exact (case-insensitive) match, except that for a loopback host the
    port is ignored (RFC 8252 7.3: native clients listen on any free port)."""
    try:
        parts = urllib.parse.urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        return False
    if not _is_loopback(host):
        return any(uri.lower() == candidate.lower() for candidate in allowed)
    wanted = _without_port(parts)
    for candidate in allowed:
        try:
            if _without_port(urllib.parse.urlsplit(candidate)) == wanted:
                return True
        except ValueError:
            continue
    return False


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _with_query(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)


def _ui_mount(mount_point: str) -> str:
    """``auth/team/oidc/`` → ``team/oidc`` (the mount as the UI's routes name it)."""
    return mount_point.removeprefix("auth/").strip("/")


class OIDCFlow:
    def __init__(self, cache: KeyCache, now: Callable[[], float]) -> None:
        self.cache = cache
        self.now = now
        self.states = StateStore(now)

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"oidc/auth_url",
                args=AuthURLArgs,
                operations={Operation.UPDATE: self.auth_url},
                synopsis="Request an authorization URL to start an OIDC login flow.",
                description=__doc__ or "",
            ),
            Path(
                pattern=r"oidc/callback",
                args=CallbackArgs,
                operations={Operation.READ: self.callback, Operation.UPDATE: self.form_post},
                synopsis="Complete an OIDC login (GET), or take a form_post from the provider.",
                description=__doc__ or "",
            ),
            Path(
                pattern=r"oidc/poll",
                args=PollArgs,
                operations={Operation.UPDATE: self.poll},
                synopsis="Collect a login completed in direct callback mode.",
                description=__doc__ or "",
            ),
        ]

    # ----- shared ------------------------------------------------------------------------

    async def _config(self, storage: Storage) -> JWTConfig:
        config = await load_config(storage)
        if config is None:
            raise _failed("Could not load configuration.")
        if not config.oidc_flow:
            raise InvalidRequest("OIDC login is not configured for this mount")
        return config

    async def _keys(self, config: JWTConfig) -> KeySet:
        keys = await self.cache.get(config.source)
        endpoints = keys.endpoints
        if not (endpoints.authorization and endpoints.token):
            raise _failed("The provider's discovery document lacks the OAuth endpoints.")
        return keys

    async def _oidc_role(self, storage: Storage, name: str) -> JWTRole:
        role = await load_role(storage, name)
        if role is None:
            raise InvalidRequest(f'role "{name}" could not be found')
        if role.role_type != "oidc":
            raise InvalidRequest("role with jwt role_type is not allowed")
        return role

    # ----- auth_url ----------------------------------------------------------------------

    async def auth_url(self, request: Request, args: AuthURLArgs) -> Response:
        storage = storage_of(request)
        config = await self._config(storage)
        role_name = (args.role or config.default_role).lower()  # as Vault: case-insensitive
        if not role_name:
            raise InvalidRequest("missing role")
        role = await self._oidc_role(storage, role_name)
        direct = role.callback_mode == "direct"
        if direct and not args.client_nonce:
            raise InvalidRequest("missing client_nonce")
        redirect_uri = args.redirect_uri.strip()
        if not redirect_uri:
            raise InvalidRequest("missing redirect_uri")
        if not valid_redirect(redirect_uri, role.allowed_redirect_uris):
            raise InvalidRequest(
                f"redirect_uri is not among the allowed_redirect_uris of role {role_name!r}"
            )
        if config.oidc_response_mode == "form_post":
            # the provider posts to the API, which sends the browser on to the UI
            redirect_uri = redirect_uri.replace("/ui/vault/", "/v1/", 1)
        keys = await self._keys(config)
        state, nonce = secrets.token_hex(20), secrets.token_hex(20)
        verifier = secrets.token_urlsafe(48)  # 64 characters (RFC 7636: 43 to 128)
        record = FlowState(
            role=role_name,
            redirect_uri=redirect_uri,
            expires=self.now() + STATE_TTL_SECONDS,
            callback_mode=role.callback_mode,
            nonce=nonce,
            code_verifier=verifier,
            client_nonce=args.client_nonce,
        )
        await self.states.sweep(storage)
        await self.states.create(storage, state, record)
        params = {
            "client_id": config.oidc_client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(dict.fromkeys(("openid", *role.oidc_scopes))),
            "state": state,
            "nonce": nonce,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
        }
        if config.oidc_response_mode == "form_post":
            params["response_mode"] = "form_post"
        if role.max_age:
            params["max_age"] = str(role.max_age)
        data: dict[str, Any] = {"auth_url": _with_query(keys.endpoints.authorization, params)}
        if direct:
            data["state"] = state
            data["poll_interval"] = str(role.poll_interval or DEFAULT_POLL_INTERVAL)
        return Response(data=data)

    # ----- callback ----------------------------------------------------------------------

    async def form_post(self, request: Request, args: CallbackArgs) -> Response:
        storage = storage_of(request)
        config = await load_config(storage)
        if config is None:
            raise _failed("Could not load configuration.")
        if config.oidc_response_mode != "form_post":
            raise UnsupportedOperation("unsupported operation")
        if args.error or args.error_description:
            # the provider refused: the UI's callback page tells the person why
            error = args.error if _ERROR_CODE.fullmatch(args.error) else "error"
            query = urllib.parse.urlencode({"state": args.state, "error": error})
        else:
            if not args.code:
                raise _failed("No code received (the implicit flow is not supported).")
            await self.states.amend(storage, args.state, args.code)
            query = urllib.parse.urlencode({"state": args.state, "code": NO_CODE})
        location = f"/ui/vault/auth/{_ui_mount(request.mount_point)}/oidc/callback?{query}"
        return Response(
            status=303,
            headers={"Location": location, "Cache-Control": "no-store"},
            raw_body=b"",
            content_type="text/plain; charset=utf-8",
        )

    async def callback(self, request: Request, args: CallbackArgs) -> Response:
        storage = storage_of(request)
        config = await self._config(storage)
        record = await self.states.take(storage, args.state)  # single use, before anything
        if record.callback_mode != "direct":
            result = await self._complete(request, config, record, args)
            role, alias, mapped, groups = result
            return Response(auth=role.login_auth(record.role, alias, mapped, groups))
        try:
            _, alias, mapped, groups = await self._complete(request, config, record, args)
        except BaseException:
            await self.states.finish(storage, args.state, None)
            raise
        outcome = {"alias": alias, "metadata": dict(mapped), "groups": groups}
        await self.states.finish(storage, args.state, outcome)
        return Response(
            raw_body=_SUCCESS_HTML,
            content_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def _complete(
        self, request: Request, config: JWTConfig, record: FlowState, args: CallbackArgs
    ) -> tuple[JWTRole, str, dict[str, str], list[str]]:
        if args.error or args.error_description:
            code = args.error if _ERROR_CODE.fullmatch(args.error) else "error"
            raise _failed(f"The provider answered {code!r}.")
        if record.client_nonce and record.callback_mode != "direct":
            if args.client_nonce != record.client_nonce:
                raise InvalidRequest("invalid client_nonce")
        role = await load_role(storage_of(request), record.role)
        if role is None:
            raise _failed("Role could not be found.")
        role.token.check_remote(request)
        code = record.code if args.code == NO_CODE else args.code
        if not code:
            raise _failed("No code or id_token received.")
        keys = await self._keys(config)
        id_token, access_token = await _exchange(config, keys.endpoints, record, code)
        claims = await self._verify(config, role, record, id_token, access_token)
        if role.bound_subject and claims.get("sub") != role.bound_subject:
            raise _failed("sub claim does not match bound subject")
        if access_token and keys.endpoints.userinfo:
            claims = await _merge_userinfo(config, keys.endpoints.userinfo, access_token, claims)
        alias = user_of(claims, role.user_claim, role.user_claim_json_pointer)
        groups = groups_of(claims, role.groups_claim)
        mapped = mapped_metadata(claims, role.claim_mappings)
        try:
            bound_claims_match(claims, role.bound_claims, role.bound_claims_type)
        except InvalidRequest as exc:
            raise _failed(f"error validating claims: {exc.messages[0]}") from None
        return role, alias, mapped, groups

    async def _verify(
        self,
        config: JWTConfig,
        role: JWTRole,
        record: FlowState,
        id_token: str,
        access_token: str,
    ) -> dict[str, Any]:
        try:
            claims, keys = await verified_claims(
                self.cache, config.source, id_token, config.oidc_algorithms
            )
        except InvalidRequest as exc:
            raise _failed(f"Token verification failed: {exc.messages[0]}.") from None
        problem = _id_token_problem(claims, keys.issuer, config.oidc_client_id, role, record)
        if problem is None and access_token and "at_hash" in claims:
            alg = read_header(id_token).alg
            if claims["at_hash"] != _token_hash(access_token, alg):
                problem = "invalid access token hash (at_hash) claim"
        if problem is None:
            try:
                check_times(claims, self.now(), Leeways())
            except InvalidRequest as exc:
                problem = exc.messages[0]
        if problem is None and role.max_age:
            auth_time = claims.get("auth_time")
            if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
                problem = "auth_time claim missing although max_age is set"
            elif self.now() - 60 > auth_time + role.max_age:
                problem = "auth_time is older than max_age"
        if problem is not None:
            raise _failed(f"Token verification failed: {problem}.")
        claims.pop("nonce", None)
        return claims

    # ----- poll --------------------------------------------------------------------------

    async def poll(self, request: Request, args: PollArgs) -> Response:
        storage = storage_of(request)
        record = await self.states.collect(storage, args.state, args.client_nonce)
        role = await load_role(storage, record.role)
        if role is None:
            raise _failed("Role could not be found.")
        result = record.result or {}
        return Response(
            auth=role.login_auth(
                record.role,
                str(result.get("alias", "")),
                dict(result.get("metadata", {})),
                list(result.get("groups", [])),
            )
        )


def _token_hash(access_token: str, alg: str) -> str:
    """OpenID Connect Core 3.1.3.6: the left half of the access token's hash, with the hash
    of the ID token's algorithm (SHA-512 for EdDSA, as hashicorp/cap does)."""
    bits = alg[-3:]
    name = {"256": "sha256", "384": "sha384", "512": "sha512"}.get(bits, "sha512")
    digest = hashlib.new(name, access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def _id_token_problem(
    claims: Mapping[str, Any], issuer: str, client_id: str, role: JWTRole, record: FlowState
) -> str | None:
    """What is wrong with a signature-verified ID token (OpenID Connect Core 3.1.3.7)."""
    if not issuer or claims.get("iss") != issuer:
        return "invalid issuer (iss) claim"
    try:
        token_audiences = audiences(claims)
    except InvalidRequest:
        return "invalid audience (aud) claim"
    if client_id not in token_audiences:
        return "invalid audience (aud) claim: the client ID is not among the audiences"
    if role.bound_audiences and not any(a in role.bound_audiences for a in token_audiences):
        return "invalid audience (aud) claim: audience claim does not match"
    azp = claims.get("azp")
    if (azp is not None or len(token_audiences) > 1) and azp != client_id:
        return "invalid authorized party (azp) claim"
    if "exp" not in claims or "iat" not in claims:
        return "the ID token lacks exp or iat"
    if not record.nonce or claims.get("nonce") != record.nonce:
        return "invalid ID token nonce"
    return None


def _client_auth(config: JWTConfig, endpoints: Endpoints) -> tuple[dict[str, str], dict[str, str]]:
    """(form fields, headers) authenticating the client at the token endpoint."""
    methods = endpoints.token_auth_methods
    if methods and "client_secret_basic" not in methods and "client_secret_post" in methods:
        fields = {"client_id": config.oidc_client_id, "client_secret": config.oidc_client_secret}
        return fields, {}
    # RFC 6749 2.3.1: both parts form-urlencoded before the Basic encoding
    pair = (
        urllib.parse.quote(config.oidc_client_id, safe="")
        + ":"
        + urllib.parse.quote(config.oidc_client_secret, safe="")
    )
    basic = base64.b64encode(pair.encode()).decode()
    return {}, {"Authorization": f"Basic {basic}"}


async def _exchange(
    config: JWTConfig, endpoints: Endpoints, record: FlowState, code: str
) -> tuple[str, str]:
    """The code at the token endpoint → (ID token, access token)."""
    fields, headers = _client_auth(config, endpoints)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": record.redirect_uri,
        "code_verifier": record.code_verifier,
        **fields,
    }
    status, body = await post_form(
        endpoints.token,
        form,
        what="oidc token endpoint",
        ca_pem=config.source.oidc_discovery_ca_pem,
        headers=headers,
    )
    if status != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        shown = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else "error"
        raise _failed(f"Error exchanging oidc code: the provider answered {status} ({shown}).")
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise _failed("Token verification failed: no id_token found in response.")
    access_token = body.get("access_token")
    return id_token, access_token if isinstance(access_token, str) else ""


async def _merge_userinfo(
    config: JWTConfig, url: str, access_token: str, claims: dict[str, Any]
) -> dict[str, Any]:
    """Claims from the userinfo endpoint added to the ID token's (its ``sub`` must match);
    any failure leaves the claims as they were, as in Vault."""
    try:
        status, info = await request_json(
            "GET",
            url,
            what="oidc userinfo endpoint",
            ca_pem=config.source.oidc_discovery_ca_pem,
            headers={"Authorization": f"Bearer {access_token}"},
        )
    except InvalidRequest:
        log.info("oidc login: the userinfo endpoint could not be read")
        return claims
    if status != 200 or not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
        log.info("oidc login: the userinfo endpoint gave no usable answer")
        return claims
    extra = {k: v for k, v in info.items() if k not in _PROTECTED_CLAIMS}
    return {**claims, **extra}
