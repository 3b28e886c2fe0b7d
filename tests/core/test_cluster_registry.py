"""The active's registry of standbys' echoes (core/cluster_registry.py): Vault's shapes,
bounded fields, forgetting."""

from __future__ import annotations

import time

import pytest

from strongroom.core.cluster_registry import Registry, node_json


def _echo(node_id: str, **extra: object) -> dict[str, object]:
    return {
        "node_id": node_id,
        "hostname": "host-" + node_id,
        "api_address": f"https://{node_id}:8200",
        "cluster_address": f"https://{node_id}:8201",
        "version": "1.17.0+strongroom",
        **extra,
    }


def test_echoes_are_listed_in_vaults_shape() -> None:
    registry = Registry(forget_after=30)
    registry.heard(_echo("b"))
    registry.heard(_echo("a"))
    registry.heard(_echo("me"))
    nodes = registry.nodes(exclude="me")
    assert [n.node_id for n in nodes] == ["a", "b"]
    entry = node_json(nodes[0], active=False)
    assert entry["hostname"] == "host-a" and entry["active_node"] is False
    assert entry["api_address"] == "https://a:8200"
    assert entry["cluster_address"] == "https://a:8201"
    assert isinstance(entry["last_echo"], str) and entry["last_echo"].endswith("+00:00")


@pytest.mark.parametrize(
    "payload",
    [
        {"hostname": "no-id"},
        _echo(""),
        _echo("x", hostname=7),
        _echo("x", api_address="h" * 600),
    ],
)
def test_a_malformed_echo_records_nothing(payload: dict[str, object]) -> None:
    registry = Registry(forget_after=30)
    with pytest.raises(ValueError):
        registry.heard(payload)
    assert registry.nodes() == []


def test_a_silent_node_is_forgotten() -> None:
    registry = Registry(forget_after=0.05)
    registry.heard(_echo("gone"))
    assert [n.node_id for n in registry.nodes()] == ["gone"]
    time.sleep(0.1)
    registry.heard(_echo("alive"))
    assert [n.node_id for n in registry.nodes()] == ["alive"]
    registry.clear()
    assert registry.nodes() == []
