"""The panels the first browser tests left out: lease renew and revoke-prefix (on real
database credentials from a real PostgreSQL), transit rewrap, the HA status of a
two-worker server and the audit chains its two writers keep in one file, and the metrics
summary (and its permission-denied state)."""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, expect
from psycopg import sql

from tests.pg import PgCluster, pg_cluster_fixture
from tests.serverproc import ServerProcess, free_port, start_dev_server
from tests.ui.browser import Watched, chromium, sign_in, watched_page


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    yield from pg_cluster_fixture()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_dev_server(tmp_path_factory.mktemp("ui-panels"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def ui(browser: Browser, server: ServerProcess) -> Iterator[Watched]:
    watched = watched_page(browser, server.addr)
    watched.page.on("dialog", lambda dialog: dialog.accept())
    try:
        yield watched
        assert watched.problems() == []
    finally:
        watched.page.context.close()


@pytest.fixture(scope="module")
def database(server: ServerProcess, pg: PgCluster) -> str:
    """A database mount on the real cluster with a dynamic role ``app``; returns the role."""
    admin, password = f"ui_admin_{secrets.token_hex(4)}", secrets.token_hex(12)
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(admin), sql.Literal(password)
            )
        )
    http = server.http(server.root_token)
    assert http.post("/v1/sys/mounts/database", json={"type": "database"}).status_code == 204
    config = {
        "plugin_name": "postgresql-database-plugin",
        "connection_url": pg.template_url(),
        "username": admin,
        "password": password,
        "allowed_roles": "*",
    }
    assert http.post("/v1/database/config/pg", json=config).status_code in (200, 204)
    role = {
        "db_name": "pg",
        "creation_statements": [
            "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
        ],
        "default_ttl": "10m",
        "max_ttl": "1h",
    }
    assert http.post("/v1/database/roles/app", json=role).status_code in (200, 204)
    return "app"


def creds(http: httpx.Client) -> tuple[str, str]:
    answer = http.get("/v1/database/creds/app").json()
    return answer["lease_id"], answer["data"]["username"]


def role_exists(pg: PgCluster, name: str) -> bool:
    return bool(pg.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)))


def test_lease_renew_and_revoke_prefix(
    ui: Watched, server: ServerProcess, pg: PgCluster, database: str
) -> None:
    http = server.http(server.root_token)
    first, user1 = creds(http)
    second, user2 = creds(http)
    assert role_exists(pg, user1) and role_exists(pg, user2)
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.goto(f"{server.addr}/ui/#/leases/database/creds/{database}/")
    leases = page.locator("ul.keys li")
    expect(leases).to_have_count(2)
    mine = leases.filter(has_text=first.rsplit("/", 1)[1])
    before = http.put("/v1/sys/leases/lookup", json={"lease_id": first}).json()["data"]
    assert before["last_renewal"] is None
    mine.get_by_role("button", name="Renew").click()
    # the renewal's answer is shown: the lease and its new duration
    expect(page.get_by_role("cell", name=first, exact=True)).to_be_visible()
    expect(page.get_by_role("rowheader", name="lease_duration")).to_be_visible()
    after = http.put("/v1/sys/leases/lookup", json={"lease_id": first}).json()["data"]
    assert after["last_renewal"] is not None and after["renewable"] is True
    # revoke everything under the prefix: both leases gone, both database users dropped
    page.get_by_role("button", name="Revoke every lease under this prefix").click()
    expect(page.get_by_text("No leases here.")).to_be_visible()
    for lease in (first, second):
        assert http.put("/v1/sys/leases/lookup", json={"lease_id": lease}).status_code == 400
    assert not role_exists(pg, user1) and not role_exists(pg, user2)


def test_transit_rewrap_moves_ciphertext_to_the_latest_version(
    ui: Watched, server: ServerProcess
) -> None:
    http = server.http(server.root_token)
    http.post("/v1/sys/mounts/transit-rw", json={"type": "transit"})
    http.post("/v1/transit-rw/keys/ledger", json={})
    plaintext = base64.b64encode(b"ledger line 42").decode()
    old = http.post("/v1/transit-rw/encrypt/ledger", json={"plaintext": plaintext}).json()
    old_ct = old["data"]["ciphertext"]
    assert old_ct.startswith("vault:v1:")
    http.post("/v1/transit-rw/keys/ledger/rotate")
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.goto(f"{server.addr}/ui/#/transit/transit-rw/key/ledger")
    rewrap = page.locator('form[data-op="rewrap"]')
    rewrap.get_by_label("Ciphertext").fill(old_ct)
    rewrap.get_by_role("button", name="Rewrap").click()
    expect(rewrap.locator("output")).to_have_text(re.compile(r"^vault:v2:"))
    new_ct = rewrap.locator("output").inner_text()
    answer = http.post("/v1/transit-rw/decrypt/ledger", json={"ciphertext": new_ct}).json()
    assert answer["data"]["plaintext"] == plaintext
    # a ciphertext that is not one is refused on screen, with the server's reason
    rewrap.get_by_label("Ciphertext").fill("vault:v1:not-base64!")
    rewrap.get_by_role("button", name="Rewrap").click()
    expect(rewrap.locator("output.error")).to_contain_text("Error 400")


def test_metrics_summary_and_its_permission_denied_state(
    ui: Watched, server: ServerProcess
) -> None:
    http = server.http(server.root_token)
    metrics = http.get("/v1/sys/metrics?format=json").json()
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.goto(f"{server.addr}/ui/#/status")
    summary = page.get_by_text(re.compile(r"^\d+ gauges, \d+ counters, \d+ timers"))
    expect(summary).to_be_visible()
    counts = re.match(r"(\d+) gauges, (\d+) counters, (\d+) timers", summary.inner_text())
    assert counts is not None
    assert int(counts[1]) >= len(metrics["Gauges"]) > 0
    assert int(counts[2]) >= 1
    table = page.locator("section", has=page.get_by_role("heading", name="Metrics"))
    expect(table.get_by_role("cell", name=metrics["Gauges"][0]["Name"]).first).to_be_visible()
    expect(table.get_by_role("cell", name="counter").first).to_be_visible()
    # a token without sys/metrics sees a clear notice, no figures
    made = http.post("/v1/auth/token/create", json={"policies": ["default"]}).json()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server.addr, made["auth"]["client_token"])
    page.goto(f"{server.addr}/ui/#/status")
    expect(
        page.get_by_text("Permission denied: this token may not read sys/metrics.")
    ).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+ gauges"))).to_have_count(0)


WORKERS_CONFIG = """
storage "sqlite" {{
  path = "{db}"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
workers = 2
ui = true
disable_mlock = true
"""


def test_ha_status_and_per_writer_audit_chains_of_a_two_worker_server(
    browser: Browser, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "workers.hcl"
    config.write_text(WORKERS_CONFIG.format(db=tmp_path / "w.db", port=port))
    server = ServerProcess([f"-config={config}"], port, tmp_path).start(timeout=60)
    try:
        with httpx.Client(base_url=server.addr, timeout=30) as http:
            init = http.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
            assert init.status_code == 200, init.text
            key, root = init.json()["keys_base64"][0], init.json()["root_token"]
            assert http.put("/v1/sys/unseal", json={"key": key}).json()["sealed"] is False
            http.headers["X-Vault-Token"] = root
            known: dict[str, dict[str, object]] = {}
            deadline = time.monotonic() + 30
            while len(known) < 2 and time.monotonic() < deadline:  # the standby echoes (2 s)
                for node in http.get("/v1/sys/ha-status").json()["data"]["nodes"]:
                    known[str(node["node_id"])] = node
                time.sleep(0.1)
            assert len(known) == 2, known
            # each worker audits locally into the shared file with its own chain
            log = tmp_path / "audit.log"
            options = {"file_path": str(log), "checkpoint_entries": "4"}
            enabled = http.put("/v1/sys/audit/shared", json={"type": "file", "options": options})
            assert enabled.status_code == 204, enabled.text
        # a UI header written through either worker is sent by both (standbys reload it)
        with httpx.Client(base_url=server.addr, timeout=30) as http:
            http.headers["X-Vault-Token"] = root
            put = http.post("/v1/sys/config/ui/headers/X-Site", json={"values": ["two-workers"]})
            assert put.status_code == 204, put.text
        deadline = time.monotonic() + 10
        seen: dict[bool, set[str | None]] = {}
        while time.monotonic() < deadline:
            seen = {}
            for _ in range(20):
                # one connection, one worker: is it the active, and what does its /ui/ send
                with httpx.Client(base_url=server.addr, timeout=30) as fresh:
                    active = fresh.get("/v1/sys/leader").json()["is_self"]
                    seen.setdefault(active, set()).add(fresh.get("/ui/").headers.get("x-site"))
            if seen == {True: {"two-workers"}, False: {"two-workers"}}:
                break
            time.sleep(0.1)
        assert seen == {True: {"two-workers"}, False: {"two-workers"}}, seen
        writers: set[str] = set()
        for i in range(200):  # fresh connections: the kernel hands them to either worker
            with httpx.Client(base_url=server.addr, timeout=30) as fresh:
                fresh.get("/v1/sys/seal-status", headers={"X-Vault-Token": root})
            if i % 10 == 9:
                lines = [orjson.loads(x) for x in log.read_bytes().splitlines() if x]
                writers = {str(x["chain"]) for x in lines if "chain" in x}
                if len(writers) >= 2:
                    break
        assert len(writers) >= 2, writers
        ui = watched_page(browser, server.addr)
        page = ui.page
        try:
            sign_in(page, server.addr, root)
            page.goto(f"{server.addr}/ui/#/status")
            ha = page.locator("section", has=page.get_by_role("heading", name="High availability"))
            expect(ha.get_by_role("row", name=re.compile("HA enabled true"))).to_be_visible()
            table = ha.get_by_role("table", name="Nodes")
            expect(table.locator("tbody tr").first).to_be_visible()
            # each worker answers with the registry as it sees it (one or both nodes): the
            # panel shows that answer, every row a node the server reported
            for row in table.locator("tbody tr").all():
                host, node_id, address, active = row.locator("td").all_inner_texts()[:4]
                assert node_id in known, (node_id, known)
                assert host == known[node_id]["hostname"]
                assert address == known[node_id]["api_address"]
                assert active == str(known[node_id]["active_node"]).lower()
            # the audit screen verifies every writer's chain on its own
            page.goto(f"{server.addr}/ui/#/audit")
            page.locator("tr").filter(has_text="shared/").get_by_role(
                "button", name="Verify", exact=True
            ).click()
            chains = page.get_by_role("table", name="Chains (one per writer)")
            expect(page.locator("#verify-result")).to_contain_text("chains intact")
            shown = set(chains.locator("tbody tr td:first-child").all_inner_texts())
            assert writers <= shown, (writers, shown)
            assert set(chains.locator("tbody td.state").all_inner_texts()) == {"intact"}
            assert ui.problems() == []
        finally:
            page.context.close()
    finally:
        server.stop()
