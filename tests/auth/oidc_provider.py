"""A small, real OpenID Connect provider for tests, served over HTTP from a thread.

It implements what a relying party such as Strongroom's ``oidc`` method talks to:

- ``/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0) and ``/jwks``;
- ``/authorize`` (authorization-code flow): checks the client, the registered redirect URI,
  ``response_type=code``, ``scope`` with ``openid`` and a PKCE S256 ``code_challenge``
  (RFC 7636), then approves the configured test user at once and sends the browser back
  with ``code`` and ``state`` (``response_mode=query``, or an auto-submitted form for
  ``form_post``); an unknown client or unregistered redirect URI gets a 400 page and no
  redirect, as real providers do;
- ``/token``: client authentication (``client_secret_basic`` or ``client_secret_post``),
  single-use codes bound to the client and redirect URI, expiry, and the PKCE check
  ``BASE64URL(SHA256(code_verifier)) == code_challenge``; answers an RS256 ID token with
  ``iss``, ``sub``, ``aud``, ``azp``, ``exp``, ``iat``, ``auth_time``, ``nonce`` and the user's
  claims;
- ``/userinfo`` (Bearer access token).

``Provider.tweaks`` lets a test make the provider misbehave on purpose (a wrong nonce, an
expired or foreign-audience ID token, a token signed by another key).
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.jwk import RSAKey

CODE_TTL = 60.0


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    scope: str
    issued: float
    used: bool = False


@dataclass
class Provider:
    client_id: str = "strongroom"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uris: list[str] = field(default_factory=list)
    user: dict[str, Any] = field(default_factory=dict)
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    tweaks: dict[str, Any] = field(default_factory=dict)
    url: str = ""
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], float] = time.time

    # ----- documents ---------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "userinfo_endpoint": self.url + "/userinfo",
            "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": list(self.auth_methods),
            "scopes_supported": ["openid", "email", "profile", "groups"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "use": "sig", "alg": "RS256"}]}

    # ----- /authorize --------------------------------------------------------------------
    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for the browser."""
        self.authorize_requests.append(dict(query))
        if query.get("client_id") != self.client_id:
            return 400, {}, b"unknown client"
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return 400, {}, b"redirect_uri is not registered for this client"
        state = query.get("state", "")

        def back(params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            params = {**params, "state": state}
            if query.get("response_mode") == "form_post":
                inputs = "".join(
                    f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                    for k, v in params.items()
                )
                page = (
                    f'<!doctype html><form method="post" action="{html.escape(redirect_uri)}">'
                    f"{inputs}</form><script>document.forms[0].submit()</script>"
                )
                return 200, {"Content-Type": "text/html"}, page.encode()
            sep = "&" if "?" in redirect_uri else "?"
            location = redirect_uri + sep + urllib.parse.urlencode(params)
            return 302, {"Location": location}, b""

        if self.tweaks.get("deny"):  # the person said no
            return back({"error": "access_denied", "error_description": "The user said no"})
        if query.get("response_type") != "code":
            return back({"error": "unsupported_response_type"})
        if "openid" not in query.get("scope", "").split():
            return back({"error": "invalid_scope"})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return back({"error": "invalid_request"})
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.grants[code] = Grant(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                nonce=query.get("nonce", ""),
                challenge=query["code_challenge"],
                scope=query.get("scope", ""),
                issued=self.clock(),
            )
        return back({"code": code})

    # ----- /token ------------------------------------------------------------------------
    def _client(self, form: dict[str, str], headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic ") and "client_secret_basic" in self.auth_methods:
            pair = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = pair.partition(":")
            client_id, secret = urllib.parse.unquote(client_id), urllib.parse.unquote(secret)
            self.token_requests[-1]["auth_method"] = "client_secret_basic"
        elif "client_secret" in form and "client_secret_post" in self.auth_methods:
            client_id, secret = form.get("client_id", ""), form["client_secret"]
            self.token_requests[-1]["auth_method"] = "client_secret_post"
        else:
            return None
        if client_id != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            return None
        return client_id

    def token(self, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        self.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
        if self._client(form, headers) is None:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self.lock:
            grant = self.grants.get(form.get("code", ""))
            if grant is None or grant.used or self.clock() - grant.issued > CODE_TTL:
                return 400, {"error": "invalid_grant"}
            grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        if not verifier or not secrets.compare_digest(s256(verifier), grant.challenge):
            return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
        now = int(self.clock())
        access_token = secrets.token_urlsafe(24)
        digest = hashlib.sha256(access_token.encode()).digest()[:16]
        at_hash = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        claims: dict[str, Any] = {
            "iss": self.tweaks.get("iss", self.url),
            "sub": self.user["sub"],
            "aud": self.tweaks.get("aud", self.client_id),
            "azp": self.client_id,
            "iat": now,
            "auth_time": now - int(self.tweaks.get("auth_age", 0)),
            "exp": now + int(self.tweaks.get("exp_in", 300)),
            "nonce": self.tweaks.get("nonce", grant.nonce),
            "at_hash": self.tweaks.get("at_hash", at_hash),
            **{k: v for k, v in self.user.items() if k != "sub"},
        }
        key = self.tweaks.get("key", self.key)
        id_token = jws.serialize_compact(
            {"alg": "RS256", "kid": key.kid, "typ": "JWT"},
            json.dumps(claims).encode(),
            key,
            algorithms=["RS256"],
        )
        self.access_tokens[access_token] = dict(self.tweaks.get("userinfo", {}))
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }

    def userinfo(self, headers: dict[str, str]) -> tuple[int, Any]:
        auth = headers.get("authorization", "")
        extra = self.access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if extra is None:
            return 401, {"error": "invalid_token"}
        return 200, {"sub": self.user["sub"], **extra}


@contextmanager
def run_provider(**kwargs: Any) -> Iterator[Provider]:
    provider = Provider(**kwargs)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any) -> None:
            self._reply(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())

        def do_GET(self) -> None:
            path, _, raw_query = self.path.partition("?")
            query = dict(urllib.parse.parse_qsl(raw_query))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif path == "/jwks":
                self._json(200, provider.jwks())
            elif path == "/authorize":
                self._reply(*provider.authorize(query))
            elif path == "/userinfo":
                self._json(*provider.userinfo(headers))
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            headers = {k.lower(): v for k, v in self.headers.items()}
            if self.path == "/token":
                form = dict(urllib.parse.parse_qsl(body))
                self._json(*provider.token(form, headers))
            else:
                self._json(404, {"error": "not found"})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
