"""Password hashing for userpass: argon2id with deliberately chosen parameters, off the loop.

Parameters: argon2id, m = 19 MiB (19456 KiB), t = 2, p = 1, 16-byte salt, 32-byte tag: the
first argon2id configuration of OWASP's Password Storage Cheat Sheet. argon2-cffi's defaults
(t = 3, m = 64 MiB, p = 4) hashed only ~8 passwords/s on the 2-core reference box; these take
~39 ms per hash there (~25 per second per core), which keeps offline guessing expensive while
leaving logins usable. ``bench/auth.py`` prints the login rate they allow.

Hashing runs in a dedicated pool of ``os.cpu_count()`` threads (argon2-cffi releases the GIL),
never on the event loop. The pool's size also bounds memory: at most cpu_count x 19 MiB is in
use however many logins arrive at once; the rest queue.

Vault's ``password_hash`` field takes a bcrypt hash; we take pre-hashed argon2id PHC strings
instead (``$argon2id$v=19$m=…,t=…,p=…$salt$tag``), with cost limits so a stored hash cannot
make each login cost seconds of CPU or gigabytes of memory.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from strongroom.errors import InvalidRequest

__all__ = [
    "ARGON2_PARAMETERS",
    "check_password_hash",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

ARGON2_PARAMETERS = {"type": "argon2id", "memory_kib": 19 * 1024, "time_cost": 2, "parallelism": 1}

_HASHER = argon2.PasswordHasher(
    time_cost=2,
    memory_cost=19 * 1024,
    parallelism=1,
    hash_len=32,
    salt_len=16,
    type=argon2.Type.ID,
)
_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="argon2")

# upper bounds for pre-hashed passwords (password_hash): 256 MiB, t = 10, p = 8
_MAX_MEMORY_KIB, _MAX_TIME_COST, _MAX_PARALLELISM = 256 * 1024, 10, 8

_T = TypeVar("_T")
_dummy_hash: list[str] = []  # made once per process, on first use


def _verify(encoded: str, password: str) -> bool:
    try:
        return _HASHER.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def _run(func: Callable[..., _T], *args: str) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_POOL, func, *args)


async def hash_password(password: str) -> str:
    """An argon2id PHC string for ``password`` (computed in the hashing pool)."""
    return await _run(_HASHER.hash, password)


async def _dummy() -> str:
    if not _dummy_hash:
        _dummy_hash.append(await hash_password(secrets.token_urlsafe(24)))
    return _dummy_hash[0]


async def verify_password(encoded: str | None, password: str) -> bool:
    """Whether ``password`` matches ``encoded``; ``None`` (no such user) is always False.

    For an unknown user we still verify, against a dummy hash made with the same parameters,
    so the answer takes as long as for a known user with a wrong password. Without it, the
    response time (~0 ms vs ~39 ms) would tell an attacker which usernames exist (Vault's
    userpass does the same with a dummy bcrypt hash).
    """
    target = encoded if encoded is not None else await _dummy()
    matched = await _run(_verify, target, password)
    return matched and encoded is not None


def needs_rehash(encoded: str) -> bool:
    """True if ``encoded`` was made with other parameters than ours (re-hash on next login)."""
    try:
        return _HASHER.check_needs_rehash(encoded)
    except InvalidHashError:
        return False


def check_password_hash(encoded: str) -> str:
    """Validate a pre-hashed password given as ``password_hash``.

    Raises:
        InvalidRequest: not an argon2id PHC string, or its costs exceed our limits.
    """
    try:
        params = argon2.extract_parameters(encoded)
    except InvalidHashError:
        raise InvalidRequest(
            "password_hash: expected an argon2id hash ($argon2id$v=19$m=...,t=...,p=...$...)"
        ) from None
    if params.type is not argon2.Type.ID:
        raise InvalidRequest("password_hash: only argon2id hashes are accepted")
    if (
        params.memory_cost > _MAX_MEMORY_KIB
        or params.time_cost > _MAX_TIME_COST
        or params.parallelism > _MAX_PARALLELISM
    ):
        raise InvalidRequest("password_hash: argon2 cost parameters are too high")
    return encoded
