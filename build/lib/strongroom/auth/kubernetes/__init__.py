"""Vault's Kubernetes auth method: pods log in with their service-account JWT.

Modules: ``_config`` (config path), ``_roles`` (role/ paths), ``_backend`` (login with local
verification and/or TokenReview, the factory, the renewal hook).
"""

from __future__ import annotations

from strongroom.auth.kubernetes._backend import factory

__all__ = ["factory"]
