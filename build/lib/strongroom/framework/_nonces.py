"""Random nonces without a system call apiece.

Every barrier write and transit encryption needs a fresh 96-bit AES-GCM nonce. Asking the OS
for 12 bytes each time costs a ``getrandom`` call that also releases the GIL, and on a busy
server every GIL release lets the SQLite writer thread in and makes the event loop wait to
get it back. So nonces are cut from a 4 KiB buffer of OS CSPRNG output (``os.urandom``),
refilled when spent.

Only for values that must be unique and may be public (nonces are stored beside the
ciphertext): the bytes not yet handed out sit in memory, which is fine for a nonce and wrong
for a key. Keys keep coming from ``secrets``. Each byte is handed out once; a forked child
starts from an empty buffer, so parent and child never share nonces.
"""

from __future__ import annotations

import os
import threading

__all__ = ["nonce_bytes"]

_CHUNK = 4096


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._pos = 0

    def take(self, size: int) -> bytes:
        if size > _CHUNK // 4:
            return os.urandom(size)
        with self._lock:
            pos = self._pos
            if pos + size > len(self._buffer):
                self._buffer, pos = os.urandom(_CHUNK), 0
            self._pos = pos + size
            return self._buffer[pos : pos + size]

    def reset(self) -> None:
        """In a forked child: forget the parent's buffer (and its lock's state)."""
        self._lock = threading.Lock()
        self._buffer = b""
        self._pos = 0


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL.reset)


def nonce_bytes(size: int) -> bytes:
    """``size`` fresh bytes of OS CSPRNG output, never handed out before. For nonces only."""
    if size < 0:
        raise ValueError("size must not be negative")
    return _POOL.take(size)
