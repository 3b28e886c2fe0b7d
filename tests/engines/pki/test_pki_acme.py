"""The ACME server (RFC 8555) through a small test client: directories, nonces, accounts,
orders with DNS and IP identifiers, http-01 and tls-alpn-01, finalize, download,
revocation, key change, EAB, rate limits and the problem documents for bad requests."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hvac
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey, RSAKey

from tests.engines.pki.acme_client import (
    AcmeClient,
    b64url,
    dns01_value,
    dns_responder,
    http01_responder,
    make_csr,
    tls_alpn_responder,
)
from tests.engines.pki.helpers import root, verify, write
from tests.serverproc import ServerProcess, free_port

PROBLEM = "urn:ietf:params:acme:error:"


@dataclass
class Acme:
    client: hvac.Client
    mount: str
    base: str  # .../v1/<mount>
    ca: dict[str, Any]
    http01_port: int
    alpn_port: int

    def directory(self, prefix: str = "") -> str:
        return f"{self.base}/{prefix}acme/directory"


@pytest.fixture
def acme(client: hvac.Client, dev_server: ServerProcess) -> Iterator[Acme]:
    mount = f"pki-acme-{uuid.uuid4().hex[:8]}"
    http01_port, alpn_port = free_port(), free_port()
    client.sys.enable_secrets_engine(
        "pki",
        path=mount,
        options={"acme_http01_port": str(http01_port), "acme_tls_alpn01_port": str(alpn_port)},
    )
    try:
        ca = root(client, mount)
        base = f"{dev_server.addr}/v1/{mount}"
        write(client, f"{mount}/config/cluster", path=base)
        write(client, f"{mount}/config/acme", enabled=True)
        yield Acme(client, mount, base, ca, http01_port, alpn_port)
    finally:
        client.sys.disable_secrets_engine(mount)


def problem(response: httpx.Response, kind: str, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers.get("Replay-Nonce")
    body = response.json()
    assert body["type"] == PROBLEM + kind, body
    return body


def test_directory_nonce_and_headers(acme: Acme) -> None:
    directory = httpx.get(acme.directory())
    assert directory.status_code == 200
    body = directory.json()
    for name in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"):
        assert body[name].startswith(f"{acme.base}/acme/")
    assert body["meta"]["externalAccountRequired"] is False
    assert f'<{acme.base}/acme/directory>;rel="index"' in directory.headers["Link"]
    head = httpx.head(body["newNonce"])
    assert head.status_code == 200 and head.headers["Replay-Nonce"]
    assert head.headers["Cache-Control"] == "no-store"
    write(acme.client, f"{acme.mount}/roles/web", allow_any_name=True, key_type="any")
    scoped = httpx.get(acme.directory("issuer/default/roles/web/")).json()
    assert scoped["newOrder"] == f"{acme.base}/issuer/default/roles/web/acme/new-order"
    assert httpx.get(acme.directory("roles/web/")).status_code == 200
    problem(httpx.get(acme.directory("roles/nope/")), "malformed", 404)
    # new-eab needs a token even though the ACME endpoints do not
    assert httpx.post(f"{acme.base}/acme/new-eab").status_code == 403
    write(acme.client, f"{acme.mount}/config/acme", enabled=False)
    problem(httpx.get(acme.directory()), "unauthorized", 403)


def _order(
    acme: Acme, client: AcmeClient, identifiers: list[dict[str, str]], prefix: str = ""
) -> tuple[str, dict[str, Any]]:
    response = client.post(client.directory["newOrder"], {"identifiers": identifiers})
    assert response.status_code == 201, response.text
    return response.headers["Location"], response.json()


def test_http01_order_dns_and_ip_then_revoke(acme: Acme, tmp_path: Path) -> None:
    client = AcmeClient(acme.directory())
    created = client.register(contact=["mailto:ops@example.com"])
    assert created.status_code == 201
    assert created.json()["status"] == "valid"
    assert client.register().status_code == 200  # same key: the existing account
    identifiers = [{"type": "dns", "value": "localhost"}, {"type": "ip", "value": "127.0.0.1"}]
    order_url, order = _order(acme, client, identifiers)
    assert order["status"] == "pending" and len(order["authorizations"]) == 2
    answers: dict[str, str] = {}
    with http01_responder(acme.http01_port, answers):
        for authz_url in order["authorizations"]:
            authz = client.post(authz_url).json()
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            kinds = {c["type"] for c in authz["challenges"]}
            if authz["identifier"]["type"] == "ip":  # RFC 8738: no dns-01 for addresses
                assert kinds == {"http-01", "tls-alpn-01"}
            else:
                assert kinds == {"http-01", "tls-alpn-01", "dns-01"}
            answers[challenge["token"]] = client.key_authorization(challenge["token"])
            reply = client.post(challenge["url"], {})
            assert reply.status_code == 200
            assert f'<{authz_url}>;rel="up"' in reply.headers["Link"]
        for authz_url in order["authorizations"]:
            assert client.wait(authz_url, ("valid", "invalid"))["status"] == "valid"
    assert client.wait(order_url, ("ready",))["status"] == "ready"
    csr, key = make_csr(["localhost"], ["127.0.0.1"])
    # a CSR naming something else is refused, and the order stays ready
    wrong, _ = make_csr(["other.test"])
    problem(client.post(order["finalize"], {"csr": b64url(wrong)}), "badCSR", 400)
    final = client.post(order["finalize"], {"csr": b64url(csr)})
    assert final.status_code == 200, final.text
    assert final.json()["status"] == "valid"
    chain = client.post(final.json()["certificate"])
    assert chain.headers["content-type"] == "application/pem-certificate-chain"
    certs = x509.load_pem_x509_certificates(chain.content)
    leaf = certs[0]
    assert leaf.public_key() == key.public_key()
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    verify(tmp_path, acme.ca["certificate"], leaf.public_bytes(serialization.Encoding.PEM).decode())
    orders = client.post(f"{client.kid}/orders").json()["orders"]
    assert orders == [order_url]

    der = leaf.public_bytes(serialization.Encoding.DER)
    other = AcmeClient(acme.directory())
    other.register()
    problem(
        other.post(client.directory["revokeCert"], {"certificate": b64url(der)}),
        "unauthorized",
        403,
    )
    revoked = client.post(client.directory["revokeCert"], {"certificate": b64url(der)})
    assert revoked.status_code == 200, revoked.text
    problem(
        client.post(client.directory["revokeCert"], {"certificate": b64url(der)}),
        "alreadyRevoked",
        400,
    )
    serial = ":".join(f"{b:02x}" for b in leaf.serial_number.to_bytes(20, "big").lstrip(b"\0"))
    assert serial in acme.client.list(f"{acme.mount}/certs/revoked")["data"]["keys"]


def test_tls_alpn01_and_failed_challenge(acme: Acme, tmp_path: Path) -> None:
    client = AcmeClient(acme.directory())
    client.register()
    order_url, order = _order(acme, client, [{"type": "dns", "value": "localhost"}])
    authz_url = order["authorizations"][0]
    authz = client.post(authz_url).json()
    challenge = next(c for c in authz["challenges"] if c["type"] == "tls-alpn-01")
    with tls_alpn_responder(
        acme.alpn_port, "localhost", client.key_authorization(challenge["token"]), tmp_path
    ):
        client.post(challenge["url"], {})
        assert client.wait(authz_url, ("valid", "invalid"))["status"] == "valid"
    assert client.wait(order_url, ("ready",))["status"] == "ready"

    # nobody answers this one: the authorization and the order become invalid
    order_url, order = _order(acme, client, [{"type": "dns", "value": "localhost"}])
    authz_url = order["authorizations"][0]
    authz = client.post(authz_url).json()
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    client.post(challenge["url"], {})
    failed = client.wait(authz_url, ("valid", "invalid"))
    assert failed["status"] == "invalid"
    error = next(c for c in failed["challenges"] if c["type"] == "http-01")["error"]
    assert error["type"].startswith(PROBLEM)
    assert client.wait(order_url, ("invalid",))["status"] == "invalid"
    csr, _ = make_csr(["localhost"])
    problem(client.post(order["finalize"], {"csr": b64url(csr)}), "orderNotReady", 403)


def test_malformed_jws_reused_nonce_and_wrong_key(acme: Acme) -> None:
    client = AcmeClient(acme.directory())
    client.register()
    url = client.directory["newOrder"]
    problem(httpx.post(url, json={"hello": "world"}), "malformed", 400)
    problem(
        httpx.post(url, json={"protected": "!!", "payload": "", "signature": ""}), "malformed", 400
    )
    nonce = client.nonce()
    first = client.post(url, {"identifiers": [{"type": "dns", "value": "localhost"}]}, nonce=nonce)
    assert first.status_code == 201
    problem(
        client.post(url, {"identifiers": [{"type": "dns", "value": "localhost"}]}, nonce=nonce),
        "badNonce",
        400,
    )
    problem(client.post(url, {"identifiers": []}, nonce="made-up"), "badNonce", 400)
    # the account's kid, signed by another key
    intruder = ECKey.generate_key("P-256")
    problem(client.post(url, {"identifiers": []}, key=intruder), "unauthorized", 403)
    problem(
        client.post(url, None, kid=f"{acme.base}/acme/account/{uuid.uuid4()}"),
        "accountDoesNotExist",
        400,
    )
    problem(
        client.post(url, None, header={"url": f"{acme.base}/acme/elsewhere"}), "unauthorized", 403
    )
    unsigned = {
        "protected": b64url(
            json.dumps(
                {"alg": "none", "nonce": client.nonce(), "url": url, "kid": client.kid}
            ).encode()
        ),
        "payload": "",
        "signature": "",
    }
    problem(httpx.post(url, json=unsigned), "badSignatureAlgorithm", 400)
    problem(
        client.post(url, {"identifiers": [{"type": "email", "value": "a@b"}]}),
        "unsupportedIdentifier",
        400,
    )
    problem(
        client.post(url, {"identifiers": [{"type": "dns", "value": "bad..name"}]}),
        "rejectedIdentifier",
        400,
    )
    # new-account must carry a jwk; other requests must carry a kid
    problem(client.post(client.directory["newAccount"], {}), "malformed", 400)
    problem(client.post(url, None, use_jwk=True), "malformed", 400)
    # unknown key with onlyReturnExisting
    stranger = AcmeClient(acme.directory())
    problem(stranger.register(onlyReturnExisting=True), "accountDoesNotExist", 400)


def test_role_directory_rejects_names_the_role_forbids(acme: Acme) -> None:
    write(
        acme.client,
        f"{acme.mount}/roles/narrow",
        allowed_domains="example.com",
        allow_subdomains=True,
        allow_ip_sans=False,
    )
    client = AcmeClient(acme.directory("roles/narrow/"))
    client.register()
    url = client.directory["newOrder"]
    problem(
        client.post(url, {"identifiers": [{"type": "dns", "value": "localhost.evil"}]}),
        "rejectedIdentifier",
        400,
    )
    problem(
        client.post(url, {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]}),
        "rejectedIdentifier",
        400,
    )
    ok = client.post(url, {"identifiers": [{"type": "dns", "value": "a.example.com"}]})
    assert ok.status_code == 201
    # accounts belong to their directory
    problem(client.post(f"{acme.base}/acme/new-order", None), "accountDoesNotExist", 400)


@pytest.mark.parametrize("round_", range(10))
def test_a_nonce_is_single_use_under_a_concurrent_burst(acme: Acme, round_: int) -> None:
    probe = AcmeClient(acme.directory())
    nonce = probe.nonce()
    clients = [AcmeClient(acme.directory()) for _ in range(8)]
    bodies = [
        c.sign(c.directory["newAccount"], {"termsOfServiceAgreed": True}, nonce=nonce, use_jwk=True)
        for c in clients
    ]
    url = probe.directory["newAccount"]

    def send(body: dict[str, str]) -> int:
        return httpx.post(url, json=body, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        codes = list(pool.map(send, bodies))
    assert sorted(codes) == [201] + [400] * (len(bodies) - 1)


def test_account_update_deactivate_and_key_change(acme: Acme) -> None:
    client = AcmeClient(acme.directory())
    client.register()
    updated = client.post(client.kid, {"contact": ["mailto:new@example.com"]})
    assert updated.json()["contact"] == ["mailto:new@example.com"]
    problem(client.post(client.kid, {"contact": ["tel:123"]}), "unsupportedContact", 400)

    new_key = RSAKey.generate_key(2048)
    inner = client.sign(
        client.directory["keyChange"],
        {"account": client.kid, "oldKey": client.key.as_dict(private=False)},
        key=new_key,
        use_jwk=True,
        nonce="",
    )
    # the inner JWS must not carry a nonce: rebuild its header without one
    from joserfc import jws

    from tests.engines.pki.acme_client import REGISTRY

    inner = dict(
        jws.serialize_json(
            {
                "protected": {
                    "alg": "RS256",
                    "url": client.directory["keyChange"],
                    "jwk": new_key.as_dict(private=False),
                }
            },
            json.dumps(
                {"account": client.kid, "oldKey": client.key.as_dict(private=False)}
            ).encode(),
            new_key,
            registry=REGISTRY,
        )
    )
    changed = client.post(client.directory["keyChange"], inner)
    assert changed.status_code == 200, changed.text
    old_key = client.key
    client.key = new_key
    assert client.post(client.kid).status_code == 200
    problem(client.post(client.kid, None, key=old_key), "unauthorized", 403)
    # the old key no longer finds the account; the new one does
    again = AcmeClient(acme.directory(), key=new_key)
    assert again.register(onlyReturnExisting=True).headers["Location"] == client.kid

    deactivated = client.post(client.kid, {"status": "deactivated"})
    assert deactivated.json()["status"] == "deactivated"
    problem(
        client.post(
            client.directory["newOrder"], {"identifiers": [{"type": "dns", "value": "localhost"}]}
        ),
        "unauthorized",
        403,
    )


def test_external_account_binding(acme: Acme) -> None:
    write(acme.client, f"{acme.mount}/config/acme", eab_policy="new-account-required")
    client = AcmeClient(acme.directory())
    assert client.directory["meta"]["externalAccountRequired"] is True
    problem(client.register(), "externalAccountRequired", 400)
    eab = write(acme.client, f"{acme.mount}/acme/new-eab")
    assert eab["key_type"] == "hs" and eab["acme_directory"] == "acme/directory"
    listed = acme.client.list(f"{acme.mount}/eab")["data"]["keys"]
    assert listed == [eab["id"]]
    import base64

    hmac_key = base64.urlsafe_b64decode(eab["key"] + "=" * (-len(eab["key"]) % 4))
    bad = client.register(externalAccountBinding=client.eab(eab["id"], b"x" * 32))
    problem(bad, "unauthorized", 403)
    good = client.register(externalAccountBinding=client.eab(eab["id"], hmac_key))
    assert good.status_code == 201, good.text
    assert good.json()["externalAccountBinding"]["kid"] == eab["id"]
    # single use
    second = AcmeClient(acme.directory())
    problem(
        second.register(externalAccountBinding=second.eab(eab["id"], hmac_key)), "unauthorized", 403
    )
    assert acme.client.list(f"{acme.mount}/eab") is None


def test_rate_limit_per_ip(acme: Acme) -> None:
    write(acme.client, f"{acme.mount}/config/acme", rate_limit_per_ip=2)
    replies = [httpx.head(f"{acme.base}/acme/new-nonce") for _ in range(12)]
    assert 429 in [r.status_code for r in replies]
    assert all(r.headers["Retry-After"] == "1" for r in replies if r.status_code == 429)
    limited = httpx.get(acme.directory())
    if limited.status_code == 429:
        problem(limited, "rateLimited", 429)
    config = write(acme.client, f"{acme.mount}/config/acme", rate_limit_per_ip=0)
    assert config["rate_limit_per_ip"] == 0
    assert all(httpx.head(f"{acme.base}/acme/new-nonce").status_code == 200 for _ in range(12))


def test_config_acme_validation(acme: Acme) -> None:
    config = acme.client.read(f"{acme.mount}/config/acme")["data"]
    assert config["enabled"] is True and config["eab_policy"] == "not-required"
    for bad in (
        {"eab_policy": "sometimes"},
        {"default_directory_policy": "role:nope"},
        {"bogus": 1},
    ):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            write(acme.client, f"{acme.mount}/config/acme", **bad)
    write(acme.client, f"{acme.mount}/config/acme", default_directory_policy="forbid")
    problem(httpx.get(acme.directory()), "unauthorized", 403)


def _certbot(*args: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    certbot = Path(sys.executable).with_name("certbot")
    assert certbot.exists(), "certbot is a test dependency (pyproject's test extra)"
    return subprocess.run(
        [
            str(certbot),
            *args,
            "--non-interactive",
            "--config-dir",
            str(workdir / "config"),
            "--work-dir",
            str(workdir / "work"),
            "--logs-dir",
            str(workdir / "logs"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_certbot_obtains_and_renews_with_http01(acme: Acme, tmp_path: Path) -> None:
    obtained = _certbot(
        "certonly",
        "--standalone",
        "--preferred-challenges",
        "http",
        "--http-01-port",
        str(acme.http01_port),
        "--http-01-address",
        "127.0.0.1",
        "--server",
        acme.directory(),
        "--agree-tos",
        "--register-unsafely-without-email",
        "-d",
        "localhost",
        workdir=tmp_path,
    )
    assert obtained.returncode == 0, obtained.stdout + obtained.stderr
    live = tmp_path / "config" / "live" / "localhost"
    first = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert first.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName) == ["localhost"]
    verify(tmp_path, acme.ca["certificate"], (live / "cert.pem").read_text().strip())
    assert (live / "chain.pem").read_text().strip() == acme.ca["certificate"]

    renewed = _certbot(
        "renew",
        "--force-renewal",
        "--no-random-sleep-on-renew",
        "--cert-name",
        "localhost",
        workdir=tmp_path,
    )
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert second.serial_number != first.serial_number
    verify(tmp_path, acme.ca["certificate"], (live / "cert.pem").read_text().strip())
    serials = acme.client.list(f"{acme.mount}/certs")["data"]["keys"]
    assert len(serials) >= 3  # the root and both leaves


def test_dns01_with_configured_resolver_and_wildcards(acme: Acme) -> None:
    dns_port = free_port()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        write(acme.client, f"{acme.mount}/config/acme", dns_resolver="resolver.example")
    write(acme.client, f"{acme.mount}/config/acme", dns_resolver=f"127.0.0.1:{dns_port}")
    client = AcmeClient(acme.directory())
    client.register()
    identifiers = [{"type": "dns", "value": "acme.test"}, {"type": "dns", "value": "*.acme.test"}]
    order_url, order = _order(acme, client, identifiers)
    records: dict[str, list[str]] = {}
    authzs = [client.post(url).json() for url in order["authorizations"]]
    wildcard = next(a for a in authzs if a.get("wildcard"))
    assert wildcard["identifier"] == {"type": "dns", "value": "acme.test"}
    assert [c["type"] for c in wildcard["challenges"]] == ["dns-01"]
    plain = next(a for a in authzs if not a.get("wildcard"))
    assert {c["type"] for c in plain["challenges"]} == {"http-01", "tls-alpn-01", "dns-01"}
    with dns_responder(dns_port, records):
        for authz in authzs:
            challenge = next(c for c in authz["challenges"] if c["type"] == "dns-01")
            value = dns01_value(client.key_authorization(challenge["token"]))
            records.setdefault("_acme-challenge.acme.test", []).append(value)
        for authz in authzs:
            challenge = next(c for c in authz["challenges"] if c["type"] == "dns-01")
            client.post(challenge["url"], {})
        for url in order["authorizations"]:
            assert client.wait(url, ("valid", "invalid"))["status"] == "valid"
    assert client.wait(order_url, ("ready",))["status"] == "ready"
    csr, _ = make_csr(["acme.test", "*.acme.test"])
    final = client.post(order["finalize"], {"csr": b64url(csr)})
    assert final.status_code == 200, final.text
    leaf = x509.load_pem_x509_certificates(client.post(final.json()["certificate"]).content)[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["*.acme.test", "acme.test"]

    # a wrong TXT value fails the challenge
    order_url, order = _order(acme, client, [{"type": "dns", "value": "other.test"}])
    authz = client.post(order["authorizations"][0]).json()
    challenge = next(c for c in authz["challenges"] if c["type"] == "dns-01")
    with dns_responder(dns_port, {"_acme-challenge.other.test": ["not-it"]}):
        client.post(challenge["url"], {})
        failed = client.wait(order["authorizations"][0], ("valid", "invalid"))
    assert failed["status"] == "invalid"
    error = next(c for c in failed["challenges"] if c["type"] == "dns-01")["error"]
    assert error["type"] == PROBLEM + "dns"


def _ready_order(acme: Acme, client: AcmeClient) -> tuple[str, dict[str, Any]]:
    order_url, order = _order(acme, client, [{"type": "dns", "value": "localhost"}])
    answers: dict[str, str] = {}
    with http01_responder(acme.http01_port, answers):
        authz = client.post(order["authorizations"][0]).json()
        challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
        answers[challenge["token"]] = client.key_authorization(challenge["token"])
        client.post(challenge["url"], {})
        assert client.wait(order["authorizations"][0], ("valid", "invalid"))["status"] == "valid"
    return order_url, order


@pytest.mark.parametrize("round_", range(4))
def test_concurrent_finalize_issues_once(acme: Acme, round_: int) -> None:
    client = AcmeClient(acme.directory())
    client.register()
    order_url, order = _ready_order(acme, client)
    csr, _ = make_csr(["localhost"])
    bodies = [client.sign(order["finalize"], {"csr": b64url(csr)}) for _ in range(6)]

    def send(body: dict[str, str]) -> int:
        return httpx.post(order["finalize"], json=body, timeout=30).status_code

    before = len(acme.client.list(f"{acme.mount}/certs")["data"]["keys"])
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        codes = list(pool.map(send, bodies))
    assert sorted(codes) == [200] + [403] * (len(bodies) - 1)  # the rest: orderNotReady
    assert len(acme.client.list(f"{acme.mount}/certs")["data"]["keys"]) == before + 1
    assert client.post(order_url).json()["status"] == "valid"


def test_revoke_cert_signed_by_the_certificate_key(acme: Acme) -> None:
    client = AcmeClient(acme.directory())
    client.register()
    _, order = _ready_order(acme, client)
    csr, key = make_csr(["localhost"])
    final = client.post(order["finalize"], {"csr": b64url(csr)}).json()
    leaf = x509.load_pem_x509_certificates(client.post(final["certificate"]).content)[0]
    der = leaf.public_bytes(serialization.Encoding.DER)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_key = ECKey.import_key(pem)
    stranger = ECKey.generate_key("P-256")
    url = client.directory["revokeCert"]
    problem(
        client.post(url, {"certificate": b64url(der)}, key=stranger, use_jwk=True),
        "unauthorized",
        403,
    )
    revoked = client.post(url, {"certificate": b64url(der)}, key=cert_key, use_jwk=True)
    assert revoked.status_code == 200, revoked.text


def test_allowed_roles_and_issuers(acme: Acme) -> None:
    write(acme.client, f"{acme.mount}/roles/in", allow_any_name=True)
    write(acme.client, f"{acme.mount}/roles/out", allow_any_name=True)
    write(
        acme.client,
        f"{acme.mount}/config/acme",
        allowed_roles=["in"],
        allowed_issuers=[acme.ca["issuer_id"]],
    )
    assert httpx.get(acme.directory("roles/in/")).status_code == 200
    problem(httpx.get(acme.directory("roles/out/")), "unauthorized", 403)
    assert httpx.get(acme.directory(f"issuer/{acme.ca['issuer_id']}/")).status_code == 200
    other = root(acme.client, acme.mount, common_name="Other", issuer_name="other")
    assert other["issuer_id"] != acme.ca["issuer_id"]
    problem(httpx.get(acme.directory("issuer/other/")), "unauthorized", 403)
