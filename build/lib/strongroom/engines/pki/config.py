"""``config/urls`` (AIA and CRL distribution URLs) and ``config/cluster`` (this mount's
externally reachable paths, for AIA templating and ACME)."""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.engines.pki._store import PKIStore
from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

__all__ = ["ConfigPaths"]

_URL_FIELDS = ("issuing_certificates", "crl_distribution_points", "ocsp_servers")


@dataclass(frozen=True, slots=True)
class URLsArgs:
    issuing_certificates: list[str] = field(default_factory=list)
    crl_distribution_points: list[str] = field(default_factory=list)
    ocsp_servers: list[str] = field(default_factory=list)
    enable_templating: bool = False


@dataclass(frozen=True, slots=True)
class ClusterArgs:
    path: str = ""
    aia_path: str = ""


def _check_urls(urls: list[str], templating: bool) -> None:
    for url in urls:
        if "{{" in url and not templating:
            raise InvalidRequest(f"URL {url} uses templating but enable_templating is false")
        if not url.startswith(("http://", "https://", "ldap://", "{{")):
            raise InvalidRequest(f"invalid URL: {url}")


class ConfigPaths:
    def __init__(self, store: PKIStore) -> None:
        self.store = store

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"config/urls",
                args=URLsArgs,
                operations={Operation.READ: self.read_urls, Operation.UPDATE: self.write_urls},
                synopsis="The URLs put into issued certificates (AIA, CRL distribution points)",
            ),
            Path(
                pattern=r"config/cluster",
                args=ClusterArgs,
                operations={
                    Operation.READ: self.read_cluster,
                    Operation.UPDATE: self.write_cluster,
                },
                synopsis="This mount's external URL (path, aia_path)",
            ),
        ]

    async def read_urls(self, request: Request, args: URLsArgs) -> Response:
        config = await self.store.config("urls")
        data: dict[str, object] = {name: list(config.get(name) or []) for name in _URL_FIELDS}
        data["enable_templating"] = bool(config.get("enable_templating", False))
        return Response(data=data)

    async def write_urls(self, request: Request, args: URLsArgs) -> Response:
        async with self.store.locks.hold("config/urls"):
            config = await self.store.config("urls")
            for name in (*_URL_FIELDS, "enable_templating"):
                if name in request.data:
                    config[name] = getattr(args, name)
            templating = bool(config.get("enable_templating", False))
            for name in _URL_FIELDS:
                _check_urls(list(config.get(name) or []), templating)
            await self.store.put_config("urls", config)
        return await self.read_urls(request, args)

    async def read_cluster(self, request: Request, args: ClusterArgs) -> Response:
        config = await self.store.config("cluster")
        return Response(
            data={"path": config.get("path", ""), "aia_path": config.get("aia_path", "")}
        )

    async def write_cluster(self, request: Request, args: ClusterArgs) -> Response:
        for url in (args.path, args.aia_path):
            if url and not url.startswith(("http://", "https://")):
                raise InvalidRequest(f"invalid URL: {url}")
        async with self.store.locks.hold("config/cluster"):
            config = await self.store.config("cluster")
            for name in ("path", "aia_path"):
                if name in request.data:
                    config[name] = getattr(args, name).rstrip("/")
            await self.store.put_config("cluster", config)
        return await self.read_cluster(request, args)
