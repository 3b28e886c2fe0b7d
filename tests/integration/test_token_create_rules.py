"""Privileged fields of auth/token/create (issue 10, item 4), each against Vault's answer.

The expected statuses and messages were confirmed against ``bao server -dev`` (OpenBao
2.7.2, whose token store follows Vault here): a caller with only create/update on
``auth/token/create`` gets 400 with Vault's message for every privileged field; the same
caller with ``sudo`` on the path (or root) may use them.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.serverproc import ServerProcess

CREATOR = (
    'path "auth/token/create" { capabilities = ["create", "update"] }\n'
    'path "auth/token/create-orphan" { capabilities = ["create", "update"] }\n'
    'path "secret/*" { capabilities = ["read"] }'
)
SUDOER = 'path "auth/token/create" { capabilities = ["create", "update", "sudo"] }'


@pytest.fixture(scope="module")
def callers(dev_server: ServerProcess) -> dict[str, str]:
    root = dev_server.http(dev_server.root_token)
    for name, text in (("rules-creator", CREATOR), ("rules-sudoer", SUDOER)):
        assert root.put(f"/v1/sys/policies/acl/{name}", json={"policy": text}).status_code == 204

    def mint(policies: list[str]) -> str:
        answer = root.post("/v1/auth/token/create", json={"policies": policies, "ttl": "1h"})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["auth"]["client_token"])

    return {
        "plain": mint(["rules-creator"]),
        "sudo": mint(["rules-creator", "rules-sudoer"]),
        "root": dev_server.root_token,
    }


def _create(
    server: ServerProcess, token: str, body: dict[str, Any], path: str = "create"
) -> httpx.Response:
    return server.http(token).post(f"/v1/auth/token/{path}", json=body)


def _lookup(server: ServerProcess, token: str) -> dict[str, Any]:
    answer = server.http(server.root_token).post("/v1/auth/token/lookup", json={"token": token})
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


PRIVILEGED = [
    ({"period": "768h"}, "root or sudo privileges required to create periodic token"),
    ({"no_parent": True}, "root or sudo privileges required to create orphan token"),
    ({"id": "custom-id-plain"}, "root or sudo privileges required to specify token id"),
    ({"policies": ["rules-creator", "other"]}, "child policies must be subset of parent"),
    ({"policies": ["root"]}, "child policies must be subset of parent"),
]


@pytest.mark.parametrize(("body", "message"), PRIVILEGED)
def test_privileged_field_without_sudo_is_refused(
    dev_server: ServerProcess, callers: dict[str, str], body: dict[str, Any], message: str
) -> None:
    answer = _create(dev_server, callers["plain"], body)
    assert answer.status_code == 400
    assert answer.json() == {"errors": [message]}


def test_periodic_token_with_sudo(dev_server: ServerProcess, callers: dict[str, str]) -> None:
    answer = _create(dev_server, callers["sudo"], {"period": "2h"})
    assert answer.status_code == 200, answer.text
    data = _lookup(dev_server, answer.json()["auth"]["client_token"])
    assert data["period"] == 7200 and data["ttl"] == 7200


def test_orphan_with_sudo_and_through_create_orphan(
    dev_server: ServerProcess, callers: dict[str, str]
) -> None:
    with_sudo = _create(dev_server, callers["sudo"], {"no_parent": True, "ttl": "10m"})
    assert with_sudo.status_code == 200 and with_sudo.json()["auth"]["orphan"] is True
    # create-orphan needs no sudo (its own ACL path is the gate)
    orphan = _create(dev_server, callers["plain"], {"ttl": "10m"}, path="create-orphan")
    assert orphan.status_code == 200 and orphan.json()["auth"]["orphan"] is True
    # a plain child is not an orphan
    child = _create(dev_server, callers["plain"], {"ttl": "10m"})
    assert child.status_code == 200 and child.json()["auth"]["orphan"] is False


def test_custom_id_with_sudo(dev_server: ServerProcess, callers: dict[str, str]) -> None:
    answer = _create(dev_server, callers["sudo"], {"id": "custom-id-by-sudo", "ttl": "10m"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["auth"]["client_token"] == "custom-id-by-sudo"
    again = _create(dev_server, callers["root"], {"id": "custom-id-by-sudo"})
    assert again.status_code == 400


@pytest.mark.parametrize(
    ("token_id", "message"),
    [
        ("hvs.lookslikeours", "custom token ID cannot have the 'hvs.' prefix"),
        ("s.legacy", "custom token ID cannot have the 's.' prefix"),
        ("hvb.batchlike", "custom token ID cannot have the 'hvb.' prefix"),
        ("has.a.dot", "custom token ID cannot have a '.' in the value"),
    ],
)
def test_custom_id_shapes(
    dev_server: ServerProcess, callers: dict[str, str], token_id: str, message: str
) -> None:
    answer = _create(dev_server, callers["root"], {"id": token_id})
    assert answer.status_code == 400
    assert answer.json() == {"errors": [message]}


def test_policies_beyond_the_parent_need_sudo(
    dev_server: ServerProcess, callers: dict[str, str]
) -> None:
    answer = _create(dev_server, callers["sudo"], {"policies": ["rules-creator", "other"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["auth"]["policies"] == ["default", "other", "rules-creator"]
    # a subset (plus default) is fine without sudo
    subset = _create(dev_server, callers["plain"], {"policies": ["rules-creator", "default"]})
    assert subset.status_code == 200


def test_only_a_root_parent_mints_root_tokens(
    dev_server: ServerProcess, callers: dict[str, str]
) -> None:
    answer = _create(dev_server, callers["sudo"], {"policies": ["root"]})
    assert answer.status_code == 400
    assert answer.json() == {
        "errors": ["root tokens may not be created without parent token being root"]
    }
    by_root = _create(dev_server, callers["root"], {"policies": ["root"], "ttl": "5m"})
    assert by_root.status_code == 200 and by_root.json()["auth"]["policies"] == ["root"]


def test_entity_alias_needs_a_role(dev_server: ServerProcess, callers: dict[str, str]) -> None:
    for caller in ("plain", "root"):
        answer = _create(dev_server, callers[caller], {"entity_alias": "someone"})
        assert answer.status_code == 400
        assert answer.json() == {
            "errors": ["'entity_alias' is only allowed in combination with token role"]
        }


def test_negative_num_uses(dev_server: ServerProcess, callers: dict[str, str]) -> None:
    answer = _create(dev_server, callers["plain"], {"num_uses": -1})
    assert answer.status_code == 400
    assert answer.json() == {"errors": ["number of uses cannot be negative"]}


def test_unknown_token_type(dev_server: ServerProcess, callers: dict[str, str]) -> None:
    answer = _create(dev_server, callers["plain"], {"type": "bogus"})
    assert answer.status_code == 400
    assert answer.json() == {"errors": ["invalid 'token_type' value"]}


def test_explicit_max_ttl_caps_the_ttl_with_a_warning(
    dev_server: ServerProcess, callers: dict[str, str]
) -> None:
    answer = _create(dev_server, callers["plain"], {"explicit_max_ttl": "1h", "ttl": "5h"})
    assert answer.status_code == 200, answer.text
    data = _lookup(dev_server, answer.json()["auth"]["client_token"])
    assert data["explicit_max_ttl"] == 3600 and 3590 <= data["ttl"] <= 3600
