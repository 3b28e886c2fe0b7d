"""``login -method=oidc``: signing in through an OIDC provider from a terminal, as Vault's CLI.

Configuration comes as ``key=value`` arguments, Vault's names and defaults: ``role``,
``listenaddress`` (``localhost``), ``port`` (8250), ``callbackmethod`` (``http``),
``callbackhost`` (``localhost``), ``callbackport`` (the port), ``skip_browser`` (false),
``callbackmode`` (``client``, or ``direct``).

- ``client`` mode: a listener on ``listenaddress:port`` waits for the provider to send the
  browser to ``<callbackmethod>://<callbackhost>:<callbackport>/oidc/callback``, then the
  CLI completes the login at ``auth/<mount>/oidc/callback`` with the code, the state and its
  ``client_nonce`` (which proves that the code came back to the process that started).
- ``direct`` mode: the provider sends the browser to the server's own callback and the CLI
  polls ``auth/<mount>/oidc/poll`` with the state and its ``client_nonce``.

The authorization URL is printed on stderr (and opened in a browser unless
``skip_browser=true``); the login gives up after two minutes, as Vault's.
"""

from __future__ import annotations

import html
import queue
import secrets
import sys
import threading
import time
import urllib.parse
import webbrowser
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._client import APIError, Client, CommandError, remote
from ._command import Context
from ._flags import UsageError, parse_data

__all__ = ["login_oidc"]

DEFAULT_PORT = 8250
TIMEOUT = 120.0  # seconds, as Vault's CLI
_TRUE = frozenset({"1", "t", "true", "yes"})
_PENDING = ("authorization_pending", "slow_down")

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Strongroom login</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"""


def _page(title: str, text: str) -> bytes:
    return _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()


def _settings(data: Mapping[str, Any]) -> dict[str, str]:
    known = {
        "role",
        "mount",
        "listenaddress",
        "port",
        "callbackmethod",
        "callbackhost",
        "callbackport",
        "skip_browser",
        "callbackmode",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"Unknown OIDC login setting(s): {', '.join(unknown)}")
    out = {key: str(value) for key, value in data.items()}
    port = out.get("port") or str(DEFAULT_PORT)
    for key in ("port", "callbackport"):
        value = out.get(key, port)
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise UsageError(f"Invalid {key}: {value!r} (a TCP port number)")
    mode = out.get("callbackmode", "client")
    if mode not in ("client", "direct"):
        raise UsageError(f"Invalid callbackmode {mode!r}: client or direct")
    return {
        "role": out.get("role", ""),
        "listenaddress": out.get("listenaddress") or "localhost",
        "port": port,
        "callbackmethod": out.get("callbackmethod") or "http",
        "callbackhost": out.get("callbackhost") or "localhost",
        "callbackport": out.get("callbackport") or port,
        "skip_browser": "true" if out.get("skip_browser", "").lower() in _TRUE else "",
        "callbackmode": mode,
    }


class _Listener:
    """The loopback HTTP server the provider sends the browser back to (``client`` mode)."""

    def __init__(self, address: str, port: int, finish: Callable[[dict[str, str]], Any]) -> None:
        self.results: queue.Queue[Any] = queue.Queue()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _callback(self, params: dict[str, str]) -> None:
                try:
                    secret = finish(params)
                except CommandError as exc:
                    self._answer(400, _page("Login failed", str(exc)))
                    outer.results.put(exc)
                    return
                self._answer(200, _page("Signed in", "You may close this window now."))
                outer.results.put(secret)

            def do_GET(self) -> None:
                split = urllib.parse.urlsplit(self.path)
                if split.path != "/oidc/callback":
                    self._answer(404, _page("Not found", "This is not the OIDC callback."))
                    return
                self._callback(dict(urllib.parse.parse_qsl(split.query)))

            def do_POST(self) -> None:  # a provider's form_post
                if urllib.parse.urlsplit(self.path).path != "/oidc/callback":
                    self._answer(404, _page("Not found", "This is not the OIDC callback."))
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > 65536:
                    self._answer(413, _page("Login failed", "The form is too large."))
                    return
                form = self.rfile.read(length).decode("utf-8", "replace")
                self._callback(dict(urllib.parse.parse_qsl(form)))

            def log_message(self, format: str, *args: object) -> None:
                pass  # the query holds the code: never logged

        try:
            self.server = ThreadingHTTPServer((address, port), Handler)
        except OSError as exc:
            raise CommandError(
                f"Error listening for the OIDC callback on {address}:{port}: {exc.strerror}"
            ) from None
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, timeout: float) -> dict[str, Any]:
        try:
            result = self.results.get(timeout=timeout)
        except queue.Empty:
            raise CommandError("Timed out waiting for response from provider", 2) from None
        if isinstance(result, CommandError):
            raise result
        return dict(result)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _auth_of(secret: Mapping[str, Any] | None) -> dict[str, Any]:
    auth = secret.get("auth") if secret else None
    if not isinstance(auth, Mapping) or not auth.get("client_token"):
        raise CommandError("Error authenticating: the server answered without a token", 2)
    return dict(secret or {})


def _poll(client: Client, mount: str, state: str, nonce: str, interval: float) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(interval)
        try:
            secret = client.write(
                f"auth/{mount}/oidc/poll", {"state": state, "client_nonce": nonce}
            )
        except APIError as exc:
            if any(e in _PENDING for e in exc.errors):
                if "slow_down" in exc.errors:
                    interval += 5
                continue
            raise CommandError(f"Error polling for the OIDC login: {exc.describe()}", 2) from None
        return _auth_of(secret)
    raise CommandError("Timed out waiting for response from provider", 2)


def _open_browser(ctx: Context, url: str) -> None:
    """Open ``url`` in a graphical browser; never a console one, which would take the terminal."""
    graphical = sys.platform in ("darwin", "win32") or bool(
        ctx.env.get("DISPLAY") or ctx.env.get("WAYLAND_DISPLAY")
    )
    opened = False
    if graphical:
        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            opened = False
    if not opened:
        ctx.warn("Could not open a browser: open the address above yourself.")


def login_oidc(ctx: Context, mount: str, args: list[str]) -> dict[str, Any]:
    """Run the browser login against ``auth/<mount>/`` and return the login's answer."""
    config = _settings(parse_data(args, ctx.stdin))
    direct = config["callbackmode"] == "direct"
    client = ctx.client()
    client.token = ""  # as in Vault: a login sends no token
    if direct:
        redirect = f"{client.settings.address.rstrip('/')}/v1/auth/{mount}/oidc/callback"
    else:
        redirect = (
            f"{config['callbackmethod']}://{config['callbackhost']}:{config['callbackport']}"
            "/oidc/callback"
        )
    nonce = secrets.token_urlsafe(24)
    body = {"role": config["role"], "redirect_uri": redirect, "client_nonce": nonce}
    with remote("authenticating"):
        answer = client.write(f"auth/{mount}/oidc/auth_url", body)
    data = (answer or {}).get("data") or {}
    auth_url = str(data.get("auth_url") or "")
    if not auth_url:
        raise CommandError(
            f"Unable to authorize role {config['role']!r} with redirect_uri {redirect!r}. "
            "Check the role's allowed_redirect_uris.",
            2,
        )

    def finish(params: dict[str, str]) -> dict[str, Any]:
        if params.get("error"):
            text = params.get("error_description") or params["error"]
            raise CommandError(f"Error authenticating: the provider refused: {text}", 2)
        query = {k: v for k, v in params.items() if k in ("state", "code", "id_token")}
        with remote("authenticating"):
            secret = client.request(
                "GET", f"auth/{mount}/oidc/callback", params={**query, "client_nonce": nonce}
            )
        return _auth_of(secret)

    listener = None
    if not direct:
        listener = _Listener(config["listenaddress"], int(config["port"]), finish)
    try:
        ctx.warn(
            f"Complete the login via your OIDC provider. Launching browser to:\n\n    {auth_url}\n"
        )
        if not config["skip_browser"]:
            _open_browser(ctx, auth_url)
        ctx.warn("Waiting for OIDC authentication to complete...")
        if listener is not None:
            return listener.wait(TIMEOUT)
        interval = float(str(data.get("poll_interval") or 5))
        return _poll(client, mount, str(data.get("state") or ""), nonce, interval)
    finally:
        if listener is not None:
            listener.close()
