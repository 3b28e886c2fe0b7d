"""config/<name>, config/ (LIST), reset/<name>, reload/<plugin_name> and rotate-root/<name>.

A config names the plugin (only ``postgresql-database-plugin``), how to connect (a
``connection_url`` templated with ``{{username}}``/``{{password}}``, the root ``username`` and
``password``), which roles may use it (``allowed_roles``: names, globs, ``*``) and how
usernames are made (``username_template``). Writing it connects first unless
``verify_connection`` is false. A read never returns the password (nor a literal password
inside ``connection_url``).

Updates merge: a field left out keeps its stored value. (Vault replaces the connection
details wholesale, which after ``rotate-root`` would drop the only copy of the root
password.)

Root rotation stores the new password as ``pending_password`` before it runs ``ALTER ROLE``
and moves it to ``password`` after, so a crash in between is recovered on the next connect
(``DatabaseState.recover_root``): the one that works is kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strongroom.engines.database._passwords import random_alphanumeric
from strongroom.engines.database._postgres import PLUGIN_NAME, PostgresPlugin, mask_url
from strongroom.engines.database._records import (
    CONFIG_PREFIX,
    NAME,
    DbConfig,
    check_substitutable,
    load_config,
    save,
    storage_of,
)
from strongroom.engines.database._templates import (
    TemplateError,
    compile_username_template,
    parse_statement_field,
)
from strongroom.errors import InvalidRequest, StrongroomError
from strongroom.framework import Duration, NoArgs, Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.database._backend import DatabaseState

__all__ = ["ConfigArgs", "ConfigPaths", "NameArgs"]

_DEFAULT_MAX_OPEN = 4


@dataclass(frozen=True, slots=True)
class ReloadArgs:
    plugin_name: str


@dataclass(frozen=True, slots=True)
class NameArgs:
    name: str


@dataclass(frozen=True, slots=True)
class ConfigArgs:
    name: str
    plugin_name: str = ""
    plugin_version: str = ""
    connection_url: str = field(default="", repr=False)  # may hold a literal password
    username: str = ""
    password: str = field(default="", repr=False)
    verify_connection: bool = True
    allowed_roles: list[str] = field(default_factory=list)
    root_rotation_statements: Any = None
    password_policy: str = ""
    username_template: str = ""
    disable_escaping: bool = False
    max_open_connections: int = _DEFAULT_MAX_OPEN
    max_idle_connections: int = 0
    max_connection_lifetime: Duration = Duration(0)


def _given(request: Request) -> set[str]:
    return {key for key, value in request.data.items() if value is not None}


def check_username_template(source: str) -> None:
    """Compile and render once with sample values, as Vault does when a config is written.

    Raises:
        InvalidRequest: the template does not parse, or cannot make a usable username.
    """
    try:
        template = compile_username_template(source)
        template.render(
            {"DisplayName": "token", "RoleName": "role"},
            now=1_700_000_000.0,
            random=random_alphanumeric,
        )
    except TemplateError as exc:
        raise InvalidRequest(f"unable to initialize username template: {exc}") from None


def _merge(args: ConfigArgs, given: set[str], old: DbConfig | None) -> DbConfig:
    base = old or DbConfig(name=args.name, plugin_name="", connection_url="")

    def pick(key: str, default: Any) -> Any:
        return getattr(args, key) if key in given or old is None else default

    plugin_name = pick("plugin_name", base.plugin_name)
    if not plugin_name:
        raise InvalidRequest("empty plugin name")
    if plugin_name != PLUGIN_NAME:
        raise InvalidRequest(
            f'unsupported plugin_name "{plugin_name}": this server provides only "{PLUGIN_NAME}"'
        )
    connection_url = pick("connection_url", base.connection_url)
    if not connection_url:
        raise InvalidRequest("connection_url is required")
    try:
        statements = (
            tuple(parse_statement_field(args.root_rotation_statements, "root_rotation_statements"))
            if "root_rotation_statements" in given
            else base.root_rotation_statements
        )
    except TemplateError as exc:
        raise InvalidRequest(str(exc)) from None
    template = pick("username_template", base.username_template)
    if template:
        check_username_template(template)
    max_open = pick("max_open_connections", base.max_open_connections)
    if max_open <= 0:
        max_open = _DEFAULT_MAX_OPEN
    max_idle = pick("max_idle_connections", base.max_idle_connections)
    if max_idle == 0 or max_idle > max_open:
        max_idle = max_open
    password_given = "password" in given
    return DbConfig(
        name=args.name,
        plugin_name=plugin_name,
        connection_url=connection_url,
        username=pick("username", base.username),
        password=args.password if password_given else base.password,
        pending_password="" if password_given else base.pending_password,
        allowed_roles=tuple(pick("allowed_roles", list(base.allowed_roles))),
        verify_connection=pick("verify_connection", base.verify_connection),
        password_policy=pick("password_policy", base.password_policy),
        root_rotation_statements=statements,
        username_template=template,
        disable_escaping=pick("disable_escaping", base.disable_escaping),
        max_open_connections=max_open,
        max_idle_connections=max_idle,
        max_connection_lifetime=int(pick("max_connection_lifetime", base.max_connection_lifetime)),
    )


def _details(config: DbConfig) -> dict[str, Any]:
    details: dict[str, Any] = {
        "connection_url": mask_url(config.connection_url),
        "username": config.username,
        "max_open_connections": config.max_open_connections,
        "max_idle_connections": config.max_idle_connections,
        "max_connection_lifetime": f"{config.max_connection_lifetime}s",
    }
    if config.username_template:
        details["username_template"] = config.username_template
    if config.disable_escaping:
        details["disable_escaping"] = True
    return details


class ConfigPaths:
    """config/, reset/ and rotate-root/."""

    def __init__(self, state: DatabaseState) -> None:
        self.state = state

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"config/?",
                operations={Operation.LIST: self.list_configs},
                args=NoArgs,
                synopsis="List the configured database connections.",
                description="Returns the names of the connections configured at config/<name>.",
            ),
            Path(
                pattern=rf"config/(?P<name>{NAME})",
                args=ConfigArgs,
                operations={
                    Operation.READ: self.read,
                    Operation.CREATE: self.write,
                    Operation.UPDATE: self.write,
                    Operation.DELETE: self.delete,
                },
                existence_check=self.exists,
                synopsis="Configure a connection to a database.",
                description=_CONFIG_HELP,
            ),
            Path(
                pattern=rf"reset/(?P<name>{NAME})",
                args=NameArgs,
                operations={Operation.UPDATE: self.reset},
                synopsis="Close a connection's sessions and reopen them.",
                description=(
                    "Closes every open session of the connection and reconnects with the "
                    "stored configuration."
                ),
            ),
            Path(
                pattern=r"reload/(?P<plugin_name>[^/]+)",
                args=ReloadArgs,
                operations={Operation.UPDATE: self.reload},
                synopsis="Close the sessions of every connection that uses a plugin.",
                description=(
                    "Every connection whose plugin_name is the given one drops its open "
                    "sessions and reconnects with its stored configuration on next use."
                ),
            ),
            Path(
                pattern=rf"rotate-root/(?P<name>{NAME})",
                args=NameArgs,
                operations={Operation.UPDATE: self.rotate_root},
                synopsis="Rotate the password of the connection's root user.",
                description=_ROTATE_HELP,
            ),
        ]

    async def exists(self, request: Request, args: NameArgs | ConfigArgs) -> bool:
        return await load_config(storage_of(request), args.name) is not None

    async def list_configs(self, request: Request, args: NoArgs) -> Response | None:
        keys = await storage_of(request).list(CONFIG_PREFIX)
        return Response(data={"keys": keys}) if keys else None

    async def read(self, request: Request, args: ConfigArgs) -> Response | None:
        config = await load_config(storage_of(request), args.name)
        if config is None:
            return None
        return Response(
            data={
                "plugin_name": config.plugin_name,
                "plugin_version": "",
                "connection_details": _details(config),
                "allowed_roles": list(config.allowed_roles),
                "root_credentials_rotate_statements": list(config.root_rotation_statements),
                "password_policy": config.password_policy,
                "verify_connection": config.verify_connection,
            }
        )

    async def write(self, request: Request, args: ConfigArgs) -> Response | None:
        storage = storage_of(request)
        async with self.state.config_locks.hold(args.name):
            old = await load_config(storage, args.name)
            config = _merge(args, _given(request), old)
            plugin = PostgresPlugin(config.name, config.settings())
            if config.verify_connection:
                try:
                    await plugin.verify()
                except StrongroomError as exc:
                    await plugin.close()
                    detail = "; ".join(exc.messages)
                    raise InvalidRequest(f"error creating database object: {detail}") from None
            await save(storage, config)
            await self.state.replace(config.name, plugin)
        return None

    async def delete(self, request: Request, args: ConfigArgs) -> Response | None:
        async with self.state.config_locks.hold(args.name):
            await storage_of(request).delete(CONFIG_PREFIX + args.name)
            await self.state.replace(args.name, None)
        return None

    async def reset(self, request: Request, args: NameArgs) -> Response | None:
        storage = storage_of(request)
        await self.state.config(storage, args.name)  # 400 when there is no such config
        await self.state.replace(args.name, None)
        config, plugin = await self.state.connect(storage, args.name)
        if config.verify_connection:
            await plugin.verify()
        return None

    async def reload(self, request: Request, args: ReloadArgs) -> Response:
        storage = storage_of(request)
        reloaded = []
        for name in await storage.list(CONFIG_PREFIX):
            config = await load_config(storage, name)
            if config is not None and config.plugin_name == args.plugin_name:
                async with self.state.config_locks.hold(name):
                    await self.state.replace(name, None)
                reloaded.append(name)
        warnings = [] if reloaded else [f"no connection uses plugin {args.plugin_name[:80]!r}"]
        return Response(data={"connections": reloaded, "count": len(reloaded)}, warnings=warnings)

    async def rotate_root(self, request: Request, args: NameArgs) -> Response | None:
        storage = storage_of(request)
        await self.state.connect(storage, args.name)  # finishes an interrupted rotation first
        async with self.state.config_locks.hold(args.name):
            config = await self.state.config(storage, args.name)
            if not config.username:
                raise InvalidRequest(
                    "unable to rotate root credentials: no username in configuration"
                )
            if "{{password}}" not in config.connection_url:
                raise InvalidRequest(
                    "unable to rotate root credentials: connection_url must use the "
                    "{{password}} template so the new password can be used"
                )
            if config.root_rotation_statements:
                check_substitutable(config.username, "username")
            plugin = await self.state.plugin_for(config)
            new_password = await self.state.password(config)
            await save(storage, dataclasses.replace(config, pending_password=new_password))
            try:
                await plugin.set_password(
                    username=config.username,
                    password=new_password,
                    statements=config.root_rotation_statements,
                )
            except InvalidRequest:
                await save(storage, config)  # a statement failed and rolled back: no change
                raise
            except BaseException:
                # Connection lost or cancelled: whether the database took the new password
                # is unknown. The pending record stays, and the live plugin goes, so the
                # next connect runs recover_root and keeps whichever password works.
                await self.state.replace(config.name, None)
                raise
            rotated = dataclasses.replace(config, password=new_password, pending_password="")
            await save(storage, rotated)
            await self.state.replace(config.name, PostgresPlugin(config.name, rotated.settings()))
        return None


_CONFIG_HELP = """\
Fields: plugin_name (postgresql-database-plugin), connection_url (a libpq URL or key=value
string; {{username}} and {{password}} are replaced by the escaped root credentials), username,
password (never returned), verify_connection (default true: connect before saving),
allowed_roles (role names or globs allowed to use this connection; "*" for all),
root_rotation_statements, password_policy (a sys/policies/password policy), username_template,
disable_escaping, max_open_connections (default 4), max_idle_connections,
max_connection_lifetime. Updates keep the stored value of any field left out."""

_ROTATE_HELP = """\
Sets a new random password for the configured username (ALTER ROLE … WITH PASSWORD, or the
root_rotation_statements) and stores it. The new password is never returned; the old one stops
working. The connection_url must be templated with {{password}}."""
