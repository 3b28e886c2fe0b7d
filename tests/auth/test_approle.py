"""AppRole driven directly: roles, secret IDs (HMAC'd, limited, scoped to their role), login."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.auth import approle
from strongroom.errors import InvalidRequest, PermissionDenied
from tests.auth.conftest import AuthCaller, MakeAuth

pytestmark = pytest.mark.anyio


@pytest.fixture
async def ar(make_auth: MakeAuth) -> AuthCaller:
    caller = await make_auth(approle.factory, "approle")
    await caller.write("role/app", {"token_policies": ["app"], "token_ttl": "20m"})
    return caller


async def role_id(ar: AuthCaller, role: str = "app") -> str:
    response = await ar.read(f"role/{role}/role-id")
    assert response is not None and response.data is not None
    return str(response.data["role_id"])


async def new_secret(ar: AuthCaller, role: str = "app", **fields: object) -> dict:
    response = await ar.write(f"role/{role}/secret-id", fields)
    assert response is not None and response.data is not None
    return response.data


async def test_role_crud(ar: AuthCaller) -> None:
    read = await ar.read("role/app")
    assert read is not None and read.data == {
        "bind_secret_id": True,
        "local_secret_ids": False,
        "secret_id_bound_cidrs": [],
        "secret_id_num_uses": 0,
        "secret_id_ttl": 0,
        "token_bound_cidrs": [],
        "token_explicit_max_ttl": 0,
        "token_max_ttl": 0,
        "token_no_default_policy": False,
        "token_num_uses": 0,
        "token_period": 0,
        "token_policies": ["app"],
        "token_ttl": 1200,
        "token_type": "default",
    }
    await ar.write("role/Other", {"policies": "x", "period": "1h", "enable_local_secret_ids": True})
    listed = await ar.list("role/")
    assert listed is not None and listed.data == {"keys": ["app", "other"]}
    other = await ar.read("role/OTHER")
    assert other is not None and other.data["token_period"] == 3600
    assert other.data["local_secret_ids"] is True
    with pytest.raises(InvalidRequest, match="only be modified during role creation"):
        await ar.write("role/other", {"local_secret_ids": False})
    with pytest.raises(InvalidRequest, match="at least one constraint"):
        await ar.write("role/loose", {"bind_secret_id": False})
    with pytest.raises(InvalidRequest, match="role_name"):
        await ar.write("role/bad!name", {})
    await ar.delete("role/other")
    assert await ar.read("role/other") is None


async def test_role_ids_are_unique_and_settable(ar: AuthCaller) -> None:
    await ar.write("role/app/role-id", {"role_id": "custom-role-id"})
    assert await role_id(ar) == "custom-role-id"
    for bad in (" padded", "tab\there"):
        with pytest.raises(InvalidRequest, match="role_id"):
            await ar.write("role/app/role-id", {"role_id": bad})
    with pytest.raises(InvalidRequest, match="already in use"):
        await ar.write("role/second", {"role_id": "custom-role-id"})
    await ar.write("role/second", {})
    with pytest.raises(InvalidRequest, match="already in use"):
        await ar.write("role/second/role-id", {"role_id": "custom-role-id"})
    # the old role ID no longer logs in
    secret = await new_secret(ar)
    await ar.write("role/app/role-id", {"role_id": "rotated"})
    with pytest.raises(InvalidRequest, match="invalid role or secret ID"):
        await ar.login("login", {"role_id": "custom-role-id", "secret_id": secret["secret_id"]})
    auth = await ar.login("login", {"role_id": "rotated", "secret_id": secret["secret_id"]})
    assert auth.alias_name == "rotated"


async def test_login_with_a_generated_secret_id(ar: AuthCaller) -> None:
    secret = await new_secret(ar, metadata='{"tag": "production"}')
    assert set(secret) == {"secret_id", "secret_id_accessor", "secret_id_ttl", "secret_id_num_uses"}
    rid = await role_id(ar)
    auth = await ar.login("login", {"role_id": rid, "secret_id": secret["secret_id"]})
    assert auth.alias_name == rid
    assert auth.policies == ("app",) and auth.ttl == 1200
    assert auth.metadata == {"tag": "production", "role_name": "app"}
    assert auth.internal_data["role_name"] == "app"
    assert auth.internal_data["secret_id_accessor"] == secret["secret_id_accessor"]
    with pytest.raises(InvalidRequest, match="invalid role or secret ID"):
        await ar.login("login", {"role_id": rid, "secret_id": "wrong"})
    with pytest.raises(InvalidRequest, match="invalid role or secret ID"):
        await ar.login("login", {"role_id": "wrong", "secret_id": secret["secret_id"]})
    with pytest.raises(InvalidRequest, match="missing secret_id"):
        await ar.login("login", {"role_id": rid})


async def test_secret_ids_are_stored_only_as_hmacs(ar: AuthCaller) -> None:
    secret = await new_secret(ar)
    custom = await ar.write("role/app/custom-secret-id", {"secret_id": "my-pushed-secret-id"})
    assert custom is not None and custom.data is not None
    for value in (secret["secret_id"], "my-pushed-secret-id"):
        for key, blob in ar.storage.data.items():
            assert value not in key and value.encode() not in blob


async def test_num_uses_count_down_and_the_last_use_deletes(ar: AuthCaller) -> None:
    secret = await new_secret(ar, num_uses=2)
    rid = await role_id(ar)
    creds = {"role_id": rid, "secret_id": secret["secret_id"]}
    await ar.login("login", creds)
    looked = await ar.write("role/app/secret-id/lookup", {"secret_id": secret["secret_id"]})
    assert looked is not None and looked.data["secret_id_num_uses"] == 1
    await ar.login("login", creds)
    with pytest.raises(InvalidRequest, match="invalid role or secret ID"):
        await ar.login("login", creds)
    assert await ar.list("role/app/secret-id/") is None


async def test_concurrent_logins_cannot_overspend_a_secret_id(ar: AuthCaller) -> None:
    secret = await new_secret(ar, num_uses=1)
    creds = {"role_id": await role_id(ar), "secret_id": secret["secret_id"]}
    results = await asyncio.gather(
        *(ar.login("login", creds) for _ in range(8)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1


async def test_expired_secret_ids_are_refused(ar: AuthCaller, clock) -> None:
    secret = await new_secret(ar, ttl="60s")
    assert secret["secret_id_ttl"] == 60
    looked = await ar.write("role/app/secret-id/lookup", {"secret_id": secret["secret_id"]})
    assert looked is not None
    assert looked.data["expiration_time"] == "2023-11-14T22:14:20Z"
    clock.advance(61)
    with pytest.raises(InvalidRequest, match="invalid role or secret ID"):
        await ar.login("login", {"role_id": await role_id(ar), "secret_id": secret["secret_id"]})
    assert await ar.list("role/app/secret-id/") is None


async def test_secret_id_limits_may_only_narrow_the_role(ar: AuthCaller) -> None:
    await ar.write(
        "role/app",
        {"secret_id_ttl": "1h", "secret_id_num_uses": 5, "secret_id_bound_cidrs": "10.0.0.0/8"},
    )
    defaults = await new_secret(ar)
    assert (defaults["secret_id_ttl"], defaults["secret_id_num_uses"]) == (3600, 5)
    with pytest.raises(InvalidRequest, match="secret_id_ttl"):
        await new_secret(ar, ttl="2h")
    with pytest.raises(InvalidRequest, match="secret_id_num_uses"):
        await new_secret(ar, num_uses=6)
    with pytest.raises(InvalidRequest, match="subset"):
        await new_secret(ar, cidr_list="192.168.0.0/16")
    narrow = await new_secret(ar, cidr_list="10.1.0.0/16", ttl=60, num_uses=1)
    assert narrow["secret_id_ttl"] == 60
    with pytest.raises(InvalidRequest, match="metadata"):
        await new_secret(ar, metadata="not json")


async def test_cidr_checks_run_before_a_use_is_spent(ar: AuthCaller) -> None:
    await ar.write("role/app", {"token_bound_cidrs": "10.0.0.0/8"})
    secret = await new_secret(
        ar, num_uses=1, cidr_list="10.0.0.0/8", token_bound_cidrs="10.9.0.0/16"
    )
    creds = {"role_id": await role_id(ar), "secret_id": secret["secret_id"]}
    with pytest.raises(InvalidRequest, match="CIDR restrictions on the secret ID"):
        await ar.login("login", creds, remote_addr="192.168.1.1")
    with pytest.raises(PermissionDenied):
        await ar.login("login", creds, remote_addr="10.1.1.1")  # outside the token CIDRs
    auth = await ar.login("login", creds, remote_addr="10.9.1.1")
    assert auth.internal_data["bound_cidrs"] == ["10.9.0.0/16"]


async def test_role_without_bind_secret_id(ar: AuthCaller) -> None:
    await ar.write("role/open", {"bind_secret_id": False, "secret_id_bound_cidrs": "127.0.0.0/8"})
    rid = await role_id(ar, "open")
    auth = await ar.login("login", {"role_id": rid})
    assert auth.metadata == {"role_name": "open"}
    with pytest.raises(InvalidRequest, match="CIDR restrictions on the role"):
        await ar.login("login", {"role_id": rid}, remote_addr="10.0.0.1")


async def test_accessor_paths_only_touch_their_own_role(ar: AuthCaller) -> None:
    await ar.write("role/other", {})
    mine = await new_secret(ar)
    theirs = await new_secret(ar, "other")
    listed = await ar.list("role/app/secret-id/")
    assert listed is not None and listed.data == {"keys": [mine["secret_id_accessor"]]}
    # role "other"'s accessor named through role "app": not found, nothing destroyed
    for path in ("role/app/secret-id-accessor/destroy", "role/app/secret-id-accessor/lookup"):
        with pytest.raises(InvalidRequest, match="failed to find accessor"):
            await ar.write(path, {"secret_id_accessor": theirs["secret_id_accessor"]})
    assert await ar.write("role/app/secret-id/lookup", {"secret_id": theirs["secret_id"]}) is None
    await ar.write("role/app/secret-id/destroy", {"secret_id": theirs["secret_id"]})
    other_id = await role_id(ar, "other")
    await ar.login("login", {"role_id": other_id, "secret_id": theirs["secret_id"]})
    # through its own role, the accessor works
    looked = await ar.write(
        "role/other/secret-id-accessor/lookup",
        {"secret_id_accessor": theirs["secret_id_accessor"]},
    )
    assert looked is not None and looked.data["secret_id_accessor"] == theirs["secret_id_accessor"]
    await ar.write(
        "role/other/secret-id-accessor/destroy",
        {"secret_id_accessor": theirs["secret_id_accessor"]},
    )
    with pytest.raises(InvalidRequest):
        await ar.login("login", {"role_id": other_id, "secret_id": theirs["secret_id"]})
    # role "app"'s secret ID was never touched
    await ar.login("login", {"role_id": await role_id(ar), "secret_id": mine["secret_id"]})


async def test_destroy_by_secret_id_and_role_delete(ar: AuthCaller) -> None:
    first, second = await new_secret(ar), await new_secret(ar)
    await ar.write("role/app/secret-id/destroy", {"secret_id": first["secret_id"]})
    listed = await ar.list("role/app/secret-id/")
    assert listed is not None and listed.data == {"keys": [second["secret_id_accessor"]]}
    await ar.write("role/app/custom-secret-id", {"secret_id": "dup"})
    with pytest.raises(InvalidRequest, match="already registered"):
        await ar.write("role/app/custom-secret-id", {"secret_id": "dup"})
    await ar.delete("role/app")
    leftovers = [k for k in ar.storage.data if k.startswith(("secret_id/", "accessor/", "role"))]
    assert leftovers == []


async def test_tidy_removes_expired_secret_ids(ar: AuthCaller, clock) -> None:
    await new_secret(ar, ttl=10)
    keep = await new_secret(ar)
    clock.advance(11)
    response = await ar.write("tidy/secret-id")
    # Vault: started in the background, 202 with a warning
    assert response is not None and response.status == 202
    assert response.warnings and "successfully started" in response.warnings[0]
    for _ in range(200):
        listed = await ar.list("role/app/secret-id/")
        if listed is not None and len(listed.data["keys"]) == 1:
            break
        await asyncio.sleep(0.01)
    listed = await ar.list("role/app/secret-id/")
    assert listed is not None and listed.data == {"keys": [keep["secret_id_accessor"]]}


async def test_renewal_hook(ar: AuthCaller) -> None:
    secret = await new_secret(ar)
    auth = await ar.login("login", {"role_id": await role_id(ar), "secret_id": secret["secret_id"]})
    assert (await ar.renew(auth)).ttl == 1200
    await ar.write("role/app", {"token_policies": "app,more"})
    with pytest.raises(InvalidRequest, match="policies have changed"):
        await ar.renew(auth)
    await ar.delete("role/app")
    with pytest.raises(InvalidRequest, match="no longer exists"):
        await ar.renew(auth)


async def test_hmac_key_survives_a_new_backend_instance(
    ar: AuthCaller, make_auth: MakeAuth
) -> None:
    secret = await new_secret(ar)
    rid = await role_id(ar)
    again = await make_auth(approle.factory, "approle")
    await again.login("login", {"role_id": rid, "secret_id": secret["secret_id"]})
