"""Password policies: Vault's HCL (or JSON) description of generated passwords, and the generator.

A policy names a ``length`` and one or more ``rule "charset"`` blocks::

    length = 20
    rule "charset" {
      charset   = "abcdefghijklmnopqrstuvwxyz"
      min-chars = 1
    }
    rule "charset" {
      charset   = "0123456789"
      min-chars = 1
    }

Passwords draw from the union of every charset and hold at least ``min-chars`` characters
of each. Generation satisfies the minimums by construction (one draw per required
character from its charset, the rest from the union, then a CSPRNG shuffle), so it never
has to retry. Pure: parsing and generation, no storage.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import Any

from strongroom.core.policy import _load, _pairs_of
from strongroom.errors import InvalidRequest, NotFound
from strongroom.logical import Storage

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "STORAGE_PREFIX",
    "PasswordPolicy",
    "PasswordPolicyStore",
    "decode_policy_text",
    "parse_password_policy",
]

MIN_LENGTH, MAX_LENGTH = 4, 100
STORAGE_PREFIX = "sys/password_policy/"
_random = secrets.SystemRandom()


@dataclass(frozen=True, slots=True)
class CharsetRule:
    charset: str
    min_chars: int = 0


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    length: int
    rules: tuple[CharsetRule, ...]

    @property
    def alphabet(self) -> str:
        return "".join(dict.fromkeys("".join(rule.charset for rule in self.rules)))

    def generate(self) -> str:
        chars = [secrets.choice(rule.charset) for rule in self.rules for _ in range(rule.min_chars)]
        alphabet = self.alphabet
        chars += [secrets.choice(alphabet) for _ in range(self.length - len(chars))]
        _random.shuffle(chars)
        return "".join(chars)


def _invalid(*problems: str) -> InvalidRequest:
    return InvalidRequest("invalid password policy: " + "; ".join(problems))


def decode_policy_text(raw: str) -> str:
    """The policy as sent: HCL/JSON text, or that text base64-encoded (Vault accepts both)."""
    stripped = raw.strip()
    if stripped:
        # HCL or JSON text always holds a space, quote or brace, which base64 cannot
        try:
            return base64.b64decode(stripped, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            pass
    return raw


def _rule_bodies(value: Any) -> list[tuple[str, Any]]:
    """``rule "<type>" {…}`` blocks as (type, body) pairs, HCL or JSON."""
    items = value if isinstance(value, list) else [value]
    out: list[tuple[str, Any]] = []
    for item in items:
        pairs = _pairs_of(item)
        if pairs is None:
            raise _invalid("unable to parse rules")
        out.extend(pairs)
    return out


def parse_password_policy(raw: str) -> PasswordPolicy:
    """Parse and check a policy.

    Raises:
        InvalidRequest: unparsable text, an unknown rule type, no charset, a length out of
            4-100, or minimums that need more characters than the length.
    """
    text = decode_policy_text(raw)
    if not text.strip():
        raise InvalidRequest("missing policy")
    pairs = _pairs_of(_load(text)) or []
    length = 0
    rules: list[CharsetRule] = []
    for key, value in pairs:
        if key == "length":
            if isinstance(value, bool) or not isinstance(value, int):
                raise _invalid("length must be an integer")
            length = value
        elif key == "rule":
            for kind, body in _rule_bodies(value):
                if kind != "charset":
                    raise _invalid(
                        f"unable to parse rule {str(kind)[:40]!r}: unrecognized rule type"
                    )
                fields = dict(_pairs_of(body) or [])
                charset = fields.get("charset")
                if not isinstance(charset, str) or not charset:
                    raise _invalid("a charset rule needs a non-empty 'charset'")
                min_chars = fields.get("min-chars", fields.get("min_chars", 0))
                if isinstance(min_chars, bool) or not isinstance(min_chars, int):
                    raise _invalid("min-chars must be an integer")
                deduped = "".join(dict.fromkeys(charset))
                rules.append(CharsetRule(deduped, max(min_chars, 0)))
        else:
            raise _invalid(f"unknown key {str(key)[:40]!r}")
    problems = []
    if length <= 0:
        problems.append("length must be > 0")
    if not rules:
        problems.append("no charset specified")
    if problems:
        raise _invalid(*problems)
    needed = sum(rule.min_chars for rule in rules)
    if needed > length:
        raise _invalid(
            f"specified rules require at least {needed} characters but {length} is specified"
        )
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise InvalidRequest(f"passwords must be between {MIN_LENGTH} and {MAX_LENGTH} characters")
    return PasswordPolicy(length, tuple(rules))


class PasswordPolicyStore:
    """Policies by name in a storage view (``sys/password_policy/<name>``), text as written."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def text(self, name: str) -> str | None:
        raw = await self._storage.get(name)
        return None if raw is None else raw.decode("utf-8")

    async def put(self, name: str, text: str) -> None:
        await self._storage.put(name, text.encode("utf-8"))

    async def delete(self, name: str) -> None:
        await self._storage.delete(name)

    async def names(self) -> list[str]:
        return [key for key in await self._storage.list("") if not key.endswith("/")]

    async def generate(self, name: str) -> str:
        """A password from the named policy.

        Raises:
            NotFound: no such policy.
        """
        text = await self.text(name)
        if text is None:
            raise NotFound("policy does not exist")
        return parse_password_policy(text).generate()
