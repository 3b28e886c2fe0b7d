"""Token sinks: where auto-auth writes the token for applications.

A ``file`` sink writes atomically (a temporary file in the same directory, then rename) with
the configured mode. With ``wrap_ttl`` it writes the wrap info of a response-wrapped token
(``sys/wrapping/wrap``), so a reader must unwrap it once. With ``dh_type = "curve25519"`` it
encrypts what it writes to the public key found at ``dh_path``, as Vault Agent does
(helper/dhutil): an ephemeral X25519 key pair per write, the shared secret run through
HKDF-SHA256 (salt: the lower of the two public keys, info: the other) — or used as is unless
``derive_key`` — and AES-256-GCM with a random 96-bit nonce and ``aad`` as associated data.
The file then holds ``{"curve25519_public_key", "nonce", "encrypted_payload"}`` (base64).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import SinkConfig

__all__ = ["FileSink", "atomic_write", "dh_decrypt", "dh_encrypt"]


class SinkError(Exception):
    """A sink could not be written (the message names the path, not the token)."""


def atomic_write(path: str, data: bytes, mode: int, create_dirs: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so a reader sees the
    old content or the new, never a part; the new file has ``mode`` from its creation."""
    directory = os.path.dirname(os.path.abspath(path))
    if create_dirs:
        os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".strongroom-", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def _derive(shared: bytes, ours: bytes, theirs: bytes) -> bytes:
    if ours == theirs:
        raise ValueError("same public key supplied for both participants")
    low, high = (ours, theirs) if ours < theirs else (theirs, ours)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=low, info=high).derive(shared)


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def dh_encrypt(plaintext: bytes, their_public: bytes, aad: bytes, derive_key: bool) -> bytes:
    """Vault's DH sink envelope for ``plaintext``, to the holder of ``their_public``."""
    if not plaintext:
        raise ValueError("empty plaintext provided")
    ephemeral = X25519PrivateKey.generate()
    ours = _raw(ephemeral.public_key())
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(their_public))
    key = _derive(shared, ours, their_public) if derive_key else shared
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, aad or None)
    envelope = {
        "curve25519_public_key": base64.b64encode(ours).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "encrypted_payload": base64.b64encode(ciphertext).decode(),
    }
    return json.dumps(envelope).encode()


def dh_decrypt(envelope: bytes, private: X25519PrivateKey, aad: bytes, derive_key: bool) -> bytes:
    """Open a DH sink envelope with the reader's private key (what an application does)."""
    fields = json.loads(envelope)
    theirs = base64.b64decode(fields["curve25519_public_key"])
    ours = _raw(private.public_key())
    shared = private.exchange(X25519PublicKey.from_public_bytes(theirs))
    key = _derive(shared, ours, theirs) if derive_key else shared
    nonce = base64.b64decode(fields["nonce"])
    return AESGCM(key).decrypt(nonce, base64.b64decode(fields["encrypted_payload"]), aad or None)


@dataclass
class FileSink:
    config: SinkConfig
    env: Mapping[str, str]

    def __repr__(self) -> str:
        return f"FileSink({self.config.path!r})"

    def _public_key(self) -> bytes:
        try:
            with open(self.config.dh_path, encoding="utf-8") as handle:
                info = json.load(handle)
            key = base64.b64decode(info["curve25519_public_key"])
        except (OSError, ValueError, KeyError, TypeError):
            raise SinkError(
                f"sink {self.config.path}: cannot read a curve25519 public key from "
                f"{self.config.dh_path}"
            ) from None
        if len(key) != 32:
            raise SinkError(f"sink {self.config.path}: the public key must be 32 bytes")
        return key

    def write(self, payload: str) -> None:
        """Write the token (or wrap info JSON) to the sink.

        Raises:
            SinkError: the file or the DH public key could not be used.
        """
        data = payload.encode()
        if self.config.dh_type:
            aad = self.config.aad
            if self.config.aad_env_var:
                aad = self.env.get(self.config.aad_env_var, aad)
            data = dh_encrypt(data, self._public_key(), aad.encode(), self.config.derive_key)
        try:
            atomic_write(self.config.path, data, self.config.mode)
        except OSError as exc:
            raise SinkError(f"sink {self.config.path}: {exc.strerror}") from None
