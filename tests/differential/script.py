"""The scripted session: every area and endpoint family Strongroom ships, in the order a
user would meet them. Names are fixed, so both servers see the same requests; values that
one answer hands to the next (tokens, IDs, accessors) are read from that server's own
answers."""

from __future__ import annotations

import urllib.parse

import httpx

from tests.auth.oidc_provider import run_provider
from tests.differential.runner import Session, dig

POLICY = 'path "kv2/data/*" { capabilities = ["read", "list"] }\npath "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }\n'  # noqa: E501


def session(s: Session) -> None:
    sys_endpoints(s)
    policies(s)
    kv_v1(s)
    kv_v2(s)
    cubbyhole(s)
    transit(s)
    tokens(s)
    userpass(s)
    approle(s)
    identity(s)
    wrapping(s)
    leases(s)
    database(s)
    other_methods(s)
    oidc_login(s)
    errors(s)


def sys_endpoints(s: Session) -> None:
    s.call("health", "GET", "sys/health", token="")
    s.call("seal-status", "GET", "sys/seal-status", token="")
    s.call("init status", "GET", "sys/init", token="")
    s.call("key-status", "GET", "sys/key-status")
    s.call("mounts list", "GET", "sys/mounts", deep=False)
    s.call("mount kv1", "POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
    s.call("mount kv2", "POST", "sys/mounts/kv2", {"type": "kv", "options": {"version": "2"}})
    s.call("mount transit", "POST", "sys/mounts/transit", {"type": "transit"})
    s.call("mount auth type as engine", "POST", "sys/mounts/bad-up", {"type": "userpass"})
    s.call("mount unknown type", "POST", "sys/mounts/bad-x", {"type": "no-such-engine"})
    s.call("mount read", "GET", "sys/mounts/kv2")
    s.call("mount tune read", "GET", "sys/mounts/kv2/tune")
    s.call("mount tune", "POST", "sys/mounts/kv2/tune", {"default_lease_ttl": "1h"})
    s.call("mount tune read after", "GET", "sys/mounts/kv2/tune")
    s.call("mount moved", "POST", "sys/mounts/moveme", {"type": "kv", "options": {"version": "1"}})
    moved = s.call("remount", "POST", "sys/remount", {"from": "moveme", "to": "moved"})
    migration = dig(moved, "data", "migration_id")
    s.call("remount status", "GET", f"sys/remount/status/{migration}")
    s.call("unmount", "DELETE", "sys/mounts/moved")
    s.call("auth list", "GET", "sys/auth", deep=False)
    s.call("auth enable userpass", "POST", "sys/auth/userpass", {"type": "userpass"})
    s.call("auth enable approle", "POST", "sys/auth/approle", {"type": "approle"})
    s.call("auth enable engine type", "POST", "sys/auth/bad-kv", {"type": "kv"})
    s.call("auth read", "GET", "sys/auth/userpass")
    s.call("auth tune read", "GET", "sys/auth/userpass/tune")
    s.call("auth tune", "POST", "sys/auth/userpass/tune", {"listing_visibility": "unauth"})
    s.call("ui mounts", "GET", "sys/internal/ui/mounts", deep=False)
    s.call("ui mounts without token", "GET", "sys/internal/ui/mounts", token="", deep=False)
    s.call("ui mount path", "GET", "sys/internal/ui/mounts/kv2")
    s.call("audit list", "GET", "sys/audit")
    s.call("locked users", "GET", "sys/locked-users")


def policies(s: Session) -> None:
    s.call("policy write", "PUT", "sys/policy/reader", {"policy": POLICY})
    s.call("policy read", "GET", "sys/policy/reader")
    s.call("policy list", "GET", "sys/policy")
    s.call("acl policy write", "PUT", "sys/policies/acl/writer", {"policy": POLICY})
    s.call("acl policy read", "GET", "sys/policies/acl/writer")
    s.call("acl policy list", "LIST", "sys/policies/acl")
    s.call("acl policy missing", "GET", "sys/policies/acl/missing")
    s.call("policy bad hcl", "PUT", "sys/policies/acl/bad", {"policy": "path {"})
    s.call("capabilities-self", "POST", "sys/capabilities-self", {"paths": ["kv2/data/a"]})
    s.call(
        "capabilities two paths",
        "POST",
        "sys/capabilities-self",
        {"paths": ["kv2/data/a", "kv1/a"]},
    )
    s.call("acl policy delete", "DELETE", "sys/policies/acl/writer")


def kv_v1(s: Session) -> None:
    s.call("kv1 write", "POST", "kv1/app", {"user": "u1", "pass": "p1"})
    s.call("kv1 read", "GET", "kv1/app")
    s.call("kv1 list", "LIST", "kv1/")
    s.call("kv1 read missing", "GET", "kv1/missing")
    s.call("kv1 delete", "DELETE", "kv1/app")
    s.call("kv1 list empty", "LIST", "kv1/")


def kv_v2(s: Session) -> None:
    s.call("kv2 config", "POST", "kv2/config", {"max_versions": 5})
    s.call("kv2 config read", "GET", "kv2/config")
    s.call("kv2 write", "POST", "kv2/data/app", {"data": {"user": "u1"}})
    s.call("kv2 write v2", "POST", "kv2/data/app", {"data": {"user": "u2"}, "options": {"cas": 1}})
    s.call("kv2 cas mismatch", "POST", "kv2/data/app", {"data": {"x": 1}, "options": {"cas": 1}})
    s.call("kv2 read", "GET", "kv2/data/app")
    s.call("kv2 read version", "GET", "kv2/data/app?version=1")
    s.call(
        "kv2 patch",
        "PATCH",
        "kv2/data/app",
        {"data": {"extra": "e"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    s.call("kv2 patch without merge-patch", "PATCH", "kv2/data/app", {"data": {"extra": "f"}})
    s.call("kv2 subkeys", "GET", "kv2/subkeys/app")
    s.call("kv2 metadata read", "GET", "kv2/metadata/app")
    s.call("kv2 metadata write", "POST", "kv2/metadata/app", {"custom_metadata": {"o": "me"}})
    s.call(
        "kv2 metadata patch",
        "PATCH",
        "kv2/metadata/app",
        {"max_versions": 3},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    s.call("kv2 list", "LIST", "kv2/metadata/")
    s.call("kv2 delete latest", "DELETE", "kv2/data/app")
    s.call("kv2 read deleted", "GET", "kv2/data/app")
    s.call("kv2 undelete", "POST", "kv2/undelete/app", {"versions": [3]})
    s.call("kv2 delete versions", "POST", "kv2/delete/app", {"versions": [1]})
    s.call("kv2 destroy", "PUT", "kv2/destroy/app", {"versions": [1]})
    s.call("kv2 read destroyed", "GET", "kv2/data/app?version=1")
    s.call("kv2 read missing", "GET", "kv2/data/missing")
    s.call("kv2 metadata delete", "DELETE", "kv2/metadata/app")


def cubbyhole(s: Session) -> None:
    s.call("cubbyhole write", "POST", "cubbyhole/note", {"n": "1"})
    s.call("cubbyhole read", "GET", "cubbyhole/note")
    s.call("cubbyhole list", "LIST", "cubbyhole/")
    s.call("cubbyhole delete", "DELETE", "cubbyhole/note")
    s.call("cubbyhole read missing", "GET", "cubbyhole/note")


def transit(s: Session) -> None:
    s.call("transit create key", "POST", "transit/keys/k1")
    s.call("transit create ed25519", "POST", "transit/keys/sig", {"type": "ed25519"})
    s.call("transit read key", "GET", "transit/keys/k1")
    s.call("transit list keys", "LIST", "transit/keys")
    enc = s.call("transit encrypt", "POST", "transit/encrypt/k1", {"plaintext": "aGVsbG8="})
    ciphertext = dig(enc, "data", "ciphertext")
    s.call("transit decrypt", "POST", "transit/decrypt/k1", {"ciphertext": ciphertext})
    s.call("transit rotate", "POST", "transit/keys/k1/rotate")
    s.call("transit rewrap", "POST", "transit/rewrap/k1", {"ciphertext": ciphertext})
    s.call("transit key config", "POST", "transit/keys/k1/config", {"deletion_allowed": True})
    s.call("transit datakey", "POST", "transit/datakey/plaintext/k1")
    s.call("transit hmac", "POST", "transit/hmac/k1", {"input": "aGVsbG8="})
    signed = s.call("transit sign", "POST", "transit/sign/sig", {"input": "aGVsbG8="})
    s.call(
        "transit verify",
        "POST",
        "transit/verify/sig",
        {"input": "aGVsbG8=", "signature": dig(signed, "data", "signature")},
    )
    s.call("transit hash", "POST", "transit/hash", {"input": "aGVsbG8="})
    s.call("transit random", "POST", "transit/random/16")
    s.call("transit decrypt garbage", "POST", "transit/decrypt/k1", {"ciphertext": "vault:v1:AA"})
    s.call("transit delete key", "DELETE", "transit/keys/k1")


def tokens(s: Session) -> None:
    s.call("token lookup-self", "GET", "auth/token/lookup-self")
    made = s.call(
        "token create", "POST", "auth/token/create", {"policies": ["reader"], "ttl": "1h"}
    )
    token = dig(made, "auth", "client_token")
    accessor = dig(made, "auth", "accessor")
    s.call("token create orphan", "POST", "auth/token/create-orphan", {"ttl": "1h"})
    s.call("token lookup", "POST", "auth/token/lookup", {"token": token})
    s.call("token lookup child-self", "GET", "auth/token/lookup-self", token=token)
    s.call("token lookup-accessor", "POST", "auth/token/lookup-accessor", {"accessor": accessor})
    s.call("token renew", "POST", "auth/token/renew", {"token": token})
    s.call("token renew-self", "POST", "auth/token/renew-self", token=token)
    s.call(
        "token capabilities", "POST", "sys/capabilities", {"token": token, "paths": ["kv2/data/a"]}
    )
    s.call(
        "token capabilities-accessor",
        "POST",
        "sys/capabilities-accessor",
        {"accessor": accessor, "paths": ["kv2/data/a"]},
    )
    s.call("token role write", "POST", "auth/token/roles/r1", {"allowed_policies": ["reader"]})
    s.call("token role read", "GET", "auth/token/roles/r1")
    s.call("token role list", "LIST", "auth/token/roles")
    s.call("token create by role", "POST", "auth/token/create/r1", {"policies": ["reader"]})
    s.call("token accessors", "LIST", "auth/token/accessors", deep=False)
    s.call("token revoke-accessor", "POST", "auth/token/revoke-accessor", {"accessor": accessor})
    s.call("token lookup revoked", "POST", "auth/token/lookup", {"token": token})
    s.call("token tidy", "POST", "auth/token/tidy")
    s.call("token role delete", "DELETE", "auth/token/roles/r1")


def userpass(s: Session) -> None:
    s.call("userpass user write", "POST", "auth/userpass/users/ann", {"password": "pw-ann-1"})
    s.call("userpass user read", "GET", "auth/userpass/users/ann")
    s.call("userpass users list", "LIST", "auth/userpass/users")
    login = s.call(
        "userpass login", "POST", "auth/userpass/login/ann", {"password": "pw-ann-1"}, token=""
    )
    s.call("userpass bad login", "POST", "auth/userpass/login/ann", {"password": "wrong"}, token="")
    s.call(
        "userpass password", "POST", "auth/userpass/users/ann/password", {"password": "pw-ann-2"}
    )
    s.call(
        "userpass policies", "POST", "auth/userpass/users/ann/policies", {"policies": ["reader"]}
    )
    s.call(
        "userpass lookup-self",
        "GET",
        "auth/token/lookup-self",
        token=dig(login, "auth", "client_token"),
    )
    s.call(
        "userpass login wrapped",
        "POST",
        "auth/userpass/login/ann",
        {"password": "pw-ann-2"},
        token="",
        headers={"X-Vault-Wrap-TTL": "60"},
    )


def approle(s: Session) -> None:
    s.call("approle role write", "POST", "auth/approle/role/app", {"token_policies": ["reader"]})
    s.call("approle role read", "GET", "auth/approle/role/app")
    s.call("approle role list", "LIST", "auth/approle/role")
    role_id = dig(
        s.call("approle role-id", "GET", "auth/approle/role/app/role-id"), "data", "role_id"
    )
    made = s.call("approle secret-id", "POST", "auth/approle/role/app/secret-id")
    secret_id = dig(made, "data", "secret_id")
    secret_accessor = dig(made, "data", "secret_id_accessor")
    s.call(
        "approle secret-id lookup",
        "POST",
        "auth/approle/role/app/secret-id/lookup",
        {"secret_id": secret_id},
    )
    s.call(
        "approle secret-id accessor lookup",
        "POST",
        "auth/approle/role/app/secret-id-accessor/lookup",
        {"secret_id_accessor": secret_accessor},
    )
    s.call("approle secret-id list", "LIST", "auth/approle/role/app/secret-id")
    s.call(
        "approle login",
        "POST",
        "auth/approle/login",
        {"role_id": role_id, "secret_id": secret_id},
        token="",
    )
    s.call(
        "approle wrapped secret-id",
        "POST",
        "auth/approle/role/app/secret-id",
        headers={"X-Vault-Wrap-TTL": "60"},
    )
    s.call("approle tidy", "POST", "auth/approle/tidy/secret-id")
    s.call(
        "approle destroy secret-id",
        "POST",
        "auth/approle/role/app/secret-id/destroy",
        {"secret_id": secret_id},
    )
    s.call(
        "approle bad login",
        "POST",
        "auth/approle/login",
        {"role_id": role_id, "secret_id": "x"},
        token="",
    )
    s.call("approle role delete", "DELETE", "auth/approle/role/app")


def identity(s: Session) -> None:
    accessor = dig(s.call("auth read for identity", "GET", "sys/auth/userpass"), "data", "accessor")
    made = s.call(
        "entity create", "POST", "identity/entity", {"name": "ent1", "policies": ["reader"]}
    )
    entity_id = dig(made, "data", "id")
    other = s.call("entity create other", "POST", "identity/entity", {"name": "ent2"})
    other_id = dig(other, "data", "id")
    s.call(
        "entity upsert by name", "POST", "identity/entity", {"name": "ent1", "metadata": {"a": "b"}}
    )
    s.call("entity read", "GET", f"identity/entity/id/{entity_id}")
    s.call("entity read by name", "GET", "identity/entity/name/ent1")
    s.call("entity list", "LIST", "identity/entity/id", deep=False)
    s.call("entity lookup", "POST", "identity/lookup/entity", {"name": "ent1"})
    alias = s.call(
        "entity-alias create",
        "POST",
        "identity/entity-alias",
        {"name": "bob", "mount_accessor": accessor, "canonical_id": entity_id},
    )
    alias_id = dig(alias, "data", "id")
    s.call(
        "entity-alias move",
        "POST",
        "identity/entity-alias",
        {"name": "bob", "mount_accessor": accessor, "canonical_id": other_id},
    )
    s.call("entity-alias read", "GET", f"identity/entity-alias/id/{alias_id}")
    s.call("entity-alias list", "LIST", "identity/entity-alias/id", deep=False)
    group = s.call(
        "group create", "POST", "identity/group", {"name": "g1", "member_entity_ids": [entity_id]}
    )
    s.call("group read", "GET", f"identity/group/id/{dig(group, 'data', 'id')}")
    ext = s.call("group external", "POST", "identity/group", {"name": "g2", "type": "external"})
    galias = s.call(
        "group-alias create",
        "POST",
        "identity/group-alias",
        {"name": "ops", "mount_accessor": accessor, "canonical_id": dig(ext, "data", "id")},
    )
    s.call("group-alias read", "GET", f"identity/group-alias/id/{dig(galias, 'data', 'id')}")
    s.call("group list", "LIST", "identity/group/id", deep=False)
    s.call("entity delete", "DELETE", f"identity/entity/id/{other_id}")


def wrapping(s: Session) -> None:
    wrapped = s.call(
        "wrap", "POST", "sys/wrapping/wrap", {"a": "b"}, headers={"X-Vault-Wrap-TTL": "5m"}
    )
    token = dig(wrapped, "wrap_info", "token")
    s.call("wrap without ttl", "POST", "sys/wrapping/wrap", {"a": "b"})
    s.call("wrap lookup", "POST", "sys/wrapping/lookup", {"token": token}, token="")
    rewrapped = s.call("rewrap", "POST", "sys/wrapping/rewrap", {"token": token})
    new_token = dig(rewrapped, "wrap_info", "token")
    s.call("unwrap", "POST", "sys/wrapping/unwrap", token=new_token)
    s.call("unwrap again", "POST", "sys/wrapping/unwrap", token=new_token)
    kv = s.call("wrap a kv read", "GET", "kv2/data/none", headers={"X-Vault-Wrap-TTL": "60"})
    del kv
    login = s.call(
        "wrap a login",
        "POST",
        "auth/userpass/login/ann",
        {"password": "pw-ann-2"},
        token="",
        headers={"X-Vault-Wrap-TTL": "60"},
    )
    s.call(
        "unwrap a login", "POST", "sys/wrapping/unwrap", {"token": dig(login, "wrap_info", "token")}
    )
    role = s.call(
        "approle role again", "POST", "auth/approle/role/w", {"token_policies": ["reader"]}
    )
    del role
    secret = s.call(
        "wrap a secret-id",
        "POST",
        "auth/approle/role/w/secret-id",
        headers={"X-Vault-Wrap-TTL": "60"},
    )
    s.call(
        "unwrap a secret-id",
        "POST",
        "sys/wrapping/unwrap",
        {"token": dig(secret, "wrap_info", "token")},
    )


def leases(s: Session) -> None:
    s.call("leases count", "GET", "sys/leases/count?type=irrevocable")
    s.call("leases list tokens", "LIST", "sys/leases/lookup/auth/token/create/", deep=False)
    # one token under its own role path, so that both servers list exactly one lease there
    s.call(
        "leases token role", "POST", "auth/token/roles/leasing", {"allowed_policies": ["reader"]}
    )
    s.call("leases token", "POST", "auth/token/create/leasing", {"policies": ["reader"]})
    listed = s.call("leases list role", "LIST", "sys/leases/lookup/auth/token/create/leasing/")
    lease_id = "auth/token/create/leasing/" + str(dig(listed, "data", "keys", 0))
    s.call("leases lookup a token", "PUT", "sys/leases/lookup", {"lease_id": lease_id})
    s.call("leases renew a token", "PUT", "sys/leases/renew", {"lease_id": lease_id})
    s.call("leases revoke a token", "PUT", "sys/leases/revoke", {"lease_id": lease_id})
    s.call("leases list role after", "LIST", "sys/leases/lookup/auth/token/create/leasing/")
    s.call("leases lookup missing", "PUT", "sys/leases/lookup", {"lease_id": "kv1/none/x"})
    s.call("leases renew missing", "PUT", "sys/leases/renew", {"lease_id": "kv1/none/x"})
    s.call("leases revoke missing", "PUT", "sys/leases/revoke", {"lease_id": "kv1/none/x"})
    s.call("leases revoke-prefix", "PUT", "sys/leases/revoke-prefix/kv1/none")
    s.call("leases tidy", "POST", "sys/leases/tidy")


def database(s: Session) -> None:
    # no database answers on port 1: what a client sees when its database is down
    s.call("database mount", "POST", "sys/mounts/database", {"type": "database"})
    s.call(
        "database config",
        "POST",
        "database/config/pg",
        {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/x",
            "username": "admin",
            "password": "admin-password",
            "allowed_roles": "*",
            "verify_connection": False,
        },
    )
    s.call("database config read", "GET", "database/config/pg")
    s.call("database config list", "LIST", "database/config")
    s.call(
        "database role",
        "POST",
        "database/roles/r",
        {"db_name": "pg", "creation_statements": ['CREATE ROLE "{{name}}"']},
    )
    s.call("database role read", "GET", "database/roles/r")
    s.call("database creds unreachable", "GET", "database/creds/r")
    s.call("database rotate-root unreachable", "POST", "database/rotate-root/pg")


def other_methods(s: Session) -> None:
    s.call("totp mount", "POST", "sys/mounts/totp", {"type": "totp"})
    s.call(
        "totp key generate",
        "POST",
        "totp/keys/k",
        {"generate": True, "issuer": "Example", "account_name": "a@example.com"},
    )
    s.call("totp key read", "GET", "totp/keys/k")
    s.call("totp keys list", "LIST", "totp/keys")
    code = s.call("totp code", "GET", "totp/code/k")
    s.call("totp validate", "POST", "totp/code/k", {"code": dig(code, "data", "code")})
    s.call("jwt enable", "POST", "sys/auth/jwt", {"type": "jwt"})
    s.call("jwt config read", "GET", "auth/jwt/config")
    s.call("kubernetes enable", "POST", "sys/auth/kubernetes", {"type": "kubernetes"})
    s.call("kubernetes role list", "LIST", "auth/kubernetes/role")
    s.call("cert enable", "POST", "sys/auth/cert", {"type": "cert"})
    s.call("cert list", "LIST", "auth/cert/certs")
    s.call("auth disable", "DELETE", "sys/auth/kubernetes")
    s.call("rotate", "POST", "sys/rotate")
    s.call("key-status after rotate", "GET", "sys/key-status")


OIDC_REDIRECT = "http://localhost:8250/oidc/callback"


def _browser(auth_url: str) -> dict[str, str]:
    """The browser at the provider: the query of its redirect back (not recorded)."""
    if not auth_url:
        return {}
    answer = httpx.get(auth_url, follow_redirects=False, timeout=10)
    location = urllib.parse.urlsplit(answer.headers.get("location", ""))
    return dict(urllib.parse.parse_qsl(location.query))


def oidc_login(s: Session) -> None:
    """The OIDC browser flow against the test suite's provider (one per server's run)."""
    with run_provider(
        user={"sub": "u-1", "email": "e@example.test"}, redirect_uris=[OIDC_REDIRECT]
    ) as p:
        s.call("oidc enable", "POST", "sys/auth/oidc", {"type": "oidc"})
        config = {
            "oidc_discovery_url": p.url,
            "oidc_client_id": p.client_id,
            "oidc_client_secret": p.client_secret,
            "default_role": "web",
        }
        s.call("oidc config", "POST", "auth/oidc/config", config)
        s.call("oidc config read", "GET", "auth/oidc/config")
        role = {
            "user_claim": "sub",
            "allowed_redirect_uris": [OIDC_REDIRECT],
            "claim_mappings": {"email": "email"},
            "token_policies": ["dev"],
        }
        s.call("oidc role", "POST", "auth/oidc/role/web", role)
        s.call("oidc role read", "GET", "auth/oidc/role/web")
        body = {"role": "web", "redirect_uri": OIDC_REDIRECT}
        started = s.call("oidc auth_url", "POST", "auth/oidc/oidc/auth_url", body, token="")
        back = _browser(dig(started, "data", "auth_url"))
        query = urllib.parse.urlencode(back)
        s.call("oidc callback", "GET", f"auth/oidc/oidc/callback?{query}", token="")
        s.call("oidc callback replayed", "GET", f"auth/oidc/oidc/callback?{query}", token="")
        s.call(
            "oidc callback unknown state", "GET", "auth/oidc/oidc/callback?state=x&code=y", token=""
        )
        bad = {"role": "web", "redirect_uri": "https://elsewhere.example/cb"}
        s.call("oidc auth_url bad redirect", "POST", "auth/oidc/oidc/auth_url", bad, token="")
        s.call(
            "oidc auth_url unknown role",
            "POST",
            "auth/oidc/oidc/auth_url",
            {**body, "role": "nope"},
            token="",
        )
        p.tweaks = {"nonce": "not-the-nonce"}
        started = s.call("oidc auth_url again", "POST", "auth/oidc/oidc/auth_url", body, token="")
        query = urllib.parse.urlencode(_browser(dig(started, "data", "auth_url")))
        s.call("oidc callback wrong nonce", "GET", f"auth/oidc/oidc/callback?{query}", token="")
        s.call("oidc poll unknown state", "POST", "auth/oidc/oidc/poll", {"state": "x"}, token="")
        s.call("oidc disable", "DELETE", "sys/auth/oidc")


def errors(s: Session) -> None:
    s.call("no token", "GET", "kv2/data/app", token="")
    s.call("bad token", "GET", "kv2/data/app", token="hvs.nope")
    s.call("unknown mount", "GET", "nowhere/x")
    s.call(
        "bad json", "POST", "kv1/x", raw=b"{not json", headers={"Content-Type": "application/json"}
    )
    s.call("method not allowed", "DELETE", "sys/seal-status")
    s.call("sys unknown", "GET", "sys/no-such-endpoint")
