"""Vault's consistency headers in the agent's API proxy (``api_proxy { enforce_consistency
= "always" }``): the newest ``X-Vault-Index`` seen on a response is sent with every
proxied request, so a read through the agent sees the writes that went through it even
when a performance standby serves it (the server waits for that index, answers 412, or
forwards the request to the active with ``X-Vault-Inconsistent: forward-active-node``).

Index values are opaque to Vault's clients. Ours (base64 of a prefix and a change-feed
counter) are compared so that a slow response carrying an older index does not replace
a newer one; values that cannot be compared are taken as they come, the last one seen
winning (what Vault Agent does with an index it cannot merge).
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["IndexState", "newest"]

_COUNTER = re.compile(r"(\D*)(\d{1,30})")


class IndexState:
    """The newest ``X-Vault-Index`` the proxy has seen (shared by all its listeners)."""

    def __init__(self) -> None:
        self.value = ""

    def __repr__(self) -> str:
        return f"IndexState(seen={bool(self.value)})"

    def observe(self, value: str) -> None:
        if value:
            self.value = newest(self.value, value)


def newest(older: str, newer: str) -> str:
    """The later of two ``X-Vault-Index`` values: by their counters when both carry one
    under the same prefix, else ``newer`` (the one seen last, or the client's own)."""
    first, second = _order(older), _order(newer)
    if first is not None and second is not None and first[0] == second[0]:
        return older if first[1] > second[1] else newer
    return newer


def _order(value: str) -> tuple[str, int] | None:
    if not value or len(value) > 200:
        return None
    try:
        text = base64.urlsafe_b64decode(value.strip().encode("ascii")).decode("ascii")
    except (ValueError, binascii.Error, UnicodeError):
        return None
    match = _COUNTER.fullmatch(text)
    if match is None:
        return None
    return match.group(1), int(match.group(2))
