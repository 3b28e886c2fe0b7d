"""ASGI: HTTP ⇄ logical requests, Vault's JSON envelope, limits and the error → status table."""

from strongroom.http.app import HttpLimits, StrongroomApp

__all__ = ["HttpLimits", "StrongroomApp"]
