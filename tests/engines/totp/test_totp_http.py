"""The TOTP engine over HTTP against a real ``strongroom server -dev``, with hvac's adapter
(hvac has no TOTP helpers) and pyotp as the other side of the interop."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import png
import pyotp
import pytest
import qrcode

from tests.serverproc import ServerProcess


@pytest.fixture(scope="module")
def mount(dev_server: ServerProcess) -> Iterator[tuple[hvac.Client, str]]:
    client = dev_server.client(dev_server.root_token)
    path = f"totp-{uuid.uuid4().hex[:8]}"
    client.sys.enable_secrets_engine("totp", path=path)
    try:
        yield client, path
    finally:
        client.sys.disable_secrets_engine(path)


def wait_for_fresh_step(period: int = 30, margin: float = 3.0) -> None:
    """Avoid a step boundary between computing a code and the server checking it."""
    remaining = period - time.time() % period
    if remaining < margin:
        time.sleep(remaining + 0.05)


def test_generated_key_works_in_pyotp(mount: tuple[hvac.Client, str], tmp_path: Path) -> None:
    client, mp = mount
    created = client.write(
        f"{mp}/keys/gen",
        generate=True,
        issuer="Strongroom Inc",
        account_name="alice@example.com",
        algorithm="SHA256",
        digits=8,
        period="60s",
        qr_size=120,
    )["data"]
    url = created["url"]
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert urllib.parse.unquote(parts.path) == "/Strongroom Inc:alice@example.com"
    query = urllib.parse.parse_qs(parts.query)
    assert query["algorithm"] == ["SHA256"] and query["digits"] == ["8"]
    assert query["period"] == ["60"] and query["issuer"] == ["Strongroom Inc"]
    secret = query["secret"][0]
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20  # key_size

    # the QR code: a qr_size x qr_size PNG whose modules are the URL's QR matrix
    width, height, rows, _ = png.Reader(bytes=base64.b64decode(created["barcode"])).read()
    pixels = [list(row) for row in rows]
    assert (width, height) == (120, 120)
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    n = len(matrix)
    for my in range(n):
        for mx in range(n):
            centre = (int((my + 0.5) * 120 / n), int((mx + 0.5) * 120 / n))
            assert (pixels[centre[0]][centre[1]] == 0) == matrix[my][mx]

    # a real QR decoder (zbar) reads the otpauth URL back from the PNG
    image = tmp_path / "barcode.png"
    image.write_bytes(base64.b64decode(created["barcode"]))
    decoded = subprocess.run(
        ["zbarimg", "--raw", "-q", str(image)], capture_output=True, text=True, check=True
    )
    assert decoded.stdout.strip() == url

    # our key in pyotp: both generate the same code, and each validates the other's
    ours = pyotp.parse_uri(url)
    wait_for_fresh_step(60)
    code = client.read(f"{mp}/code/gen")["data"]["code"]
    assert ours.verify(code)
    assert client.read(f"{mp}/keys/gen")["data"] == {
        "account_name": "alice@example.com",
        "algorithm": "SHA256",
        "digits": 8,
        "issuer": "Strongroom Inc",
        "period": 60,
    }


def test_pyotp_key_imported(mount: tuple[hvac.Client, str]) -> None:
    client, mp = mount
    secret = pyotp.random_base32()
    theirs = pyotp.TOTP(secret, issuer="Acme", name="bob", digits=6)
    uri = theirs.provisioning_uri()
    assert client.write(f"{mp}/keys/imported", url=uri).status_code == 204
    assert client.read(f"{mp}/keys/imported")["data"]["issuer"] == "Acme"
    wait_for_fresh_step()
    assert client.read(f"{mp}/code/imported")["data"]["code"] == theirs.now()
    assert client.write(f"{mp}/code/imported", code=theirs.now())["data"] == {"valid": True}
    with pytest.raises(hvac.exceptions.InvalidRequest, match="code already used"):
        client.write(f"{mp}/code/imported", code=theirs.now())
    wrong = f"{(int(theirs.now()) + 1) % 10**6:06d}"
    assert client.write(f"{mp}/code/imported", code=wrong)["data"] == {"valid": False}
    # by base32 key too
    assert client.write(f"{mp}/keys/bykey", key=secret).status_code == 204
    assert client.read(f"{mp}/code/bykey")["data"]["code"] == theirs.now()


def test_list_delete_and_not_exported(mount: tuple[hvac.Client, str]) -> None:
    client, mp = mount
    reply = client.write(
        f"{mp}/keys/quiet", generate=True, issuer="I", account_name="a", exported=False
    )
    assert reply.status_code == 204
    reply = client.write(f"{mp}/keys/noqr", generate=True, issuer="I", account_name="a", qr_size=0)
    assert set(reply["data"]) == {"url"}
    assert {"quiet", "noqr"} <= set(client.list(f"{mp}/keys")["data"]["keys"])
    client.delete(f"{mp}/keys/quiet")
    assert "quiet" not in client.list(f"{mp}/keys")["data"]["keys"]
    assert client.read(f"{mp}/keys/quiet") is None  # hvac's read answers None for a 404


@pytest.mark.parametrize(
    "body",
    [
        {"url": "otpauth://totp/Acme:bob?secret=JBSWY3DPEHPK3PXP&digits=7"},
        {"url": "not a url at all"},
        {"generate": True, "issuer": "I", "account_name": "a", "digits": 7},
    ],
)
def test_bad_input_is_400(
    dev_server: ServerProcess, mount: tuple[hvac.Client, str], body: dict[str, object]
) -> None:
    _, mp = mount
    with dev_server.http(dev_server.root_token) as http:
        reply = http.post(f"/v1/{mp}/keys/bad", json=body)
        assert reply.status_code == 400
        errors = reply.json()["errors"]
        assert errors and "JBSWY3DP" not in " ".join(errors)
        assert http.get(f"/v1/{mp}/keys/bad").status_code == 404


@pytest.mark.parametrize("round_", range(12))
def test_concurrent_burst_exactly_one_valid(
    dev_server: ServerProcess, mount: tuple[hvac.Client, str], round_: int
) -> None:
    client, mp = mount
    secret = pyotp.random_base32()
    client.write(f"{mp}/keys/burst{round_}", key=secret)
    wait_for_fresh_step()
    code = pyotp.TOTP(secret).now()

    async def burst() -> list[int | bool]:
        headers = {"X-Vault-Token": dev_server.root_token}
        limits = httpx.Limits(max_connections=30)
        async with httpx.AsyncClient(
            base_url=dev_server.addr, headers=headers, timeout=30, limits=limits
        ) as http:
            replies = await asyncio.gather(
                *(http.post(f"/v1/{mp}/code/burst{round_}", json={"code": code}) for _ in range(24))
            )
        return [
            r.json()["data"]["valid"] if r.status_code == 200 else r.status_code for r in replies
        ]

    outcomes = asyncio.run(burst())
    assert outcomes.count(True) == 1
    assert outcomes.count(400) == len(outcomes) - 1
