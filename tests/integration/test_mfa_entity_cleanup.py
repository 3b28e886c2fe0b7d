"""An identity entity's login-MFA TOTP secrets go when the entity goes: deleted (by ID, by
name, in a batch) or merged into another; and a burst of MFA generates racing the deletion
never leaves a secret behind. A real dev server over HTTP (hvac, httpx); stored records
inspected through sys/raw (on in dev mode)."""

from __future__ import annotations

import concurrent.futures
import uuid

import httpx
import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess


@pytest.fixture(scope="module")
def root(dev_server: ServerProcess) -> hvac.Client:
    return dev_server.client(dev_server.root_token)


@pytest.fixture(scope="module")
def method_id(root: hvac.Client) -> str:
    return str(
        root.write("identity/mfa/method/totp", issuer="Strongroom", method_name="cleanup")["data"][
            "method_id"
        ]
    )


@pytest.fixture(scope="module")
def other_method_id(root: hvac.Client) -> str:
    return str(
        root.write("identity/mfa/method/totp", issuer="Other", method_name="cleanup-2")["data"][
            "method_id"
        ]
    )


def entity(root: hvac.Client) -> str:
    name = f"e-{uuid.uuid4().hex[:8]}"
    return str(root.write("identity/entity", name=name)["data"]["id"])


def generate(root: hvac.Client, method: str, entity_id: str) -> dict[str, object]:
    return dict(
        root.write(
            "identity/mfa/method/totp/admin-generate", method_id=method, entity_id=entity_id
        )["data"]
    )


def stored(root: hvac.Client, entity_id: str) -> list[str]:
    """What storage holds for the entity under login MFA (secrets and used steps)."""
    out = []
    for kind in ("secret", "used"):
        try:
            listed = root.list(f"sys/raw/sys/identity/mfa/{kind}/{entity_id}/")
        except hvac.exceptions.InvalidPath:
            continue
        out += [f"{kind}/{key}" for key in (listed or {}).get("data", {}).get("keys", [])]
    return out


def test_deleting_an_entity_removes_its_mfa_secrets(
    root: hvac.Client, method_id: str, other_method_id: str
) -> None:
    by_id, by_name, batch, bystander = (entity(root) for _ in range(4))
    for entity_id in (by_id, by_name, batch, bystander):
        generate(root, method_id, entity_id)
        generate(root, other_method_id, entity_id)
        assert len(stored(root, entity_id)) == 2
    root.delete(f"identity/entity/id/{by_id}")
    name = root.read(f"identity/entity/id/{by_name}")["data"]["name"]
    root.delete(f"identity/entity/name/{name}")
    root.write("identity/entity/batch-delete", entity_ids=[batch])
    for gone in (by_id, by_name, batch):
        assert stored(root, gone) == []
    assert len(stored(root, bystander)) == 2
    # generating for a deleted entity is refused and stores nothing
    with pytest.raises(hvac.exceptions.InvalidRequest, match="entity not found"):
        generate(root, method_id, by_id)
    assert stored(root, by_id) == []


def test_merged_entities_take_their_mfa_secrets_away(root: hvac.Client, method_id: str) -> None:
    into, merged = entity(root), entity(root)
    kept = generate(root, method_id, into)
    generate(root, method_id, merged)
    root.write("identity/entity/merge", to_entity_id=into, from_entity_ids=[merged])
    assert stored(root, merged) == []
    assert stored(root, into) == [f"secret/{method_id}"]
    # the surviving entity keeps its own secret (a second generate does not replace it)
    again = root.write(
        "identity/mfa/method/totp/admin-generate", method_id=method_id, entity_id=into
    )
    assert kept["url"]
    assert not ((again or {}).get("data") or {}).get("url")


@pytest.mark.parametrize("round_", range(12))
def test_generate_racing_the_deletion_leaves_nothing(
    dev_server: ServerProcess, root: hvac.Client, method_id: str, other_method_id: str, round_: int
) -> None:
    entity_id = entity(root)
    headers = {"X-Vault-Token": root.token}

    def gen(method: str) -> int:
        with httpx.Client(base_url=dev_server.addr, headers=headers, timeout=30) as http:
            return http.post(
                "/v1/identity/mfa/method/totp/admin-generate",
                json={"method_id": method, "entity_id": entity_id},
            ).status_code

    def delete() -> int:
        with httpx.Client(base_url=dev_server.addr, headers=headers, timeout=30) as http:
            return http.delete(f"/v1/identity/entity/id/{entity_id}").status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(gen, (method_id, other_method_id)[i % 2]) for i in range(6)]
        futures.insert(round_ % 6, pool.submit(delete))
        statuses = [f.result() for f in futures]
    assert all(status in (200, 204, 400) for status in statuses), statuses
    assert root.read(f"identity/entity/id/{entity_id}") is None
    assert stored(root, entity_id) == []
