"""The keyring: the versioned AES-256 data keys ("terms") and the root key that seals them.

Pure: no I/O, no clock. :class:`~strongroom.barrier.aesgcm.AESGCMBarrier` persists a keyring,
encrypted under its own root key, at the physical key ``core/keyring``.

Trusts: the bytes given to :meth:`Keyring.from_bytes` came out of an authenticated decryption
(the barrier checks the GCM tag first); it still validates their shape and raises
:class:`~strongroom.errors.InternalError` on anything malformed.
Promises: terms start at 1, are unique and only grow; the active term is the newest; key
material is ``bytes`` and never appears in a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from strongroom import errors

__all__ = ["KEY_SIZE", "Keyring", "TermKey"]

KEY_SIZE = 32
"""Bytes in every key of the keyring: AES-256."""

_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class TermKey:
    """One data-encryption key. ``install_time`` is seconds since the epoch."""

    term: int
    value: bytes = field(repr=False)
    install_time: float

    def __post_init__(self) -> None:
        if self.term < 1:
            raise errors.InternalError("keyring term must be at least 1")
        if len(self.value) != KEY_SIZE:
            raise errors.InternalError("keyring keys must be 32 bytes")


@dataclass(frozen=True, slots=True)
class Keyring:
    """The root key plus every data key ever installed, oldest first.

    Old terms stay so that values written under them keep decrypting after a rotation.
    """

    root_key: bytes = field(repr=False)
    keys: tuple[TermKey, ...]

    def __post_init__(self) -> None:
        if len(self.root_key) != KEY_SIZE:
            raise errors.InternalError("root key must be 32 bytes")
        if not self.keys:
            raise errors.InternalError("keyring has no keys")
        terms = [key.term for key in self.keys]
        if terms != sorted(set(terms)):
            raise errors.InternalError("keyring terms must be unique and ascending")

    @classmethod
    def new(cls, root_key: bytes, first_key: bytes, install_time: float) -> Keyring:
        """A keyring holding term 1 only."""
        return cls(root_key=root_key, keys=(TermKey(1, first_key, install_time),))

    @property
    def active(self) -> TermKey:
        """The key new values are encrypted under (the highest term)."""
        return self.keys[-1]

    @property
    def active_term(self) -> int:
        return self.keys[-1].term

    def term(self, term: int) -> TermKey | None:
        """The key for ``term``, or ``None`` if this keyring never had it."""
        for key in self.keys:
            if key.term == term:
                return key
        return None

    def rotated(self, new_key: bytes, install_time: float) -> Keyring:
        """A copy with ``new_key`` installed as term ``active_term + 1`` (now active)."""
        added = TermKey(self.active_term + 1, new_key, install_time)
        return replace(self, keys=(*self.keys, added))

    def with_root_key(self, root_key: bytes) -> Keyring:
        """A copy sealed by a different root key (the data keys are unchanged)."""
        return replace(self, root_key=root_key)

    def to_bytes(self) -> bytes:
        """Serialize (JSON, keys base64). The result is secret: encrypt before storing."""
        record = {
            "version": _FORMAT_VERSION,
            "root_key": _b64(self.root_key),
            "keys": [
                {"term": k.term, "key": _b64(k.value), "install_time": k.install_time}
                for k in self.keys
            ],
        }
        return orjson.dumps(record)

    @classmethod
    def from_bytes(cls, data: bytes) -> Keyring:
        """Parse :meth:`to_bytes` output.

        Raises:
            errors.InternalError: the record is malformed (never echoes its content).
        """
        try:
            record: Any = orjson.loads(data)
            if not isinstance(record, dict) or record.get("version") != _FORMAT_VERSION:
                raise errors.InternalError("unsupported keyring format")
            keys = tuple(
                TermKey(
                    term=_int(entry["term"]),
                    value=_unb64(entry["key"]),
                    install_time=float(entry["install_time"]),
                )
                for entry in record["keys"]
            )
            return cls(root_key=_unb64(record["root_key"]), keys=keys)
        except errors.InternalError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
            # ``from None``: the underlying exception may quote the (secret) input.
            raise errors.InternalError("keyring is malformed") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("expected a string")
    return base64.b64decode(text, validate=True)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected an integer")
    return value
