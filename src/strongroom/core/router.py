"""Longest-prefix routing from a request path to a mounted backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from strongroom.core.mounts import MountEntry
from strongroom.framework import remember
from strongroom.logical import Backend, Storage

__all__ = ["Route", "Router"]


@dataclass(frozen=True, slots=True)
class Route:
    entry: MountEntry
    backend: Backend = field(repr=False)
    storage: Storage = field(repr=False)
    # where requests reach it ("secret/", "auth/userpass/"): read on every request
    mount_point: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mount_point", self.entry.full_path)


_MEMO_LIMIT = 8192


def _nothing() -> None:
    return None


class Router:
    """Maps mount points ("secret/", "auth/token/") to routes.

    Lookup walks the request path's "/" boundaries from the longest prefix down, so its
    cost is the path's depth, not the number of mounts; answers are memoised per path until
    the mount table changes.
    """

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._memo: dict[str, tuple[Route, str] | None] = {}
        # called before the table changes (request metrics fold what they hold: telemetry)
        self.before_change: Callable[[], None] = _nothing

    def mount(self, route: Route) -> None:
        self.before_change()
        self._routes[route.mount_point] = route
        self._memo.clear()

    def unmount(self, mount_point: str) -> Route | None:
        self.before_change()
        self._memo.clear()
        return self._routes.pop(mount_point, None)

    def clear(self) -> None:
        self.before_change()
        self._routes.clear()
        self._memo.clear()

    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def get(self, mount_point: str) -> Route | None:
        return self._routes.get(mount_point)

    def match(self, path: str) -> tuple[Route, str] | None:
        """The route owning ``path`` and the path relative to its mount."""
        try:
            return self._memo[path]
        except KeyError:
            pass
        return remember(self._memo, path, self._walk(path), _MEMO_LIMIT)

    def _walk(self, path: str) -> tuple[Route, str] | None:
        probe = path if path.endswith("/") else path + "/"
        idx = len(probe)
        while idx > 0:
            route = self._routes.get(probe[:idx])
            if route is not None:
                return route, path[idx:] if idx <= len(path) else ""
            idx = probe.rfind("/", 0, idx - 1) + 1
        return None
