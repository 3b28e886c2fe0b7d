"""sys/policies/password/*, sys/tools/random|hash, sys/decode-token and the `generic` mount type."""

from __future__ import annotations

import base64
import hashlib

import httpx
import hvac
import pytest

from tests.serverproc import ServerProcess

POLICY = """
length = 24
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 2
}
rule "charset" {
  charset = "0123456789"
  min-chars = 5
}
rule "charset" {
  charset = "!@#"
  min-chars = 1
}
"""


@pytest.fixture
def http(dev_server: ServerProcess) -> httpx.Client:
    return dev_server.http(dev_server.root_token)


def test_password_policy_crud_and_generate(http: httpx.Client) -> None:
    url = "/v1/sys/policies/password/web"
    assert http.put(url, json={"policy": POLICY}).status_code == 204
    assert http.get(url).json()["data"] == {"policy": POLICY}
    assert "web" in http.request("LIST", "/v1/sys/policies/password").json()["data"]["keys"]
    for _ in range(50):
        password = http.get(url + "/generate").json()["data"]["password"]
        assert len(password) == 24
        assert set(password) <= set("abcdefghijklmnopqrstuvwxyz0123456789!@#")
        assert sum(c.isdigit() for c in password) >= 5
        assert sum(c.isalpha() for c in password) >= 2
        assert any(c in "!@#" for c in password)
    assert http.delete(url).status_code == 204
    assert http.get(url).status_code == 404
    assert http.get(url + "/generate").status_code == 404


def test_password_policy_json_and_base64(http: httpx.Client) -> None:
    text = '{"length": 10, "rule": [{"charset": {"charset": "xy", "min-chars": 1}}]}'
    assert http.put("/v1/sys/policies/password/js", json={"policy": text}).status_code == 204
    password = http.get("/v1/sys/policies/password/js/generate").json()["data"]["password"]
    assert len(password) == 10 and set(password) <= {"x", "y"}
    hcl = 'length = 8\nrule "charset" {\n  charset = "ab"\n}\n'
    encoded = base64.b64encode(hcl.encode()).decode()
    assert http.put("/v1/sys/policies/password/b64", json={"policy": encoded}).status_code == 204
    assert http.get("/v1/sys/policies/password/b64").json()["data"]["policy"] == hcl


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("", "missing policy"),
        ('length = 3\nrule "charset" {\n charset = "abc"\n}', "between 4 and 100"),
        ('length = 101\nrule "charset" {\n charset = "abc"\n}', "between 4 and 100"),
        ("length = 20", "no charset specified"),
        ('length = 5\nrule "charset" {\n charset = "a"\n min-chars = 6\n}', "require at least 6"),
        ('length = 8\nrule "foo" {\n charset = "abc"\n}', "unrecognized rule type"),
        ("length = ", "failed to parse"),
    ],
)
def test_password_policy_refusals(http: httpx.Client, policy: str, message: str) -> None:
    resp = http.put("/v1/sys/policies/password/bad", json={"policy": policy})
    assert resp.status_code == 400
    assert message in resp.json()["errors"][0]
    assert http.get("/v1/sys/policies/password/bad").status_code == 404


def test_tools_random(http: httpx.Client) -> None:
    body = http.post("/v1/sys/tools/random", json={}).json()
    assert len(base64.b64decode(body["data"]["random_bytes"])) == 32
    raw = http.post("/v1/sys/tools/random/16", json={"format": "hex"}).json()
    assert len(bytes.fromhex(raw["data"]["random_bytes"])) == 16
    seal = http.post("/v1/sys/tools/random/seal/8", json={}).json()
    assert len(base64.b64decode(seal["data"]["random_bytes"])) == 8 and seal["warnings"]
    values = {
        http.post("/v1/sys/tools/random", json={}).json()["data"]["random_bytes"] for _ in range(5)
    }
    assert len(values) == 5
    for url, body, message in (
        ("/v1/sys/tools/random", {"bytes": 0}, "cannot be less than 1"),
        ("/v1/sys/tools/random", {"bytes": 200000}, "should be less than"),
        ("/v1/sys/tools/random", {"format": "x"}, "unsupported encoding format"),
        ("/v1/sys/tools/random/bad/8", {}, "unsupported entropy source"),
    ):
        resp = http.post(url, json=body)
        assert resp.status_code == 400 and message in resp.json()["errors"][0]


def test_tools_hash(http: httpx.Client) -> None:
    data = base64.b64encode(b"hello").decode()
    body = http.post("/v1/sys/tools/hash", json={"input": data}).json()
    assert body["data"]["sum"] == hashlib.sha256(b"hello").hexdigest()
    body = http.post("/v1/sys/tools/hash/sha3-512", json={"input": data, "format": "base64"})
    expected = base64.b64encode(hashlib.sha3_512(b"hello").digest()).decode()
    assert body.json()["data"]["sum"] == expected
    body = http.post("/v1/sys/tools/hash", json={"input": data, "algorithm": "sha2-384"})
    assert body.json()["data"]["sum"] == hashlib.sha384(b"hello").hexdigest()
    for url, payload in (
        ("/v1/sys/tools/hash/md5", {"input": data}),
        ("/v1/sys/tools/hash", {"input": "###"}),
        ("/v1/sys/tools/hash", {"input": data, "format": "raw"}),
    ):
        resp = http.post(url, json=payload)
        assert resp.status_code == 400 and resp.json()["errors"]


def test_decode_token(http: httpx.Client) -> None:
    token, otp = "hvs." + "a" * 24, "Z" * 28
    mixed = bytes(a ^ b for a, b in zip(token.encode(), otp.encode(), strict=True))
    encoded = base64.b64encode(mixed).decode().rstrip("=")
    body = http.post("/v1/sys/decode-token", json={"encoded_token": encoded, "otp": otp})
    assert body.json()["data"] == {"token": token}
    resp = http.post("/v1/sys/decode-token", json={"encoded_token": encoded, "otp": "short"})
    assert resp.status_code == 400 and otp not in resp.text
    assert http.post("/v1/sys/decode-token", json={}).status_code == 400


def test_generic_is_kv_v1(root_client: hvac.Client, http: httpx.Client) -> None:
    root_client.sys.enable_secrets_engine("generic", path="gen")
    assert http.get("/v1/sys/mounts/gen").json()["data"]["type"] == "generic"
    root_client.secrets.kv.v1.create_or_update_secret("a", {"x": "1"}, mount_point="gen")
    assert root_client.secrets.kv.v1.read_secret("a", mount_point="gen")["data"] == {"x": "1"}
