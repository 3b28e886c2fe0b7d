"""The audit entry format: Vault's JSON shape for request and response entries.

One :class:`AuditEvent` (what core saw: the request as received, who sent it, which mount,
the response or the error) is formatted separately for every device, each with its own
salt and options, by :func:`format_entry`. Formatting never mutates the event: a
``log_raw`` device and a hashing device format the very same input side by side.

What is hashed (``hmac-sha256:<hex>`` with the device's salt), following Vault's
``audit/hashstructure.go``:

- ``auth.client_token``, ``request.client_token`` and ``response.auth.client_token``;
- ``auth.accessor``, ``request.client_token_accessor`` and ``response.auth.accessor`` unless
  the device sets ``hmac_accessor=false``;
- every string inside ``request.data`` and ``response.data`` (minus the mount's
  ``audit_non_hmac_request_keys`` / ``audit_non_hmac_response_keys``);
- ``response.wrap_info.token`` (and its accessors, as above).

What stays in clear, as in Vault: paths, operations, mount points and accessors, policies,
display names, token metadata, ``entity_id`` (so entries can be searched by identity),
remote addresses, lease IDs, warnings and error texts. Error texts come from our own
exceptions, which carry descriptions and never request values.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from strongroom.audit.hashing import HashFn, Salt, hash_data
from strongroom.logical import Auth, Operation, Request, Response

__all__ = [
    "AuditAuth",
    "AuditEvent",
    "FormatOptions",
    "MountInfo",
    "entry_time",
    "format_entry",
]

EntryKind = Literal["request", "response"]


@dataclass(frozen=True, slots=True)
class AuditAuth:
    """Who made a request: the identity of its token (never the token itself).

    One AuditAuth object describes one token (core builds it from the token's entry and
    memoises it per entry), so a device may memoise the token's HMAC and the formatted
    ``auth`` block per AuditAuth object (see :func:`format_entry`): the same token always
    hashes the same, and no raw token is kept for it.
    """

    accessor: str = ""
    display_name: str = ""
    policies: tuple[str, ...] = ()
    token_policies: tuple[str, ...] = ()
    identity_policies: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    entity_id: str = ""
    token_type: str = ""
    token_ttl: int = 0
    token_issue_time: str = ""
    remaining_uses: int = 0


@dataclass(frozen=True, slots=True)
class MountInfo:
    """The mount a request was routed to."""

    mount_point: str = ""
    mount_type: str = ""
    mount_accessor: str = ""
    mount_class: str = ""  # "secret" or "auth"
    non_hmac_request_keys: frozenset[str] = frozenset()
    non_hmac_response_keys: frozenset[str] = frozenset()


class AuditEvent(NamedTuple):
    """Everything one entry is formatted from. ``request`` is the request as core received
    it (full path, the caller's token); ``operation`` is the effective one (create or update
    after the existence check); ``auth`` describes the token ``request.client_token`` names.

    A NamedTuple rather than a frozen dataclass: two are built per audited request, and a
    frozen dataclass costs ~3 us to construct against ~0.5 us; it is just as immutable.
    """

    request: Request
    operation: Operation
    auth: AuditAuth | None = None
    mount: MountInfo | None = None
    response: Response | None = None
    error: str = ""
    # a login's response: the identity the new token carries (top-level ``auth``)
    login: AuditAuth | None = None
    # audited request headers (sys/config/auditing/request-headers): (name, value, hmac)
    headers: tuple[tuple[str, str, bool], ...] = ()

    def __repr__(self) -> str:  # never print data: it may hold secrets
        return f"AuditEvent(path={self.request.path!r}, operation={self.operation.value!r})"


AuthMemo = dict[int, tuple[AuditAuth, str, str, dict[str, Any]]]
"""Per device: id(AuditAuth) → (the AuditAuth, hashed token, hashed accessor, auth block)."""
_AUTH_MEMO_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class FormatOptions:
    hmac_accessor: bool = True
    elide_list_responses: bool = False


_NO_MOUNT = MountInfo()
_SECOND: list[tuple[int, str]] = [(-1, "")]  # this module's own one-entry cache


def entry_time(now: float) -> str:
    """An entry's ``time``: RFC 3339 UTC with microseconds, as Vault writes it (trailing
    zeros of the fraction trimmed). The whole-second part is cached here, apart from
    framework's formatter, so other timestamps formatted in between do not evict it."""
    micros = round(now * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    cached = _SECOND[0]
    if cached[0] != seconds:
        text = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        cached = _SECOND[0] = (seconds, text)
    if fraction:
        return f"{cached[1]}.{fraction:06d}".rstrip("0") + "Z"
    return cached[1] + "Z"


def _identity(value: str) -> str:
    return value


def _auth_block(auth: AuditAuth | None, token_h: str, accessor_h: str) -> dict[str, Any]:
    if auth is None:
        return {
            "client_token": token_h,
            "accessor": "",
            "display_name": "",
            "policies": [],
            "token_policies": [],
            "metadata": {},
            "entity_id": "",
            "token_type": "",
            "token_ttl": 0,
        }
    block: dict[str, Any] = {
        "client_token": token_h,
        "accessor": accessor_h,
        "display_name": auth.display_name,
        "policies": list(auth.policies),
        "token_policies": list(auth.token_policies),
    }
    if auth.identity_policies:
        block["identity_policies"] = list(auth.identity_policies)
    block["metadata"] = dict(auth.metadata)
    block["entity_id"] = auth.entity_id
    block["token_type"] = auth.token_type
    block["token_ttl"] = auth.token_ttl
    if auth.token_issue_time:
        block["token_issue_time"] = auth.token_issue_time
    if auth.remaining_uses:
        block["remaining_uses"] = auth.remaining_uses
    return block


def _request_block(event: AuditEvent, token_h: str, accessor_h: str, fn: HashFn) -> dict[str, Any]:
    request = event.request
    mount = event.mount or _NO_MOUNT
    block: dict[str, Any] = {
        "id": request.id,
        "operation": event.operation.value,
        "mount_type": mount.mount_type,
        "mount_accessor": mount.mount_accessor,
        "mount_point": mount.mount_point,
        "mount_class": mount.mount_class,
        "client_token": token_h,
        "client_token_accessor": accessor_h,
        "namespace": {"id": "root"},
        "path": request.path,
    }
    if request.data:
        block["data"] = hash_data(request.data, fn, mount.non_hmac_request_keys)
    connection = request.connection
    if connection.remote_addr:
        block["remote_address"] = connection.remote_addr
        block["remote_port"] = connection.remote_port
    if event.headers:
        block["headers"] = {
            name: [fn(value) if hmac else value] for name, value, hmac in event.headers
        }
    return block


def _response_auth(auth: Auth, fn: HashFn, accessor_fn: HashFn) -> dict[str, Any]:
    return {
        "client_token": fn(auth.client_token) if auth.client_token else "",
        "accessor": accessor_fn(auth.accessor) if auth.accessor else "",
        "display_name": auth.display_name,
        "policies": list(auth.policies),
        "token_policies": list(auth.token_policies or auth.policies),
        "metadata": dict(auth.metadata),
        "entity_id": auth.entity_id,
        "token_type": auth.token_type,
        "token_ttl": auth.lease_duration,
        "num_uses": auth.num_uses,
        "orphan": auth.orphan,
    }


def _elide_list(data: Mapping[str, Any]) -> dict[str, Any]:
    """Vault's ``elide_list_responses``: list keys and key_info become their counts."""
    out = dict(data)
    if isinstance(out.get("keys"), list):
        out["keys"] = len(out["keys"])
    if isinstance(out.get("key_info"), Mapping):
        out["key_info"] = len(out["key_info"])
    return out


def _response_block(
    event: AuditEvent, fn: HashFn, accessor_fn: HashFn, options: FormatOptions
) -> dict[str, Any]:
    response = event.response
    mount = event.mount or _NO_MOUNT
    block: dict[str, Any] = {
        "mount_type": mount.mount_type,
        "mount_accessor": mount.mount_accessor,
        "mount_point": mount.mount_point,
        "mount_class": mount.mount_class,
    }
    if response is None:
        return block
    data: Mapping[str, Any] | None = response.data
    if response.raw_body is not None:
        data = {
            **(data or {}),
            "http_raw_body": response.raw_body.decode("utf-8", "replace"),
            "http_content_type": response.content_type,
            "http_status_code": response.status or 200,
        }
    if data is not None:
        if options.elide_list_responses and event.operation is Operation.LIST:
            data = _elide_list(data)
        block["data"] = hash_data(data, fn, mount.non_hmac_response_keys)
    if response.auth is not None:
        block["auth"] = _response_auth(response.auth, fn, accessor_fn)
    if response.secret is not None or response.lease_id:
        block["secret"] = {"lease_id": response.lease_id}
    if response.wrap_info:
        wrap = dict(response.wrap_info)
        if wrap.get("token"):
            wrap["token"] = fn(str(wrap["token"]))
        for name in ("accessor", "wrapped_accessor"):
            if wrap.get(name):
                wrap[name] = accessor_fn(str(wrap[name]))
        block["wrap_info"] = wrap
    if response.warnings:
        block["warnings"] = list(response.warnings)
    return block


def format_entry(
    kind: EntryKind,
    event: AuditEvent,
    salt: Salt | None,
    options: FormatOptions,
    time: str,
    request_entry: Mapping[str, Any] | None = None,
    memo: AuthMemo | None = None,
) -> dict[str, Any]:
    """One entry as a dict in Vault's shape, ready for the hash chain to stamp.

    Args:
        kind: ``"request"`` or ``"response"``.
        event: what happened; never modified.
        salt: the device's salt, or ``None`` for a ``log_raw`` device.
        options: the device's formatting options.
        time: the entry's timestamp (RFC 3339, UTC).
        request_entry: for a response, the request entry this same device formatted for
            the same request: its ``auth`` and ``request`` blocks are reused as they are
            (they hold the same values, already hashed with this device's salt; nothing
            modifies a block once built), which halves the hashing per request.
        memo: the device's :data:`AuthMemo`: a token's hashed value and ``auth`` block are
            reused across requests by the same token (the block is shared, never mutated).

    Returns:
        A new dict. ``seq`` and ``prev_hash`` hold placeholders the chain overwrites, so
        every entry keeps the same key order: time, type, seq, prev_hash, auth, request, ….
    """
    fn: HashFn = _identity if salt is None else salt.hmac
    accessor_fn = fn if options.hmac_accessor else _identity
    login = event.login if kind == "response" else None
    if request_entry is not None and login is None:
        auth_block = request_entry["auth"]
        request_block = request_entry["request"]
    else:
        auth = event.auth
        token = event.request.client_token
        memo_hit = memo.get(id(auth)) if memo is not None and auth is not None else None
        if memo_hit is not None and memo_hit[0] is auth and token:
            _, token_h, accessor_h, cached_block = memo_hit
        else:
            token_h = fn(token) if token else ""
            accessor = auth.accessor if auth is not None else ""
            accessor_h = accessor_fn(accessor) if accessor else ""
            cached_block = None
            if memo is not None and auth is not None and token:
                if len(memo) >= _AUTH_MEMO_LIMIT:
                    memo.clear()
                cached_block = _auth_block(auth, token_h, accessor_h)
                memo[id(auth)] = (auth, token_h, accessor_h, cached_block)
        request_block = (
            request_entry["request"]
            if request_entry is not None
            else _request_block(event, token_h, accessor_h, fn)
        )
        if login is not None:
            minted = event.response.auth if event.response is not None else None
            login_token = minted.client_token if minted is not None else ""
            auth_block = _auth_block(
                login,
                fn(login_token) if login_token else "",
                accessor_fn(login.accessor) if login.accessor else "",
            )
        else:
            auth_block = cached_block or _auth_block(auth, token_h, accessor_h)
    entry: dict[str, Any] = {
        "time": time,
        "type": kind,
        "seq": 0,
        "prev_hash": "",
        "auth": auth_block,
        "request": request_block,
    }
    if kind == "response":
        entry["response"] = _response_block(event, fn, accessor_fn, options)
    if event.error:
        entry["error"] = event.error
    return entry
