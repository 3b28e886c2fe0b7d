"""status and operator: seal status exit codes, init output, unseal input, root generation."""

from __future__ import annotations

import base64
import json

import pytest

from strongroom.cli._client import CommandError
from strongroom.cli._operator import decode_root_token, generate_otp
from tests.cli.fakevault import FakeServer, Runner

UNSEALED = {
    "type": "shamir",
    "initialized": True,
    "sealed": False,
    "t": 3,
    "n": 5,
    "progress": 0,
    "nonce": "",
    "version": "0.1.0",
    "storage_type": "sqlite",
    "cluster_name": "sr-cluster",
    "cluster_id": "c-1",
}
SEALED = {**UNSEALED, "sealed": True, "progress": 1, "nonce": "n-1"}


def _encode(token: str, otp: str) -> str:
    mixed = bytes(a ^ b for a, b in zip(token.encode(), otp.encode(), strict=True))
    return base64.b64encode(mixed).decode().rstrip("=")


def test_status_unsealed_exit_0(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "sys/seal-status", 200, UNSEALED)
    server.on("GET", "sys/leader", 200, {"ha_enabled": False, "is_self": False})
    result = cli("status")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[:3] == ["Key             Value", "---             -----", "Seal Type       shamir"]
    assert "Sealed          false" in lines
    assert "HA Enabled      false" in lines
    assert "Unseal Progress" not in result.out


def test_status_sealed_exit_2(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "sys/seal-status", 200, SEALED)
    result = cli("status")
    assert result.code == 2
    assert "Unseal Progress    1/3" in result.out
    assert ("GET", "sys/leader") not in server.calls()
    as_json = cli("status", "-format=json")
    assert as_json.code == 2
    assert json.loads(as_json.out)["sealed"] is True


def test_status_unreachable_exit_1(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "sys/seal-status", 500, {"errors": ["boom"]})
    result = cli("status")
    assert result.code == 1
    assert result.err.startswith("Error checking seal status: Code: 500")


def test_init_prints_keys_and_root_token(cli: Runner, server: FakeServer) -> None:
    answer = {
        "keys": ["aa", "bb", "cc"],
        "keys_base64": ["qg==", "uw==", "zA=="],
        "root_token": "hvs.R",
    }
    server.on("PUT", "sys/init", 200, answer)
    result = cli("operator", "init", "-key-shares=3", "-key-threshold=2")
    assert result.code == 0
    assert server.last().body == {"secret_shares": 3, "secret_threshold": 2}
    lines = result.out.splitlines()
    assert lines[:5] == [
        "Unseal Key 1: qg==",
        "Unseal Key 2: uw==",
        "Unseal Key 3: zA==",
        "",
        "Initial Root Token: hvs.R",
    ]
    assert "key threshold of 2" in result.out
    document = json.loads(cli("operator", "init", "-n=3", "-t=2", "-format=json").out)
    assert document["unseal_keys_b64"] == ["qg==", "uw==", "zA=="]
    assert document["unseal_keys_hex"] == ["aa", "bb", "cc"]
    assert document["unseal_shares"] == 3
    assert document["root_token"] == "hvs.R"


def test_init_defaults_and_validation(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/init", 200, {"keys": [], "keys_base64": [], "root_token": "t"})
    cli("operator", "init")
    assert server.last().body == {"secret_shares": 5, "secret_threshold": 3}
    assert cli("operator", "init", "-key-shares=2", "-key-threshold=3").code == 1


def test_init_status_exit_codes(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "sys/init", 200, {"initialized": False})
    assert cli("operator", "init", "-status").code == 2
    server.on("GET", "sys/init", 200, {"initialized": True})
    assert cli("operator", "init", "-status").code == 0


def test_unseal_from_argument_stdin_and_reset(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/unseal", 200, SEALED)
    result = cli("operator", "unseal", "abcd")
    assert result.code == 0
    assert server.last().body == {"key": "abcd"}
    assert "Unseal Progress    1/3" in result.out
    assert cli("operator", "unseal", stdin="from-pipe\n").code == 0
    assert server.last().body == {"key": "from-pipe"}
    assert cli("operator", "unseal", "-", stdin="  dash-key \n").code == 0
    assert server.last().body == {"key": "dash-key"}
    assert cli("operator", "unseal", "-reset").code == 0
    assert server.last().body == {"reset": True}
    assert cli("operator", "unseal", stdin="").code == 1


def test_seal(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/seal", 204)
    result = cli("operator", "seal")
    assert result.out == "Success! Strongroom is sealed.\n"
    assert server.last().headers["X-Vault-Token"]


def test_decode_root_token_known_answer() -> None:
    token = "hvs.ABCDEFGHIJKLMNOPQRSTUVWX"
    otp = "k3N9pXq2LmZ7vB1cD4eF6gH8jQ0R"
    encoded = _encode(token, otp)
    assert "=" not in encoded
    assert decode_root_token(encoded, otp) == token
    assert decode_root_token(encoded + "==", otp) == token
    with pytest.raises(CommandError, match="differ in length"):
        decode_root_token(encoded, otp[:-1])
    with pytest.raises(CommandError, match="not base64"):
        decode_root_token("***", otp)


def test_generate_root_decode(cli: Runner, server: FakeServer) -> None:
    token, otp = "hvs.0123456789abcdefghijklmn", "zyxwvutsrqponmlkjihgfedcba98"
    encoded = _encode(token, otp)
    result = cli("operator", "generate-root", f"-decode={encoded}", f"-otp={otp}")
    assert (result.code, result.out) == (0, token + "\n")
    piped = cli("operator", "generate-root", "-decode=-", "-otp", otp, stdin=encoded + "\n")
    assert piped.out == token + "\n"
    assert server.seen == []  # decoding is local
    assert cli("operator", "generate-root", f"-decode={encoded}").code == 1
    assert cli("operator", "generate-root", f"-decode={encoded}", "-otp=short").code == 1


def test_generate_root_flow(cli: Runner, server: FakeServer) -> None:
    attempt = "sys/generate-root/attempt"
    status = {"nonce": "N1", "started": True, "progress": 0, "required": 3, "complete": False}
    server.on("PUT", attempt, 200, {**status, "otp": "generated-otp", "otp_length": 28})
    started = cli("operator", "generate-root", "-init")
    assert server.last().body == {}
    assert "OTP           generated-otp" in started.out
    assert "One-Time-Password" in started.err
    assert cli("operator", "generate-root", "-init", "-otp=mine").code == 0
    assert server.last().body == {"otp": "mine"}

    server.on("GET", attempt, 200, {**status, "otp_length": 28})
    shown = cli("operator", "generate-root", "-status")
    rows = [line.split() for line in shown.out.splitlines()]
    assert rows == [
        ["Nonce", "N1"],
        ["Started", "true"],
        ["Progress", "0/3"],
        ["Complete", "false"],
        ["OTP", "Length", "28"],
    ]

    done = {**status, "progress": 3, "complete": True, "encoded_token": "ENC"}
    server.on("PUT", "sys/generate-root/update", 200, done)
    result = cli("operator", "generate-root", "key-1")
    assert server.last().body == {"key": "key-1", "nonce": "N1"}
    assert "Encoded Token    ENC" in result.out
    cli("operator", "generate-root", "-nonce=N2", "key-2")
    assert server.last().body == {"key": "key-2", "nonce": "N2"}

    server.on("DELETE", attempt, 204)
    assert cli("operator", "generate-root", "-cancel").code == 0
    assert server.last().method == "DELETE"

    otp = cli("operator", "generate-root", "-generate-otp").out.strip()
    assert len(otp) == 28
    assert otp.isalnum()
    assert cli("operator", "generate-root", "-init", "-cancel").code == 1


def test_generate_root_update_needs_a_started_attempt(cli: Runner, server: FakeServer) -> None:
    server.on("GET", "sys/generate-root/attempt", 200, {"started": False, "nonce": ""})
    result = cli("operator", "generate-root", "key")
    assert result.code == 1
    assert "No root generation is in progress" in result.err


def test_generate_otp_is_base62() -> None:
    assert len(generate_otp(26)) == 26
    assert generate_otp(40).isalnum()


def test_rekey_flow(cli: Runner, server: FakeServer) -> None:
    status = {"nonce": "RK", "started": True, "t": 2, "n": 3, "progress": 0, "required": 3}
    server.on("PUT", "sys/rekey/init", 200, status)
    result = cli("operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2", "-verify")
    assert server.last().body == {
        "secret_shares": 3,
        "secret_threshold": 2,
        "require_verification": True,
    }
    assert "Rekey Progress           0/3" in result.out
    server.on("GET", "sys/rekey/init", 200, status)
    keys = {"complete": True, "keys_base64": ["k1", "k2", "k3"], "nonce": "RK"}
    server.on("PUT", "sys/rekey/update", 200, keys)
    done = cli("operator", "rekey", "unseal-key")
    assert server.last().body == {"key": "unseal-key", "nonce": "RK"}
    assert done.out.startswith("Key 1: k1\nKey 2: k2\nKey 3: k3\n")
    server.on("PUT", "sys/rekey/verify", 200, {"nonce": "V", "complete": True})
    verified = cli("operator", "rekey", "-verify", "-nonce=V", "new-key")
    assert server.last().path == "sys/rekey/verify"
    assert "Rekey verification successful" in verified.out
    server.on("DELETE", "sys/rekey/init", 204)
    assert cli("operator", "rekey", "-cancel").code == 0
    assert cli("operator", "rekey", "-target=recovery", "-init").code == 1


def test_rotate_and_key_status(cli: Runner, server: FakeServer) -> None:
    server.on("PUT", "sys/rotate", 204)
    server.on("GET", "sys/key-status", 200, {"term": 2, "install_time": "2024-01-01T00:00:00Z"})
    result = cli("operator", "rotate")
    assert result.out.splitlines() == [
        "Success! Rotated key",
        "",
        "Key Term        2",
        "Install Time    2024-01-01T00:00:00Z",
    ]
    assert json.loads(cli("operator", "key-status", "-format=json").out)["term"] == 2
