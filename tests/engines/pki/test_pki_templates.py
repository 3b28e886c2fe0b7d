"""PKI roles' ``allowed_domains_template``: Vault's identity selectors filled for the caller
by core's ACL templating. A real dev server; logins and issuance with hvac."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import hvac
import hvac.exceptions
import pytest

from tests.engines.pki.helpers import root, write
from tests.serverproc import ServerProcess


@pytest.fixture
def userpass(client: hvac.Client) -> Iterator[tuple[str, str]]:
    path = f"up-pki-{uuid.uuid4().hex[:6]}"
    client.sys.enable_auth_method("userpass", path=path)
    try:
        yield path, client.sys.list_auth_methods()["data"][f"{path}/"]["accessor"]
    finally:
        client.sys.disable_auth_method(path)


def test_allowed_domains_template(
    dev_server: ServerProcess, client: hvac.Client, mount: str, userpass: tuple[str, str]
) -> None:
    auth, accessor = userpass
    root(client, mount)
    role = dict(
        allowed_domains=[
            "{{identity.entity.metadata.team}}.example.com",
            f"{{{{identity.entity.aliases.{accessor}.name}}}}.users.example.com",
            "{{identity.entity.metadata.missing}}.example.com",
        ],
        allowed_domains_template=True,
        allow_subdomains=True,
        allow_bare_domains=True,
        key_type="ec",
    )
    write(client, f"{mount}/roles/team", **role)
    assert client.read(f"{mount}/roles/team")["data"]["allowed_domains_template"] is True
    client.sys.create_or_update_policy(
        f"pki-{auth}", f'path "{mount}/issue/team" {{ capabilities = ["update"] }}'
    )
    client.auth.userpass.create_or_update_user(
        "ann", "pw", policies=[f"pki-{auth}"], mount_point=auth
    )
    user = dev_server.client()
    user.auth.userpass.login("ann", "pw", mount_point=auth)
    entity_id = user.auth.token.lookup_self()["data"]["entity_id"]
    client.write(f"identity/entity/id/{entity_id}", metadata={"team": "blue"})

    def issue(who: hvac.Client, name: str) -> str:
        return str(write(who, f"{mount}/issue/team", common_name=name, ttl="1h")["serial_number"])

    for allowed in ("api.blue.example.com", "blue.example.com", "ann.users.example.com"):
        assert issue(user, allowed)
    for refused in (
        "api.red.example.com",
        "bob.users.example.com",
        ".example.com",
        "{{identity.entity.metadata.missing}}.example.com",
    ):
        with pytest.raises(hvac.exceptions.InvalidRequest, match="not allowed"):
            issue(user, refused)
    # the root token has no entity: every templated domain allows nothing
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not allowed"):
        issue(client, "api.blue.example.com")
    # a metadata value that would widen the match counts as missing
    client.write(f"identity/entity/id/{entity_id}", metadata={"team": "*"})
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not allowed"):
        issue(user, "api.blue.example.com")
    # the same role without templating takes the text literally
    write(client, f"{mount}/roles/team", **{**role, "allowed_domains_template": False})
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not allowed"):
        issue(user, "ann.users.example.com")
