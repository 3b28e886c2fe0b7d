"""Issue 17's "behaviour that departs from Vault", one test per item, over HTTP: each
answer as Vault's documentation (and a run of the real thing) gives it."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.serverproc import ServerProcess


@pytest.fixture
def http(dev_server: ServerProcess) -> httpx.Client:
    return dev_server.http(dev_server.root_token)


def _token(http: httpx.Client, **body: Any) -> str:
    made = http.post("/v1/auth/token/create", json={"ttl": "1h", **body})
    assert made.status_code == 200, made.text
    return str(made.json()["auth"]["client_token"])


# -- wrapping ------------------------------------------------------------------------------------


def test_sys_wrapping_wrap_needs_a_wrap_ttl(http: httpx.Client) -> None:
    bare = http.post("/v1/sys/wrapping/wrap", json={"a": "b"})
    assert bare.status_code == 400
    assert bare.json()["errors"] == ["endpoint requires response wrapping to be used"]
    wrapped = http.post(
        "/v1/sys/wrapping/wrap", json={"a": "b"}, headers={"X-Vault-Wrap-TTL": "1m"}
    )
    assert wrapped.status_code == 200 and wrapped.json()["wrap_info"]["ttl"] == 60


def test_a_spent_wrapping_token_is_a_bad_request(
    dev_server: ServerProcess, http: httpx.Client
) -> None:
    token = http.post(
        "/v1/sys/wrapping/wrap", json={"a": "b"}, headers={"X-Vault-Wrap-TTL": "1m"}
    ).json()["wrap_info"]["token"]
    with dev_server.http(token) as own:
        assert own.post("/v1/sys/wrapping/unwrap").status_code == 200
        again = own.post("/v1/sys/wrapping/unwrap")
    assert again.status_code == 400
    assert again.json()["errors"] == ["wrapping token is not valid or does not exist"]


def test_wrapping_lookup_keeps_data_under_data(http: httpx.Client) -> None:
    token = http.post(
        "/v1/sys/wrapping/wrap", json={"a": "b"}, headers={"X-Vault-Wrap-TTL": "1m"}
    ).json()["wrap_info"]["token"]
    body = http.post("/v1/sys/wrapping/lookup", json={"token": token}).json()
    assert set(body["data"]) == {"creation_path", "creation_time", "creation_ttl"}
    assert not set(body["data"]) & set(body)


def test_wrapped_approle_secret_id_names_its_accessor(http: httpx.Client) -> None:
    http.post("/v1/sys/auth/ans-approle", json={"type": "approle"})
    http.post("/v1/auth/ans-approle/role/w", json={"token_policies": ["default"]})
    wrapped = http.post(
        "/v1/auth/ans-approle/role/w/secret-id", headers={"X-Vault-Wrap-TTL": "1m"}
    ).json()["wrap_info"]
    unwrapped = http.post("/v1/sys/wrapping/unwrap", json={"token": wrapped["token"]}).json()
    assert wrapped["wrapped_accessor"] == unwrapped["data"]["secret_id_accessor"]


def test_unwrapped_login_carries_mfa_requirement(http: httpx.Client) -> None:
    http.post("/v1/sys/auth/ans-up", json={"type": "userpass"})
    http.post("/v1/auth/ans-up/users/wendy", json={"password": "pw-wendy-1"})
    wrapped = http.post(
        "/v1/auth/ans-up/login/wendy",
        json={"password": "pw-wendy-1"},
        headers={"X-Vault-Wrap-TTL": "1m"},
    ).json()["wrap_info"]
    auth = http.post("/v1/sys/wrapping/unwrap", json={"token": wrapped["token"]}).json()["auth"]
    assert "mfa_requirement" in auth and auth["mfa_requirement"] is None
    assert "identity_policies" not in auth


# -- KV v2 PATCH -----------------------------------------------------------------------------------


def test_kv2_patch_needs_merge_patch_content_type(http: httpx.Client) -> None:
    http.post("/v1/secret/data/ans-patch", json={"data": {"a": "1"}})
    wrong = http.patch("/v1/secret/data/ans-patch", json={"data": {"a": "2"}})
    assert wrong.status_code == 415
    assert "application/merge-patch+json" in wrong.json()["errors"][0]
    assert http.get("/v1/secret/data/ans-patch").json()["data"]["data"] == {"a": "1"}
    right = http.patch(
        "/v1/secret/data/ans-patch",
        json={"data": {"a": "2"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert right.status_code == 200
    assert http.get("/v1/secret/data/ans-patch").json()["data"]["data"] == {"a": "2"}


# -- sys/internal/ui/mounts ----------------------------------------------------------------------


def test_ui_mounts_without_a_token_lists_unauth_mounts_only(
    dev_server: ServerProcess, http: httpx.Client
) -> None:
    http.post("/v1/sys/auth/ans-visible", json={"type": "userpass"})
    http.post("/v1/sys/auth/ans-visible/tune", json={"listing_visibility": "unauth"})
    http.post("/v1/sys/auth/ans-hidden", json={"type": "userpass"})
    with dev_server.http() as stranger:
        answer = stranger.get("/v1/sys/internal/ui/mounts")
    assert answer.status_code == 200
    body = answer.json()
    assert "ans-visible/" in body["data"]["auth"] and "ans-hidden/" not in body["data"]["auth"]
    assert set(body["data"]["auth"]["ans-visible/"]) == {"type", "description", "options"}
    assert "auth" not in {k for k in body if k != "auth"} and body["auth"] is None
    full = http.get("/v1/sys/internal/ui/mounts").json()
    assert "ans-hidden/" in full["data"]["auth"]  # a root token sees every mount, in full
    assert "accessor" in full["data"]["auth"]["ans-hidden/"]
    assert "secret" not in full  # not copied to the top level


def test_ui_mount_path_keeps_data_under_data(http: httpx.Client) -> None:
    body = http.get("/v1/sys/internal/ui/mounts/secret").json()
    assert body["data"]["type"] == "kv" and body["data"]["deprecation_status"] == "supported"
    assert "type" not in body and "path" not in body


# -- identity upserts ----------------------------------------------------------------------------


def test_entity_post_with_an_existing_name_updates_it(http: httpx.Client) -> None:
    made = http.post("/v1/identity/entity", json={"name": "ans-ent"})
    assert made.status_code == 200
    assert made.json()["data"]["aliases"] is None  # Vault sends the key on create
    entity_id = made.json()["data"]["id"]
    again = http.post("/v1/identity/entity", json={"name": "ans-ent", "policies": ["p1"]})
    assert again.status_code == 204
    read = http.get(f"/v1/identity/entity/id/{entity_id}").json()["data"]
    assert read["policies"] == ["p1"]


def test_entity_alias_for_an_existing_principal_moves_it(http: httpx.Client) -> None:
    http.post("/v1/sys/auth/ans-alias", json={"type": "userpass"})
    accessor = http.get("/v1/sys/auth/ans-alias").json()["data"]["accessor"]
    first = http.post("/v1/identity/entity", json={"name": "ans-a1"}).json()["data"]["id"]
    second = http.post("/v1/identity/entity", json={"name": "ans-a2"}).json()["data"]["id"]
    body = {"name": "mover", "mount_accessor": accessor}
    made = http.post("/v1/identity/entity-alias", json={**body, "canonical_id": first})
    alias_id = made.json()["data"]["id"]
    moved = http.post("/v1/identity/entity-alias", json={**body, "canonical_id": second})
    assert moved.status_code == 200
    assert moved.json()["data"] == {"id": alias_id, "canonical_id": second}
    assert http.get(f"/v1/identity/entity/id/{first}").json()["data"]["aliases"] == []
    (alias,) = http.get(f"/v1/identity/entity/id/{second}").json()["data"]["aliases"]
    assert alias["id"] == alias_id


def test_group_alias_read_has_custom_metadata_and_local(http: httpx.Client) -> None:
    http.post("/v1/sys/auth/ans-galias", json={"type": "userpass"})
    accessor = http.get("/v1/sys/auth/ans-galias").json()["data"]["accessor"]
    group = http.post("/v1/identity/group", json={"name": "ans-ext", "type": "external"})
    made = http.post(
        "/v1/identity/group-alias",
        json={
            "name": "ops",
            "mount_accessor": accessor,
            "canonical_id": group.json()["data"]["id"],
        },
    )
    read = http.get(f"/v1/identity/group-alias/id/{made.json()['data']['id']}").json()["data"]
    assert "custom_metadata" in read and read["local"] is False


# -- tidy in the background ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/auth/token/tidy", "/v1/sys/leases/tidy", "/v1/auth/ans-tidy/tidy/secret-id"]
)
def test_tidy_starts_in_the_background(http: httpx.Client, path: str) -> None:
    http.post("/v1/sys/auth/ans-tidy", json={"type": "approle"})
    answer = http.post(path)
    assert answer.status_code == 202
    assert "Tidy operation successfully started" in answer.json()["warnings"][0]


def test_approle_tidy_does_its_work_after_answering(http: httpx.Client) -> None:
    http.post("/v1/sys/auth/ans-tidy2", json={"type": "approle"})
    http.post("/v1/auth/ans-tidy2/role/t", json={"secret_id_ttl": "1s"})
    http.post("/v1/auth/ans-tidy2/role/t/secret-id")
    assert http.request("LIST", "/v1/auth/ans-tidy2/role/t/secret-id").status_code == 200
    time.sleep(1.2)  # the secret ID expires (its TTL is 1 s, Vault's smallest)
    assert http.post("/v1/auth/ans-tidy2/tidy/secret-id").status_code == 202
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if http.request("LIST", "/v1/auth/ans-tidy2/role/t/secret-id").status_code == 404:
            break
        time.sleep(0.05)
    assert http.request("LIST", "/v1/auth/ans-tidy2/role/t/secret-id").status_code == 404


# -- data stays under "data" -------------------------------------------------------------------


def test_acl_policy_read_and_list_keep_data_under_data(http: httpx.Client) -> None:
    http.put(
        "/v1/sys/policies/acl/ans-pol", json={"policy": 'path "x" { capabilities = ["read"] }'}
    )
    read = http.get("/v1/sys/policies/acl/ans-pol").json()
    assert read["data"]["name"] == "ans-pol" and "name" not in read and "policy" not in read
    listed = http.request("LIST", "/v1/sys/policies/acl").json()
    assert "ans-pol" in listed["data"]["keys"] and "keys" not in listed
    # the legacy sys/policy keeps Vault's legacy copy at the top level
    assert "rules" in http.get("/v1/sys/policy/ans-pol").json()


def test_leases_count_keeps_data_under_data(http: httpx.Client) -> None:
    body = http.get("/v1/sys/leases/count?type=irrevocable").json()
    assert "lease_count" in body["data"] and "lease_count" not in body and "counts" not in body


def test_capabilities_of_several_paths_have_no_merged_key(http: httpx.Client) -> None:
    several = http.post("/v1/sys/capabilities-self", json={"paths": ["a/b", "c/d"]}).json()
    assert set(several["data"]) == {"a/b", "c/d"}
    one = http.post("/v1/sys/capabilities-self", json={"paths": ["a/b"]}).json()
    assert set(one["data"]) == {"a/b", "capabilities"}


# -- keys Vault omits, and keys Vault sends ----------------------------------------------------


def test_auth_blocks_omit_empty_identity_policies(http: httpx.Client) -> None:
    made = http.post("/v1/auth/token/create", json={"ttl": "1h"}).json()
    assert "identity_policies" not in made["auth"]
    http.post("/v1/sys/auth/ans-idp", json={"type": "userpass"})
    http.post("/v1/auth/ans-idp/users/ivy", json={"password": "pw-ivy-1"})
    login = http.post("/v1/auth/ans-idp/login/ivy", json={"password": "pw-ivy-1"}).json()["auth"]
    assert "identity_policies" not in login
    http.post(f"/v1/identity/entity/id/{login['entity_id']}", json={"policies": ["idp"]})
    login = http.post("/v1/auth/ans-idp/login/ivy", json={"password": "pw-ivy-1"}).json()["auth"]
    assert login["identity_policies"] == ["idp"]


def test_token_lookup_sends_period_only_when_set(
    dev_server: ServerProcess, http: httpx.Client
) -> None:
    plain = _token(http)
    periodic = _token(http, period="1h")
    looked = http.post("/v1/auth/token/lookup", json={"token": plain}).json()["data"]
    assert "period" not in looked
    looked = http.post("/v1/auth/token/lookup", json={"token": periodic}).json()["data"]
    assert looked["period"] == 3600


def test_token_role_read_sends_num_uses_only_when_set(http: httpx.Client) -> None:
    http.post("/v1/auth/token/roles/ans-r0", json={})
    http.post("/v1/auth/token/roles/ans-r3", json={"token_num_uses": 3})
    assert "token_num_uses" not in http.get("/v1/auth/token/roles/ans-r0").json()["data"]
    assert http.get("/v1/auth/token/roles/ans-r3").json()["data"]["token_num_uses"] == 3


def test_auth_tune_reports_token_type(http: httpx.Client) -> None:
    http.post("/v1/sys/auth/ans-tt", json={"type": "userpass"})
    assert http.get("/v1/sys/auth/ans-tt/tune").json()["data"]["token_type"] == "default-service"
    assert "token_type" not in http.get("/v1/sys/mounts/secret/tune").json()["data"]


def test_mount_reads_report_deprecation_status(http: httpx.Client) -> None:
    assert http.get("/v1/sys/mounts/secret").json()["data"]["deprecation_status"] == "supported"
    http.post("/v1/sys/auth/ans-dep", json={"type": "userpass"})
    assert http.get("/v1/sys/auth/ans-dep").json()["data"]["deprecation_status"] == "supported"
    # Vault's own core mounts have none
    assert "deprecation_status" not in http.get("/v1/sys/mounts/cubbyhole").json()["data"]


# -- sys/remount/status ----------------------------------------------------------------------------


def test_remount_status(http: httpx.Client) -> None:
    http.post("/v1/sys/mounts/ans-from", json={"type": "kv", "options": {"version": "1"}})
    moved = http.post("/v1/sys/remount", json={"from": "ans-from", "to": "ans-to"})
    migration_id = moved.json()["data"]["migration_id"]
    status = http.get(f"/v1/sys/remount/status/{migration_id}")
    assert status.status_code == 200
    assert status.json()["data"] == {
        "migration_id": migration_id,
        "migration_info": {
            "source_mount": "ans-from/",
            "target_mount": "ans-to/",
            "status": "success",
        },
    }
    assert http.get("/v1/sys/remount/status/no-such-migration").status_code == 404


# -- an unreachable database ----------------------------------------------------------------------


def test_unreachable_database_answers_with_the_drivers_error(http: httpx.Client) -> None:
    http.post("/v1/sys/mounts/ans-db", json={"type": "database"})
    configured = http.post(
        "/v1/ans-db/config/down",
        json={
            "plugin_name": "postgresql-database-plugin",
            # nothing listens on port 1
            "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/x",
            "username": "admin",
            "password": "admin-s3cret-pw",
            "allowed_roles": "*",
            "verify_connection": False,
        },
    )
    assert configured.status_code in (200, 204), configured.text
    http.post(
        "/v1/ans-db/roles/r",
        json={"db_name": "down", "creation_statements": ['CREATE ROLE "{{name}}"']},
    )
    for answer in (
        http.get("/v1/ans-db/creds/r"),
        http.post("/v1/ans-db/rotate-root/down"),
    ):
        assert answer.status_code == 500
        (message,) = answer.json()["errors"]
        assert message != "internal error"
        assert 'database "down": connection failed' in message
        assert "admin-s3cret-pw" not in message and "{{password}}" not in message
