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
