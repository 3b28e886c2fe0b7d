"""Vault's special-path patterns: exact, ``*`` prefix, and ``+`` for one segment."""

from __future__ import annotations

import pytest

from strongroom.framework import glob_match


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("ca", "ca", True),
        ("ca", "ca/pem", False),
        ("cert/*", "cert/aa:bb", True),
        ("issuer/+/pem", "issuer/default/pem", True),
        ("issuer/+/pem", "issuer/a/b/pem", False),
        ("issuer/+/pem", "issuer//pem", False),
        ("issuer/+/pem", "issuer/x/pem/more", False),
        ("issuer/+/pem", "issuer/x/perm", False),
        ("issuer/+/acme/*", "issuer/x/acme/new-nonce", True),
        ("issuer/+/roles/+/acme/*", "issuer/x/roles/web/acme/directory", True),
        ("issuer/+/roles/+/acme/*", "issuer/x/roles/acme/directory", False),
        ("a.b/+", "aXb/c", False),
    ],
)
def test_glob_match(pattern: str, path: str, expected: bool) -> None:
    assert glob_match([pattern], path) is expected


def test_long_pattern_tables_match_as_the_short_path_does() -> None:
    from strongroom.engines.pki._backend import UNAUTHENTICATED_PATHS

    table = tuple(UNAUTHENTICATED_PATHS)
    assert len(table) > 8
    paths = [
        "ca",
        "ca/pem",
        "ca/pemx",
        "cert/aa:bb",
        "issuer/x/pem",
        "issuer/x/y/pem",
        "issuer/x",
        "acme/directory",
        "acme/new-eab",
        "roles/web/acme/order/1/finalize",
        "issuer/i/roles/web/acme/challenge/a/http-01",
        "issuer/i/roles/web/acme/challenge/a",
        "ocsp/AAAA/BBB",
        "roles/web",
    ]
    for path in paths:
        assert glob_match(table, path) is any(glob_match([p], path) for p in table), path
    assert glob_match(table, "acme/directory") is True
    assert glob_match(table, "acme/new-eab") is False
