"""What every command shares: the injected I/O, the common flags, the command table entry.

A command is a plain function ``handler(ctx, opts, args) -> exit code``. It raises
``UsageError`` for a local mistake (exit 1) and ``CommandError`` for anything it wants reported
with its own exit code; ``remote("reading x")`` wraps API calls so failures read
``Error reading x: Code: 403 (…). Errors: permission denied`` and exit 2.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from ._client import Client, CommandError, env_value, resolve_settings
from ._flags import Flag, Options, UsageError
from ._output import (
    FORMATS,
    field_value,
    render_data,
    render_field,
    render_list,
    render_secret,
)

__all__ = [
    "FIELD_FLAG",
    "FORMAT_FLAG",
    "HTTP_FLAGS",
    "Command",
    "Context",
    "Handler",
    "expect_args",
    "expect_at_least",
    "resolve_format",
    "sanitize_path",
]

HTTP_FLAGS: tuple[Flag, ...] = (
    Flag("address", help="Address of the server (STRONGROOM_ADDR, VAULT_ADDR)."),
    Flag("ca-cert", help="PEM CA certificate file to verify the server (…_CACERT)."),
    Flag("ca-path", help="Directory of PEM CA certificates (…_CAPATH)."),
    Flag("client-cert", help="PEM client certificate for TLS authentication (…_CLIENT_CERT)."),
    Flag("client-key", help="PEM private key of the client certificate (…_CLIENT_KEY)."),
    Flag("tls-skip-verify", "bool", help="Do not verify the server certificate (insecure)."),
    Flag("namespace", aliases=("ns",), help="Namespace sent as X-Vault-Namespace."),
    Flag("wrap-ttl", "duration", help="Wrap the response in a cubbyhole token with this TTL."),
)
FORMAT_FLAG = Flag("format", help='Output format: "table", "json" or "yaml".')
FIELD_FLAG = Flag("field", help="Print only this field, raw.")


@dataclass(slots=True)
class Context:
    """The outside world of one invocation: environment, streams and HTTP transport."""

    env: Mapping[str, str]
    out: TextIO
    err: TextIO
    stdin: TextIO
    transport: httpx.BaseTransport | None = None
    format: str = "table"
    opts: Options = field(default_factory=Options)
    _clients: list[Client] = field(default_factory=list)

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def warn(self, text: str) -> None:
        self.err.write(text + "\n")

    def client(self) -> Client:
        """A client configured from the common flags and the environment."""
        opts = self.opts
        skip = opts.flag("tls-skip-verify") if opts.is_set("tls-skip-verify") else None
        settings = resolve_settings(
            self.env,
            address=opts.text("address"),
            ca_cert=opts.text("ca-cert"),
            ca_path=opts.text("ca-path"),
            client_cert=opts.text("client-cert"),
            client_key=opts.text("client-key"),
            skip_verify=skip,
            namespace=opts.text("namespace"),
            wrap_ttl=opts.text("wrap-ttl"),
        )
        client = Client(settings, self.transport)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()

    def read_secret(self, prompt: str) -> str:
        """A secret from the terminal without echo, or one line of piped stdin."""
        if self.stdin.isatty():
            return getpass.getpass(prompt, stream=self.err).strip()
        return self.stdin.readline().strip()

    def read_stdin(self) -> str:
        return self.stdin.read().strip()

    def output_secret(self, secret: Mapping[str, Any] | None) -> int:
        """Print a response, or just ``-field``; the exit code Vault would return."""
        if secret is None:
            return 0
        name = self.opts.text("field")
        if name:
            value = field_value(secret, name)
            if value is None:
                raise CommandError(f'Field "{name}" not present in secret', 1)
            self.print(render_field(value, self.format))
            return 0
        self.print_warnings(secret)
        text = render_secret(secret, self.format)
        if text:
            self.print(text)
        return 0

    def output_data(self, data: Mapping[str, object]) -> int:
        name = self.opts.text("field")
        if name:
            if name not in data:
                raise CommandError(f'Field "{name}" not present in secret', 1)
            self.print(render_field(data[name], self.format))
            return 0
        text = render_data(data, self.format)
        if text:
            self.print(text)
        return 0

    def output_list(self, keys: Sequence[object]) -> int:
        self.print(render_list(keys, self.format))
        return 0

    def print_warnings(self, secret: Mapping[str, Any]) -> None:
        warnings = secret.get("warnings")
        if self.format == "table" and isinstance(warnings, list) and warnings:
            self.warn("WARNING! The following warnings were returned from the server:")
            for warning in warnings:
                self.warn(f"  * {warning}")
            self.warn("")


Handler = Callable[[Context, Options, list[str]], int]


@dataclass(frozen=True, slots=True)
class Command:
    """One entry of the command table: ``strongroom <name…> [flags] [args]``."""

    synopsis: str
    usage: str
    handler: Handler
    flags: tuple[Flag, ...] = ()
    http: bool = True
    output: bool = True

    def all_flags(self) -> tuple[Flag, ...]:
        common: tuple[Flag, ...] = HTTP_FLAGS if self.http else ()
        if self.output:
            common = (*common, FORMAT_FLAG)
        return (*common, *self.flags)

    def help_text(self) -> str:
        lines = [self.usage.rstrip(), ""]
        own = [f.usage() for f in self.flags]
        if own:
            lines += ["Command options:", *own, ""]
        if self.output:
            lines += ["Output options:", FORMAT_FLAG.usage(), ""]
        if self.http:
            lines += ["HTTP options:", *(f.usage() for f in HTTP_FLAGS), ""]
        return "\n".join(lines)


def resolve_format(opts: Options, env: Mapping[str, str]) -> str:
    """``-format``, then STRONGROOM_FORMAT / VAULT_FORMAT, then ``table``."""
    fmt = (opts.text("format") or env_value(env, "FORMAT") or "table").lower()
    if fmt not in FORMATS:
        raise UsageError(f'Invalid output format: {fmt} (use "table", "json" or "yaml")')
    return fmt


def expect_args(args: Sequence[str], low: int, high: int | None = None) -> None:
    """Raises ``UsageError`` unless ``low <= len(args) <= high``."""
    high = low if high is None else high
    if len(args) < low:
        raise UsageError(f"Not enough arguments (expected {low}, got {len(args)})")
    if len(args) > high:
        raise UsageError(f"Too many arguments (expected {high}, got {len(args)})")


def expect_at_least(args: Sequence[str], low: int) -> None:
    """Raises ``UsageError`` unless there are at least ``low`` arguments."""
    if len(args) < low:
        raise UsageError(f"Not enough arguments (expected {low}+, got {len(args)})")


def sanitize_path(path: str) -> str:
    """Vault's sanitizePath: no surrounding whitespace, no leading slash."""
    return path.strip().lstrip("/")
