"""Tokens are leases (issue 17, item 1): every service token is listed, looked up and
revoked through sys/leases under the path that created it; revoking a prefix of an auth
mount revokes every token it issued, also while logins race the revocation."""

from __future__ import annotations

import threading
import time

import httpx
import hvac
import pytest

from tests.serverproc import ServerProcess


@pytest.fixture(scope="module")
def root(dev_server: ServerProcess) -> httpx.Client:
    return dev_server.http(dev_server.root_token)


def _mount_userpass(root: httpx.Client, mount: str, *users: str) -> None:
    assert root.post(f"/v1/sys/auth/{mount}", json={"type": "userpass"}).status_code == 204
    for user in users:
        answer = root.post(
            f"/v1/auth/{mount}/users/{user}", json={"password": "pw-" + user, "token_ttl": "1h"}
        )
        assert answer.status_code == 204


def _login(server: ServerProcess, mount: str, user: str) -> str:
    answer = server.http().post(f"/v1/auth/{mount}/login/{user}", json={"password": "pw-" + user})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["auth"]["client_token"])


def _alive(server: ServerProcess, token: str) -> bool:
    return server.http(token).get("/v1/auth/token/lookup-self").status_code == 200


def _list(root: httpx.Client, prefix: str) -> list[str]:
    answer = root.request("LIST", f"/v1/sys/leases/lookup/{prefix}")
    if answer.status_code == 404:
        return []
    assert answer.status_code == 200, answer.text
    keys: list[str] = answer.json()["data"]["keys"]
    return keys


def test_login_tokens_are_listed_and_looked_up(
    dev_server: ServerProcess, root: httpx.Client
) -> None:
    _mount_userpass(root, "tl-list", "alice", "bob")
    _login(dev_server, "tl-list", "alice")
    _login(dev_server, "tl-list", "bob")
    assert "tl-list/" in _list(root, "auth/")
    assert _list(root, "auth/tl-list/") == ["login/"]
    assert _list(root, "auth/tl-list/login/") == ["alice/", "bob/"]
    (key,) = _list(root, "auth/tl-list/login/alice/")
    assert key.startswith("h") and len(key) == 65
    lease_id = f"auth/tl-list/login/alice/{key}"
    looked = root.put("/v1/sys/leases/lookup", json={"lease_id": lease_id})
    assert looked.status_code == 200
    data = looked.json()["data"]
    assert set(data) == {"id", "issue_time", "expire_time", "last_renewal", "renewable", "ttl"}
    assert data["id"] == lease_id and data["renewable"] is True and 3590 <= data["ttl"] <= 3600
    assert data["last_renewal"] is None
    # renewal goes through auth/token/renew*, as in Vault
    renewed = root.put("/v1/sys/leases/renew", json={"lease_id": lease_id})
    assert renewed.status_code == 400
    assert renewed.json() == {"errors": ["tokens cannot be renewed through this endpoint"]}


def test_token_create_leases_and_revoke_through_sys_leases(
    dev_server: ServerProcess, root: httpx.Client
) -> None:
    before = set(_list(root, "auth/token/create-orphan/"))
    token = root.post("/v1/auth/token/create-orphan", json={"ttl": "30m"}).json()["auth"]
    (key,) = set(_list(root, "auth/token/create-orphan/")) - before
    lease_id = f"auth/token/create-orphan/{key}"
    child = dev_server.http(token["client_token"]).post("/v1/auth/token/create", json={})
    assert child.status_code == 200
    child_token = child.json()["auth"]["client_token"]
    # renewing the token shows up as the lease's last renewal
    assert dev_server.http(token["client_token"]).post("/v1/auth/token/renew-self").is_success
    looked = root.put("/v1/sys/leases/lookup", json={"lease_id": lease_id}).json()["data"]
    assert looked["last_renewal"] is not None
    count = root.get("/v1/sys/leases/count").json()["data"]["lease_count"]
    assert root.put("/v1/sys/leases/revoke", json={"lease_id": lease_id}).status_code == 204
    assert not _alive(dev_server, token["client_token"])
    assert not _alive(dev_server, child_token)  # the tree goes with it
    assert root.get("/v1/sys/leases/count").json()["data"]["lease_count"] == count - 2
    gone = root.put("/v1/sys/leases/lookup", json={"lease_id": lease_id})
    assert gone.status_code == 400


@pytest.mark.parametrize("prefix", ["auth/tl-prefix/login", "auth/tl-prefix/", "auth/tl-prefix"])
def test_revoke_prefix_revokes_every_login_token(
    dev_server: ServerProcess, root: httpx.Client, prefix: str
) -> None:
    if root.get("/v1/sys/auth").json()["data"].get("tl-prefix/") is None:
        _mount_userpass(root, "tl-prefix", "carol", "dave")
    tokens = [_login(dev_server, "tl-prefix", user) for user in ("carol", "dave", "carol")]
    # a child of a login token goes too
    child = dev_server.http(tokens[0]).post("/v1/auth/token/create", json={})
    children = [child.json()["auth"]["client_token"]] if child.status_code == 200 else []
    other = root.post("/v1/auth/token/create", json={"ttl": "10m"}).json()["auth"]["client_token"]
    assert root.put(f"/v1/sys/leases/revoke-prefix/{prefix}").status_code == 204
    assert [t for t in tokens + children if _alive(dev_server, t)] == []
    assert _alive(dev_server, other)  # outside the prefix
    assert _list(root, "auth/tl-prefix/login/") == []
    # the mount still works: a new login after the revocation is a new, valid token
    assert _alive(dev_server, _login(dev_server, "tl-prefix", "dave"))


def test_revoke_force_and_tidy_cover_tokens(dev_server: ServerProcess, root: httpx.Client) -> None:
    _mount_userpass(root, "tl-force", "erin")
    token = _login(dev_server, "tl-force", "erin")
    assert root.put("/v1/sys/leases/revoke-force/auth/tl-force").status_code == 204
    assert not _alive(dev_server, token)
    short = root.post("/v1/auth/token/create", json={"ttl": "1s"}).json()["auth"]["client_token"]
    time.sleep(1.2)
    assert root.put("/v1/sys/leases/tidy").is_success
    assert not _alive(dev_server, short)


def test_disabling_an_auth_mount_revokes_its_tokens(
    dev_server: ServerProcess, root: httpx.Client
) -> None:
    _mount_userpass(root, "tl-disable", "frank")
    token = _login(dev_server, "tl-disable", "frank")
    assert root.delete("/v1/sys/auth/tl-disable").status_code == 204
    assert not _alive(dev_server, token)
    assert _list(root, "auth/tl-disable/") == []


@pytest.mark.parametrize("round_", range(5))
def test_logins_racing_revoke_prefix_leave_no_token(
    dev_server: ServerProcess, root: httpx.Client, round_: int
) -> None:
    """Approle logins hammer a mount while root revokes its prefix: every login answered
    before the revocation answered must be dead afterwards."""
    mount = f"tl-race{round_}"
    assert root.post(f"/v1/sys/auth/{mount}", json={"type": "approle"}).status_code == 204
    assert root.post(f"/v1/auth/{mount}/role/r", json={"token_ttl": "1h"}).status_code == 204
    role_id = root.get(f"/v1/auth/{mount}/role/r/role-id").json()["data"]["role_id"]
    secret_id = root.post(f"/v1/auth/{mount}/role/r/secret-id").json()["data"]["secret_id"]
    body = {"role_id": role_id, "secret_id": secret_id}
    answered: list[tuple[float, str]] = []
    lock = threading.Lock()
    stop = threading.Event()
    gate = threading.Barrier(7)

    def login() -> None:
        with httpx.Client(base_url=dev_server.addr, timeout=60) as client:
            client.get("/v1/sys/health")
            gate.wait(timeout=30)
            while not stop.is_set():
                answer = client.post(f"/v1/auth/{mount}/login", json=body)
                when = time.monotonic()
                if answer.status_code == 200:
                    with lock:
                        answered.append((when, answer.json()["auth"]["client_token"]))

    threads = [threading.Thread(target=login) for _ in range(6)]
    for thread in threads:
        thread.start()
    gate.wait(timeout=30)
    deadline = time.monotonic() + 10
    while len(answered) < 30 and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.monotonic()
    revoked = root.put(f"/v1/sys/leases/revoke-prefix/auth/{mount}/")
    done = time.monotonic()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert revoked.status_code == 204
    # A login committed just after the fence was lifted is a new, valid login that may be
    # answered a hair before the revocation's own answer is timestamped here (the GIL can
    # hold this thread for a few ms): leave a 50 ms margin. Without the fence, survivors
    # come from the whole walk, which takes far longer. A login answered before the
    # revocation was even sent must be dead whatever the margin (on an idle box the whole
    # revocation can take less than 50 ms).
    cut = max(started, done - 0.05)
    before = [token for when, token in answered if when < cut]
    assert len(before) >= 30
    with httpx.Client(base_url=dev_server.addr, timeout=60) as client:
        survivors = [
            token
            for token in before
            if client.get(
                "/v1/auth/token/lookup-self", headers={"X-Vault-Token": token}
            ).status_code
            == 200
        ]
    assert survivors == []


def test_hvac_sees_token_leases(dev_server: ServerProcess, root_client: hvac.Client) -> None:
    root_client.sys.enable_auth_method("userpass", path="tl-hvac")
    root_client.auth.userpass.create_or_update_user("gina", "pw-gina", mount_point="tl-hvac")
    dev_server.client().auth.userpass.login("gina", "pw-gina", mount_point="tl-hvac")
    keys = root_client.sys.list_leases("auth/tl-hvac/login/gina/")["data"]["keys"]
    assert len(keys) == 1
    root_client.sys.revoke_prefix("auth/tl-hvac/login/gina")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root_client.sys.list_leases("auth/tl-hvac/login/gina/")
