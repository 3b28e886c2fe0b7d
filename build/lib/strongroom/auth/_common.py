"""Small helpers every auth method shares: the storage view, Vault's globs, field presence,
remote-address checks and RFC 3339 times.

Nothing here touches secrets: callers pass names and patterns, never credentials.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

from strongroom.errors import InternalError, InvalidRequest, PermissionDenied
from strongroom.framework import NoArgs, Path, format_time, remote_in
from strongroom.logical import Operation, Request, Response, Storage

__all__ = [
    "GO_ZERO_TIME",
    "cidrs_subset",
    "given",
    "glob_match",
    "glob_match_any",
    "parse_cidrs",
    "remote_in",
    "require_remote_in",
    "rfc3339",
    "storage_of",
]

# Go's zero time.Time, which Vault prints for "never" (e.g. a secret ID without expiry)
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def storage_of(request: Request) -> Storage:
    if request.storage is None:
        raise InternalError("request carries no storage view")
    return request.storage


def given(args: Any, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of an args dataclass the client actually sent (``None`` means absent)."""
    skip = set(exclude)
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(args)
        if f.name not in skip and getattr(args, f.name) is not None
    }


@functools.lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def glob_match(pattern: str, value: str) -> bool:
    """ryanuber/go-glob as Vault uses it: ``*`` matches any run of characters (dots and
    slashes included); nothing else is special; a lone ``*`` matches everything."""
    if pattern == "*":
        return True
    if "*" not in pattern:
        return pattern == value
    return _glob_regex(pattern).fullmatch(value) is not None


def glob_match_any(patterns: Sequence[str], value: str) -> bool:
    return any(glob_match(pattern, value) for pattern in patterns)


def parse_cidrs(values: Sequence[str], name: str) -> tuple[str, ...]:
    """Vault's ParseAddrs: CIDR blocks or bare addresses, normalised; refuses anything else."""
    out: list[str] = []
    for value in values:
        text = value.strip()
        try:
            if "/" in text:
                out.append(str(ipaddress.ip_network(text, strict=False)))
            else:
                out.append(str(ipaddress.ip_address(text)))
        except ValueError:
            raise InvalidRequest(f"{name}: invalid CIDR block or address") from None
    return tuple(dict.fromkeys(out))


def require_remote_in(cidrs: Sequence[str], request: Request) -> None:
    if not remote_in(cidrs, request.connection.remote_addr):
        raise PermissionDenied()


def cidrs_subset(inner: Sequence[str], outer: Sequence[str]) -> bool:
    """Every block of ``inner`` lies within some block of ``outer`` (empty ``outer``: all do)."""
    if not outer:
        return True
    outer_nets = [ipaddress.ip_network(cidr, strict=False) for cidr in outer]
    for cidr in inner:
        net = ipaddress.ip_network(cidr, strict=False)
        if not any(
            net.version == o.version and net.subnet_of(o)  # type: ignore[arg-type]
            for o in outer_nets
        ):
            return False
    return True


def rfc3339(seconds: float) -> str:
    return format_time(seconds) if seconds else GO_ZERO_TIME


class RoleTablePaths:
    """``LIST role/`` and read/delete/existence of ``role/<name>``, shared by the methods
    whose roles are one JSON record each (jwt, kubernetes). A subclass names its args
    dataclass, how a name is normalised, how a role is loaded, and writes roles itself.
    """

    role_args: type[Any] = NoArgs
    prefix = "role/"
    synopsis = "Manage a role."
    description = ""

    def role_name(self, raw: str) -> str:
        raise NotImplementedError

    async def load(self, storage: Storage, name: str) -> Any:
        raise NotImplementedError

    async def write_role(self, request: Request, args: Any) -> None:
        raise NotImplementedError

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"role/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_roles},
                synopsis="List the roles of this mount.",
            ),
            Path(
                pattern=r"role/(?P<name>[^/]+)",
                args=self.role_args,
                operations={
                    Operation.CREATE: self.write_role,
                    Operation.UPDATE: self.write_role,
                    Operation.READ: self.read_role,
                    Operation.DELETE: self.delete_role,
                },
                existence_check=self.role_exists,
                synopsis=self.synopsis,
                description=self.description,
            ),
        ]

    async def list_roles(self, request: Request, args: NoArgs) -> Response | None:
        keys = [k for k in await storage_of(request).list(self.prefix) if not k.endswith("/")]
        return Response(data={"keys": keys}) if keys else None

    async def role_exists(self, request: Request, args: Any) -> bool:
        return await self.load(storage_of(request), args.name) is not None

    async def read_role(self, request: Request, args: Any) -> Response | None:
        role = await self.load(storage_of(request), self.role_name(args.name))
        return None if role is None else Response(data=role.describe())

    async def delete_role(self, request: Request, args: Any) -> None:
        await storage_of(request).delete(self.prefix + self.role_name(args.name))
