"""The web UI's static files (``/ui``), served from package data by a fixed manifest.

Only the files named in ``MANIFEST`` are ever read, so no request path reaches the file
system: ``/ui/../x`` or ``/ui/%2e%2e/x`` is simply not in the table and answers 404. The
files are read once and kept in memory with their SHA-256 ETag. Every answer carries a
strict Content-Security-Policy (no inline script or style, no framing, no third party).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["MANIFEST", "SECURITY_HEADERS", "Asset", "StaticAnswer", "assets", "serve"]

# URL path under /ui/ → (file under strongroom/http/ui/, content type)
MANIFEST: dict[str, tuple[str, str]] = {
    "": ("index.html", "text/html; charset=utf-8"),
    # the OIDC sign-in's callback page, also served at /ui/vault/auth/<mount>/oidc/callback
    "oidc-callback.html": ("oidc-callback.html", "text/html; charset=utf-8"),
    # Strongroom as an OIDC provider: the authorization endpoint's page, served at
    # /ui/vault/identity/oidc/provider/<name>/authorize
    "oidc-authorize.html": ("oidc-authorize.html", "text/html; charset=utf-8"),
    "app.css": ("app.css", "text/css; charset=utf-8"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
    **{
        f"js/{name}": (f"js/{name}", "text/javascript; charset=utf-8")
        for name in (
            "api.js",
            "app.js",
            "dom.js",
            "secrets.js",
            "transit.js",
            "access.js",
            "authmethods.js",
            "identity.js",
            "status.js",
            "oidc.js",
            "oidc-callback.js",
            "oidc-authorize.js",
        )
    },
}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


# never taken from sys/config/ui/headers (core filters them too; this is the last guard)
_RESERVED = frozenset(
    {name for name, _ in SECURITY_HEADERS if name != b"content-security-policy"}
    | {b"content-type", b"content-length", b"etag", b"cache-control", b"location", b"allow"}
    | {b"set-cookie", b"transfer-encoding", b"connection"}
)


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str

    def __repr__(self) -> str:
        return f"Asset({self.content_type!r}, {len(self.body)} bytes)"


@dataclass(frozen=True, slots=True)
class StaticAnswer:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


_cache: dict[str, Asset] = {}
# where an OIDC provider sends the browser back (mount paths: letters, digits, . _ - /)
_OIDC_CALLBACK = re.compile(r"/ui/vault/auth/[A-Za-z0-9._\-]+(?:/[A-Za-z0-9._\-]+)*/oidc/callback")
# the identity OIDC provider's authorization endpoint (provider names: letters, digits, . _ -)
_OIDC_AUTHORIZE = re.compile(r"/ui/vault/identity/oidc/provider/[A-Za-z0-9._\-]+/authorize")


def assets() -> dict[str, Asset]:
    """Every file of the manifest, read once from package data."""
    if not _cache:
        root = resources.files("strongroom.http").joinpath("ui")
        for url, (name, content_type) in MANIFEST.items():
            node = root
            for part in name.split("/"):
                node = node.joinpath(part)
            body = node.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            _cache[url] = Asset(body, content_type, etag)
    return _cache


def serve(
    method: str,
    path: str,
    if_none_match: str = "",
    custom: tuple[tuple[bytes, bytes], ...] = (),
) -> StaticAnswer:
    """The answer for ``method path`` (a path starting ``/ui`` or equal to ``/``).

    ``custom`` are the operator's sys/config/ui/headers lines, already filtered so that none
    replaces a security or framing header; they go before the security headers, and a
    custom Content-Security-Policy is a second policy the browser enforces as well.
    """
    if path == "/":
        return _answer(302, [(b"location", b"/ui/")], b"", custom)
    if path == "/ui":
        return _answer(301, [(b"location", b"/ui/")], b"", custom)
    if method not in ("GET", "HEAD"):
        return _answer(405, [(b"allow", b"GET, HEAD")], b"", custom)
    if _OIDC_CALLBACK.fullmatch(path):
        path = "/ui/oidc-callback.html"  # Vault's UI path; the mount is read by the page
    elif _OIDC_AUTHORIZE.fullmatch(path):
        path = "/ui/oidc-authorize.html"  # Vault's UI path; the provider is read by the page
    asset = assets().get(path[len("/ui/") :]) if path.startswith("/ui/") else None
    if asset is None:
        plain = [(b"content-type", b"text/plain; charset=utf-8")]
        return _answer(404, plain, b"not found\n", custom)
    cache = [(b"etag", asset.etag.encode()), (b"cache-control", b"no-cache")]
    if if_none_match and asset.etag in (tag.strip() for tag in if_none_match.split(",")):
        return _answer(304, cache, b"", custom)
    headers = [(b"content-type", asset.content_type.encode()), *cache]
    body = b"" if method == "HEAD" else asset.body
    return _answer(200, headers, body, custom, len(asset.body))


def _answer(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    custom: tuple[tuple[bytes, bytes], ...],
    length: int | None = None,
) -> StaticAnswer:
    size = str(len(body) if length is None else length).encode()
    own = (*headers, (b"content-length", size))
    if custom:
        custom = tuple(line for line in custom if line[0] not in _RESERVED)
    return StaticAnswer(status, (*own, *custom, *SECURITY_HEADERS), body)
