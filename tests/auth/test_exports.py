"""Each auth method package exports exactly its factory, and builtin registers every type."""

from __future__ import annotations

import importlib

import pytest

from strongroom.builtin import FACTORIES
from strongroom.logical import BackendKind
from tests.auth.conftest import MakeAuth

pytestmark = pytest.mark.anyio

PACKAGES = ["userpass", "approle", "jwt", "kubernetes", "cert"]


@pytest.mark.parametrize("name", PACKAGES)
def test_exported_members(name: str) -> None:
    package = importlib.import_module(f"strongroom.auth.{name}")
    assert package.__all__ == ["factory"]
    assert callable(package.factory)


def test_builtin_registers_every_auth_type() -> None:
    for name in PACKAGES:
        package = importlib.import_module(f"strongroom.auth.{name}")
        assert FACTORIES[name] is package.factory
    assert FACTORIES["oidc"] is FACTORIES["jwt"]


@pytest.mark.parametrize("name", [*PACKAGES, "oidc"])
async def test_backends_are_auth_backends_with_login_unauthenticated(
    name: str, make_auth: MakeAuth
) -> None:
    caller = await make_auth(FACTORIES[name], name)
    backend = caller.backend
    assert backend.kind is BackendKind.AUTH
    login = "login/someone" if name == "userpass" else "login"
    assert any(
        login == pattern or (pattern.endswith("*") and login.startswith(pattern[:-1]))
        for pattern in backend.unauthenticated_paths
    )
    # nothing but login (and the OIDC stubs) is reachable without a token
    for pattern in backend.unauthenticated_paths:
        assert pattern.startswith(("login", "oidc/"))
    assert "login" in backend.secrets  # the renewal hook
