"""Login MFA (Vault 1.10+ API) over HTTP against a real dev server: TOTP methods, entity
secrets, login enforcements, the two-step flow through sys/mfa/validate and the X-Vault-MFA
header; single-use request IDs under a burst; replay refusal; the user lockout. Logins by
hvac; the MFA endpoints (which hvac lacks) through hvac's adapter or httpx."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import hvac
import hvac.exceptions
import pyotp
import pytest
from joserfc.jwk import RSAKey

from tests.auth.helpers import public_pem, sign
from tests.serverproc import ServerProcess


@dataclass
class Setup:
    server: ServerProcess
    root: hvac.Client
    mount: str
    accessor: str
    method_id: str

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.addr, timeout=30)

    def user(self, name: str, password: str = "pw") -> None:
        self.root.auth.userpass.create_or_update_user(name, password, mount_point=self.mount)

    def entity_of(self, alias: str, accessor: str | None = None) -> str:
        found = self.root.write(
            "identity/lookup/entity",
            alias_name=alias,
            alias_mount_accessor=accessor or self.accessor,
        )
        return str(found["data"]["id"])

    def secret(self, entity_id: str) -> pyotp.TOTP:
        data = self.root.write(
            "identity/mfa/method/totp/admin-generate",
            method_id=self.method_id,
            entity_id=entity_id,
        )["data"]
        return pyotp.parse_uri(data["url"])


@pytest.fixture(scope="module")
def setup(dev_server: ServerProcess) -> Iterator[Setup]:
    root = dev_server.client(dev_server.root_token)
    mount = f"up-mfa-{uuid.uuid4().hex[:6]}"
    root.sys.enable_auth_method("userpass", path=mount)
    accessor = root.sys.list_auth_methods()["data"][f"{mount}/"]["accessor"]
    method_id = root.write(
        "identity/mfa/method/totp", issuer="Strongroom", period=30, method_name=f"totp-{mount}"
    )["data"]["method_id"]
    root.write(
        f"identity/mfa/login-enforcement/up-{mount}",
        mfa_method_ids=[method_id],
        auth_method_accessors=[accessor],
    )
    try:
        yield Setup(dev_server, root, mount, accessor, method_id)
    finally:
        root.delete(f"identity/mfa/login-enforcement/up-{mount}")
        root.sys.disable_auth_method(mount)


def login(setup: Setup, name: str, password: str = "pw", **headers: str) -> httpx.Response:
    with setup.http() as http:
        return http.post(
            f"/v1/auth/{setup.mount}/login/{name}", json={"password": password}, headers=headers
        )


def validate(setup: Setup, request_id: str, code: str) -> httpx.Response:
    with setup.http() as http:
        return http.post(
            "/v1/sys/mfa/validate",
            json={"mfa_request_id": request_id, "mfa_payload": {setup.method_id: [code]}},
        )


def enrolled(setup: Setup, name: str) -> pyotp.TOTP:
    """A user whose entity has a TOTP secret (the first login creates the entity)."""
    setup.user(name)
    first = login(setup, name)
    assert first.status_code == 200 and first.json()["auth"]["mfa_requirement"]
    return setup.secret(setup.entity_of(name))


def step_code(totp: pyotp.TOTP, offset: int) -> str:
    """The code of the time step ``offset`` steps from now (skew 1 accepts -1, 0, +1)."""
    return totp.at(time.time() + offset * totp.interval)


def wait_for_fresh_step(margin: float = 3.0) -> None:
    remaining = 30 - time.time() % 30
    if remaining < margin:
        time.sleep(remaining + 0.05)


def accessor_count(setup: Setup) -> int:
    return len(setup.root.list("auth/token/accessors")["data"]["keys"])


def test_method_and_enforcement_shapes(setup: Setup) -> None:
    method = setup.root.read(f"identity/mfa/method/totp/{setup.method_id}")["data"]
    assert method["type"] == "totp" and method["issuer"] == "Strongroom"
    assert method["period"] == 30 and method["digits"] == 6 and method["skew"] == 1
    listed = setup.root.list("identity/mfa/method/totp")["data"]
    assert setup.method_id in listed["keys"]
    enforcement = setup.root.read(f"identity/mfa/login-enforcement/up-{setup.mount}")["data"]
    assert enforcement["mfa_method_ids"] == [setup.method_id]
    assert enforcement["auth_method_accessors"] == [setup.accessor]
    assert f"up-{setup.mount}" in setup.root.list("identity/mfa/login-enforcement")["data"]["keys"]
    with setup.http() as http:
        headers = {"X-Vault-Token": setup.root.token}
        bad = http.post(
            f"/v1/identity/mfa/login-enforcement/bad-{setup.mount}",
            json={"mfa_method_ids": [setup.method_id]},
            headers=headers,
        )
        assert bad.status_code == 400 and "must be specified" in bad.json()["errors"][0]
        bad = http.post(
            "/v1/identity/mfa/method/totp", json={"issuer": "x", "digits": 7}, headers=headers
        )
        assert bad.status_code == 400
        in_use = http.delete(f"/v1/identity/mfa/method/totp/{setup.method_id}", headers=headers)
        assert in_use.status_code == 400 and "still used" in in_use.json()["errors"][0]


def test_two_step_login(setup: Setup) -> None:
    totp = enrolled(setup, "alice")
    wait_for_fresh_step()
    before = accessor_count(setup)
    pending = login(setup, "alice")
    assert pending.status_code == 200
    body = pending.json()
    auth = body["auth"]
    assert auth["client_token"] == "" and body["warnings"]
    requirement = auth["mfa_requirement"]
    constraint = requirement["mfa_constraints"][f"up-{setup.mount}"]["any"][0]
    assert constraint == {
        "type": "totp",
        "id": setup.method_id,
        "uses_passcode": True,
        "name": f"totp-{setup.mount}",
    }
    assert accessor_count(setup) == before  # no token until MFA is validated

    wrong = validate(
        setup, requirement["mfa_request_id"], "000000" if totp.now() != "000000" else "111111"
    )
    assert wrong.status_code == 403 and "failed to satisfy enforcement" in wrong.json()["errors"][0]
    good = validate(setup, requirement["mfa_request_id"], totp.now())
    assert good.status_code == 200, good.text
    token = good.json()["auth"]["client_token"]
    assert token and good.json()["auth"]["metadata"] == {"username": "alice"}
    me = setup.server.client(token).auth.token.lookup_self()["data"]
    assert me["path"] == f"auth/{setup.mount}/login/alice"
    assert me["display_name"] == f"{setup.mount}-alice"
    assert accessor_count(setup) == before + 1
    again = validate(setup, requirement["mfa_request_id"], step_code(totp, 1))
    assert again.status_code == 400 and again.json()["errors"] == ["invalid request ID"]

    # the code of the step just used is refused from now on (replay), in both flows
    replay = login(setup, "alice", **{"X-Vault-MFA": f"{setup.method_id}:{totp.now()}"})
    assert replay.status_code == 403
    second = login(setup, "alice")
    replayed = validate(
        setup, second.json()["auth"]["mfa_requirement"]["mfa_request_id"], totp.now()
    )
    assert replayed.status_code == 403 and "already used" in replayed.json()["errors"][0]


def test_header_login(setup: Setup) -> None:
    totp = enrolled(setup, "bob")
    wait_for_fresh_step()
    answer = login(setup, "bob", **{"X-Vault-MFA": f"{setup.method_id}:{totp.now()}"})
    assert answer.status_code == 200
    assert answer.json()["auth"]["client_token"]
    assert answer.json()["auth"]["mfa_requirement"] is None
    # the method's name works too (Vault 1.13+), and the "passcode=" prefix
    by_name = login(
        setup, "bob", **{"X-Vault-MFA": f"totp-{setup.mount}:passcode={step_code(totp, 1)}"}
    )
    assert by_name.status_code == 200 and by_name.json()["auth"]["client_token"]
    wrong = login(setup, "bob", **{"X-Vault-MFA": f"{setup.method_id}:12345"})
    assert wrong.status_code == 403
    garbage = login(setup, "bob", **{"X-Vault-MFA": "garbage"})
    assert garbage.status_code == 403
    # a wrong password is still the method's 400, before MFA
    assert login(setup, "bob", "nope", **{"X-Vault-MFA": f"{setup.method_id}:1"}).status_code == 400


@pytest.mark.parametrize("round_", range(10))
def test_request_id_is_single_use_under_a_burst(setup: Setup, round_: int) -> None:
    name = f"burst{round_}"
    totp = enrolled(setup, name)
    wait_for_fresh_step()
    request_id = login(setup, name).json()["auth"]["mfa_requirement"]["mfa_request_id"]
    # three codes that are all valid right now (skew 1): the time steps alone could let
    # three validations through; only the request ID's single use keeps it to one token
    codes = [step_code(totp, offset) for offset in (-1, 0, 1)]
    before = accessor_count(setup)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=setup.server.addr, timeout=30) as http:
            replies = await asyncio.gather(
                *(
                    http.post(
                        "/v1/sys/mfa/validate",
                        json={
                            "mfa_request_id": request_id,
                            "mfa_payload": {setup.method_id: [codes[i % 3]]},
                        },
                    )
                    for i in range(21)
                )
            )
        return [r.status_code for r in replies]

    statuses = asyncio.run(burst())
    assert statuses.count(200) == 1, statuses
    assert accessor_count(setup) == before + 1


def test_mfa_failures_lock_the_user_out(setup: Setup) -> None:
    setup.root.write(f"auth/{setup.mount}/config/lockout", lockout_threshold=3)
    try:
        totp = enrolled(setup, "carol")
        wait_for_fresh_step()
        wrong = "000000" if totp.now() != "000000" else "111111"
        # each try logs in with the right password (which resets the password counter):
        # the MFA failures still add up
        for _ in range(3):
            pending = login(setup, "carol")
            assert pending.status_code == 200
            request_id = pending.json()["auth"]["mfa_requirement"]["mfa_request_id"]
            assert validate(setup, request_id, wrong).status_code == 403
        locked = login(setup, "carol")
        assert locked.status_code == 403  # the method refuses the locked user
        listed = setup.root.read("sys/locked-users")["data"]
        assert "carol" in str(listed)
        # header logins are refused too, even with the right code
        refused = login(setup, "carol", **{"X-Vault-MFA": f"{setup.method_id}:{totp.now()}"})
        assert refused.status_code == 403
        setup.root.write(f"sys/locked-users/{setup.accessor}/unlock/carol")
        answer = login(setup, "carol", **{"X-Vault-MFA": f"{setup.method_id}:{totp.now()}"})
        assert answer.status_code == 200 and answer.json()["auth"]["client_token"]
    finally:
        setup.root.delete(f"auth/{setup.mount}/config/lockout")


def test_generate_for_the_callers_entity(setup: Setup) -> None:
    setup.root.sys.create_or_update_policy(
        "mfa-self", 'path "identity/mfa/method/totp/generate" { capabilities = ["update"] }'
    )
    setup.root.auth.userpass.create_or_update_user(
        "dave", "pw", policies=["mfa-self"], mount_point=setup.mount
    )
    first = login(setup, "dave")
    totp = setup.secret(setup.entity_of("dave"))
    wait_for_fresh_step()
    token = validate(
        setup, first.json()["auth"]["mfa_requirement"]["mfa_request_id"], totp.now()
    ).json()["auth"]["client_token"]
    # the caller's own generate: the entity already has a secret, so nothing new
    with setup.http() as http:
        again = http.post(
            "/v1/identity/mfa/method/totp/generate",
            json={"method_id": setup.method_id},
            headers={"X-Vault-Token": token},
        )
        assert again.status_code == 200 and "already has a secret" in again.json()["warnings"][0]
    # after admin-destroy the entity has none: MFA fails until a new one is generated
    entity_id = setup.entity_of("dave")
    setup.root.write(
        "identity/mfa/method/totp/admin-destroy", method_id=setup.method_id, entity_id=entity_id
    )
    assert (
        login(
            setup, "dave", **{"X-Vault-MFA": f"{setup.method_id}:{step_code(totp, 1)}"}
        ).status_code
        == 403
    )
    with setup.http() as http:
        fresh = http.post(
            "/v1/identity/mfa/method/totp/generate",
            json={"method_id": setup.method_id},
            headers={"X-Vault-Token": token},
        )
        assert fresh.status_code == 200 and set(fresh.json()["data"]) == {"url", "barcode"}
    data = fresh.json()["data"]
    assert pyotp.parse_uri(data["url"]).secret != totp.secret
    assert data["url"].startswith("otpauth://totp/Strongroom:")  # issuer:entity ID, as Vault
    decoded = subprocess.run(
        ["zbarimg", "--raw", "-q", "/dev/stdin"],
        input=base64.b64decode(data["barcode"]),
        capture_output=True,
        check=True,
    )
    assert decoded.stdout.decode().strip() == data["url"]


def _complete(setup: Setup, answer: dict[str, Any], accessor: str, alias: str) -> str:
    """Enrol the entity a pending login created and validate the login; the token."""
    requirement = answer["auth"]["mfa_requirement"]
    assert answer["auth"]["client_token"] == "" and requirement
    totp = setup.secret(setup.entity_of(alias, accessor))
    wait_for_fresh_step()
    good = validate(setup, requirement["mfa_request_id"], totp.now())
    assert good.status_code == 200, good.text
    return str(good.json()["auth"]["client_token"])


def test_enforced_by_auth_type_on_approle_and_jwt(setup: Setup) -> None:
    root = setup.root
    suffix = uuid.uuid4().hex[:6]
    approle, jwt = f"ar-{suffix}", f"jwt-{suffix}"
    root.sys.enable_auth_method("approle", path=approle)
    root.sys.enable_auth_method("jwt", path=jwt)
    methods = root.sys.list_auth_methods()["data"]
    enforcement = f"types-{suffix}"
    root.write(
        f"identity/mfa/login-enforcement/{enforcement}",
        mfa_method_ids=[setup.method_id],
        auth_method_types=["approle", "jwt"],
    )
    try:
        root.auth.approle.create_or_update_approle(
            "app", token_policies=["default"], mount_point=approle
        )
        role_id = root.auth.approle.read_role_id("app", mount_point=approle)["data"]["role_id"]
        secret_id = root.auth.approle.generate_secret_id("app", mount_point=approle)["data"][
            "secret_id"
        ]
        with setup.http() as http:
            answer = http.post(
                f"/v1/auth/{approle}/login", json={"role_id": role_id, "secret_id": secret_id}
            ).json()
        token = _complete(setup, answer, methods[f"{approle}/"]["accessor"], role_id)
        assert (
            setup.server.client(token)
            .auth.token.lookup_self()["data"]["path"]
            .startswith(f"auth/{approle}/login")
        )

        key = RSAKey.generate_key(2048)
        root.write(f"auth/{jwt}/config", jwt_validation_pubkeys=[public_pem(key)])
        root.write(
            f"auth/{jwt}/role/dev",
            role_type="jwt",
            user_claim="sub",
            bound_audiences=["strongroom"],
            token_policies=["default"],
        )
        now = int(time.time())
        claims = {"sub": "erin", "aud": "strongroom", "iat": now, "exp": now + 300}
        with setup.http() as http:
            answer = http.post(
                f"/v1/auth/{jwt}/login", json={"role": "dev", "jwt": sign(claims, key)}
            ).json()
        assert _complete(setup, answer, methods[f"{jwt}/"]["accessor"], "erin")
    finally:
        root.delete(f"identity/mfa/login-enforcement/{enforcement}")
        root.sys.disable_auth_method(approle)
        root.sys.disable_auth_method(jwt)


def test_enforced_by_entity_and_group(setup: Setup) -> None:
    root = setup.root
    suffix = uuid.uuid4().hex[:6]
    other = f"up2-{suffix}"
    root.sys.enable_auth_method("userpass", path=other)
    accessor = root.sys.list_auth_methods()["data"][f"{other}/"]["accessor"]
    try:
        for name in ("frank", "grace", "heidi"):
            root.auth.userpass.create_or_update_user(name, "pw", mount_point=other)
        with setup.http() as http:

            def other_login(name: str) -> dict[str, Any]:
                return http.post(f"/v1/auth/{other}/login/{name}", json={"password": "pw"}).json()

            # no enforcement on this mount yet: plain logins create the entities
            for name in ("frank", "grace", "heidi"):
                assert other_login(name)["auth"]["client_token"]
            frank, grace = setup.entity_of("frank", accessor), setup.entity_of("grace", accessor)
            group = root.write("identity/group", name=f"mfa-{suffix}", member_entity_ids=[grace])[
                "data"
            ]["id"]
            root.write(
                f"identity/mfa/login-enforcement/ent-{suffix}",
                mfa_method_ids=[setup.method_id],
                identity_entity_ids=[frank],
                identity_group_ids=[group],
            )
            try:
                assert other_login("heidi")["auth"]["client_token"]  # neither: no MFA
                assert _complete(setup, other_login("frank"), accessor, "frank")
                assert _complete(setup, other_login("grace"), accessor, "grace")
            finally:
                root.delete(f"identity/mfa/login-enforcement/ent-{suffix}")
    finally:
        root.sys.disable_auth_method(other)
