"""The KV factory: version 1 or version 2 by mount options, and the v2 path table.

Core mounts ``kv`` with ``options.version`` "1" (the default when absent or empty) or "2", or
the ``kv-v2`` type, which is always version 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.engines.kv._data import DataPaths
from strongroom.engines.kv._metadata import MetadataPaths
from strongroom.engines.kv._records import KVState
from strongroom.engines.kv._v1 import build_v1
from strongroom.engines.kv._versions import VersionsPaths
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import FrameworkBackend, Path
from strongroom.logical import Backend, BackendConfig, BackendKind, Operation, Request, Response

__all__ = ["build_v2", "factory", "kv_version"]

_ROOTS = ("config", "data", "metadata", "delete", "undelete", "destroy", "subkeys")
_CLI_VERB = {
    Operation.CREATE: "put",
    Operation.UPDATE: "put",
    Operation.PATCH: "patch",
    Operation.READ: "get",
    Operation.LIST: "list",
    Operation.DELETE: "delete",
}


@dataclass(frozen=True, slots=True)
class InvalidArgs:
    """The catch-all path takes no fields."""


async def _invalid_path(request: Request, args: InvalidArgs) -> Response | None:
    """Vault answers any other path of a v2 mount 404, pointing at the right endpoints."""
    if request.path.rstrip("/") in _ROOTS:
        raise NotFound("Non-listing operations on the root of a K/V v2 mount are not supported.")
    verb = _CLI_VERB.get(request.operation, "get")
    raise NotFound(
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate "
        f"API endpoints to use. If using the Vault CLI, use 'vault kv {verb}' for this operation."
    )


def build_v2(config: BackendConfig) -> FrameworkBackend:
    state = KVState(config.system)
    paths: list[Path] = [
        *MetadataPaths(state).paths(),
        *DataPaths(state).paths(),
        *VersionsPaths(state).paths(),
        # last, so every valid path matches first
        Path(
            pattern=r".*",
            args=InvalidArgs,
            operations={op: _invalid_path for op in _CLI_VERB},
            synopsis="Not a KV v2 path.",
            description=_INVALID_HELP,
        ),
    ]
    return FrameworkBackend(kind=BackendKind.SECRET, paths=paths, help=_V2_HELP)


def kv_version(config: BackendConfig) -> str:
    """ "1" or "2": ``kv-v2`` mounts are version 2; ``kv`` reads ``options.version``."""
    if config.mount_type == "kv-v2":
        return "2"
    version = str(config.options.get("version", "") or "1").strip()
    if version not in ("1", "2"):
        raise InvalidRequest('kv: options.version must be "1" or "2"')
    return version


async def factory(config: BackendConfig) -> Backend:
    """Build a KV backend for a mount.

    Args:
        config: the mount's configuration; ``options["version"]`` selects the engine version.

    Raises:
        InvalidRequest: ``options.version`` is neither "1" nor "2".

    Returns:
        The backend; core calls ``initialize()`` before routing requests to it.
    """
    if kv_version(config) == "2":
        return build_v2(config)
    return build_v1(config.system)


_V2_HELP = """\
This backend provides a versioned key-value store. Secrets are encrypted at rest by the barrier.
Each key keeps a configurable number of versions, which can be read by version number,
soft-deleted, undeleted and destroyed. Paths: config, data/<path>, metadata/<path>,
delete/<path>, undelete/<path>, destroy/<path>, subkeys/<path>."""

_INVALID_HELP = """\
Paths of a versioned K/V mount are config, data/, metadata/, delete/, undelete/, destroy/ and
subkeys/ followed by the secret path."""
