"""Operator flows through hvac over HTTP: init, unseal, seal, health, rotate, generate-root,
rekey (with verification)."""

from __future__ import annotations

import base64

import hvac
import hvac.exceptions
import pytest

from tests.serverproc import ServerProcess


def _init(server: ServerProcess, shares: int = 5, threshold: int = 3) -> dict:
    client = server.client()
    assert client.sys.is_initialized() is False
    result = client.sys.initialize(secret_shares=shares, secret_threshold=threshold)
    assert len(result["keys"]) == shares
    assert len(result["keys_base64"]) == shares
    assert result["root_token"].startswith("hvs.")
    return result


def test_init_unseal_seal_cycle(fresh_server: ServerProcess) -> None:
    http = fresh_server.http()
    assert http.get("/v1/sys/health").status_code == 501
    result = _init(fresh_server)
    client = fresh_server.client(result["root_token"])
    assert client.sys.is_sealed() is True
    assert http.get("/v1/sys/health").status_code == 503
    assert http.get("/v1/sys/health", params={"sealedcode": 299}).status_code == 299
    # sealed: ordinary requests answer 503
    response = http.get("/v1/secret/foo", headers={"X-Vault-Token": result["root_token"]})
    assert response.status_code == 503
    status = client.sys.submit_unseal_key(result["keys"][0])
    assert status["sealed"] is True and status["progress"] == 1 and status["t"] == 3
    status = client.sys.submit_unseal_key(result["keys_base64"][1])
    assert status["progress"] == 2
    status = client.sys.submit_unseal_key(result["keys"][4])
    assert status["sealed"] is False and status["progress"] == 0
    assert http.get("/v1/sys/health").status_code == 200
    health = http.get("/v1/sys/health").json()
    assert health["initialized"] is True and health["sealed"] is False
    assert client.sys.read_leader_status()["ha_enabled"] is False
    # the root token works; seal needs it
    assert client.lookup_token()["data"]["policies"] == ["root"]
    assert http.put("/v1/sys/seal").status_code == 403
    client.sys.seal()
    assert client.sys.is_sealed() is True


def test_wrong_share_resets_progress(fresh_server: ServerProcess) -> None:
    result = _init(fresh_server, 3, 2)
    client = fresh_server.client()
    client.sys.submit_unseal_key(result["keys"][0])
    bogus = bytes(33).hex()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.submit_unseal_key(bogus)
    status = client.sys.read_seal_status()
    assert status["sealed"] is True and status["progress"] == 0
    client.sys.submit_unseal_key(reset=True)
    client.sys.submit_unseal_keys(result["keys"][1:3])
    assert client.sys.is_sealed() is False


def test_second_init_is_refused(fresh_server: ServerProcess) -> None:
    _init(fresh_server, 1, 1)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        fresh_server.client().sys.initialize(secret_shares=1, secret_threshold=1)


def test_rotate_and_key_status(fresh_server: ServerProcess) -> None:
    result = _init(fresh_server, 1, 1)
    client = fresh_server.client(result["root_token"])
    client.sys.submit_unseal_key(result["keys"][0])
    client.sys.enable_secrets_engine("kv", path="kv", options={"version": "1"})
    client.secrets.kv.v1.create_or_update_secret("before", {"a": "1"}, mount_point="kv")
    term = client.sys.get_encryption_key_status()["data"]["term"]
    client.sys.rotate_encryption_key()
    assert client.sys.get_encryption_key_status()["data"]["term"] == term + 1
    client.secrets.kv.v1.create_or_update_secret("after", {"b": "2"}, mount_point="kv")
    client.sys.seal()
    client.sys.submit_unseal_key(result["keys"][0])
    assert client.secrets.kv.v1.read_secret("before", mount_point="kv")["data"] == {"a": "1"}
    assert client.secrets.kv.v1.read_secret("after", mount_point="kv")["data"] == {"b": "2"}


def _decode(encoded: str, otp: str) -> str:
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return bytes(a ^ b for a, b in zip(raw, otp.encode(), strict=True)).decode()


def test_generate_root_needs_quorum(fresh_server: ServerProcess) -> None:
    result = _init(fresh_server, 3, 2)
    client = fresh_server.client(result["root_token"])
    client.sys.submit_unseal_keys(result["keys"][:2])
    attempt = client.sys.start_root_token_generation()
    assert attempt["started"] is True and attempt["required"] == 2
    otp, nonce = attempt["otp"], attempt["nonce"]
    assert len(otp) == attempt["otp_length"]
    # cancelling needs authentication
    anonymous = fresh_server.http()
    assert anonymous.delete("/v1/sys/generate-root/attempt").status_code == 403
    step = client.sys.generate_root(key=result["keys"][0], nonce=nonce)
    assert step["complete"] is False and step["progress"] == 1
    step = client.sys.generate_root(key=result["keys"][2], nonce=nonce)
    assert step["complete"] is True
    token = _decode(step["encoded_token"], otp)
    new_root = fresh_server.client(token)
    assert new_root.lookup_token()["data"]["policies"] == ["root"]


def test_rekey_with_verification(fresh_server: ServerProcess) -> None:
    result = _init(fresh_server, 3, 2)
    client = fresh_server.client(result["root_token"])
    client.sys.submit_unseal_keys(result["keys"][:2])
    started = client.sys.start_rekey(secret_shares=4, secret_threshold=3, require_verification=True)
    nonce = started["nonce"]
    client.sys.rekey(key=result["keys"][0], nonce=nonce)
    done = client.sys.rekey(key=result["keys"][1], nonce=nonce)
    assert done["complete"] is True and len(done["keys"]) == 4
    new_keys = done["keys"]
    vnonce = done["verification_nonce"]
    for key in new_keys[:3]:
        verified = client.sys.rekey_verify(key=key, nonce=vnonce)
    assert verified["complete"] is True
    client.sys.seal()
    # the old shares no longer unseal
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.submit_unseal_keys(result["keys"][:3])
    client.sys.submit_unseal_key(reset=True)
    client.sys.submit_unseal_keys(new_keys[1:4])
    assert client.sys.is_sealed() is False


def test_unauthenticated_endpoints_reveal_little(fresh_server: ServerProcess) -> None:
    result = _init(fresh_server, 1, 1)
    client = fresh_server.client(result["root_token"])
    client.sys.submit_unseal_key(result["keys"][0])
    http = fresh_server.http()
    for path in ("/v1/sys/mounts", "/v1/sys/auth", "/v1/sys/policy"):
        response = http.get(path)
        assert response.status_code == 403, path
        assert response.json() == {"errors": ["permission denied"]}
    # Vault serves the UI's mount list to strangers, with only the mounts tuned "unauth"
    listing = http.get("/v1/sys/internal/ui/mounts")
    assert listing.status_code == 200
    assert listing.json()["data"] == {"secret": {}, "auth": {}}
    assert http.get("/v1/sys/internal/ui/mounts/secret").status_code == 403
