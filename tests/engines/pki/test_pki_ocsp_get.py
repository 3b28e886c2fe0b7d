"""OCSP over GET (RFC 6960 A.1): the base64 request in the path, raw or percent-encoded,
also when it holds ``//``; made and checked by ``openssl ocsp``. Empty segments stay
refused everywhere else."""

from __future__ import annotations

import base64
import http.client
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import hvac

from tests.engines.pki.helpers import openssl, root, write


def _request_with_double_slash(tmp_path: Path) -> tuple[Path, str]:
    """An ``openssl ocsp -reqout`` request (random nonce) whose base64 holds ``//``."""
    req = tmp_path / "req.der"
    for _ in range(3000):  # about one request in 40 qualifies
        made = openssl(
            "ocsp",
            "-issuer",
            str(tmp_path / "ca.pem"),
            "-cert",
            str(tmp_path / "leaf.pem"),
            "-reqout",
            str(req),
        )
        assert made.returncode == 0, made.stdout + made.stderr
        encoded = base64.b64encode(req.read_bytes()).decode()
        if "//" in encoded:
            return req, encoded
    raise AssertionError("openssl never made a request whose base64 holds '//'")


def _check(tmp_path: Path, req: Path, answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/ocsp-response"
    resp = tmp_path / "resp.der"
    resp.write_bytes(answer.content)
    ca = str(tmp_path / "ca.pem")
    checked = openssl(
        "ocsp",
        "-respin",
        str(resp),
        "-reqin",
        str(req),  # openssl compares the answer's nonce with this request's
        "-CAfile",
        ca,
        "-VAfile",
        ca,  # the responder is the issuer itself
        "-resp_text",
    )
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    assert "Response verify OK" in output
    assert "nonce verify error" not in output.lower()
    assert "no nonce in response" not in output.lower()
    return output


def _raw_get(url: str) -> int:
    """A GET sent as written (httpx would remove dot segments)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        conn.request("GET", parts.path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_ocsp_get_with_double_slash_raw_and_percent_encoded(
    client: hvac.Client, mount: str, tmp_path: Path
) -> None:
    ca = root(client, mount)
    write(client, f"{mount}/roles/r", allow_any_name=True, key_type="ec")
    leaf = write(client, f"{mount}/issue/r", common_name="get.test", ttl="1h")
    (tmp_path / "ca.pem").write_text(ca["certificate"] + "\n")
    (tmp_path / "leaf.pem").write_text(leaf["certificate"] + "\n")
    req, encoded = _request_with_double_slash(tmp_path)
    base = f"{client.url}/v1/{mount}/ocsp/"

    # raw base64, '//' and all, as many clients send it
    assert "Cert Status: good" in _check(tmp_path, req, httpx.get(base + encoded))
    # the URL-encoding of RFC 6960 A.1 ('/' as %2F, '+' as %2B, '=' as %3D)
    assert "%2F%2F" in quote(encoded, safe="")
    assert "Cert Status: good" in _check(tmp_path, req, httpx.get(base + quote(encoded, safe="")))
    # a '+' sent raw stays a '+' (never a space)
    write(client, f"{mount}/revoke", serial_number=leaf["serial_number"])
    assert "Cert Status: revoked" in _check(tmp_path, req, httpx.get(base + encoded))

    # empty segments stay refused outside the OCSP request itself
    root_url = f"{client.url}/v1"
    assert httpx.get(f"{root_url}/{mount}//ocsp/{encoded}").status_code == 400
    assert httpx.get(f"{root_url}/{mount}/cert//ca").status_code == 400
    assert (
        httpx.get(f"{root_url}/sys//mounts", headers={"X-Vault-Token": client.token}).status_code
        == 400
    )
    assert _raw_get(f"{base}AB/../{encoded}") == 400
    assert _raw_get(f"{base}AB/./{encoded}") == 400
    # a write to the same path: not an OCSP GET
    posted = httpx.post(base + encoded, json={}, headers={"X-Vault-Token": client.token})
    assert posted.status_code == 400
    assert "empty" in posted.json()["errors"][0]
