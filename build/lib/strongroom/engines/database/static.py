"""static-roles/<name>, static-roles/ (LIST), static-creds/<name>, rotate-role/<name>, and
the task that rotates static roles when they fall due.

A static role binds an existing database user to a rotation period (at least 5 seconds).
Creating one rotates the password at once (the engine must know it); static-creds returns
the current password, when it was set and how long until the next rotation. The username
and db_name of a static role cannot change; deleting the role leaves the user alone.

Rotation writes the new password as ``pending_password`` before changing the database and
commits it after, so a rotation cut short (crash, lost connection) is visible: such a role
is rotated again as soon as the rotation task sees it, which makes the stored password true
again. The task, started by the backend's ``initialize`` and cancelled by ``cleanup``, wakes
every ``tick`` seconds and rotates roles whose ``last_vault_rotation + rotation_period`` has
passed by the mount's clock (``SystemView.now``); a failed rotation is retried after
:data:`RETRY_BACKOFF` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strongroom.engines.database._records import (
    NAME,
    STATIC_PREFIX,
    StaticRole,
    check_credential_type,
    check_substitutable,
    load_role,
    load_static,
    save,
    storage_of,
)
from strongroom.engines.database._templates import TemplateError, parse_statement_field
from strongroom.errors import InvalidRequest, PermissionDenied, StrongroomError
from strongroom.framework import Duration, KeyLocks, NoArgs, Path, format_time
from strongroom.logical import Operation, Request, Response, Storage

if TYPE_CHECKING:
    from strongroom.engines.database._backend import DatabaseState

__all__ = ["MIN_ROTATION_PERIOD", "RETRY_BACKOFF", "StaticPaths", "StaticRoleArgs"]

MIN_ROTATION_PERIOD = 5
RETRY_BACKOFF = 10.0
log = logging.getLogger("strongroom.engines.database")


@dataclass(frozen=True, slots=True)
class StaticRoleArgs:
    name: str
    db_name: str = ""
    username: str = ""
    rotation_period: Duration = Duration(0)
    rotation_statements: Any = None
    credential_type: str = "password"
    credential_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NameArgs:
    name: str


def _check_username(username: str, custom_statements: bool) -> None:
    if custom_statements:
        # pasted into the operator's statements verbatim
        check_substitutable(username, "username")
    elif not username or "\x00" in username or len(username.encode()) > 63:
        raise InvalidRequest("username: must be 1-63 bytes")


def static_data(role: StaticRole) -> dict[str, Any]:
    data: dict[str, Any] = {
        "db_name": role.db_name,
        "username": role.username,
        "rotation_period": role.rotation_period,
        "rotation_statements": list(role.rotation_statements),
        "credential_type": role.credential_type,
    }
    if role.last_vault_rotation:
        data["last_vault_rotation"] = format_time(role.last_vault_rotation)
    return data


class StaticPaths:
    """The static-role paths and the rotation schedule (in memory, rebuilt from storage)."""

    def __init__(self, state: DatabaseState, *, tick: float) -> None:
        self.state = state
        self.tick = tick
        self.locks = KeyLocks()  # per static role: one rotation at a time
        self.schedule: dict[str, float] = {}  # name -> when it falls due
        self._loaded = False
        self._task: asyncio.Task[None] | None = None

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"static-roles/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_roles},
                synopsis="List the static roles.",
                description="Returns the names of the roles defined at static-roles/<name>.",
            ),
            Path(
                pattern=rf"static-roles/(?P<name>{NAME})",
                args=StaticRoleArgs,
                operations={
                    Operation.READ: self.read,
                    Operation.CREATE: self.write,
                    Operation.UPDATE: self.write,
                    Operation.DELETE: self.delete,
                },
                existence_check=self.exists,
                synopsis="Manage roles that rotate the password of an existing database user.",
                description=_STATIC_HELP,
            ),
            Path(
                pattern=rf"static-creds/(?P<name>{NAME})",
                args=NameArgs,
                operations={Operation.READ: self.creds},
                synopsis="Read the current credentials of a static role.",
                description=(
                    "Returns username, password, last_vault_rotation, rotation_period and ttl "
                    "(seconds until the next rotation)."
                ),
            ),
            Path(
                pattern=rf"rotate-role/(?P<name>{NAME})",
                args=NameArgs,
                operations={Operation.UPDATE: self.rotate_role},
                synopsis="Rotate a static role's password now.",
                description="Sets a new password and restarts the role's rotation period.",
            ),
        ]

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="database-static-rotation"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                if not self._loaded:
                    await self._load(self.state.storage)
                await self.rotate_due()
            except StrongroomError as exc:
                log.warning("static role rotation pass failed: %s", exc)
            except Exception as exc:  # keep rotating whatever one pass tripped over
                log.warning("static role rotation pass failed: %s", type(exc).__name__)
            await asyncio.sleep(self.tick)

    async def _load(self, storage: Storage) -> None:
        now = self.state.system.now()
        for name in await storage.list(STATIC_PREFIX):
            role = await load_static(storage, name)
            if role is not None:
                due = now if role.pending_password else role.next_rotation()
                self.schedule.setdefault(name, due)
        self._loaded = True

    async def rotate_due(self) -> list[str]:
        """Rotate every role that has fallen due; returns the names rotated."""
        storage = self.state.storage
        now = self.state.system.now()
        rotated: list[str] = []
        for name, due in sorted(self.schedule.items(), key=lambda item: item[1]):
            if due > now:
                continue
            if await load_static(storage, name) is None:
                self.schedule.pop(name, None)
                continue
            try:
                await self.rotate(storage, name)
                rotated.append(name)
            except StrongroomError as exc:
                self.schedule[name] = now + RETRY_BACKOFF
                log.warning('static role "%s": rotation failed: %s', name, exc)
        return rotated

    # -- rotation -----------------------------------------------------------------------------

    async def rotate(
        self, storage: Storage, name: str, *, new_role: StaticRole | None = None
    ) -> StaticRole:
        """Set a new password for the role's user and store it.

        Raises:
            InvalidRequest: no such role or config, or the rotation statements failed.
            InternalError: the database is unreachable.
        """
        async with self.locks.hold(name):
            role = new_role or await load_static(storage, name)
            if role is None:
                raise InvalidRequest(f'no static role found for role name "{name}"')
            config, plugin = await self.state.connect(storage, role.db_name)
            password = await self.state.password(config)
            await save(storage, dataclasses.replace(role, pending_password=password))
            try:
                await plugin.set_password(
                    username=role.username,
                    password=password,
                    statements=role.rotation_statements,
                )
            except BaseException as exc:
                if new_role is not None:
                    # a role being created is not kept when its first rotation fails
                    await storage.delete(STATIC_PREFIX + name)
                elif isinstance(exc, InvalidRequest):
                    await save(storage, role)  # rolled back: the stored password still holds
                else:
                    # unknown whether the database took it: rotate again soon
                    self.schedule[name] = self.state.system.now() + RETRY_BACKOFF
                raise
            rotated = dataclasses.replace(
                role,
                password=password,
                pending_password="",
                last_vault_rotation=self.state.system.now(),
            )
            await save(storage, rotated)
            self.schedule[name] = rotated.next_rotation()
            return rotated

    # -- handlers -----------------------------------------------------------------------------

    async def exists(self, request: Request, args: StaticRoleArgs) -> bool:
        return await load_static(storage_of(request), args.name) is not None

    async def list_roles(self, request: Request, args: NoArgs) -> Response | None:
        keys = await storage_of(request).list(STATIC_PREFIX)
        return Response(data={"keys": keys}) if keys else None

    async def read(self, request: Request, args: StaticRoleArgs) -> Response | None:
        role = await load_static(storage_of(request), args.name)
        return None if role is None else Response(data=static_data(role))

    async def write(self, request: Request, args: StaticRoleArgs) -> Response | None:
        storage = storage_of(request)
        given = {key for key, value in request.data.items() if value is not None}
        async with self.state.role_locks.hold(args.name):
            if await load_role(storage, args.name) is not None:
                raise InvalidRequest("Role and Static Role names must be unique")
            old = await load_static(storage, args.name)
            if old is not None:
                if "username" in given and args.username != old.username:
                    raise InvalidRequest("cannot update static role username")
                if "db_name" in given and args.db_name != old.db_name:
                    raise InvalidRequest("cannot update static role db_name")
            else:
                if not args.username:
                    raise InvalidRequest("username is a required field to create a static account")
                if not args.db_name:
                    raise InvalidRequest("database name is a required field")
                if "rotation_period" not in given:
                    raise InvalidRequest("rotation_period is required to create static accounts")
            role = self._merge(args, given, old)
            _check_username(role.username, bool(role.rotation_statements))
            await self.state.config(storage, role.db_name)  # 400 when it does not exist
            if old is None:
                await self._check_unclaimed(storage, role)
                await self.rotate(storage, role.name, new_role=role)
                return None
            async with self.locks.hold(args.name):
                current = await load_static(storage, args.name) or old
                updated = dataclasses.replace(
                    current,
                    rotation_period=role.rotation_period,
                    rotation_statements=role.rotation_statements,
                    credential_type=role.credential_type,
                )
                await save(storage, updated)
                if not updated.pending_password:
                    self.schedule[args.name] = updated.next_rotation()
        return None

    def _merge(self, args: StaticRoleArgs, given: set[str], old: StaticRole | None) -> StaticRole:
        period = int(
            args.rotation_period
            if "rotation_period" in given or old is None
            else old.rotation_period
        )
        if period < MIN_ROTATION_PERIOD:
            raise InvalidRequest(f"rotation_period must be {MIN_ROTATION_PERIOD} seconds or more")
        if "rotation_statements" in given or old is None:
            try:
                statements = tuple(
                    parse_statement_field(args.rotation_statements, "rotation_statements")
                )
            except TemplateError as exc:
                raise InvalidRequest(str(exc)) from None
        else:
            statements = old.rotation_statements
        credential_type = check_credential_type(
            args.credential_type
            if "credential_type" in given or old is None
            else old.credential_type
        )
        return StaticRole(
            name=args.name,
            db_name=old.db_name if old else args.db_name,
            username=old.username if old else args.username,
            rotation_period=period,
            rotation_statements=statements,
            credential_type=credential_type,
        )

    async def _check_unclaimed(self, storage: Storage, role: StaticRole) -> None:
        for name in await storage.list(STATIC_PREFIX):
            other = await load_static(storage, name)
            if (
                other is not None
                and other.db_name == role.db_name
                and other.username == role.username
            ):
                raise InvalidRequest(
                    f'username "{role.username}" is already managed by static role "{name}"'
                )

    async def delete(self, request: Request, args: StaticRoleArgs) -> Response | None:
        async with self.state.role_locks.hold(args.name), self.locks.hold(args.name):
            await storage_of(request).delete(STATIC_PREFIX + args.name)
            self.schedule.pop(args.name, None)
        return None

    async def creds(self, request: Request, args: NameArgs) -> Response | None:
        storage = storage_of(request)
        role = await load_static(storage, args.name)
        if role is None:
            raise InvalidRequest(f"unknown role: {args.name}")
        config = await self.state.config(storage, role.db_name)
        if not config.allows(args.name):
            raise PermissionDenied(f'"{args.name}" is not an allowed role')
        ttl = max(0, int(role.next_rotation() - self.state.system.now()))
        return Response(
            data={
                "username": role.username,
                "password": role.password,
                "last_vault_rotation": format_time(role.last_vault_rotation),
                "rotation_period": role.rotation_period,
                "ttl": ttl,
            }
        )

    async def rotate_role(self, request: Request, args: NameArgs) -> Response | None:
        await self.rotate(storage_of(request), args.name)
        return None


_STATIC_HELP = """\
Fields: db_name and username (required at creation, fixed afterwards), rotation_period
(required, at least 5s), rotation_statements ({{name}}/{{username}} and {{password}} are
substituted; default ALTER ROLE … WITH PASSWORD), credential_type ("password"). Creating a
static role rotates its password at once."""
