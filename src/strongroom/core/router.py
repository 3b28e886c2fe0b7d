"""Longest-prefix routing from a request path to a mounted backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.core.mounts import MountEntry
from strongroom.logical import Backend, Storage

__all__ = ["Route", "Router"]


@dataclass(frozen=True, slots=True)
class Route:
    entry: MountEntry
    backend: Backend = field(repr=False)
    storage: Storage = field(repr=False)

    @property
    def mount_point(self) -> str:
        return self.entry.full_path


class Router:
    """Maps mount points ("secret/", "auth/token/") to routes.

    Lookup walks the request path's "/" boundaries from the longest prefix down, so its
    cost is the path's depth, not the number of mounts.
    """

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}

    def mount(self, route: Route) -> None:
        self._routes[route.mount_point] = route

    def unmount(self, mount_point: str) -> Route | None:
        return self._routes.pop(mount_point, None)

    def clear(self) -> None:
        self._routes.clear()

    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def get(self, mount_point: str) -> Route | None:
        return self._routes.get(mount_point)

    def match(self, path: str) -> tuple[Route, str] | None:
        """The route owning ``path`` and the path relative to its mount."""
        probe = path if path.endswith("/") else path + "/"
        idx = len(probe)
        while idx > 0:
            route = self._routes.get(probe[:idx])
            if route is not None:
                return route, path[idx:] if idx <= len(path) else ""
            idx = probe.rfind("/", 0, idx - 1) + 1
        return None
