"""Vault's AppRole auth method: role IDs and secret IDs for machines.

Modules: ``_records`` (records, storage layout, the HMAC key), ``_roles`` (role/ paths),
``_secret_ids`` (secret-id paths, tidy), ``_backend`` (login, the factory, the renewal hook).
"""

from __future__ import annotations

from strongroom.auth.approle._backend import factory

__all__ = ["factory"]
