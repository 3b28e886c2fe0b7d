"""Revocation, CRLs (checked by ``openssl crl``), the OCSP responder (checked by
``openssl ocsp``), tidy, and CRL numbering under concurrent requests."""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import time
from pathlib import Path
from typing import Any

import httpx
import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.engines.pki.helpers import openssl, root, write
from tests.serverproc import ServerProcess


def pem_cert(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(text.encode())


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def fetch_crl(base: str, path: str = "crl") -> x509.CertificateRevocationList:
    response = httpx.get(f"{base}/{path}")
    assert response.status_code == 200, response.text
    return x509.load_der_x509_crl(response.content)


def _setup(client: hvac.Client, mount: str) -> dict[str, Any]:
    ca = root(client, mount)
    write(client, f"{mount}/roles/r", allow_any_name=True, key_type="ec")
    return ca


def test_revoke_appears_in_crl_and_openssl_lists_it(
    client: hvac.Client, mount: str, tmp_path: Path
) -> None:
    ca = _setup(client, mount)
    base = f"{client.url}/v1/{mount}"
    first = fetch_crl(base)
    assert len(list(first)) == 0
    leaf = write(client, f"{mount}/issue/r", common_name="gone.test", ttl="1h")
    revoked = write(client, f"{mount}/revoke", serial_number=leaf["serial_number"])
    assert revoked["state"] == "revoked" and revoked["revocation_time"] > 0
    # idempotent: the same time again
    assert write(client, f"{mount}/revoke", serial_number=leaf["serial_number"]) == revoked
    crl = fetch_crl(base)
    assert crl_number(crl) > crl_number(first)
    serial = pem_cert(leaf["certificate"]).serial_number
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.is_signature_valid(pem_cert(ca["certificate"]).public_key())  # type: ignore[arg-type]

    pem = httpx.get(f"{base}/crl/pem")
    assert pem.headers["content-type"] == "application/x-pem-file"
    (tmp_path / "crl.pem").write_text(pem.text)
    (tmp_path / "ca.pem").write_text(ca["certificate"] + "\n")
    text = openssl("crl", "-in", str(tmp_path / "crl.pem"), "-text", "-noout")
    assert text.returncode == 0, text.stderr
    assert f"{serial:X}" in text.stdout.replace(":", "").upper()
    check = openssl(
        "crl", "-in", str(tmp_path / "crl.pem"), "-CAfile", str(tmp_path / "ca.pem"), "-noout"
    )
    assert "verify OK" in check.stdout + check.stderr

    issuer_crl = client.read(f"{mount}/issuer/default/crl")["data"]["crl"]
    assert issuer_crl.startswith("-----BEGIN X509 CRL-----")
    der = httpx.get(f"{base}/issuer/default/crl/der")
    assert der.headers["content-type"] == "application/pkix-crl"
    assert list(revoked_serials(x509.load_der_x509_crl(der.content))) == [serial]
    listing = client.list(f"{mount}/certs/revoked")["data"]["keys"]
    assert listing == [leaf["serial_number"]]
    info = client.secrets.pki.read_certificate(leaf["serial_number"], mount_point=mount)["data"]
    assert info["revocation_time"] == revoked["revocation_time"]
    assert info["issuer_id"] == ca["issuer_id"]


def revoked_serials(crl: x509.CertificateRevocationList) -> list[int]:
    return [entry.serial_number for entry in crl]


def test_revoke_by_certificate_and_with_key(client: hvac.Client, mount: str) -> None:
    ca = _setup(client, mount)
    a = write(client, f"{mount}/issue/r", common_name="a.test", ttl="1h")
    b = write(client, f"{mount}/issue/r", common_name="b.test", ttl="1h")
    write(client, f"{mount}/revoke", certificate=a["certificate"])
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        write(
            client,
            f"{mount}/revoke-with-key",
            serial_number=b["serial_number"],
            private_key=a["private_key"],
        )
    assert "private key" in str(info.value)
    assert a["private_key"] not in str(info.value)
    write(
        client,
        f"{mount}/revoke-with-key",
        serial_number=b["serial_number"],
        private_key=b["private_key"],
    )
    keys = set(client.list(f"{mount}/certs/revoked")["data"]["keys"])
    assert keys == {a["serial_number"], b["serial_number"]}
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        write(client, f"{mount}/revoke", serial_number=ca["serial_number"])
    assert "to its own CRL is not allowed" in str(info.value)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        write(client, f"{mount}/revoke", serial_number="zz:not:hex")


def test_delta_crl_and_config(client: hvac.Client, mount: str) -> None:
    _setup(client, mount)
    base = f"{client.url}/v1/{mount}"
    config = write(
        client, f"{mount}/config/crl", enable_delta=True, auto_rebuild=True, expiry="48h"
    )
    assert config["enable_delta"] is True and config["expiry"] == "48h"
    assert client.read(f"{mount}/config/crl")["data"]["auto_rebuild"] is True
    full_before = fetch_crl(base)
    leaf = write(client, f"{mount}/issue/r", common_name="d.test", ttl="1h")
    write(client, f"{mount}/revoke", serial_number=leaf["serial_number"])
    serial = pem_cert(leaf["certificate"]).serial_number
    delta = fetch_crl(base, "crl/delta")
    indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
    assert indicator.crl_number == crl_number(full_before)
    assert revoked_serials(delta) == [serial]
    # auto_rebuild: the full CRL waits for its schedule (or crl/rotate)
    assert revoked_serials(fetch_crl(base)) == []
    assert write(client, f"{mount}/crl/rotate") == {"success": True}
    full = fetch_crl(base)
    assert revoked_serials(full) == [serial]
    assert write(client, f"{mount}/crl/rotate-delta") == {"success": True}
    assert revoked_serials(fetch_crl(base, "crl/delta")) == []
    next_update = full.next_update_utc
    assert next_update is not None
    assert abs((next_update - full.last_update_utc).total_seconds() - 48 * 3600) < 5
    with pytest.raises(hvac.exceptions.InvalidRequest):
        write(client, f"{mount}/config/crl", expiry="soon")


def _ocsp(tmp_path: Path, base: str, ca: str, leaf: str) -> str:
    (tmp_path / "ca.pem").write_text(ca + "\n")
    (tmp_path / "leaf.pem").write_text(leaf + "\n")
    result = openssl(
        "ocsp",
        "-issuer",
        str(tmp_path / "ca.pem"),
        "-cert",
        str(tmp_path / "leaf.pem"),
        "-url",
        f"{base}/ocsp",
        "-CAfile",
        str(tmp_path / "ca.pem"),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Response verify OK" in output
    assert "nonce" not in output.lower()  # openssl warns when the nonce is not echoed
    return output


def test_ocsp_good_then_revoked_with_openssl(
    client: hvac.Client, mount: str, tmp_path: Path
) -> None:
    ca = _setup(client, mount)
    base = f"{client.url}/v1/{mount}"
    leaf = write(client, f"{mount}/issue/r", common_name="o.test", ttl="1h")
    assert "leaf.pem: good" in _ocsp(tmp_path, base, ca["certificate"], leaf["certificate"])
    write(client, f"{mount}/revoke", serial_number=leaf["serial_number"])
    assert "leaf.pem: revoked" in _ocsp(tmp_path, base, ca["certificate"], leaf["certificate"])


def test_ocsp_get_form_unknown_and_malformed(client: hvac.Client, mount: str) -> None:
    ca = _setup(client, mount)
    base = f"{client.url}/v1/{mount}"
    ca_cert = pem_cert(ca["certificate"])
    leaf = pem_cert(
        write(client, f"{mount}/issue/r", common_name="g.test", ttl="1h")["certificate"]
    )
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, ca_cert, hashes.SHA256())
        .add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False)
        .build()
    )
    encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
    answer = httpx.get(f"{base}/ocsp/{encoded.replace('/', '%2F')}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/ocsp-response"
    parsed = ocsp.load_der_ocsp_response(answer.content)
    assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD
    nonce = parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce == b"0123456789abcdef"

    # a serial this mount never issued: unknown
    stranger = x509.CertificateBuilder  # noqa: F841 (documenting intent)
    unknown_req = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, 12345, hashes.SHA256()
        )
        .build()
    )
    answer = httpx.post(
        f"{base}/ocsp",
        content=unknown_req.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
    )
    assert (
        ocsp.load_der_ocsp_response(answer.content).certificate_status
        == ocsp.OCSPCertStatus.UNKNOWN
    )
    bad = httpx.post(
        f"{base}/ocsp",
        content=b"\x30\x03junk",
        headers={"Content-Type": "application/ocsp-request"},
    )
    assert bad.status_code == 400
    status = ocsp.load_der_ocsp_response(bad.content).response_status
    assert status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_tidy_removes_expired_certificates(client: hvac.Client, mount: str) -> None:
    _setup(client, mount)
    past = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=10)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    expired = write(client, f"{mount}/issue/r", common_name="old.test", not_after=past)
    live = write(client, f"{mount}/issue/r", common_name="new.test", ttl="1h")
    write(client, f"{mount}/revoke", serial_number=live["serial_number"])
    response = client.adapter.post(
        f"/v1/{mount}/tidy",
        json={"tidy_cert_store": True, "tidy_revoked_certs": True, "safety_buffer": "1s"},
    )
    assert response.status_code == 202
    deadline = time.monotonic() + 20
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.read(f"{mount}/tidy-status")["data"]
        if status["state"] != "Running":
            break
        time.sleep(0.05)
    assert status["state"] == "Finished", status
    assert status["cert_store_deleted_count"] == 1
    serials = client.list(f"{mount}/certs")["data"]["keys"]
    assert expired["serial_number"] not in serials
    assert live["serial_number"] in serials
    assert client.list(f"{mount}/certs/revoked")["data"]["keys"] == [live["serial_number"]]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        write(client, f"{mount}/tidy-cancel")
    auto = write(
        client,
        f"{mount}/config/auto-tidy",
        enabled=True,
        interval_duration="1h",
        tidy_cert_store=True,
    )
    assert auto["enabled"] is True and auto["interval_duration"] == 3600


def test_config_urls_and_aia_templating(client: hvac.Client, mount: str) -> None:
    ca = _setup(client, mount)
    write(
        client,
        f"{mount}/config/cluster",
        path="https://pki.example.net/v1/x",
        aia_path="http://aia.example.net/v1/x",
    )
    urls = write(
        client,
        f"{mount}/config/urls",
        issuing_certificates="{{cluster_aia_path}}/issuer/{{issuer_id}}/der",
        crl_distribution_points="{{cluster_aia_path}}/issuer/{{issuer_id}}/crl/der",
        ocsp_servers="{{cluster_path}}/ocsp",
        enable_templating=True,
    )
    assert urls["enable_templating"] is True
    leaf = pem_cert(
        write(client, f"{mount}/issue/r", common_name="aia.test", ttl="1h")["certificate"]
    )
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    locations = {d.access_method.dotted_string: d.access_location.value for d in aia}
    assert (
        locations["1.3.6.1.5.5.7.48.2"]
        == f"http://aia.example.net/v1/x/issuer/{ca['issuer_id']}/der"
    )
    assert locations["1.3.6.1.5.5.7.48.1"] == "https://pki.example.net/v1/x/ocsp"
    cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value.endswith(f"/issuer/{ca['issuer_id']}/crl/der")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        write(
            client,
            f"{mount}/config/urls",
            ocsp_servers="{{cluster_path}}/ocsp",
            enable_templating=False,
        )


@pytest.mark.parametrize("round_", range(8))
def test_concurrent_revocations_and_rotations_number_crls_atomically(
    dev_server: ServerProcess, client: hvac.Client, mount: str, round_: int
) -> None:
    _setup(client, mount)
    base = f"{client.url}/v1/{mount}"
    leaves = [
        write(client, f"{mount}/issue/r", common_name=f"c{i}.test", ttl="1h") for i in range(6)
    ]
    start = crl_number(fetch_crl(base))
    headers = {"X-Vault-Token": dev_server.root_token}

    def call(job: tuple[str, dict[str, str]]) -> int:
        path, body = job
        status = httpx.post(f"{base}/{path}", json=body, headers=headers, timeout=30).status_code
        if path == "revoke" and status == 200:
            # the revocation is on the CRL as soon as its request has returned
            serial = int(body["serial_number"].replace(":", ""), 16)
            if serial not in revoked_serials(fetch_crl(base)):
                return -1
        return status

    jobs = [("revoke", {"serial_number": leaf["serial_number"]}) for leaf in leaves]
    jobs += [("crl/rotate", {})] * 6
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        codes = list(pool.map(call, jobs))
    assert codes == [200] * len(jobs)
    final = fetch_crl(base)
    # every rotation built a CRL with its own number; revocations may share rebuilds
    assert start + 6 <= crl_number(final) <= start + len(jobs)
    expected = {pem_cert(leaf["certificate"]).serial_number for leaf in leaves}
    assert set(revoked_serials(final)) == expected


def _wait_tidy(client: hvac.Client, mount: str, states: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.read(f"{mount}/tidy-status")["data"]
        if status["state"] in states:
            return status
        time.sleep(0.05)
    raise AssertionError(f"tidy stayed {status.get('state')}")


def test_tidy_cancel_and_expired_issuers(client: hvac.Client, mount: str) -> None:
    _setup(client, mount)
    for i in range(5):
        write(client, f"{mount}/issue/r", common_name=f"t{i}.test", ttl="1h")
    # slow enough to be caught running: 1 s between certificates
    response = client.adapter.post(
        f"/v1/{mount}/tidy", json={"tidy_cert_store": True, "pause_duration": "1s"}
    )
    assert response.status_code == 202
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        client.adapter.post(f"/v1/{mount}/tidy", json={"tidy_cert_store": True})
    assert "already in progress" in str(info.value)
    cancelling = write(client, f"{mount}/tidy-cancel")
    assert cancelling["state"] == "Cancelling"
    assert _wait_tidy(client, mount, ("Cancelled",))["cert_store_deleted_count"] == 0

    # an issuer that expired longer ago than issuer_safety_buffer is removed, not the default
    past = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    old = write(
        client,
        f"{mount}/root/rotate/internal",
        common_name="Old Root",
        key_type="ec",
        not_after=past,
        not_before_duration="60s",
    )
    assert old["issuer_id"] in client.list(f"{mount}/issuers")["data"]["keys"]
    client.adapter.post(
        f"/v1/{mount}/tidy", json={"tidy_expired_issuers": True, "issuer_safety_buffer": "1s"}
    )
    assert _wait_tidy(client, mount, ("Finished", "Error"))["state"] == "Finished"
    assert old["issuer_id"] not in client.list(f"{mount}/issuers")["data"]["keys"]
    assert len(client.list(f"{mount}/issuers")["data"]["keys"]) == 1
