"""The database engine's factory, and :class:`DatabaseState`, what its path families share.

The path families are ``config.py`` (config/, reset/, rotate-root/), ``roles.py`` (roles/),
``creds.py`` (creds/ and the ``creds`` lease type) and ``static.py`` (static-roles/,
static-creds/, rotate-role/ and the rotation task started by ``initialize`` and stopped by
``cleanup``). They share one :class:`DatabaseState`, which owns the live
:class:`PostgresPlugin` of each configuration: created from the stored config on first use,
replaced when the stored config no longer matches it (a write, a root rotation), closed on
reset, delete and cleanup.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from strongroom.engines.database._passwords import generate_password
from strongroom.engines.database._postgres import PostgresPlugin
from strongroom.engines.database._records import DbConfig, load_config, save
from strongroom.engines.database.config import ConfigPaths
from strongroom.engines.database.creds import CredsPaths
from strongroom.engines.database.roles import RolePaths
from strongroom.engines.database.static import StaticPaths
from strongroom.errors import InvalidRequest, StrongroomError
from strongroom.framework import FrameworkBackend, KeyLocks, SecretType
from strongroom.logical import Backend, BackendConfig, BackendKind, Storage, SystemView

__all__ = ["DatabaseState", "build", "factory"]

log = logging.getLogger("strongroom.engines.database")
# a policy's password goes into operator-written statements ('{{password}}'), as Vault does
_UNSAFE_PASSWORD = re.compile(r"[\x00-\x20\x7f\"'`;\\]")


class DatabaseState:
    """Live connections by config name, and locks. Nothing here outlives the mount."""

    def __init__(self, config: BackendConfig) -> None:
        self.system: SystemView = config.system
        self.storage: Storage = config.storage
        self.plugins: dict[str, PostgresPlugin] = {}
        self.config_locks = KeyLocks()
        self.role_locks = KeyLocks()

    async def password(self, config: DbConfig) -> str:
        """A new password: from the config's named password policy, or the default one.

        Raises:
            NotFound: the named policy does not exist.
            InvalidRequest: the policy produced a character that is unsafe to paste into
                a statement (quotes, backslash, semicolon, whitespace, control characters).
        """
        if not config.password_policy:
            return generate_password()
        password = await self.system.generate_password(config.password_policy)
        if _UNSAFE_PASSWORD.search(password):
            raise InvalidRequest(
                f"password policy {config.password_policy!r} produced a character that cannot "
                "be substituted into statements safely (quotes, backslash, semicolon, "
                "whitespace or control characters)"
            )
        return password

    async def config(self, storage: Storage, name: str) -> DbConfig:
        config = await load_config(storage, name)
        if config is None:
            raise InvalidRequest(f'no database configuration named "{name}"')
        return config

    async def connect(self, storage: Storage, name: str) -> tuple[DbConfig, PostgresPlugin]:
        """The config and a plugin matching it (a stale plugin is replaced).

        A config left with a ``pending_password`` (an interrupted root rotation) is settled
        first; if neither password works yet, it stays pending for the next call.

        Raises:
            InvalidRequest: there is no such config.
        """
        config = await self.config(storage, name)
        plugin = self.plugins.get(name)
        if plugin is not None and plugin.settings == config.settings():
            return config, plugin
        async with self.config_locks.hold(name):
            config = await self.config(storage, name)
            if config.pending_password:
                config = await self.recover_root(storage, config)
            return config, await self.plugin_for(config)

    async def plugin_for(self, config: DbConfig) -> PostgresPlugin:
        """The live plugin for ``config``, created (replacing a stale one) if needed."""
        plugin = self.plugins.get(config.name)
        if plugin is None or plugin.settings != config.settings():
            plugin = PostgresPlugin(config.name, config.settings())
            await self.replace(config.name, plugin)
        return plugin

    async def recover_root(self, storage: Storage, config: DbConfig) -> DbConfig:
        """A root rotation stored its new password, then stopped before finishing: find which
        password the database has now and keep that one. Call with the config lock held."""
        for candidate in (config.password, config.pending_password):
            probe = PostgresPlugin(config.name, config.settings(candidate))
            try:
                await probe.verify()
            except StrongroomError:
                continue
            finally:
                await probe.close()
            fixed = dataclasses.replace(config, password=candidate, pending_password="")
            await save(storage, fixed)
            log.warning('database "%s": finished an interrupted root rotation', config.name)
            return fixed
        return config  # neither works (database down?): leave the record for the next try

    async def replace(self, name: str, plugin: PostgresPlugin | None) -> None:
        """Install ``plugin`` (or none) for ``name`` and close the one it replaces."""
        old = self.plugins.pop(name, None)
        if plugin is not None:
            self.plugins[name] = plugin
        if old is not None and old is not plugin:
            await old.close()

    async def close(self) -> None:
        plugins, self.plugins = self.plugins, {}
        for plugin in plugins.values():
            await plugin.close()


def build(config: BackendConfig, *, tick: float = 1.0) -> FrameworkBackend:
    """The backend for one mount. ``tick`` is how often (seconds) due static roles are
    looked for."""
    state = DatabaseState(config)
    creds = CredsPaths(state)
    static = StaticPaths(state, tick=tick)

    async def cleanup() -> None:
        await static.stop()
        await state.close()

    return FrameworkBackend(
        kind=BackendKind.SECRET,
        paths=[
            *ConfigPaths(state).paths(),
            *RolePaths(state).paths(),
            *creds.paths(),
            *static.paths(),
        ],
        help=_HELP,
        initialize=static.start,
        cleanup=cleanup,
        secrets={"creds": SecretType(revoke=creds.revoke, renew=creds.renew)},
    )


async def factory(config: BackendConfig) -> Backend:
    """Build a database secrets engine for a mount.

    Args:
        config: the mount's configuration; ``config.system`` supplies lease defaults and the
            clock, ``config.storage`` the view the static-role rotation task works on.

    Returns:
        The backend; core calls ``initialize()`` (starting static-role rotation) before
        routing requests and ``cleanup()`` (stopping it, closing connections) at unmount.
    """
    return build(config)


_HELP = """\
The database secrets engine generates database credentials dynamically from configured roles
(creds/<role>, leased: renewing extends the user's expiry, revoking drops the user) and
manages the passwords of existing users (static-roles/, static-creds/), rotating them on a
schedule. Connections are configured at config/<name>; the supported plugin is
postgresql-database-plugin."""
