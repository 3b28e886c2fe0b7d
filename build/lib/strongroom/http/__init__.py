"""ASGI: HTTP ⇄ logical requests, Vault's JSON envelope, limits and the error → status table."""

from strongroom.http.app import AppHooks, HttpLimits, StrongroomApp
from strongroom.http.requests import BODY_COMPLETE

__all__ = ["BODY_COMPLETE", "AppHooks", "HttpLimits", "StrongroomApp"]
