"""userpass driven directly: users, login, lockout, normalisation, bound CIDRs, renewal, timing."""

from __future__ import annotations

import asyncio
import statistics
import time

import argon2
import orjson
import pytest

from strongroom.auth import userpass
from strongroom.auth.userpass._backend import LoginArgs
from strongroom.errors import InvalidRequest, PermissionDenied
from tests.auth.conftest import AuthCaller, MakeAuth

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def up(make_auth: MakeAuth) -> AuthCaller:
    caller = await make_auth(userpass.factory, "userpass")
    await caller.write("users/alice", {"password": PASSWORD, "token_policies": "dev, Ops"})
    return caller


async def test_user_crud_never_returns_the_password(up: AuthCaller) -> None:
    read = await up.read("users/alice")
    assert read is not None and read.data == {
        "token_bound_cidrs": [],
        "token_explicit_max_ttl": 0,
        "token_max_ttl": 0,
        "token_no_default_policy": False,
        "token_num_uses": 0,
        "token_period": 0,
        "token_policies": ["dev", "ops"],
        "token_ttl": 0,
        "token_type": "default",
    }
    stored = orjson.loads(up.storage.data["user/alice"])
    assert PASSWORD not in up.storage.data["user/alice"].decode()
    params = argon2.extract_parameters(stored["password_hash"])
    assert (params.type, params.memory_cost, params.time_cost, params.parallelism) == (
        argon2.Type.ID,
        19456,
        2,
        1,
    )
    await up.write("users/bob", {"password": "x", "policies": ["legacy"], "ttl": "1h"})
    listed = await up.list("users/")
    assert listed is not None and listed.data == {"keys": ["alice", "bob"]}
    bob = await up.read("users/bob")
    assert bob is not None and bob.data["token_policies"] == ["legacy"]
    assert bob.data["token_ttl"] == 3600
    await up.delete("users/bob")
    assert await up.read("users/bob") is None
    assert "password" not in repr(LoginArgs("alice", PASSWORD))
    assert PASSWORD not in repr(LoginArgs("alice", PASSWORD))


async def test_create_needs_a_password_and_valid_fields(up: AuthCaller) -> None:
    with pytest.raises(InvalidRequest, match="missing password"):
        await up.write("users/carol", {"token_policies": "x"})
    with pytest.raises(InvalidRequest, match="when set to generate periodic tokens"):
        await up.write(
            "users/carol", {"password": "p", "token_type": "batch", "token_period": "1h"}
        )
    with pytest.raises(InvalidRequest, match="limited use count"):
        await up.write(
            "users/carol", {"password": "p", "token_type": "default-batch", "token_num_uses": 3}
        )
    with pytest.raises(InvalidRequest, match="token_type: invalid value"):
        await up.write("users/carol", {"password": "p", "token_type": "bogus"})
    with pytest.raises(InvalidRequest, match="cannot be greater"):
        await up.write("users/carol", {"password": "p", "token_ttl": "2h", "token_max_ttl": "1h"})
    with pytest.raises(InvalidRequest, match="invalid CIDR"):
        await up.write("users/carol", {"password": "p", "token_bound_cidrs": "10.0.0.0/33"})
    with pytest.raises(InvalidRequest, match="username"):
        await up.write("users/-carol", {"password": "p"})
    with pytest.raises(InvalidRequest, match="password_hash"):
        await up.write("users/carol", {"password_hash": "$2a$10$abcdefghijklmnopqrstuv"})
    # an update keeps what it does not mention
    await up.write("users/alice", {"token_ttl": "30m"})
    read = await up.read("users/alice")
    assert read is not None and read.data["token_policies"] == ["dev", "ops"]
    assert read.data["token_ttl"] == 1800


async def test_login_answers_an_auth_block(up: AuthCaller) -> None:
    await up.write(
        "users/alice",
        {"token_ttl": "1h", "token_max_ttl": "2h", "token_num_uses": 3, "token_period": 0},
    )
    auth = await up.login("login/alice", {"password": PASSWORD})
    assert auth.policies == ("dev", "ops") and auth.token_policies == ("dev", "ops")
    assert auth.metadata == {"username": "alice"}
    assert auth.display_name == "alice" and auth.alias_name == "alice"
    assert (auth.ttl, auth.max_ttl, auth.num_uses, auth.renewable) == (3600, 7200, 3, True)
    assert auth.client_token == ""  # core mints it
    assert auth.internal_data["username"] == "alice"
    assert auth.internal_data["policies"] == ["dev", "ops"]


async def test_wrong_password_and_unknown_user_look_alike(up: AuthCaller) -> None:
    with pytest.raises(InvalidRequest) as wrong:
        await up.login("login/alice", {"password": "nope"})
    with pytest.raises(InvalidRequest) as unknown:
        await up.login("login/mallory", {"password": "nope"})
    assert str(wrong.value) == str(unknown.value) == "invalid username or password"
    with pytest.raises(InvalidRequest, match="missing password"):
        await up.login("login/alice", {})


async def test_usernames_are_normalised_for_login_and_alias(up: AuthCaller) -> None:
    await up.write("users/ Dave ", {"password": "pw"})
    listed = await up.list("users/")
    assert listed is not None and listed.data == {"keys": ["alice", "dave"]}
    for spelling in ("DAVE", " dave", "Dave "):
        auth = await up.login(f"login/{spelling}", {"password": "pw"})
        assert auth.alias_name == "dave" and auth.metadata == {"username": "dave"}
    read = await up.read("users/DAVE")
    assert read is not None


async def test_lockout_after_threshold_refuses_even_the_right_password(
    up: AuthCaller, clock
) -> None:
    # case and stray spaces are the same user, so they count towards the same lockout
    for spelling in ("alice", "ALICE", " Alice", "alice ", "aLiCe"):
        with pytest.raises(InvalidRequest):
            await up.login(f"login/{spelling}", {"password": "guess"})
    with pytest.raises(PermissionDenied):
        await up.login("login/alice", {"password": PASSWORD})
    with pytest.raises(PermissionDenied):
        await up.login("login/Alice", {"password": PASSWORD})
    record = orjson.loads(up.storage.data["lockout/alice"])
    assert record["count"] == 5 and record["locked_until"] == clock.now() + 900
    clock.advance(901)
    auth = await up.login("login/ALICE", {"password": PASSWORD})
    assert auth.alias_name == "alice"
    assert "lockout/alice" not in up.storage.data  # a success resets the counter


async def test_lockout_counter_resets_after_quiet_period(up: AuthCaller, clock) -> None:
    for _ in range(4):
        with pytest.raises(InvalidRequest):
            await up.login("login/alice", {"password": "guess"})
    clock.advance(15 * 60)
    for _ in range(4):
        with pytest.raises(InvalidRequest):
            await up.login("login/alice", {"password": "guess"})
    assert (await up.login("login/alice", {"password": PASSWORD})).alias_name == "alice"


async def test_unknown_users_lock_too_so_lockout_reveals_nothing(up: AuthCaller) -> None:
    await up.write("config/lockout", {"lockout_threshold": 2})
    for _ in range(2):
        with pytest.raises(InvalidRequest):
            await up.login("login/ghost", {"password": "x"})
    with pytest.raises(PermissionDenied):
        await up.login("login/ghost", {"password": "x"})


async def test_parallel_guesses_cannot_exceed_the_threshold(up: AuthCaller) -> None:
    await up.write("config/lockout", {"lockout_threshold": 3})
    results = await asyncio.gather(
        *(up.login("login/alice", {"password": f"guess{i}"}) for i in range(6)),
        return_exceptions=True,
    )
    kinds = sorted(type(r).__name__ for r in results)
    # three guesses were checked; the other three were refused unchecked
    assert kinds == ["InvalidRequest"] * 3 + ["PermissionDenied"] * 3


async def test_lockout_config_path_and_disable(up: AuthCaller) -> None:
    read = await up.read("config/lockout")
    assert read is not None and read.data == {
        "lockout_threshold": 5,
        "lockout_duration": 900,
        "lockout_counter_reset": 900,
        "disable_lockout": False,
    }
    await up.write("config/lockout", {"lockout_threshold": "1", "lockout_duration": "1m"})
    with pytest.raises(InvalidRequest):
        await up.login("login/alice", {"password": "guess"})
    with pytest.raises(PermissionDenied):
        await up.login("login/alice", {"password": PASSWORD})
    await up.write("config/lockout", {"disable_lockout": True})
    assert (await up.login("login/alice", {"password": PASSWORD})).alias_name == "alice"
    with pytest.raises(InvalidRequest, match="at least 1"):
        await up.write("config/lockout", {"lockout_threshold": 0})


async def test_token_bound_cidrs_refuse_other_addresses(up: AuthCaller) -> None:
    await up.write("users/alice", {"token_bound_cidrs": ["10.1.0.0/16", "192.168.1.7"]})
    auth = await up.login("login/alice", {"password": PASSWORD}, remote_addr="10.1.2.3")
    assert auth.internal_data["bound_cidrs"] == ["10.1.0.0/16", "192.168.1.7"]
    await up.login("login/alice", {"password": PASSWORD}, remote_addr="192.168.1.7")
    for outside in ("127.0.0.1", "10.2.0.1", "", "not-an-ip"):
        with pytest.raises(PermissionDenied):
            await up.login("login/alice", {"password": PASSWORD}, remote_addr=outside)


async def test_password_and_policies_endpoints(up: AuthCaller) -> None:
    await up.write("users/alice/password", {"password": "new-secret"})
    with pytest.raises(InvalidRequest):
        await up.login("login/alice", {"password": PASSWORD})
    await up.write("users/alice/policies", {"token_policies": ["a", "b"]})
    auth = await up.login("login/alice", {"password": "new-secret"})
    assert auth.policies == ("a", "b")
    with pytest.raises(InvalidRequest, match="does not exist"):
        await up.write("users/nobody/password", {"password": "x"})
    with pytest.raises(InvalidRequest, match="does not exist"):
        await up.write("users/nobody/policies", {"token_policies": "x"})


async def test_renewal_hook(up: AuthCaller) -> None:
    await up.write("users/alice", {"token_ttl": "10m", "token_max_ttl": "1h"})
    auth = await up.login("login/alice", {"password": PASSWORD})
    renewed = await up.renew(auth, "login/alice")
    assert (renewed.ttl, renewed.max_ttl) == (600, 3600)
    await up.write("users/alice/policies", {"token_policies": "dev"})
    with pytest.raises(InvalidRequest, match="policies have changed"):
        await up.renew(auth, "login/alice")
    await up.delete("users/alice")
    with pytest.raises(InvalidRequest, match="no longer exists"):
        await up.renew(auth, "login/alice")


async def test_pre_hashed_argon2id_password(up: AuthCaller) -> None:
    encoded = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024).hash("pre-hashed")
    await up.write("users/erin", {"password_hash": encoded})
    assert (await up.login("login/erin", {"password": "pre-hashed"})).alias_name == "erin"
    # made with other parameters: upgraded to ours on that successful login
    stored = orjson.loads(up.storage.data["user/erin"])["password_hash"]
    assert argon2.extract_parameters(stored).memory_cost == 19456


async def test_hashing_does_not_block_the_event_loop(up: AuthCaller) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await up.login("login/alice", {"password": PASSWORD})
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    # the loop kept running while argon2 hashed (~40 ms): it ticked through the login
    assert elapsed > 0.01 and ticks >= 5


async def test_unknown_user_takes_as_long_as_a_wrong_password(up: AuthCaller) -> None:
    await up.write("config/lockout", {"disable_lockout": True})
    await up.login("login/alice", {"password": PASSWORD})  # warm up (dummy hash, pool)
    with pytest.raises(InvalidRequest):
        await up.login("login/nobody", {"password": "x"})

    async def timed(name: str) -> float:
        started = time.perf_counter()
        with pytest.raises(InvalidRequest):
            await up.login(f"login/{name}", {"password": "wrong"})
        return time.perf_counter() - started

    known: list[float] = []
    unknown: list[float] = []
    for _ in range(20):  # interleaved, so drift in machine load hits both alike
        known.append(await timed("alice"))
        unknown.append(await timed("nobody"))
    known_median, unknown_median = statistics.median(known), statistics.median(unknown)
    assert abs(known_median - unknown_median) <= 0.3 * max(known_median, unknown_median)
    # and both really hashed: an unknown user is not answered instantly
    assert unknown_median > 0.005
