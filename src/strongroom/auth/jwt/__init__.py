"""Vault's JWT/OIDC auth method (the ``jwt`` and ``oidc`` types share this factory).

Modules: ``_config`` (config path), ``_keys`` (key sources and the key cache), ``_roles``
(role/ paths), ``_claims`` (bound claims, claim mappings, user and groups), ``_backend``
(login, the factory, the renewal hook), ``_oidc`` (the OIDC authorization-code flow with PKCE:
auth_url, callback, poll) and ``_oidc_state`` (its single-use pending logins). JWS
verification itself lives in ``strongroom.auth._jose``, shared with the kubernetes method.
"""

from __future__ import annotations

from strongroom.auth.jwt._backend import factory

__all__ = ["factory"]
