"""lease lookup, renew, revoke and list against the fake server."""

from __future__ import annotations

import json

import pytest

from strongroom.cli._lease import duration_seconds
from tests.cli.fakevault import FakeServer, Runner, secret

LEASE = "database/creds/readonly/27e1b9a1"
LOOKUP = secret(
    {
        "id": LEASE,
        "issue_time": "2021-03-17T11:45:50.755312-05:00",
        "expire_time": "2021-03-17T11:55:50.755313-05:00",
        "last_renewal": None,
        "renewable": True,
        "ttl": 592,
    }
)


def _rows(text: str) -> dict[str, str]:
    rows = [line.split(None, 1) for line in text.splitlines()[2:] if line.strip()]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def test_lookup_prints_a_table(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/leases/lookup", 200, LOOKUP)
    result = cli("lease", "lookup", LEASE)
    assert result.code == 0, result.err
    assert server.last().body == {"lease_id": LEASE}
    rows = _rows(result.out)
    assert rows["id"] == LEASE
    assert rows["renewable"] == "true"
    assert rows["ttl"] == "9m52s"
    assert rows["last_renewal"] == "<nil>"


def test_lookup_json_and_field(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/leases/lookup", 200, LOOKUP)
    result = cli("lease", "lookup", "-format=json", LEASE)
    assert result.code == 0, result.err
    assert json.loads(result.out)["data"]["id"] == LEASE
    assert cli("lease", "lookup", "-field=id", LEASE).out.strip() == LEASE


def test_lookup_error_exits_2(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/leases/lookup", 400, {"errors": ["invalid lease"]})
    result = cli("lease", "lookup", "nope/1")
    assert result.code == 2
    assert "Error looking up lease id nope/1" in result.err
    assert "invalid lease" in result.err


@pytest.mark.parametrize("argv", [(), ("a", "b")])
def test_argument_count_is_a_usage_error(cli: Runner, argv: tuple[str, ...]) -> None:
    for command in ("lookup", "renew", "revoke", "list"):
        result = cli("lease", command, *argv)
        assert result.code == 1, (command, result)
        assert "arguments" in result.err


def test_renew_sends_increment_in_seconds(cli: Runner, server: FakeServer) -> None:
    reply = secret(None, lease_id=LEASE, renewable=True, lease_duration=7200)
    server.on("PUT", "sys/leases/renew", 200, reply)
    result = cli("lease", "renew", "-increment=2h", LEASE)
    assert result.code == 0, result.err
    assert server.last().body == {"lease_id": LEASE, "increment": 7200}
    rows = _rows(result.out)
    assert rows["lease_id"] == LEASE
    assert rows["lease_duration"] == "2h"
    assert rows["lease_renewable"] == "true"
    assert cli("lease", "renew", LEASE).code == 0
    assert server.last().body == {"lease_id": LEASE, "increment": 0}


def test_renew_bad_increment_is_a_usage_error(cli: Runner, server: FakeServer) -> None:
    assert cli("lease", "renew", "-increment=soon", LEASE).code == 1
    assert server.seen == []


def test_renew_error_exits_2(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/leases/renew", 400, {"errors": ["lease not renewable"]})
    result = cli("lease", "renew", LEASE)
    assert result.code == 2
    assert f"Error renewing {LEASE}" in result.err


@pytest.mark.parametrize(
    ("raw", "seconds"), [("30", 30), ("90s", 90), ("1h30m", 5400), ("2d", 172800), ("1.5m", 90)]
)
def test_duration_seconds(raw: str, seconds: int) -> None:
    assert duration_seconds(raw) == seconds


def test_revoke_one_lease(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/leases/revoke", 204)
    result = cli("lease", "revoke", "-sync", LEASE)
    assert result.code == 0, result.err
    assert server.last().body == {"lease_id": LEASE, "sync": True}
    assert result.out == f"Success! Revoked lease: {LEASE}\n"
    result = cli("lease", "revoke", LEASE)
    assert server.last().body == {"lease_id": LEASE, "sync": False}
    assert result.out == "All revocation operations queued successfully!\n"


def test_revoke_prefix(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/leases/revoke-prefix/database/creds", 204)
    result = cli("lease", "revoke", "-prefix", "-sync", "database/creds")
    assert result.code == 0, result.err
    assert server.last().body == {"sync": True}
    assert result.out == "Success! Revoked any leases with prefix: database/creds\n"


def test_revoke_force(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/leases/revoke-force/database/creds", 204)
    result = cli("lease", "revoke", "-prefix", "-f", "database/creds")
    assert result.code == 0, result.err
    assert server.calls() == [("PUT", "sys/leases/revoke-force/database/creds")]
    assert result.out == "Success! Force revoked any leases with prefix: database/creds\n"
    assert "Force-removing leases" in result.err


def test_force_without_prefix_is_a_usage_error(cli: Runner, server: FakeServer) -> None:
    result = cli("lease", "revoke", "-force", LEASE)
    assert result.code == 1
    assert "Specifying -force requires also specifying -prefix" in result.err
    assert server.seen == []


def test_revoke_error_exits_2(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/leases/revoke", 403, {"errors": ["permission denied"]})
    result = cli("lease", "revoke", LEASE)
    assert result.code == 2
    assert f"Error revoking lease {LEASE}" in result.err
    assert "permission denied" in result.err


def test_list(cli: Runner, server: FakeServer) -> None:
    server.on("LIST", "sys/leases/lookup/database/creds/", 200, secret({"keys": ["a", "b"]}))
    result = cli("lease", "list", "database/creds")
    assert result.code == 0, result.err
    assert result.out.split() == ["Keys", "----", "a", "b"]
    result = cli("lease", "list", "-format=json", "database/creds/")
    assert json.loads(result.out) == ["a", "b"]


def test_list_nothing_exits_2(cli: Runner, server: FakeServer) -> None:
    result = cli("lease", "list", "none/")
    assert result.code == 2
    assert "No leases found" in result.err


def test_lease_group_usage(cli: Runner) -> None:
    result = cli("lease", "-h")
    assert result.code == 0
    for name in ("list", "lookup", "renew", "revoke"):
        assert name in result.out
    assert "lease" in cli("-h").out
