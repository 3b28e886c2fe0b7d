"""Salted HMAC of audit values, and the walk that applies it to request and response data.

This is Vault's ``audit/hashstructure.go`` rule, kept on purpose so logs read the same:

- every *string* value inside request and response data becomes ``hmac-sha256:<hex>``
  (HMAC-SHA256 keyed by the device's salt); map *keys* are never hashed, and non-string
  leaves (numbers, booleans, null) pass through as they are;
- a string whose innermost enclosing map key is listed in the mount's
  ``audit_non_hmac_*_keys`` tuning stays in clear.

Security decisions:

- The salt is 32 random bytes per device, stored only behind the barrier, so a copy of the
  log lets nobody test guesses offline; ``sys/audit-hash`` computes the same HMAC for an
  operator who already knows a value and wants to find it.
- The walk always builds *new* containers. The same unhashed input is formatted once per
  device (each with its own salt, one of them perhaps ``log_raw``), so nothing here may
  mutate what it was given.
- A value of a type JSON does not have (bytes, a datetime, anything a backend might put in
  its data) is hashed through its text form rather than passed through: an unknown type must
  never become a way to leak a value in clear.
- Structures deeper than :data:`MAX_DEPTH` are hashed whole (as their JSON text) instead of
  walked: a hostile document can neither exhaust the stack inside the audit path nor push
  the entry past orjson's nesting limit (254), which would make every device fail to
  record it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = ["HMAC_PREFIX", "MAX_DEPTH", "HashFn", "Salt", "hash_data", "hash_value"]

HMAC_PREFIX = "hmac-sha256:"
MAX_DEPTH = 64
SALT_SIZE = 32

HashFn = Callable[[str], str]


class Salt:
    """A device's HMAC key. Its repr never shows the key.

    HMAC-SHA256 (RFC 2104) is computed from precomputed inner and outer SHA-256 states
    (the key XOR ipad/opad, hashed once): each value then costs two state copies and two
    short hashes, about half of ``hmac.digest`` re-deriving the pads every time. The result
    is the standard HMAC (a test checks it against :mod:`hmac`).
    """

    __slots__ = ("_inner", "_key", "_outer")

    def __init__(self, key: bytes) -> None:
        if not 16 <= len(key) <= 64:
            raise ValueError("an audit salt needs 16 to 64 bytes")
        self._key = bytes(key)
        block = self._key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __repr__(self) -> str:
        return "Salt(<hidden>)"

    @property
    def key(self) -> bytes:
        return self._key

    def hmac(self, value: str) -> str:
        """``hmac-sha256:<hex>`` of ``value`` (UTF-8), as Vault's GetIdentifiedHMAC."""
        inner = self._inner.copy()
        inner.update(value.encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return HMAC_PREFIX + outer.hexdigest()


def hash_data(data: Mapping[str, Any], fn: HashFn, keep: Collection[str] = ()) -> dict[str, Any]:
    """A copy of ``data`` with every string value replaced by ``fn(value)``.

    Args:
        data: request or response data (a JSON-like mapping); it is not modified.
        fn: the HMAC function (``Salt.hmac``).
        keep: map keys whose string values stay in clear (``audit_non_hmac_*_keys``).

    Returns:
        A new dict; lists, tuples and mappings inside it are new containers too.
    """
    return _walk_map(data, fn, keep, 0)


def _walk_map(
    data: Mapping[Any, Any], fn: HashFn, keep: Collection[str], depth: int
) -> dict[str, Any]:
    # Scalars are handled inline (this runs on every audited request): only containers
    # and unusual types cost a call.
    out: dict[str, Any] = {}
    for key, value in data.items():
        if type(key) is not str:
            key = str(key)
        kind = type(value)
        if kind is str:
            out[key] = value if keep and key in keep else fn(value)
        elif value is None or kind is int or kind is bool or kind is float:
            out[key] = value
        else:
            out[key] = hash_value(value, fn, keep, key, depth + 1)
    return out


def hash_value(value: Any, fn: HashFn, keep: Collection[str], key: str, depth: int) -> Any:
    """Hash one value found under map key ``key`` (see :func:`hash_data`)."""
    kind = type(value)
    if kind is str:
        return value if keep and key in keep else fn(value)
    if value is None or kind is int or kind is bool or kind is float:
        return value
    if depth > MAX_DEPTH:
        return fn(json.dumps(value, default=str))
    if kind is dict or isinstance(value, Mapping):
        return _walk_map(value, fn, keep, depth)
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        return [hash_value(sub, fn, keep, key, depth + 1) for sub in value]
    if isinstance(value, str):  # a str subclass
        return value if key in keep else fn(str(value))
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        text = base64.b64encode(bytes(value)).decode()
        return text if key in keep else fn(text)
    # Unknown types are hashed through their text, never passed through in clear.
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text if key in keep else fn(text)
