"""The contract every layer shares: operations, requests, responses, auth, storage.

Backends (secrets engines, auth methods, the sys and token backends) receive a frozen
:class:`Request` whose ``storage`` is already the barrier-encrypted view of their own mount,
and return a :class:`Response` (or ``None`` for "nothing here", which http/ turns into 404
for reads and 204 for writes). They raise :mod:`strongroom.errors` classes; they never
build error responses themselves.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "Auth",
    "Backend",
    "BackendConfig",
    "BackendFactory",
    "BackendKind",
    "Connection",
    "Operation",
    "Request",
    "Response",
    "Secret",
    "Storage",
    "StorageOp",
    "SystemView",
    "TokenInfo",
    "auth_json",
]


class Operation(enum.StrEnum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    LIST = "list"
    HELP = "help"
    # Sent by core's expiration manager, never by clients:
    RENEW = "renew"
    REVOKE = "revoke"


@dataclass(frozen=True, slots=True)
class StorageOp:
    """One step of a :meth:`Storage.transaction`: a put (``value`` set) or a delete (``None``).

    With ``check=True`` the op writes nothing: it is a guard that the key's current value
    equals ``value`` (``None``: the key is absent). If any guard fails, the transaction
    applies nothing and raises :class:`~strongroom.errors.StorageConflict`. Physical
    backends compare the stored bytes (ciphertext) inside the same transaction; the barrier
    compares plaintext and hands down a guard on the exact ciphertext it read, so a value
    changed by anyone in between fails the guard (compare-and-swap across processes).
    Every guard of a transaction sees the values as they were before any of its writes
    (backends check all guards first, then apply the writes in order), so the usual
    pattern ``[StorageOp(k, old, check=True), StorageOp(k, new)]`` is a compare-and-swap.
    """

    key: str
    value: bytes | None = field(default=None, repr=False)
    check: bool = False


class Storage(Protocol):
    """A key/value store with ``/``-separated keys.

    ``list(prefix)`` returns the immediate children below ``prefix`` (which is empty or ends
    in ``/``): leaf names as-is and folders with a trailing ``/``, sorted, no duplicates.
    ``transaction`` applies every op or none.
    """

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def list(self, prefix: str) -> list[str]: ...

    async def transaction(self, ops: Sequence[StorageOp]) -> None: ...


@dataclass(frozen=True, slots=True)
class Connection:
    """Where a request came from. ``peer_cert_der`` is the verified client certificate, if any."""

    remote_addr: str = ""
    remote_port: int = 0
    tls: bool = False
    peer_cert_der: bytes | None = field(default=None, repr=False)
    peer_chain_der: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a backend may know about the caller's token (never the token ID itself,
    except for the token backend, which sees ``Request.client_token``)."""

    accessor: str
    policies: tuple[str, ...]
    display_name: str = ""
    entity_id: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    # a per-token identifier used to key cubbyhole storage (not the token itself)
    cubbyhole_id: str = ""
    token_type: str = "service"  # noqa: S105 (a token kind)
    creation_time: float = 0.0  # when the token was made (OIDC max_age, auth_time)


@dataclass(frozen=True, slots=True)
class Request:
    operation: Operation
    path: str  # relative to the mount, no leading slash
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)
    storage: Storage | None = field(default=None, repr=False)
    id: str = ""
    mount_point: str = ""  # e.g. "secret/" or "auth/userpass/"
    mount_accessor: str = ""
    mount_type: str = ""
    client_token: str = field(default="", repr=False)
    token: TokenInfo | None = None
    query: Mapping[str, str] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    connection: Connection = field(default_factory=Connection)
    # whether the request came through an unauthenticated path (login and the like)
    unauthenticated: bool = False
    # the lease being renewed or revoked (RENEW/REVOKE operations from core only)
    secret: Secret | None = None


@dataclass(frozen=True, slots=True)
class Secret:
    """A leased secret: the lease ID is assigned by core.

    ``type`` names the backend's secret type (e.g. ``"creds"``); core sends RENEW and
    REVOKE requests for the lease back to the same mount with this Secret attached, and
    ``internal_data`` (kept behind the barrier, never shown to clients) tells the backend
    what to renew or revoke (e.g. the database username).
    """

    type: str = ""
    ttl: int = 0
    max_ttl: int = 0
    renewable: bool = False
    internal_data: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # set by core on RENEW: the increment the client asked for and when the lease began
    increment: int = 0
    issue_time: float = 0.0
    # False: the TTL is only a refresh hint for the client (KV v1, as in Vault); core
    # registers no lease and the response carries no lease_id
    leased: bool = True


@dataclass(frozen=True, slots=True)
class Auth:
    """What an auth method (or the token store) asks core to mint a token for."""

    policies: tuple[str, ...] = ()
    token_policies: tuple[str, ...] = ()
    identity_policies: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    display_name: str = ""
    ttl: int = 0
    max_ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    num_uses: int = 0
    renewable: bool = True
    no_default_policy: bool = False
    entity_id: str = ""
    orphan: bool = False
    token_type: str = "service"  # noqa: S105 (a token kind)
    # filled by core once the token exists
    client_token: str = field(default="", repr=False)
    accessor: str = ""
    lease_duration: int = 0
    internal_data: Mapping[str, Any] = field(default_factory=dict, repr=False)
    alias_name: str = ""


@dataclass(slots=True)
class Response:
    """A backend's answer. ``raw`` bypasses the envelope (status, content type, body)."""

    data: dict[str, Any] | None = None
    auth: Auth | None = None
    secret: Secret | None = None
    warnings: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    # headers ready for the wire, added by core's road (rate-limit quotas): lower-case
    # names, latin-1 bytes; the HTTP edge appends them as they are
    wire_headers: tuple[tuple[bytes, bytes], ...] = ()
    status: int | None = None
    raw_body: bytes | None = None
    # a body sent as it is produced (sys/monitor), until it ends or the client goes away
    stream: AsyncIterator[bytes] | None = None
    content_type: str = "application/json"
    # False: ``data`` is the whole JSON body (sys/health, sys/seal-status and the like)
    envelope: bool = True
    # sys/ answers also carry ``data`` at the top level (Vault's legacy shape) unless set:
    # Vault's newer sys/ endpoints keep it under ``data`` only
    data_only: bool = False
    # Set by core, not backends:
    lease_id: str = ""
    wrap_info: dict[str, Any] | None = None
    mount_type: str = ""

    def __repr__(self) -> str:  # never print data: it may hold secrets
        keys = sorted(self.data) if self.data else []
        return f"Response(data_keys={keys}, status={self.status})"


class BackendKind(enum.StrEnum):
    SECRET = "secret"  # noqa: S105 (a backend kind)
    AUTH = "auth"


class SystemView(Protocol):
    """What core lends a backend: defaults and clocks, never core itself."""

    def default_lease_ttl(self) -> int: ...

    def max_lease_ttl(self) -> int: ...

    def now(self) -> float: ...

    async def generate_password(self, policy: str) -> str:
        """A password from the named password policy (raises NotFound if there is none)."""
        ...

    def identity_template(self, text: str, entity_id: str) -> str | None:
        """``text`` with its ``{{identity...}}`` placeholders filled for the entity, by the
        ACL policy templating's values and rules (core/policy.py: Vault's selectors, a value
        holding ``/``, ``*``, ``+`` or braces counts as missing); ``None`` if one cannot be
        filled (no entity, a missing value). Text without placeholders comes back as is."""
        ...


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """Handed to a factory when a mount is created or restored at unseal."""

    mount_type: str
    mount_point: str
    mount_accessor: str
    options: Mapping[str, str]
    system: SystemView
    storage: Storage = field(repr=False)


class Backend(Protocol):
    kind: BackendKind
    # path patterns (framework globs: ``*`` suffix) reachable without a token, e.g. "login/*"
    unauthenticated_paths: tuple[str, ...]
    # path patterns that need ``sudo`` as well as the usual capability
    root_paths: tuple[str, ...]
    # "prefix/*" globs whose tail is one opaque value that may hold empty segments ("//"),
    # read with GET only: the base64 OCSP request of RFC 6960 A.1 (core/handling.py)
    opaque_paths: tuple[str, ...]

    async def handle(self, request: Request) -> Response | None: ...

    async def exists(self, request: Request) -> bool | None:
        """For create-vs-update: True/False, or None if the path has no existence check."""
        ...

    async def initialize(self) -> None: ...

    async def cleanup(self) -> None: ...

    def describe_help(self, path: str) -> dict[str, Any]: ...


BackendFactory = Callable[[BackendConfig], Awaitable[Backend]]


def auth_json(auth: Auth) -> dict[str, Any]:
    """Vault's ``auth`` block for a login or token answer: what http/ sends and what response
    wrapping stores, so an unwrapped login reads exactly like the login itself."""
    out: dict[str, Any] = {
        "client_token": auth.client_token,
        "accessor": auth.accessor,
        "policies": list(auth.policies),
        "token_policies": list(auth.token_policies or auth.policies),
        "metadata": dict(auth.metadata) or None,
        "lease_duration": auth.lease_duration,
        "renewable": auth.renewable,
        "entity_id": auth.entity_id,
        "token_type": auth.token_type,
        "orphan": auth.orphan,
        "mfa_requirement": None,
        "num_uses": auth.num_uses,
    }
    if auth.identity_policies:  # Vault omits the key when there are none
        out["identity_policies"] = list(auth.identity_policies)
    return out
