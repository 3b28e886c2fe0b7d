"""Passwords and random strings for database credentials, from the OS CSPRNG (``secrets``).

Vault's default password policy (used when a config names none) is 20 characters from
``A-Z a-z 0-9 -`` with at least one uppercase letter, one lowercase letter, one digit and one
dash. We generate exactly that. The alphabet is chosen for safety as much as strength: none of
its characters needs quoting inside a SQL string literal, a quoted identifier, a URL or a
libpq ``key=value`` connection string, so a generated value can be substituted into
statements verbatim. 20 characters from 63 symbols carry about 119 bits.

A config naming a ``password_policy`` gets its passwords from that policy instead (through
the system view; see ``DatabaseState.password``), refused if the policy yields a character
that is unsafe to substitute into a statement.
"""

from __future__ import annotations

import re
import secrets
import string

__all__ = [
    "ALPHANUMERIC",
    "PASSWORD_ALPHABET",
    "PASSWORD_LENGTH",
    "generate_password",
    "is_generated_password",
    "random_alphanumeric",
]

ALPHANUMERIC = string.ascii_letters + string.digits
PASSWORD_ALPHABET = ALPHANUMERIC + "-"
PASSWORD_LENGTH = 20
_CLASSES = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "-")
_GENERATED = re.compile(r"[A-Za-z0-9-]+")
_random = secrets.SystemRandom()


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """A password of ``length`` characters holding at least one of each character class.

    One character is drawn from each class, the rest from the whole alphabet, and the result
    is shuffled with the CSPRNG, so every position is uniformly placed.

    Raises:
        ValueError: ``length`` is shorter than the number of required classes.
    """
    if length < len(_CLASSES):
        raise ValueError("password length too short for the required character classes")
    chars = [secrets.choice(cls) for cls in _CLASSES]
    chars += [secrets.choice(PASSWORD_ALPHABET) for _ in range(length - len(_CLASSES))]
    _random.shuffle(chars)
    return "".join(chars)


def is_generated_password(value: str) -> bool:
    """Whether ``value`` could have come from :func:`generate_password` (alphabet and classes)."""
    return (
        len(value) >= len(_CLASSES)
        and _GENERATED.fullmatch(value) is not None
        and all(any(c in cls for c in value) for cls in _CLASSES)
    )


def random_alphanumeric(length: int) -> str:
    """``length`` characters of ``A-Z a-z 0-9`` (the username template's ``random``)."""
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))
