"""IdentityStore: logins, alias rules, groups and policy inheritance, templating, versions."""

from __future__ import annotations

import asyncio

import orjson
import pytest

import strongroom.core.identity as identity_package
from strongroom.core.identity import IdentityStore, normalise
from strongroom.core.policy import parse_policy, render_policy
from strongroom.errors import InvalidRequest, PermissionDenied
from tests.core.identity.conftest import APPROLE, JWT, USERPASS

pytestmark = pytest.mark.anyio


def test_exported_members():
    assert sorted(identity_package.__all__) == [
        "CASE_INSENSITIVE_MOUNT_TYPES",
        "Entity",
        "EntityAlias",
        "Group",
        "GroupAlias",
        "IdentityStore",
        "MFAStore",
        "NamedKey",
        "OIDCProvider",
        "PendingLogin",
        "Role",
        "build_identity_backend",
        "normalise",
    ]


# -- normalisation ----------------------------------------------------------------------------


def test_normalise_rules():
    assert normalise("userpass", "  Alice ") == "alice"
    assert normalise("ldap", "BOB") == "bob"
    assert normalise("jwt", " Alice ") == "Alice"  # JWT subjects keep case
    assert normalise("approle", "RoLe-Id") == "RoLe-Id"
    for bad in ("", "   ", "a\nb", "x\x00", "a" * 1025):
        with pytest.raises(InvalidRequest):
            normalise("userpass", bad)


async def test_login_refuses_names_the_auth_method_did_not_normalise(store):
    for name in ("Alice", " alice", "alice "):
        with pytest.raises(InvalidRequest):
            await store.login_entity(USERPASS, "userpass", name, {})
    assert store.index.entities == {}


async def test_case_and_space_cannot_reach_another_identity(store):
    lower = await store.login_entity(JWT, "jwt", "alice", {})
    upper = await store.login_entity(JWT, "jwt", "Alice", {})
    assert lower.id != upper.id  # two JWT principals, two entities
    # an operator-created alias spelled differently still lands on the normal name
    bob = await store.login_entity(USERPASS, "userpass", "bob", {})
    entity, _ = await store.write_entity(None, name="other")
    with pytest.raises(InvalidRequest, match="another entity"):
        await store.create_alias(
            canonical_id=entity.id, mount_accessor=USERPASS, mount_type="userpass", name=" BOB "
        )
    assert store.index.alias_by_factors(USERPASS, "bob").canonical_id == bob.id


# -- logins -----------------------------------------------------------------------------------


async def test_login_creates_entity_and_alias_once(store, storage, clock):
    first = await store.login_entity(USERPASS, "userpass", "alice", {"team": "ops"})
    assert first.name.startswith("entity_") and len(first.name) == len("entity_") + 8
    (alias,) = first.aliases
    assert (alias.mount_accessor, alias.name, alias.mount_type) == (USERPASS, "alice", "userpass")
    assert dict(alias.metadata) == {"team": "ops"}
    assert alias.creation_time == clock.now()
    writes = storage.transactions
    again = await store.login_entity(USERPASS, "userpass", "alice", {"team": "ops"})
    assert again.id == first.id
    assert storage.transactions == writes  # nothing changed: nothing written
    moved = await store.login_entity(USERPASS, "userpass", "alice", {"team": "dev"})
    assert moved.id == first.id and dict(moved.aliases[0].metadata) == {"team": "dev"}
    assert storage.transactions == writes + 1


async def test_same_name_on_another_mount_is_another_principal(store):
    a = await store.login_entity(USERPASS, "userpass", "alice", {})
    b = await store.login_entity(APPROLE, "approle", "alice", {})
    assert a.id != b.id


async def test_disabled_entity_cannot_log_in_and_gets_nothing(store):
    entity = await store.login_entity(USERPASS, "userpass", "alice", {})
    await store.write_entity(entity.id, policies=["dev"], metadata={"team": "ops"})
    assert store.policies_for(entity.id) == ("dev",)
    await store.write_entity(entity.id, disabled=True)
    assert store.is_disabled(entity.id)
    assert store.policies_for(entity.id) == ()
    assert store.template_values(entity.id) == {}
    with pytest.raises(PermissionDenied):
        await store.login_entity(USERPASS, "userpass", "alice", {})
    await store.write_entity(entity.id, disabled=False)
    assert not store.is_disabled(entity.id)
    assert not store.is_disabled("") and not store.is_disabled("nope")


async def test_concurrent_first_logins_make_one_entity(store):
    results = await asyncio.gather(
        *(store.login_entity(USERPASS, "userpass", "carol", {}) for _ in range(5))
    )
    assert len({entity.id for entity in results}) == 1
    assert len(store.index.entities) == 1


# -- alias takeover ---------------------------------------------------------------------------


async def test_alias_cannot_be_recreated_for_another_entity(store):
    victim = await store.login_entity(USERPASS, "userpass", "alice", {})
    attacker, _ = await store.write_entity(None, name="mallory", policies=["admin"])
    with pytest.raises(InvalidRequest):
        await store.create_alias(
            canonical_id=attacker.id, mount_accessor=USERPASS, mount_type="userpass", name="alice"
        )
    # same entity again: idempotent, custom metadata updated
    alias = await store.create_alias(
        canonical_id=victim.id,
        mount_accessor=USERPASS,
        mount_type="userpass",
        name="alice",
        custom_metadata={"k": "v"},
    )
    assert alias.id == victim.aliases[0].id and dict(alias.custom_metadata) == {"k": "v"}
    assert (await store.login_entity(USERPASS, "userpass", "alice", {})).id == victim.id


async def test_alias_rename_cannot_take_over_another_alias(store):
    alice = await store.login_entity(USERPASS, "userpass", "alice", {})
    bob = await store.login_entity(USERPASS, "userpass", "bob", {})
    with pytest.raises(InvalidRequest):
        await store.update_alias(bob.aliases[0].id, name="ALICE")
    assert store.index.alias_by_factors(USERPASS, "alice").canonical_id == alice.id


async def test_explicit_repoint_by_canonical_id(store):
    alice = await store.login_entity(USERPASS, "userpass", "alice", {})
    target, _ = await store.write_entity(None, name="alice-main")
    alias = await store.update_alias(alice.aliases[0].id, canonical_id=target.id)
    assert alias.canonical_id == target.id
    assert alias.merged_from_canonical_ids == (alice.id,)
    assert store.entity(alice.id).aliases == ()
    assert (await store.login_entity(USERPASS, "userpass", "alice", {})).id == target.id


async def test_one_alias_per_mount_per_entity(store):
    alice = await store.login_entity(USERPASS, "userpass", "alice", {})
    bob = await store.login_entity(USERPASS, "userpass", "bob", {})
    with pytest.raises(InvalidRequest, match="already has an alias"):
        await store.create_alias(
            canonical_id=alice.id, mount_accessor=USERPASS, mount_type="userpass", name="zed"
        )
    with pytest.raises(InvalidRequest, match="already has an alias"):
        await store.update_alias(bob.aliases[0].id, canonical_id=alice.id)


async def test_deleting_an_alias_makes_the_next_login_a_new_entity(store):
    alice = await store.login_entity(USERPASS, "userpass", "alice", {})
    await store.delete_alias(alice.aliases[0].id)
    again = await store.login_entity(USERPASS, "userpass", "alice", {})
    assert again.id != alice.id


# -- groups and policies ----------------------------------------------------------------------


async def test_nested_group_policies(store):
    entity, _ = await store.write_entity(None, name="e1", policies=["own"])
    leaf, _ = await store.write_group(None, name="leaf", policies=["p-leaf"])
    await store.write_group(leaf.id, member_entity_ids=[entity.id])
    mid, _ = await store.write_group(
        None, name="mid", policies=["p-mid"], member_group_ids=[leaf.id]
    )
    top, _ = await store.write_group(
        None, name="top", policies=["p-top"], member_group_ids=[mid.id]
    )
    await store.write_group(None, name="unrelated", policies=["nope"])
    assert store.policies_for(entity.id) == ("own", "p-leaf", "p-mid", "p-top")
    direct, inherited = store.index.group_ids_of(entity.id)
    assert direct == [leaf.id] and inherited == sorted([mid.id, top.id])
    # the cycle top -> mid -> leaf -> top is refused
    with pytest.raises(InvalidRequest, match="cycle"):
        await store.write_group(leaf.id, member_group_ids=[top.id])
    with pytest.raises(InvalidRequest, match="cycle"):
        await store.write_group(top.id, member_group_ids=[top.id])
    await store.delete_group(mid.id)
    assert store.policies_for(entity.id) == ("own", "p-leaf")
    assert store.group(top.id).member_group_ids == ()


async def test_policy_walk_survives_a_cycle_in_storage(storage, clock):
    first = IdentityStore(storage, clock)
    await first.load()
    entity, _ = await first.write_entity(None, name="e1")
    a, _ = await first.write_group(None, name="a", policies=["pa"], member_entity_ids=[entity.id])
    b, _ = await first.write_group(None, name="b", policies=["pb"], member_group_ids=[a.id])
    # close the cycle behind the store's back: a lists b
    key = f"group/{a.id}"
    doc = orjson.loads(storage.data[key])
    doc["member_group_ids"] = [b.id]
    storage.data[key] = orjson.dumps(doc)
    second = IdentityStore(storage, clock)
    await second.load()
    assert second.policies_for(entity.id) == ("pa", "pb")
    assert sorted(g.name for g in second.groups_of(entity.id)) == ["a", "b"]


async def test_root_is_never_an_identity_policy(store):
    with pytest.raises(InvalidRequest, match="root"):
        await store.write_entity(None, name="e", policies=["ROOT "])
    with pytest.raises(InvalidRequest, match="root"):
        await store.write_group(None, name="g", policies=["root"])


async def test_external_groups_follow_group_claims(store):
    ops, _ = await store.write_group(None, name="ops", type="external", policies=["p-ops"])
    dev, _ = await store.write_group(None, name="dev", type="external", policies=["p-dev"])
    await store.write_group_alias(
        None, name="ops", mount_accessor=JWT, mount_type="jwt", canonical_id=ops.id
    )
    await store.write_group_alias(
        None, name="Dev", mount_accessor=JWT, mount_type="jwt", canonical_id=dev.id
    )
    entity = await store.login_entity(JWT, "jwt", "sub-1", {}, group_names=["ops", "dev", "x"])
    # "dev" is not "Dev" for a case-keeping method
    assert store.policies_for(entity.id) == ("p-ops",)
    await store.login_entity(JWT, "jwt", "sub-1", {}, group_names=["Dev"])
    assert store.policies_for(entity.id) == ("p-dev",)
    await store.login_entity(JWT, "jwt", "sub-1", {})
    assert store.policies_for(entity.id) == ()
    with pytest.raises(InvalidRequest, match="external"):
        await store.write_group(ops.id, member_entity_ids=[entity.id])


async def test_deleting_an_entity_removes_memberships(store):
    entity, _ = await store.write_entity(None, name="e1")
    group, _ = await store.write_group(None, name="g", member_entity_ids=[entity.id])
    await store.delete_entities([entity.id])
    assert store.group(group.id).member_entity_ids == ()
    assert store.entity(entity.id) is None


async def test_merge_moves_aliases_policies_and_groups(store):
    a = await store.login_entity(USERPASS, "userpass", "alice", {})
    b = await store.login_entity(JWT, "jwt", "alice@idp", {})
    await store.write_entity(b.id, policies=["from-b"])
    group, _ = await store.write_group(None, name="g", member_entity_ids=[b.id])
    merged = await store.merge_entities(a.id, [b.id], [])
    assert {alias.mount_accessor for alias in merged.aliases} == {USERPASS, JWT}
    assert merged.policies == ("from-b",) and merged.merged_entity_ids == (b.id,)
    assert store.group(group.id).member_entity_ids == (a.id,)
    assert (await store.login_entity(JWT, "jwt", "alice@idp", {})).id == a.id
    c = await store.login_entity(USERPASS, "userpass", "carol", {})
    with pytest.raises(InvalidRequest, match="conflicting"):
        await store.merge_entities(a.id, [c.id], [])
    kept = await store.merge_entities(a.id, [c.id], [c.aliases[0].id])
    assert kept.alias_on(USERPASS).name == "carol"
    assert store.index.alias_by_factors(USERPASS, "alice") is None


# -- templating -------------------------------------------------------------------------------

TEMPLATED = """
path "secret/data/{{identity.entity.name}}/*" { capabilities = ["read", "update"] }
path "secret/data/team/{{identity.entity.metadata.team}}/*" { capabilities = ["read"] }
path "secret/data/user/{{identity.entity.aliases.auth_userpass_1111.name}}" {
  capabilities = ["read"]
}
path "secret/data/groups/{{identity.groups.names.ops.id}}/*" { capabilities = ["list"] }
"""


async def test_template_values_render_the_entitys_own_paths(store):
    entity = await store.login_entity(USERPASS, "userpass", "alice", {"x": "y"})
    await store.write_entity(entity.id, metadata={"team": "blue"})
    ops, _ = await store.write_group(None, name="ops", metadata={"site": "a"})
    await store.write_group(ops.id, member_entity_ids=[entity.id])
    values = store.template_values(entity.id)
    assert values["identity.entity.id"] == entity.id
    assert values["identity.entity.name"] == entity.name
    assert values["identity.entity.metadata.team"] == "blue"
    assert values[f"identity.entity.aliases.{USERPASS}.name"] == "alice"
    assert values[f"identity.entity.aliases.{USERPASS}.metadata.x"] == "y"
    assert values[f"identity.groups.ids.{ops.id}.name"] == "ops"
    assert values["identity.groups.names.ops.metadata.site"] == "a"
    rendered = render_policy(TEMPLATED, values)
    paths = {rule.path for rule in parse_policy("t", rendered).rules}
    assert paths == {
        f"secret/data/{entity.name}/*",
        "secret/data/team/blue/*",
        "secret/data/user/alice",
        f"secret/data/groups/{ops.id}/*",
    }
    # an entity without those values gets only what it can fill
    other, _ = await store.write_entity(None, name="other")
    rendered = render_policy(TEMPLATED, store.template_values(other.id))
    assert {r.path for r in parse_policy("t", rendered).rules} == {"secret/data/other/*"}
    assert render_policy(TEMPLATED, store.template_values("")) == '{"path":{}}'


async def test_dotted_group_names_cannot_answer_for_another_group(store):
    entity, _ = await store.write_entity(None, name="e")
    await store.write_group(None, name="ops.metadata.k", member_entity_ids=[entity.id])
    values = store.template_values(entity.id)
    assert not any(key.startswith("identity.groups.names.") for key in values)


async def test_template_values_are_a_copy(store):
    entity, _ = await store.write_entity(None, name="e")
    store.template_values(entity.id)["identity.entity.name"] = "root"
    assert store.template_values(entity.id)["identity.entity.name"] == "e"


# -- versions and persistence -----------------------------------------------------------------


async def test_version_bumps_on_every_write_only(store):
    v0 = store.version
    entity = await store.login_entity(USERPASS, "userpass", "alice", {})
    v1 = store.version
    assert v1 > v0
    await store.login_entity(USERPASS, "userpass", "alice", {})
    store.policies_for(entity.id)
    assert store.version == v1
    await store.write_entity(entity.id, policies=["a"])
    assert store.version > v1
    v2 = store.version
    await store.delete_alias("no-such-alias")  # nothing to do, nothing written
    assert store.version == v2


async def test_failed_write_leaves_memory_unchanged(store, storage):
    entity, _ = await store.write_entity(None, name="e", policies=["a"])
    version = store.version
    storage.fail = True
    with pytest.raises(OSError):
        await store.write_entity(entity.id, policies=["b"])
    assert store.policies_for(entity.id) == ("a",) and store.version == version


async def test_reload_restores_everything(store, storage, clock):
    entity = await store.login_entity(USERPASS, "userpass", "alice", {"m": "1"})
    await store.write_entity(entity.id, policies=["p"], metadata={"team": "x"})
    group, _ = await store.write_group(
        None, name="g", policies=["gp"], member_entity_ids=[entity.id]
    )
    ext, _ = await store.write_group(None, name="ext", type="external")
    await store.write_group_alias(
        None, name="grp", mount_accessor=JWT, mount_type="jwt", canonical_id=ext.id
    )
    again = IdentityStore(storage, clock)
    await again.load()
    assert again.entity(entity.id) == store.entity(entity.id)
    assert again.group(group.id) == store.group(group.id)
    assert again.group(ext.id) == store.group(ext.id)
    assert again.policies_for(entity.id) == ("gp", "p")
    assert again.template_values(entity.id) == store.template_values(entity.id)
    assert (await again.login_entity(USERPASS, "userpass", "alice", {"m": "1"})).id == entity.id


async def test_drop_mount_forgets_its_aliases(store):
    entity = await store.login_entity(USERPASS, "userpass", "alice", {})
    ext, _ = await store.write_group(None, name="ext", type="external")
    await store.write_group_alias(
        None, name="g", mount_accessor=USERPASS, mount_type="userpass", canonical_id=ext.id
    )
    await store.drop_mount(USERPASS)
    assert store.entity(entity.id).aliases == ()
    assert store.group(ext.id).alias is None
