"""PKI records never show private key material in ``repr`` (reprs reach logs and tracebacks)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.engines.pki._acme_protocol import AcmeProblem
from strongroom.engines.pki._crypto import load_private_key, private_pkcs8_pem
from strongroom.engines.pki._store import KeyRecord, RevokedRecord
from strongroom.errors import InvalidRequest


def test_key_record_repr_hides_the_key() -> None:
    pem = private_pkcs8_pem(ec.generate_private_key(ec.SECP256R1()))
    record = KeyRecord("id-1", "main", "ec", 256, pem)
    text = repr(record)
    assert "id-1" in text and "main" in text
    assert "PRIVATE" not in text and pem.decode().splitlines()[1] not in text
    revoked = RevokedRecord("aa:bb", b"\x30\x82secret-der", 1.0, "issuer")
    assert "secret-der" not in repr(revoked)


def test_a_bad_private_key_error_quotes_nothing() -> None:
    garbage = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXZhbHVl\n-----END PRIVATE KEY-----\n"
    try:
        load_private_key(garbage)
    except InvalidRequest as exc:
        assert "c2VjcmV0" not in str(exc)
        assert str(exc) == "could not parse the private key"
    else:
        raise AssertionError("garbage parsed as a key")


def test_problem_documents() -> None:
    problem = AcmeProblem("badNonce", "the nonce is stale")
    assert problem.document() == {
        "type": "urn:ietf:params:acme:error:badNonce",
        "detail": "the nonce is stale",
        "status": 400,
    }
