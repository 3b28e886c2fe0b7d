"""Vault's userpass auth method: users with argon2id-hashed passwords, user lockout.

Modules: ``_users`` (users/ paths and username normalisation), ``_passwords`` (argon2id in a
thread pool, the dummy hash), ``_backend`` (login, the factory, the renewal hook).
"""

from __future__ import annotations

from strongroom.auth.userpass._backend import factory

__all__ = ["factory"]
