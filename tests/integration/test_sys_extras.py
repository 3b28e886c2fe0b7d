"""Small endpoints found missing by tests/parity, over HTTP: sys/rekey-recovery-key/*
(Vault's Shamir-seal refusal), sys/plugins/reload/backend and /:type/:name, the database
engine's reload/:plugin_name, sys/experiments, sys/internal/ui/feature-flags and /version,
sys/well-known, sys/mounts-all, sys/seal-backend-status and sys/activation-flags."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import hvac
import pytest

from tests.serverproc import ServerProcess


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "init"),
        ("POST", "init"),
        ("DELETE", "init"),
        ("POST", "update"),
        ("GET", "verify"),
        ("POST", "verify"),
        ("DELETE", "verify"),
    ],
)
def test_rekey_recovery_key_is_refused_with_a_shamir_seal(
    dev_server: ServerProcess, method: str, path: str
) -> None:
    with dev_server.http(dev_server.root_token) as http:
        body = {"secret_shares": 1, "secret_threshold": 1} if method == "POST" else None
        answer = http.request(method, f"/v1/sys/rekey-recovery-key/{path}", json=body)
    assert answer.status_code == 400
    assert answer.json() == {"errors": ["recovery rekeying not supported"]}


@pytest.fixture
def transit(root_client: hvac.Client) -> Iterator[str]:
    path = f"transit-{_suffix()}"
    root_client.sys.enable_secrets_engine("transit", path=path)
    root_client.secrets.transit.create_key("k", mount_point=path)
    try:
        yield path
    finally:
        root_client.sys.disable_secrets_engine(path)


def _roundtrip(client: hvac.Client, mount: str) -> None:
    sealed = client.secrets.transit.encrypt_data("k", "aGVsbG8=", mount_point=mount)
    ciphertext = sealed["data"]["ciphertext"]
    opened = client.secrets.transit.decrypt_data("k", ciphertext, mount_point=mount)
    assert opened["data"]["plaintext"] == "aGVsbG8="


def test_reload_backend_by_mount_and_by_plugin(root_client: hvac.Client, transit: str) -> None:
    before = root_client.secrets.transit.encrypt_data("k", "aGVsbG8=", mount_point=transit)
    answer = root_client.write_data("sys/plugins/reload/backend", data={"mounts": [transit]})
    assert answer["data"]["reload_id"] and not answer.get("warnings")
    # the new backend serves the same keys (its storage is the mount's)
    _roundtrip(root_client, transit)
    opened = root_client.secrets.transit.decrypt_data(
        "k", before["data"]["ciphertext"], mount_point=transit
    )
    assert opened["data"]["plaintext"] == "aGVsbG8="
    by_plugin = root_client.write_data(
        "sys/plugins/reload/backend", data={"plugin": "transit", "scope": "global"}
    )
    assert any("this node only" in w for w in by_plugin["warnings"])
    _roundtrip(root_client, transit)
    by_type = root_client.write_data("sys/plugins/reload/secret/transit", data={})
    assert by_type["data"]["reload_id"]
    _roundtrip(root_client, transit)
    nothing = root_client.write_data("sys/plugins/reload/auth/no-such-method", data={})
    assert nothing["warnings"] == ["no plugins were reloaded locally"]
    for bad in (
        {"mounts": ["no-such-mount"]},
        {"plugin": "transit", "mounts": [transit]},
        {},
        {"plugin": "transit", "scope": "everywhere"},
    ):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            root_client.write_data("sys/plugins/reload/backend", data=bad)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root_client.write_data("sys/plugins/reload/widget/transit", data={})


def test_database_reload_by_plugin(root_client: hvac.Client) -> None:
    path = f"db-{_suffix()}"
    root_client.sys.enable_secrets_engine("database", path=path)
    try:
        root_client.write_data(
            f"{path}/config/pg",
            data={
                "plugin_name": "postgresql-database-plugin",
                "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/x",
                "username": "u",
                "password": "p",
                "verify_connection": False,
            },
        )
        answer = root_client.write_data(f"{path}/reload/postgresql-database-plugin", data={})
        assert answer["data"] == {"connections": ["pg"], "count": 1}
        other = root_client.write_data(f"{path}/reload/mysql-database-plugin", data={})
        assert other["data"] == {"connections": [], "count": 0} and other["warnings"]
        assert root_client.read(f"{path}/config/pg")["data"]["plugin_name"].startswith("postgresql")
    finally:
        root_client.sys.disable_secrets_engine(path)


def test_server_info_endpoints(dev_server: ServerProcess, root_client: hvac.Client) -> None:
    assert root_client.read("sys/experiments")["data"] == {"available": [], "enabled": []}
    with dev_server.http() as anonymous:
        flags = anonymous.get("/v1/sys/internal/ui/feature-flags")
        assert flags.status_code == 200 and flags.json() == {"feature_flags": None}
        assert anonymous.get("/v1/sys/internal/ui/version").status_code == 403
    # any token may read the version (the default policy allows it)
    token = root_client.auth.token.create(policies=["default"])["auth"]["client_token"]
    limited = dev_server.client(token)
    version = limited.read("sys/internal/ui/version")["data"]["version"]
    assert version == root_client.sys.read_health_status(method="GET")["version"]


def test_well_known_has_no_labels(dev_server: ServerProcess, root_client: hvac.Client) -> None:
    assert root_client.read("sys/well-known")["data"] == {"keys": [], "key_info": {}}
    with dev_server.http(dev_server.root_token) as http:
        assert http.request("LIST", "/v1/sys/well-known").status_code == 404
        missing = http.get("/v1/sys/well-known/est/cacerts")
    assert missing.status_code == 404 and "est/cacerts" in missing.json()["errors"][0]


def test_mounts_all_lists_unauth_visible_mounts(
    dev_server: ServerProcess, root_client: hvac.Client
) -> None:
    path = f"shown-{_suffix()}"
    root_client.sys.enable_secrets_engine("kv", path=path, description="shown to all")
    try:
        with dev_server.http() as anonymous:
            before = anonymous.get("/v1/sys/mounts-all")
            assert before.status_code == 200 and f"{path}/" not in before.json()["data"]["secret"]
            root_client.sys.tune_mount_configuration(path, listing_visibility="unauth")
            after = anonymous.get("/v1/sys/mounts-all").json()["data"]
        assert after["secret"][f"{path}/"] == {"description": "shown to all", "type": "kv"}
        assert "token/" not in after["auth"]
    finally:
        root_client.sys.disable_secrets_engine(path)


def test_seal_backend_status_and_activation_flags(dev_server: ServerProcess) -> None:
    with dev_server.http() as anonymous:
        status = anonymous.get("/v1/sys/seal-backend-status")
        assert status.status_code == 200
        assert status.json() == {
            "healthy": True,
            "unhealthy_since": "",
            "backends": [{"name": "shamir", "healthy": True}],
        }
        flags = anonymous.get("/v1/sys/activation-flags")
        assert flags.json()["data"] == {"activated": [], "unactivated": []}
        assert anonymous.put("/v1/sys/activation-flags/secrets-sync/activate").status_code == 403
    with dev_server.http(dev_server.root_token) as http:
        refused = http.put("/v1/sys/activation-flags/secrets-sync/activate")
    assert refused.status_code == 400 and "secrets-sync" in refused.json()["errors"][0]
