"""Issue 10's loose ends over HTTP: mount kinds, aliases of a disabled auth mount, per-request
deadline, write timeout, pid file, user lockout through tune, and the one CIDR check."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.framework import remote_in
from tests.serverproc import ServerProcess, free_port, start_config_server


def _http(server: ServerProcess, token: str | None = None) -> httpx.Client:
    return server.http(token or server.root_token)


# -- mount kinds --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["userpass", "kubernetes", "approle", "cert", "jwt"])
def test_secret_mounts_refuse_auth_methods(dev_server: ServerProcess, kind: str) -> None:
    with _http(dev_server) as http:
        answer = http.post(f"/v1/sys/mounts/wrong-{kind}", json={"type": kind})
        assert answer.status_code == 400
        assert f"plugin not found in the catalog: {kind}" in answer.json()["errors"][0]
        assert f"wrong-{kind}/" not in http.get("/v1/sys/mounts").json()["data"]


@pytest.mark.parametrize("kind", ["transit", "kv", "database", "totp"])
def test_auth_mounts_refuse_secrets_engines(dev_server: ServerProcess, kind: str) -> None:
    with _http(dev_server) as http:
        answer = http.post(f"/v1/sys/auth/wrong-{kind}", json={"type": kind})
        assert answer.status_code == 400
        assert f"plugin not found in the catalog: {kind}" in answer.json()["errors"][0]
        assert f"wrong-{kind}/" not in http.get("/v1/sys/auth").json()["data"]


# -- aliases of a disabled auth mount -------------------------------------------------------------


def test_disabling_an_auth_mount_drops_its_aliases(dev_server: ServerProcess) -> None:
    with _http(dev_server) as http:
        assert http.post("/v1/sys/auth/drop-up", json={"type": "userpass"}).status_code == 204
        accessor = http.get("/v1/sys/auth").json()["data"]["drop-up/"]["accessor"]
        http.post("/v1/auth/drop-up/users/dana", json={"password": "pw-dana-1"})
        login = http.post("/v1/auth/drop-up/login/dana", json={"password": "pw-dana-1"})
        entity_id = login.json()["auth"]["entity_id"]
        entity = http.get(f"/v1/identity/entity/id/{entity_id}").json()["data"]
        (alias,) = entity["aliases"]
        assert alias["mount_accessor"] == accessor
        assert http.delete("/v1/sys/auth/drop-up").status_code == 204
        entity = http.get(f"/v1/identity/entity/id/{entity_id}").json()["data"]
        assert entity["aliases"] == []
        assert http.get(f"/v1/identity/entity-alias/id/{alias['id']}").status_code == 404
        listed = http.request("LIST", "/v1/identity/entity-alias/id")
        assert listed.status_code == 404 or alias["id"] not in listed.json()["data"]["keys"]


# -- user lockout through sys/auth/<path>/tune --------------------------------------------------


def test_user_lockout_config_is_applied_by_tune(dev_server: ServerProcess) -> None:
    with _http(dev_server) as http:
        assert http.post("/v1/sys/auth/lock-up", json={"type": "userpass"}).status_code == 204
        assert "user_lockout_config" not in http.get("/v1/sys/auth/lock-up/tune").json()["data"]
        tuned = http.post(
            "/v1/sys/auth/lock-up/tune",
            json={
                "user_lockout_config": {
                    "lockout_threshold": "2",
                    "lockout_duration": "1h",
                    "lockout_counter_reset": "10m",
                }
            },
        )
        assert tuned.status_code == 204, tuned.text
        assert http.get("/v1/sys/auth/lock-up/tune").json()["data"]["user_lockout_config"] == {
            "lockout_threshold": 2,
            "lockout_duration": 3600,
            "lockout_counter_reset": 600,
            "lockout_disable": False,
        }
        http.post("/v1/auth/lock-up/users/erin", json={"password": "pw-erin-1"})
        for _ in range(2):
            wrong = http.post("/v1/auth/lock-up/login/erin", json={"password": "nope"})
            assert wrong.status_code == 400
        # the threshold of 2 (not the default 5) locked the user: the right password fails
        right = http.post("/v1/auth/lock-up/login/erin", json={"password": "pw-erin-1"})
        assert right.status_code == 403
        # lockout_disable lifts it for the mount
        http.post(
            "/v1/sys/auth/lock-up/tune", json={"user_lockout_config": {"lockout_disable": True}}
        )
        right = http.post("/v1/auth/lock-up/login/erin", json={"password": "pw-erin-1"})
        assert right.status_code == 200


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"lockout_threshold": "0"}, "lockout_threshold"),
        ({"lockout_duration": "soon"}, "lockout_duration"),
        ({"lockout_treshold": "3"}, "unknown user_lockout_config keys"),
    ],
)
def test_bad_user_lockout_config_is_refused(
    dev_server: ServerProcess, config: dict[str, Any], message: str
) -> None:
    with _http(dev_server) as http:
        http.post("/v1/sys/auth/lock-bad", json={"type": "userpass"})
        answer = http.post("/v1/sys/auth/lock-bad/tune", json={"user_lockout_config": config})
        assert answer.status_code == 400 and message in answer.json()["errors"][0]


def test_user_lockout_config_is_refused_where_nothing_locks_users_out(
    dev_server: ServerProcess,
) -> None:
    with _http(dev_server) as http:
        http.post("/v1/sys/auth/lock-approle", json={"type": "approle"})
        answer = http.post(
            "/v1/sys/auth/lock-approle/tune",
            json={"user_lockout_config": {"lockout_threshold": "3"}},
        )
        assert answer.status_code == 400 and "not supported" in answer.json()["errors"][0]
        answer = http.post(
            "/v1/sys/mounts/lock-kv",
            json={"type": "kv", "config": {"user_lockout_config": {"lockout_threshold": "3"}}},
        )
        assert answer.status_code == 400 and "not supported" in answer.json()["errors"][0]


# -- bound CIDRs: one check ----------------------------------------------------------------------


def test_one_cidr_check_maps_ipv4_in_ipv6() -> None:
    assert remote_in(["127.0.0.0/8"], "::ffff:127.0.0.1")
    assert remote_in(["10.1.0.0/16"], "::ffff:10.1.2.3")
    assert not remote_in(["10.1.0.0/16"], "::ffff:10.2.0.1")
    assert remote_in(["::1/128"], "::1")
    assert not remote_in(["127.0.0.0/8"], "::1")
    assert not remote_in(["127.0.0.0/8"], "")  # no connection information: closed
    assert remote_in([], "")


def test_token_bound_cidrs_over_http(dev_server: ServerProcess) -> None:
    with _http(dev_server) as http:
        for role, cidr in (("cidr-in", "127.0.0.0/8"), ("cidr-out", "10.0.0.0/8")):
            made = http.post(f"/v1/auth/token/roles/{role}", json={"token_bound_cidrs": [cidr]})
            assert made.status_code == 204
        inside = http.post("/v1/auth/token/create/cidr-in", json={"ttl": "1h"})
        outside = http.post("/v1/auth/token/create/cidr-out", json={"ttl": "1h"})
        inside_token = inside.json()["auth"]["client_token"]
        outside_token = outside.json()["auth"]["client_token"]
    with _http(dev_server, inside_token) as http:
        assert http.get("/v1/auth/token/lookup-self").status_code == 200
    with _http(dev_server, outside_token) as http:
        assert http.get("/v1/auth/token/lookup-self").status_code == 403


# -- listener and server settings that used to be accepted and ignored --------------------------

CONFIG = """
storage "inmem" {}
cluster_addr = "https://127.0.0.1:8201"
pid_file     = "{dir}/strongroom.pid"
listener "tcp" {
  address              = "127.0.0.1:{port}"
  tls_disable          = true
  max_request_duration = "1s"
}
listener "tcp" {
  address              = "127.0.0.1:{second}"
  tls_disable          = true
  max_request_duration = "30s"
  http_write_timeout   = "1s"
}
"""


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    workdir = tmp_path_factory.mktemp("loose")
    second = free_port()
    text = CONFIG.replace("{dir}", str(workdir)).replace("{second}", str(second))
    server = start_config_server(workdir, text)
    try:
        with server.http() as http:
            keys = http.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
            body = keys.json()
            assert keys.status_code == 200, keys.text
            http.put("/v1/sys/unseal", json={"key": body["keys_base64"][0]})
            server.root_token = body["root_token"]
        yield server, second
    finally:
        server.stop()


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections (into its backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def _database_config(port: int) -> dict[str, Any]:
    return {
        "plugin_name": "postgresql-database-plugin",
        "connection_url": f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{port}/x",
        "username": "u",
        "password": "p",
        "allowed_roles": "*",
    }


def test_max_request_duration_cancels_a_slow_request(
    configured: tuple[ServerProcess, int], blackhole: int
) -> None:
    server, _ = configured
    with _http(server) as http:
        http.post("/v1/sys/mounts/db-slow", json={"type": "database"})
        started = time.monotonic()
        # verifying the connection waits on a server that never answers (5 s connect timeout)
        answer = http.post("/v1/db-slow/config/slow", json=_database_config(blackhole))
        elapsed = time.monotonic() - started
        assert answer.status_code == 503, answer.text
        assert "context deadline exceeded" in answer.json()["errors"][0]
        assert elapsed < 4.0
        # the work was cancelled: nothing was stored, and the server serves on
        assert http.get("/v1/db-slow/config/slow").status_code in (400, 404)
        assert http.get("/v1/sys/seal-status").status_code == 200
        # a quick request is unaffected by the deadline
        assert http.get("/v1/sys/mounts").status_code == 200


def test_http_write_timeout_closes_a_late_response(
    configured: tuple[ServerProcess, int], blackhole: int
) -> None:
    server, second = configured
    with httpx.Client(
        base_url=f"http://127.0.0.1:{second}",
        headers={"X-Vault-Token": server.root_token},
        timeout=15,
    ) as http:
        http.post("/v1/sys/mounts/db-write", json={"type": "database"})
        started = time.monotonic()
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/v1/db-write/config/slow", json=_database_config(blackhole))
        assert time.monotonic() - started < 4.0
        assert http.get("/v1/sys/seal-status").status_code == 200


def test_pid_file_and_cluster_addr(configured: tuple[ServerProcess, int]) -> None:
    server, _ = configured
    assert server.proc is not None
    pid_file = server.workdir / "strongroom.pid"
    assert pid_file.read_text().strip() == str(server.proc.pid)
    assert "cluster_addr" not in server.log()  # kept, not warned about as ignored


def test_pid_file_is_removed_on_stop(tmp_path: Path) -> None:
    text = CONFIG.replace("{dir}", str(tmp_path)).replace("{second}", str(free_port()))
    server = start_config_server(tmp_path, text)
    pid_file = tmp_path / "strongroom.pid"
    assert pid_file.exists()
    server.stop()
    assert not pid_file.exists()
