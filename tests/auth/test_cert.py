"""cert driven directly: a throwaway PKI made here, certificates presented the way the TLS
listener hands them over (Connection.peer_cert_der / peer_chain_der)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from strongroom.auth import cert
from strongroom.clock import FakeClock
from strongroom.errors import InvalidRequest, PermissionDenied
from tests.auth.conftest import AuthCaller, MakeAuth
from tests.auth.helpers import Issued, issue, make_ca, make_crl

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=time.time())  # the certificates below are valid around now


@dataclasses.dataclass
class PKI:
    ca: Issued
    other_ca: Issued
    intermediate: Issued
    alice: Issued
    bob: Issued
    stranger: Issued
    deep: Issued  # issued by the intermediate


@pytest.fixture(scope="module")
def pki() -> PKI:
    ca = make_ca("root-ca")
    other = make_ca("other-ca")
    intermediate = make_ca("intermediate-ca", issuer=ca)
    alice = issue(
        ca,
        "alice",
        sans=[
            x509.DNSName("alice.example.com"),
            x509.RFC822Name("alice@example.com"),
            x509.UniformResourceIdentifier("spiffe://cluster.local/ns/apps/sa/web"),
        ],
    )
    return PKI(
        ca=ca,
        other_ca=other,
        intermediate=intermediate,
        alice=alice,
        bob=issue(ca, "bob"),
        stranger=issue(other, "alice"),
        deep=issue(intermediate, "deep"),
    )


@pytest.fixture
async def ct(make_auth: MakeAuth, pki: PKI) -> AuthCaller:
    caller = await make_auth(cert.factory, "cert")
    await caller.write("certs/web", {"certificate": pki.ca.pem, "token_policies": "web"})
    return caller


async def cert_login(caller: AuthCaller, who: Issued, name: str = "", **kwargs: Any):
    data = {"name": name} if name else {}
    return await caller.login("login", data, peer_cert_der=who.der, **kwargs)


async def test_login_with_a_certificate_from_a_trusted_ca(ct: AuthCaller, pki: PKI) -> None:
    auth = await cert_login(ct, pki.alice)
    assert auth.alias_name == "alice" and auth.display_name == "web"
    assert auth.policies == ("web",)
    assert auth.metadata["cert_name"] == "web" and auth.metadata["common_name"] == "alice"
    assert auth.metadata["serial_number"] == str(pki.alice.cert.serial_number)
    assert auth.metadata["authority_key_id"] and auth.metadata["subject_key_id"]
    assert len(auth.internal_data["fingerprint"]) == 64
    with pytest.raises(InvalidRequest, match="client certificate must be supplied"):
        await ct.login("login", {})
    with pytest.raises(InvalidRequest, match="no chain matching"):
        await cert_login(ct, pki.stranger)  # same CN, untrusted CA


async def test_pinned_certificate_matches_the_whole_certificate(
    make_auth: MakeAuth, pki: PKI
) -> None:
    caller = await make_auth(cert.factory, "cert")
    await caller.write("certs/pinned", {"certificate": pki.bob.pem})
    assert (await cert_login(caller, pki.bob)).alias_name == "bob"
    # the same key, subject, issuer and serial, re-issued with another SAN: a different
    # certificate, refused (matching on key or serial alone would accept it)
    original = pki.bob.cert
    twin = (
        x509.CertificateBuilder()
        .subject_name(original.subject)
        .issuer_name(original.issuer)
        .public_key(original.public_key())
        .serial_number(original.serial_number)
        .not_valid_before(original.not_valid_before_utc)
        .not_valid_after(original.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("admin.example.com")]), False)
        .sign(pki.ca.key, hashes.SHA256())
    )
    for candidate in (Issued(twin, pki.bob.key), pki.alice):
        with pytest.raises(InvalidRequest, match="no chain matching"):
            await cert_login(caller, candidate)


async def test_name_constraints_and_spiffe_ids(ct: AuthCaller, pki: PKI) -> None:
    cases: list[tuple[dict[str, Any], bool]] = [
        ({"allowed_common_names": "ali*"}, True),
        ({"allowed_common_names": "bob"}, False),
        ({"allowed_dns_sans": "*.EXAMPLE.com"}, True),
        ({"allowed_dns_sans": "*.example.org"}, False),
        ({"allowed_email_sans": "*@example.com"}, True),
        ({"allowed_uri_sans": "spiffe://cluster.local/ns/*/sa/web"}, True),
        ({"allowed_uri_sans": "spiffe://cluster.local/ns/apps/sa/db"}, False),
        ({"allowed_names": "alice.example.com"}, True),
        ({"allowed_organizational_units": "eng"}, False),
    ]
    for i, (constraint, accepted) in enumerate(cases):
        await ct.write(f"certs/c{i}", {"certificate": pki.ca.pem, **constraint})
        if accepted:
            assert (await cert_login(ct, pki.alice, f"c{i}")).metadata["cert_name"] == f"c{i}"
        else:
            with pytest.raises(InvalidRequest, match="no chain matching"):
                await cert_login(ct, pki.alice, f"c{i}")
    with pytest.raises(InvalidRequest, match="no chain matching"):
        await cert_login(ct, pki.bob, "c0")


async def test_intermediates_eku_and_expiry(ct: AuthCaller, pki: PKI, clock) -> None:
    chain = (pki.deep.der, pki.intermediate.der)
    assert (await cert_login(ct, pki.deep, peer_chain_der=chain)).alias_name == "deep"
    with pytest.raises(InvalidRequest, match="no chain matching"):
        await cert_login(ct, pki.deep)  # the intermediate is missing
    await ct.write("certs/web", {"certificate": pki.ca.pem + pki.intermediate.pem})
    assert (await cert_login(ct, pki.deep)).alias_name == "deep"
    server_only = issue(pki.ca, "svc", server=True)
    with pytest.raises(InvalidRequest, match="no chain matching"):
        await cert_login(ct, server_only)  # extended key usage: serverAuth only
    clock.advance(2 * 86400)
    with pytest.raises(InvalidRequest, match="no chain matching"):
        await cert_login(ct, pki.alice)


async def test_crls_revoke_and_are_readable(ct: AuthCaller, pki: PKI) -> None:
    await ct.write("crls/root", {"crl": make_crl(pki.ca, pki.bob)})
    with pytest.raises(InvalidRequest, match="no chain matching"):
        await cert_login(ct, pki.bob)
    await cert_login(ct, pki.alice)
    read = await ct.read("crls/root")
    assert read is not None and read.data == {"serials": {str(pki.bob.cert.serial_number): {}}}
    listed = await ct.list("crls/")
    assert listed is not None and listed.data == {"keys": ["root"]}
    # a CRL from another issuer listing the same serial does not revoke it
    await ct.delete("crls/root")
    await ct.write("crls/other", {"crl": make_crl(pki.other_ca, pki.bob)})
    await cert_login(ct, pki.bob)
    with pytest.raises(InvalidRequest, match="url"):
        await ct.write("crls/remote", {"url": "http://crl.example/ca.crl"})
    with pytest.raises(InvalidRequest, match="CRL"):
        await ct.write("crls/bad", {"crl": "not a crl"})


async def test_crls_are_loaded_at_initialize_not_on_first_use(
    ct: AuthCaller, pki: PKI, make_auth: MakeAuth
) -> None:
    await ct.write("crls/root", {"crl": make_crl(pki.ca, pki.bob)})
    # a backend for the same mount, as after an unseal: initialize() loads the CRLs ...
    restarted = await make_auth(cert.factory, "cert")
    reads: list[str] = []
    original_get = restarted.storage.get

    async def recording_get(key: str) -> bytes | None:
        reads.append(key)
        return await original_get(key)

    restarted.storage.get = recording_get  # type: ignore[method-assign]
    with pytest.raises(InvalidRequest, match="no chain matching"):
        await cert_login(restarted, pki.bob)
    # ... and logins never read (or lazily load) them from storage
    assert reads and not any(key.startswith("crls/") for key in reads)
    restarted.storage.get = original_get  # type: ignore[method-assign]
    # a backend that was never initialized knows no CRL: loading is initialize()'s job
    never = await make_auth(cert.factory, "cert", initialize=False)
    assert (await cert_login(never, pki.bob)).alias_name == "bob"


async def test_renewal_requires_the_same_certificate(ct: AuthCaller, pki: PKI) -> None:
    auth = await cert_login(ct, pki.alice)
    renewed = await ct.renew(auth, peer_cert_der=pki.alice.der)
    assert renewed.renewable
    with pytest.raises(PermissionDenied, match="not matching"):
        await ct.renew(auth, peer_cert_der=pki.bob.der)  # trusted too, but not the same
    with pytest.raises(InvalidRequest, match="must be supplied"):
        await ct.renew(auth)
    await ct.write("crls/root", {"crl": make_crl(pki.ca, pki.alice)})
    with pytest.raises(PermissionDenied, match="no chain matching"):
        await ct.renew(auth, peer_cert_der=pki.alice.der)  # revoked since login
    await ct.write("config", {"disable_binding": True})
    await ct.renew(auth)
    config = await ct.read("config")
    assert config is not None and config.data["disable_binding"] is True
    await ct.write("certs/web", {"token_policies": "other"})
    with pytest.raises(InvalidRequest, match="policies have changed"):
        await ct.renew(auth)


async def test_entry_validation_and_crud(ct: AuthCaller, pki: PKI) -> None:
    read = await ct.read("certs/web")
    assert read is not None and read.data["certificate"] == pki.ca.pem
    assert read.data["token_policies"] == ["web"]
    with pytest.raises(InvalidRequest, match="missing certificate"):
        await ct.write("certs/new", {"display_name": "x"})
    with pytest.raises(InvalidRequest, match="PEM certificates"):
        await ct.write("certs/new", {"certificate": "nope"})
    for unsupported in (
        {"ocsp_enabled": True},
        {"required_extensions": "1.2.3:x"},
        {"allowed_metadata_extensions": "1.2.3"},
    ):
        with pytest.raises(InvalidRequest, match="not supported"):
            await ct.write("certs/web", unsupported)
    await ct.write("certs/web", {"token_bound_cidrs": "10.0.0.0/8"})
    with pytest.raises(PermissionDenied):
        await cert_login(ct, pki.alice)
    await cert_login(ct, pki.alice, remote_addr="10.0.0.9")
    listed = await ct.list("certs/")
    assert listed is not None and listed.data == {"keys": ["web"]}
    await ct.delete("certs/web")
    with pytest.raises(InvalidRequest, match="no chain matching"):
        await cert_login(ct, pki.alice, remote_addr="10.0.0.9")
