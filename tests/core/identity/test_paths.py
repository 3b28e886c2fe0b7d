"""The identity/ path table, driven with logical.Requests: CRUD, lookups, response shapes."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest, NotFound
from strongroom.logical import Operation
from tests.core.identity.conftest import APPROLE, JWT, USERPASS

pytestmark = pytest.mark.anyio

ENTITY_FIELDS = {
    "id",
    "name",
    "aliases",
    "metadata",
    "policies",
    "disabled",
    "creation_time",
    "last_update_time",
    "direct_group_ids",
    "inherited_group_ids",
    "group_ids",
    "merged_entity_ids",
    "namespace_id",
}


async def test_entity_crud_by_id_and_name(root):
    created = await root.data(
        Operation.UPDATE,
        "entity",
        {"name": "alice", "metadata": {"team": "ops"}, "policies": ["Dev", "ops"]},
    )
    entity_id = created["id"]
    assert created == {"id": entity_id, "name": "alice", "aliases": None}  # as Vault
    data = await root.data(Operation.READ, f"entity/id/{entity_id}")
    assert set(data) == ENTITY_FIELDS
    assert data["policies"] == ["dev", "ops"] and data["metadata"] == {"team": "ops"}
    assert data["aliases"] == [] and data["disabled"] is False
    assert data["creation_time"] == "2023-11-14T22:13:20Z"
    assert (await root.read("entity/name/ALICE")).data["id"] == entity_id  # names ignore case
    # update by ID: 204, only the given fields change
    assert await root.write(f"entity/id/{entity_id}", {"disabled": True}) is None
    data = await root.data(Operation.READ, f"entity/id/{entity_id}")
    assert data["disabled"] is True and data["policies"] == ["dev", "ops"]
    # POST entity with an existing name updates that entity (Vault: 204); so does the id
    assert await root.write("entity", {"name": "alice", "policies": ["dev", "ops", "x"]}) is None
    data = await root.data(Operation.READ, f"entity/id/{entity_id}")
    assert data["policies"] == ["dev", "ops", "x"]
    assert await root.write("entity", {"id": entity_id, "metadata": {}}) is None
    # create-or-update by name
    made = await root.data(Operation.UPDATE, "entity/name/bob", {"policies": "a,b"})
    assert made["name"] == "bob"
    assert await root.write("entity/name/bob", {"policies": ["c"]}) is None
    assert (await root.read("entity/name/bob")).data["policies"] == ["c"]
    names = await root.data(Operation.LIST, "entity/name/")
    assert names == {"keys": ["alice", "bob"]}
    ids = await root.data(Operation.LIST, "entity/id")
    assert entity_id in ids["keys"] and ids["key_info"][entity_id]["name"] == "alice"
    assert await root.delete("entity/name/bob") is None
    assert await root.delete(f"entity/id/{entity_id}") is None
    assert await root.read(f"entity/id/{entity_id}") is None
    assert await root.list("entity/id/") is None


async def test_entity_input_validation(root):
    for body in (
        {"name": "a/b"},
        {"name": "ünïcode"},
        {"name": "x", "policies": ["root"]},
        {"name": "y", "metadata": {"k": "v\n"}},
        {"name": "z", "disabled": "maybe"},
    ):
        with pytest.raises(InvalidRequest):
            await root.write("entity", body)
    with pytest.raises(InvalidRequest, match="not found"):
        await root.write("entity/id/no-such-id", {"policies": ["a"]})


async def test_existence_checks_drive_create_vs_update(backend, root):
    from strongroom.logical import Request

    request = Request(operation=Operation.UPDATE, path="entity/name/new-one")
    assert await backend.exists(request) is False
    await root.write("entity/name/new-one")
    assert await backend.exists(request) is True
    assert await backend.exists(Request(operation=Operation.UPDATE, path="entity")) is None


async def test_entity_alias_crud(root):
    entity_id = (await root.data(Operation.UPDATE, "entity", {"name": "alice"}))["id"]
    created = await root.data(
        Operation.UPDATE,
        "entity-alias",
        {"name": " Alice ", "canonical_id": entity_id, "mount_accessor": USERPASS},
    )
    alias_id = created["id"]
    assert created == {"id": alias_id, "canonical_id": entity_id}
    alias = await root.data(Operation.READ, f"entity-alias/id/{alias_id}")
    assert alias["name"] == "alice"  # normalised like a userpass login
    assert alias["mount_type"] == "userpass" and alias["mount_path"] == "userpass/"
    entity = await root.data(Operation.READ, f"entity/id/{entity_id}")
    assert [a["id"] for a in entity["aliases"]] == [alias_id]
    # unknown mount accessors are refused
    with pytest.raises(InvalidRequest, match="mount accessor"):
        await root.write(
            "entity-alias", {"name": "x", "canonical_id": entity_id, "mount_accessor": "nope"}
        )
    # without canonical_id Vault makes a new entity for the alias, and leaves an existing
    # alias as it is (b8bb3c8 changed this behaviour; the test had not followed)
    made = await root.data(
        Operation.UPDATE, "entity-alias", {"name": "x", "mount_accessor": USERPASS}
    )
    assert made["canonical_id"] != entity_id
    assert await root.write("entity-alias", {"name": "x", "mount_accessor": USERPASS}) is None
    assert await root.delete(f"entity-alias/id/{made['id']}") is None
    # custom metadata update by ID
    await root.write(f"entity-alias/id/{alias_id}", {"custom_metadata": {"email": "a@x"}})
    alias = await root.data(Operation.READ, f"entity-alias/id/{alias_id}")
    assert alias["custom_metadata"] == {"email": "a@x"}
    listed = await root.data(Operation.LIST, "entity-alias/id/")
    assert listed["keys"] == [alias_id]
    assert await root.delete(f"entity-alias/id/{alias_id}") is None
    assert await root.read(f"entity-alias/id/{alias_id}") is None


async def test_alias_moves_only_by_an_explicit_write(root, store):
    victim = await store.login_entity(USERPASS, "userpass", "alice", {})
    other = (await root.data(Operation.UPDATE, "entity", {"name": "mallory"}))["id"]
    # a login never moves an alias: alice keeps her entity
    assert (await store.login_entity(USERPASS, "userpass", "alice", {})).id == victim.id
    # renaming another alias onto alice's principal is refused (one alias per principal)
    bob_alias = (
        await root.data(
            Operation.UPDATE,
            "entity-alias",
            {"name": "bob", "canonical_id": other, "mount_accessor": USERPASS},
        )
    )["id"]
    with pytest.raises(InvalidRequest):
        await root.write(f"entity-alias/id/{bob_alias}", {"name": "alice"})
    # an entity holds one alias per mount, whichever way the alias would arrive
    with pytest.raises(InvalidRequest, match="already has an alias"):
        await root.write(f"entity-alias/id/{bob_alias}", {"canonical_id": victim.id})
    with pytest.raises(InvalidRequest, match="already has an alias"):
        await root.write(
            "entity-alias",
            {"name": "ALICE", "canonical_id": other, "mount_accessor": USERPASS},
        )
    # Vault: writing entity-alias for an existing principal moves its alias to the given
    # entity (a privilege equal to updating the alias by ID, which needs the same path)
    await root.delete(f"entity-alias/id/{bob_alias}")
    moved = await root.data(
        Operation.UPDATE,
        "entity-alias",
        {"name": "ALICE", "canonical_id": other, "mount_accessor": USERPASS},
    )
    assert moved["canonical_id"] == other
    assert (await store.login_entity(USERPASS, "userpass", "alice", {})).id == other


async def test_group_crud_and_membership_views(root):
    e1 = (await root.data(Operation.UPDATE, "entity", {"name": "e1"}))["id"]
    child = await root.data(
        Operation.UPDATE,
        "group",
        {"name": "child", "policies": ["pc"], "member_entity_ids": [e1]},
    )
    parent = await root.data(
        Operation.UPDATE,
        "group/name/parent",
        {"policies": ["pp"], "member_group_ids": [child["id"]], "metadata": {"k": "v"}},
    )
    data = await root.data(Operation.READ, f"group/id/{parent['id']}")
    assert data["member_group_ids"] == [child["id"]] and data["type"] == "internal"
    assert data["alias"] == {} and data["metadata"] == {"k": "v"} and data["modify_index"] == 1
    child_data = await root.data(Operation.READ, "group/name/child")
    assert child_data["parent_group_ids"] == [parent["id"]]
    entity = await root.data(Operation.READ, f"entity/id/{e1}")
    assert entity["direct_group_ids"] == [child["id"]]
    assert entity["inherited_group_ids"] == [parent["id"]]
    assert sorted(entity["group_ids"]) == sorted([child["id"], parent["id"]])
    # POST group with an existing name updates it
    assert await root.write("group", {"name": "child", "policies": ["pc2"]}) is None
    assert (await root.read("group/name/child")).data["policies"] == ["pc2"]
    with pytest.raises(InvalidRequest, match="cycle"):
        await root.write(f"group/id/{child['id']}", {"member_group_ids": [parent["id"]]})
    with pytest.raises(InvalidRequest, match="does not exist"):
        await root.write("group", {"name": "g3", "member_entity_ids": ["ghost"]})
    with pytest.raises(InvalidRequest, match="type cannot be changed"):
        await root.write("group/name/child", {"type": "external"})
    assert (await root.data(Operation.LIST, "group/name"))["keys"] == ["child", "parent"]
    assert len((await root.data(Operation.LIST, "group/id/"))["keys"]) == 2
    assert await root.delete("group/name/parent") is None
    assert await root.delete(f"group/id/{child['id']}") is None
    assert await root.list("group/id/") is None


async def test_group_alias_crud(root, store):
    ext = await root.data(Operation.UPDATE, "group", {"name": "ext", "type": "external"})
    internal = await root.data(Operation.UPDATE, "group", {"name": "int"})
    with pytest.raises(InvalidRequest, match="internal"):
        await root.write(
            "group-alias",
            {"name": "g", "mount_accessor": JWT, "canonical_id": internal["id"]},
        )
    made = await root.data(
        Operation.UPDATE,
        "group-alias",
        {"name": "engineers", "mount_accessor": JWT, "canonical_id": ext["id"]},
    )
    alias = await root.data(Operation.READ, f"group-alias/id/{made['id']}")
    assert alias["name"] == "engineers" and alias["mount_type"] == "jwt"
    group = await root.data(Operation.READ, "group/name/ext")
    assert group["alias"]["id"] == made["id"]
    with pytest.raises(InvalidRequest, match="in use"):
        await root.write(
            "group-alias", {"name": "engineers", "mount_accessor": JWT, "canonical_id": ""}
        )
    # without canonical_id a new external group is made for the alias
    auto = await root.data(
        Operation.UPDATE, "group-alias", {"name": "admins", "mount_accessor": JWT}
    )
    auto_group = await root.data(Operation.READ, f"group/id/{auto['canonical_id']}")
    assert auto_group["type"] == "external" and auto_group["name"].startswith("group_")
    entity = await store.login_entity(JWT, "jwt", "sub", {}, group_names=["engineers"])
    assert (await root.read("group/name/ext")).data["member_entity_ids"] == [entity.id]
    # renaming the alias drops members: the next logins decide them
    await root.write(f"group-alias/id/{made['id']}", {"name": "eng"})
    assert (await root.read("group/name/ext")).data["member_entity_ids"] == []
    listed = await root.data(Operation.LIST, "group-alias/id")
    assert sorted(listed["keys"]) == sorted([made["id"], auto["id"]])
    assert await root.delete(f"group-alias/id/{made['id']}") is None
    assert (await root.read("group/name/ext")).data["alias"] == {}


async def test_lookups(root, store):
    entity = await store.login_entity(USERPASS, "userpass", "alice", {})
    alias_id = entity.aliases[0].id
    for body in (
        {"name": entity.name},
        {"id": entity.id},
        {"alias_id": alias_id},
        {"alias_name": "ALICE", "alias_mount_accessor": USERPASS},
    ):
        data = await root.data(Operation.UPDATE, "lookup/entity", body)
        assert data["id"] == entity.id, body
    assert await root.write("lookup/entity", {"name": "nobody"}) is None
    assert (
        await root.write("lookup/entity", {"alias_name": "alice", "alias_mount_accessor": APPROLE})
        is None
    )
    for bad in ({}, {"name": "a", "id": "b"}, {"alias_name": "x"}):
        with pytest.raises(InvalidRequest):
            await root.write("lookup/entity", bad)
    group = await root.data(Operation.UPDATE, "group", {"name": "ext", "type": "external"})
    alias = await root.data(
        Operation.UPDATE,
        "group-alias",
        {"name": "g1", "mount_accessor": JWT, "canonical_id": group["id"]},
    )
    for body in (
        {"name": "ext"},
        {"id": group["id"]},
        {"alias_id": alias["id"]},
        {"alias_name": "g1", "alias_mount_accessor": JWT},
    ):
        assert (await root.data(Operation.UPDATE, "lookup/group", body))["id"] == group["id"]


async def test_batch_delete_and_merge(root, store):
    a = await store.login_entity(USERPASS, "userpass", "a", {})
    b = await store.login_entity(JWT, "jwt", "b", {})
    c, _ = await store.write_entity(None, name="c")
    assert (
        await root.write("entity/merge", {"to_entity_id": a.id, "from_entity_ids": [b.id]}) is None
    )
    merged = await root.data(Operation.READ, f"entity/id/{a.id}")
    assert {x["mount_accessor"] for x in merged["aliases"]} == {USERPASS, JWT}
    assert merged["merged_entity_ids"] == [b.id]
    assert await root.write("entity/batch-delete", {"entity_ids": [a.id, c.id]}) is None
    assert store.index.entities == {}


async def test_unknown_paths_and_operations(root):
    with pytest.raises(NotFound):
        await root.read("nothing/here")
    from strongroom.errors import UnsupportedOperation

    with pytest.raises(UnsupportedOperation):
        await root.delete("entity")


async def test_help_has_synopsis(backend):
    assert "alias" in backend.describe_help("entity-alias")["help"]
