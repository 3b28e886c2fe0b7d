"""Vault's database secrets engine, with the PostgreSQL plugin.

Modules by path family: ``config`` (config/, reset/, rotate-root/), ``roles`` (roles/),
``creds`` (creds/ and the ``creds`` lease type core renews and revokes), ``static``
(static-roles/, static-creds/, rotate-role/ and the rotation task). Beneath them:
``_postgres`` (the plugin: connections and user operations), ``_templates`` (username and
statement templating, pure), ``_passwords``, ``_records`` (stored records) and ``_backend``
(the factory, and the live connections the families share).
"""

from __future__ import annotations

from strongroom.engines.database._backend import build, factory

__all__ = ["build", "factory"]
