"""The nodes an HA active has heard from, for ``sys/ha-status`` (Vault's shapes).

Every unsealed standby **echoes** to the active over the cluster channel every
``echo_interval`` (its node ID, host name, API and cluster addresses, version; nothing
secret), as Vault's standbys do. The echo reaches the active's cluster listener, which
admits cluster members only (mutual TLS with the cluster CA, or the workers' private Unix
socket), at a path (``/cluster/echo``) that is not under ``/v1``: a client cannot
forge one through a standby's forwarding, which only ever sends ``/v1/...``.

The registry lives in the active's memory, as Vault's: a new active starts with itself and
learns every standby within one echo interval. A node not heard from for
``forget_after`` is dropped (a standby that was stopped, killed or sealed).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["NodeEcho", "Registry", "node_json"]

_MAX_FIELD = 512  # an echo's strings are bounded (a node ID, a host name, two URLs)
_MAX_NODES = 1024


@dataclass(frozen=True, slots=True)
class NodeEcho:
    node_id: str
    hostname: str
    api_addr: str
    cluster_addr: str
    version: str
    last_echo: datetime.datetime | None  # None: the active itself (Vault's null)
    heard: float = 0.0  # monotonic time of the last echo


def _field(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name, "")
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        raise ValueError(f"echo: {name} must be a string of at most {_MAX_FIELD} characters")
    return value


class Registry:
    """The standbys that echoed to this (active) node recently."""

    def __init__(self, forget_after: float) -> None:
        self.forget_after = forget_after
        self._nodes: dict[str, NodeEcho] = {}

    def heard(self, payload: Mapping[str, Any]) -> None:
        """Record one echo. Raises ``ValueError`` for a malformed one (nothing recorded)."""
        node_id = _field(payload, "node_id")
        if not node_id:
            raise ValueError("echo: node_id is required")
        self._prune()
        if node_id not in self._nodes and len(self._nodes) >= _MAX_NODES:
            raise ValueError("echo: too many nodes")
        self._nodes[node_id] = NodeEcho(
            node_id=node_id,
            hostname=_field(payload, "hostname"),
            api_addr=_field(payload, "api_address"),
            cluster_addr=_field(payload, "cluster_address"),
            version=_field(payload, "version"),
            last_echo=datetime.datetime.now(datetime.UTC),
            heard=time.monotonic(),
        )

    def nodes(self, exclude: str = "") -> list[NodeEcho]:
        """The nodes heard from within ``forget_after``, by node ID (``exclude`` left out)."""
        self._prune()
        return [self._nodes[key] for key in sorted(self._nodes) if key != exclude]

    def clear(self) -> None:
        self._nodes.clear()

    def _prune(self) -> None:
        limit = time.monotonic() - self.forget_after
        for key in [key for key, node in self._nodes.items() if node.heard < limit]:
            del self._nodes[key]


def node_json(node: NodeEcho, active: bool) -> dict[str, Any]:
    """One entry of ``sys/ha-status``'s ``nodes`` (Vault's fields, plus our ``node_id``)."""
    return {
        "hostname": node.hostname,
        "node_id": node.node_id,
        "api_address": node.api_addr,
        "cluster_address": node.cluster_addr,
        "active_node": active,
        "last_echo": None if node.last_echo is None else node.last_echo.isoformat(),
        "version": node.version,
        "upgrade_version": node.version,
        "redundancy_zone": "",
    }
