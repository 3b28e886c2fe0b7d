"""Outbound HTTP for auth methods (JWKS, OIDC discovery and token requests, Kubernetes
TokenReview), async.

Every call runs on the event loop through httpx's async client, so a slow identity provider
delays only the login waiting on it. Limits: 10 s per request, 1 MiB per response, no
redirects (a redirect could lead a configured HTTPS URL to somewhere else), no proxies from
the environment. TLS is verified against the PEM CA bundle given with the URL when there is
one (and then only against it), else against the system's CAs.

Errors name what was being fetched, never a credential or a response body.
"""

from __future__ import annotations

import functools
import ssl
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from strongroom.errors import InvalidRequest

__all__ = ["MAX_RESPONSE_BYTES", "post_form", "request_json", "tls_context"]

MAX_RESPONSE_BYTES = 1024 * 1024
TIMEOUT_SECONDS = 10.0


def tls_context(ca_pem: str, what: str) -> ssl.SSLContext:
    """An SSL context trusting exactly ``ca_pem`` (or the system CAs when empty).

    Contexts are built once per distinct ``ca_pem`` and shared (loading the system's CA
    store costs tens of milliseconds of CPU; an OIDC login makes several calls).

    Raises:
        InvalidRequest: ``ca_pem`` holds no usable certificate.
    """
    try:
        return _context(ca_pem.strip())
    except (ssl.SSLError, ValueError):
        raise InvalidRequest(f"{what}: could not parse the CA certificate(s)") from None


@functools.lru_cache(maxsize=32)
def _context(ca_pem: str) -> ssl.SSLContext:
    if not ca_pem:
        return ssl.create_default_context()
    return ssl.create_default_context(cadata=ca_pem)


async def request_json(
    method: str,
    url: str,
    *,
    what: str,
    ca_pem: str = "",
    headers: Mapping[str, str] | None = None,
    body: Any = None,
) -> tuple[int, Any]:
    """Send one request and read a JSON answer.

    Returns:
        The status code and the decoded JSON body (``None`` if it is not JSON).

    Raises:
        InvalidRequest: the request failed or the answer was larger than 1 MiB.
    """
    content = orjson.dumps(body) if body is not None else None
    sent_headers = {"Accept": "application/json", **(headers or {})}
    if content is not None:
        sent_headers["Content-Type"] = "application/json"
    return await _send(method, url, what, ca_pem, sent_headers, content)


async def post_form(
    url: str,
    form: Mapping[str, str],
    *,
    what: str,
    ca_pem: str = "",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """POST ``application/x-www-form-urlencoded`` (OAuth 2.0 token requests), read JSON.

    Returns and raises as :func:`request_json`.
    """
    content = urllib.parse.urlencode(form).encode()
    sent_headers = {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
        **(headers or {}),
    }
    return await _send("POST", url, what, ca_pem, sent_headers, content)


async def _send(
    method: str,
    url: str,
    what: str,
    ca_pem: str,
    sent_headers: Mapping[str, str],
    content: bytes | None,
) -> tuple[int, Any]:
    context = tls_context(ca_pem, what)
    try:
        async with (
            httpx.AsyncClient(
                verify=context, timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(method, url, headers=sent_headers, content=content) as response,
        ):
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > MAX_RESPONSE_BYTES:
                    raise InvalidRequest(f"{what}: response too large")
            status = response.status_code
    except (httpx.HTTPError, httpx.InvalidURL, ssl.SSLError, OSError):
        raise InvalidRequest(f"{what}: request failed") from None
    try:
        return status, orjson.loads(received) if received else None
    except orjson.JSONDecodeError:
        return status, None
