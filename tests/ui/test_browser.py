"""The web UI end to end: Debian's chromium, driven by Playwright, against a real dev server.

One browser and one server for the module; each test opens its own context (so its own
sessionStorage) and fails on any console error, page error, CSP violation or request that
leaves the server."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.serverproc import ServerProcess, start_dev_server
from tests.ui.browser import Watched, chromium, sign_in, unlabelled_controls, watched_page


def _self_signed_pem() -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ops.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


CERT_PEM = _self_signed_pem()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_dev_server(tmp_path_factory.mktemp("ui"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def ui(browser: Browser, server: ServerProcess) -> Iterator[Watched]:
    watched = watched_page(browser, server.addr, permissions=["clipboard-read", "clipboard-write"])
    watched.page.on("dialog", lambda dialog: dialog.accept())
    try:
        yield watched
        assert watched.problems() == []
    finally:
        watched.page.context.close()


def test_token_kept_in_session_storage_only(ui: Watched, server: ServerProcess) -> None:
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    assert page.evaluate("sessionStorage.getItem('strongroom.token')") == server.root_token
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert server.root_token not in page.url
    expect(page.locator("#statusbar")).to_contain_text("Unsealed")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('strongroom.token')") is None
    # forgotten, not revoked
    assert server.http(server.root_token).get("/v1/auth/token/lookup-self").status_code == 200


def test_kv_v2_secret_lifecycle(ui: Watched, server: ServerProcess) -> None:
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.get_by_role("link", name="secret/").click()
    page.get_by_role("link", name="Create secret").click()
    assert unlabelled_controls(page) == []
    page.get_by_label("Path under secret/").fill("app/db")
    page.locator(".kv-key").first.fill("password")
    page.locator(".kv-value").first.fill("hunter2")
    page.get_by_role("button", name="Save").click()
    # the value is masked until revealed
    expect(page.get_by_role("heading", name="app/db")).to_be_visible()
    value = page.locator("td.value code")
    expect(value).to_have_text("••••••••")
    assert "hunter2" not in page.content()
    page.get_by_role("button", name="Reveal").click()
    expect(value).to_have_text("hunter2")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator(".copied")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "hunter2"
    # metadata: max_versions, cas_required, custom metadata
    page.get_by_label("Max versions").fill("5")
    page.get_by_label("Require check-and-set").check()
    page.get_by_label("Custom metadata").fill("team=payments\nowner = ops")
    page.get_by_role("button", name="Save metadata").click()
    expect(page.get_by_text("Metadata saved.")).to_be_visible()
    meta = server.http(server.root_token).get("/v1/secret/metadata/app/db").json()["data"]
    assert meta["max_versions"] == 5 and meta["cas_required"] is True
    assert meta["custom_metadata"] == {"team": "payments", "owner": "ops"}
    # listed in its folder
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="app").click()
    expect(page.get_by_role("link", name="Secret db")).to_be_visible()
    page.get_by_role("link", name="Secret db").click()
    # a second version, edited as JSON
    page.get_by_role("link", name="New version").click()
    page.get_by_label("Edit as JSON").check()
    page.get_by_label("Secret data as JSON").fill('{"password": "correct horse", "n": 2}')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Version 2 of 2")).to_be_visible()
    stored = server.http(server.root_token).get("/v1/secret/data/app/db").json()["data"]
    assert stored["data"] == {"password": "correct horse", "n": 2}
    assert stored["metadata"]["version"] == 2

    def state(version: int) -> str:
        return page.locator(f'tr[data-version="{version}"] td.state').inner_text()

    row2 = page.locator('tr[data-version="2"]')
    row2.get_by_role("button", name="Delete").click()
    expect(row2.locator("td.state")).to_have_text("deleted")
    expect(page.get_by_text("Version 2 is deleted: no data.")).to_be_visible()
    page.locator('tr[data-version="2"]').get_by_role("button", name="Undelete").click()
    expect(page.locator('tr[data-version="2"] td.state')).to_have_text("created")
    page.locator('tr[data-version="1"]').get_by_role("button", name="Destroy").click()
    expect(page.locator('tr[data-version="1"] td.state')).to_have_text("destroyed")
    assert state(2) == "created"
    meta = server.http(server.root_token).get("/v1/secret/metadata/app/db").json()["data"]
    assert meta["versions"]["1"]["destroyed"] is True
    assert meta["versions"]["2"]["deletion_time"] == ""


def test_kv_v1_and_cubbyhole_without_versions(ui: Watched, server: ServerProcess) -> None:
    http = server.http(server.root_token)
    assert http.post("/v1/sys/mounts/kv1", json={"type": "kv"}).status_code == 204
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.get_by_role("link", name="kv1/").click()
    page.get_by_role("link", name="Create secret").click()
    page.get_by_label("Path under kv1/").fill("plain")
    page.locator(".kv-key").first.fill("k")
    page.locator(".kv-value").first.fill("v1-value")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="plain")).to_be_visible()
    expect(page.get_by_role("table", name="Versions")).to_have_count(0)
    assert http.get("/v1/kv1/plain").json()["data"] == {"k": "v1-value"}
    page.goto(server.addr + "/ui/#/secrets")
    page.get_by_role("link", name="cubbyhole/").click()
    expect(page.get_by_text("Nothing here yet.")).to_be_visible()


def test_permission_denied_shows_missing_capability_and_no_data(
    ui: Watched, server: ServerProcess
) -> None:
    http = server.http(server.root_token)
    http.post("/v1/secret/data/private", json={"data": {"api_key": "s3cr3t-value"}})
    http.put(
        "/v1/sys/policies/acl/browse-only",
        json={"policy": 'path "secret/metadata/*" { capabilities = ["list"] }'},
    )
    token = http.post("/v1/auth/token/create", json={"policies": ["browse-only"]}).json()
    page = ui.page
    sign_in(page, server.addr, token["auth"]["client_token"])
    page.goto(server.addr + "/ui/#/secrets/secret/list/")
    expect(page.get_by_role("link", name="Secret private")).to_be_visible()
    page.get_by_role("link", name="Secret private").click()
    denied = page.get_by_role("alert")
    expect(denied).to_contain_text("Permission denied")
    expect(denied).to_contain_text("read")
    expect(denied).to_contain_text("secret/metadata/private")
    assert "s3cr3t-value" not in page.content()
    page.goto(server.addr + "/ui/#/policies")
    expect(page.get_by_role("alert")).to_contain_text("lacks the list capability")


def test_revoked_token_is_told_to_sign_in_again(ui: Watched, server: ServerProcess) -> None:
    http = server.http(server.root_token)
    token = http.post("/v1/auth/token/create", json={"policies": ["default"]}).json()
    client_token = token["auth"]["client_token"]
    page = ui.page
    sign_in(page, server.addr, client_token)
    assert http.post("/v1/auth/token/revoke", json={"token": client_token}).status_code == 204
    page.get_by_role("link", name="Policies").click()
    expect(page.get_by_role("alert")).to_contain_text("no longer valid")
    assert page.evaluate("sessionStorage.getItem('strongroom.token')") is None
    page.get_by_role("link", name="Sign in again").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_userpass_sign_in_from_the_method_list(ui: Watched, server: ServerProcess) -> None:
    http = server.http(server.root_token)
    http.post("/v1/sys/auth/userpass", json={"type": "userpass"})
    http.post("/v1/sys/auth/userpass/tune", json={"listing_visibility": "unauth"})
    http.post("/v1/auth/userpass/users/alice", json={"password": "pw-alice", "policies": "default"})
    page = ui.page
    page.goto(server.addr + "/ui/")
    page.get_by_label("Method").select_option("userpass/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("pw-alice")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Secrets engines")).to_be_visible()
    expect(page.locator("#who")).to_contain_text("userpass-alice")


def test_transit_encrypt_decrypt(ui: Watched, server: ServerProcess) -> None:
    http = server.http(server.root_token)
    assert http.post("/v1/sys/mounts/transit", json={"type": "transit"}).status_code == 204
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.get_by_role("link", name="Transit").click()
    page.get_by_label("Name").fill("orders")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="Key orders")).to_be_visible()
    page.get_by_role("button", name="Rotate").click()
    expect(page.get_by_role("table", name="Versions").locator("tbody tr")).to_have_count(2)
    text = "attack at dawn — ünïcödé"
    encrypt = page.locator('form[data-op="encrypt"]')
    encrypt.get_by_label("Plaintext").fill(text)
    encrypt.get_by_role("button", name="Encrypt").click()
    result = encrypt.locator("output")
    expect(result).to_have_text(re.compile(r"^vault:v2:"))
    ciphertext = result.inner_text()
    # the server got the base64 of the UTF-8 text
    answer = http.post("/v1/transit/decrypt/orders", json={"ciphertext": ciphertext}).json()
    assert base64.b64decode(answer["data"]["plaintext"]).decode() == text
    decrypt = page.locator('form[data-op="decrypt"]')
    decrypt.get_by_label("Ciphertext").fill(ciphertext)
    decrypt.get_by_role("button", name="Decrypt").click()
    expect(decrypt.locator("output")).to_have_text(text)


def test_policy_syntax_error_is_shown_at_its_line(ui: Watched, server: ServerProcess) -> None:
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.get_by_role("link", name="Policies").click()
    page.get_by_label("Name").fill("broken")
    page.get_by_role("button", name="Create policy").click()
    page.get_by_label("Policy (HCL)").fill(
        'path "secret/*" {\n  capabilities = ["read"]\n  oops = = 3\n}\n'
    )
    page.get_by_role("button", name="Save policy").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Syntax error at line 3")
    expect(page.locator(".gutter .bad")).to_have_text("3")
    assert server.http(server.root_token).get("/v1/sys/policies/acl/broken").status_code == 404
    page.get_by_label("Policy (HCL)").fill('path "secret/*" {\n  capabilities = ["read"]\n}\n')
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Policy saved.")).to_be_visible()


def test_csp_blocks_inline_script(ui: Watched, server: ServerProcess) -> None:
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    ran = page.evaluate(
        """() => {
          window.__ran = false;
          const s = document.createElement('script');
          s.textContent = 'window.__ran = true';
          document.body.appendChild(s);
          return window.__ran;
        }"""
    )
    assert ran is False
    page.wait_for_function("window.__cspViolations.length > 0")
    assert any("script-src" in v for v in ui.csp_violations())
    page.evaluate("window.__cspViolations.length = 0")
    ui.errors.clear()  # Chromium also logs the refusal to the console


def test_every_screen_renders_cleanly(ui: Watched, server: ServerProcess) -> None:
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    for name, heading in (
        ("Policies", "ACL policies"),
        ("Auth methods", "Auth methods"),
        ("Identity", "Identity"),
        ("Tokens", "Tokens"),
        ("Leases", "Leases"),
        ("Audit", "Audit devices"),
        ("Status", "Status"),
    ):
        page.get_by_role("link", name=name, exact=True).click()
        expect(page.get_by_role("heading", name=heading, exact=False).first).to_be_visible()
        assert unlabelled_controls(page) == [], name
    expect(page.get_by_role("heading", name="Metrics")).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+ gauges, \d+ counters"))).to_be_visible()
    expect(page.get_by_role("table", name="Seal status")).to_contain_text("Unseal progress")
    # keyboard: the skip link is the first stop and lands on the content
    page.reload()
    expect(page.get_by_role("heading", name="Status")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_auth_method_enable_tune_roles_and_disable(ui: Watched, server: ServerProcess) -> None:
    http = server.http(server.root_token)
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.get_by_role("link", name="Auth methods").click()
    page.get_by_label("Type").select_option("approle")
    page.get_by_label("Path").fill("ar")
    page.get_by_role("button", name="Enable").click()
    page.get_by_role("link", name="ar/").click()
    expect(page.get_by_role("heading", name="approle at ar/")).to_be_visible()
    assert unlabelled_controls(page) == []
    # tune: only the fields changed are sent
    tune = page.locator('form[data-form="tune"]')
    tune.get_by_label("default_lease_ttl").fill("1h")
    tune.get_by_label("max_lease_ttl").fill("7200")
    tune.get_by_label("listing_visibility").select_option("hidden")
    tune.get_by_label("token_type").select_option("batch")
    tune.get_by_label("audit_non_hmac_request_keys").fill("role_id, metadata")
    tune.get_by_label("description").fill("machines")
    tune.get_by_role("button", name="Save tuning").click()
    expect(page.locator("#tune-result")).to_contain_text("Saved: ")
    tuned = http.get("/v1/sys/auth/ar/tune").json()["data"]
    assert tuned["default_lease_ttl"] == 3600 and tuned["max_lease_ttl"] == 7200
    assert tuned["token_type"] == "batch" and tuned["description"] == "machines"
    assert tuned["audit_non_hmac_request_keys"] == ["role_id", "metadata"]
    assert http.get("/v1/sys/auth").json()["data"]["ar/"]["config"]["listing_visibility"] == (
        "hidden"
    )
    tune.get_by_label("max_lease_ttl").fill("30")
    tune.get_by_role("button", name="Save tuning").click()
    expect(page.locator("#tune-result")).to_contain_text("Error 400")
    # a role, through the form built from the OpenAPI document
    page.get_by_label("Name", exact=True).fill("web")
    page.get_by_role("button", name="New role").click()
    expect(page.get_by_role("heading", name="New role web")).to_be_visible()
    assert unlabelled_controls(page) == []
    item = page.locator('form[data-form="item"]')
    item.get_by_label("token_policies").fill("default, web")
    item.get_by_label("secret_id_num_uses").fill("3")
    item.get_by_label("bind_secret_id").select_option("false")
    item.get_by_label("secret_id_bound_cidrs").fill("10.0.0.0/8")
    item.get_by_role("button", name="Save role").click()
    expect(page.locator("#edit-result")).to_contain_text("Saved role web.")
    role = http.get("/v1/auth/ar/role/web").json()["data"]
    assert role["token_policies"] == ["default", "web"]
    assert role["secret_id_num_uses"] == 3 and role["bind_secret_id"] is False
    assert role["secret_id_bound_cidrs"] == ["10.0.0.0/8"]
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="ar/").click()
    page.get_by_role("link", name="web", exact=True).click()
    expect(item.get_by_label("secret_id_num_uses")).to_have_value("3")
    item.get_by_label("token_ttl").fill("20m")
    item.get_by_role("button", name="Save role").click()
    expect(page.locator("#edit-result")).to_contain_text("Saved role web.")
    role = http.get("/v1/auth/ar/role/web").json()["data"]
    assert role["token_ttl"] == 1200 and role["secret_id_num_uses"] == 3
    item.get_by_role("button", name="Delete role").click()
    expect(page.get_by_text("No roles yet.")).to_be_visible()
    page.get_by_role("navigation", name="Breadcrumb").get_by_role(
        "link", name="Auth methods"
    ).click()
    page.get_by_role("button", name="Disable ar/").click()
    expect(page.get_by_role("link", name="ar/")).to_have_count(0)
    assert "ar/" not in http.get("/v1/sys/auth").json()["data"]


@pytest.mark.parametrize(
    ("kind", "path", "name", "fields", "expected"),
    [
        (
            "jwt",
            "jwt-ui",
            "dev",
            {"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a1, a2"},
            {"user_claim": "sub", "bound_audiences": ["a1", "a2"]},
        ),
        (
            "kubernetes",
            "k8s-ui",
            "app",
            {"bound_service_account_names": "web", "bound_service_account_namespaces": "prod"},
            {"bound_service_account_names": ["web"], "bound_service_account_namespaces": ["prod"]},
        ),
        (
            "cert",
            "cert-ui",
            "ops",
            {"certificate": "PEM", "allowed_common_names": "ops.example", "display_name": "ops"},
            {"allowed_common_names": ["ops.example"], "display_name": "ops"},
        ),
        (
            "token",
            "token",
            "ci",
            {"allowed_policies": "ci, default", "orphan": True},
            {"allowed_policies": ["ci", "default"], "orphan": True},
        ),
    ],
)
def test_roles_of_every_method_through_the_generic_editor(
    ui: Watched,
    server: ServerProcess,
    kind: str,
    path: str,
    name: str,
    fields: dict[str, object],
    expected: dict[str, object],
) -> None:
    http = server.http(server.root_token)
    if kind != "token":
        assert http.post(f"/v1/sys/auth/{path}", json={"type": kind}).status_code == 204
    if kind == "cert":
        fields = {**fields, "certificate": CERT_PEM}
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.goto(f"{server.addr}/ui/#/auth-methods/{path}")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name=re.compile("^New ")).click()
    item = page.locator('form[data-form="item"]')
    for label, value in fields.items():
        if value is True:  # a new item's booleans: (server default), true, false
            item.get_by_label(label, exact=True).select_option("true")
        else:
            item.get_by_label(label, exact=True).fill(str(value))
    item.get_by_role("button", name=re.compile("^Save ")).click()
    expect(page.locator("#edit-result")).to_contain_text(f" {name}.")
    assert unlabelled_controls(page) == []
    plural = {"jwt": "role", "kubernetes": "role", "cert": "certs", "token": "roles"}[kind]
    stored = http.get(f"/v1/auth/{path}/{plural}/{name}").json()["data"]
    for key, value in expected.items():
        assert stored[key] == value, key
    page.goto(f"{server.addr}/ui/#/auth-methods/{path}")
    expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    assert http.delete(f"/v1/auth/{path}/{plural}/{name}").status_code == 204


def test_identity_entities_groups_and_aliases(ui: Watched, server: ServerProcess) -> None:
    http = server.http(server.root_token)
    http.post("/v1/sys/auth/up-id", json={"type": "userpass"})
    accessor = http.get("/v1/sys/auth").json()["data"]["up-id/"]["accessor"]
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.get_by_role("link", name="Identity").click()
    page.get_by_label("Entity name").fill("carol")
    page.get_by_role("button", name="Create entity").click()
    expect(page.get_by_role("heading", name="Entity carol")).to_be_visible()
    assert unlabelled_controls(page) == []
    entity_id = http.get("/v1/identity/entity/name/carol").json()["data"]["id"]
    form = page.locator('form[data-form="entity"]')
    form.get_by_label("Policies").fill("dev, ops")
    form.get_by_label("Metadata").fill("team=payments\nsite = lon")
    form.get_by_role("button", name="Save entity").click()
    expect(page.locator("#identity-result")).to_contain_text("Entity saved.")
    entity = http.get(f"/v1/identity/entity/id/{entity_id}").json()["data"]
    assert entity["policies"] == ["dev", "ops"]
    assert entity["metadata"] == {"team": "payments", "site": "lon"}
    page.get_by_label("Alias name").fill("carol")
    page.get_by_label("Auth method").select_option(accessor)
    page.get_by_role("button", name="Add alias").click()
    aliases = page.get_by_role("table", name="Aliases")
    expect(aliases).to_contain_text("up-id/")
    entity = http.get(f"/v1/identity/entity/id/{entity_id}").json()["data"]
    assert [a["name"] for a in entity["aliases"]] == ["carol"]
    assert entity["aliases"][0]["mount_accessor"] == accessor
    page.get_by_role("button", name="Delete alias carol").click()
    expect(page.get_by_text("No aliases yet.")).to_be_visible()
    assert http.get(f"/v1/identity/entity/id/{entity_id}").json()["data"]["aliases"] in ([], None)
    # an internal group with carol as a member
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Identity").click()
    page.get_by_label("Group name").fill("payments")
    page.get_by_role("button", name="Create group").click()
    expect(page.get_by_role("heading", name="Group payments")).to_be_visible()
    assert unlabelled_controls(page) == []
    group = page.locator('form[data-form="group"]')
    group.get_by_label("Member entities").select_option(label="carol")
    group.get_by_label("Policies").fill("payments")
    group.get_by_role("button", name="Save group").click()
    expect(page.locator("#identity-result")).to_contain_text("Group saved.")
    stored = http.get("/v1/identity/group/name/payments").json()["data"]
    assert stored["member_entity_ids"] == [entity_id] and stored["policies"] == ["payments"]
    # an external group takes one alias
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Identity").click()
    page.get_by_label("Group name").fill("ldap-admins")
    page.get_by_label("Group type").select_option("external")
    page.get_by_role("button", name="Create group").click()
    page.get_by_label("Alias name").fill("admins")
    page.get_by_label("Auth method").select_option(accessor)
    page.get_by_role("button", name="Add alias").click()
    expect(page.get_by_role("table", name="Group alias")).to_contain_text("admins")
    ext = http.get("/v1/identity/group/name/ldap-admins").json()["data"]
    assert ext["alias"]["name"] == "admins"
    # delete the group and the entity
    page.get_by_role("button", name="Delete group").click()
    expect(page.get_by_role("heading", name="Identity")).to_be_visible()
    assert http.get("/v1/identity/group/name/ldap-admins").status_code == 404
    page.get_by_role("link", name="carol").click()
    page.get_by_role("button", name="Delete entity").click()
    expect(page.get_by_role("heading", name="Identity")).to_be_visible()
    assert http.get(f"/v1/identity/entity/id/{entity_id}").status_code == 404


def test_audit_tamper_evidence_and_search(
    ui: Watched, server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    http = server.http(server.root_token)
    log = tmp_path_factory.mktemp("audit") / "audit.log"
    enabled = http.put(
        "/v1/sys/audit/uifile",
        json={"type": "file", "options": {"file_path": str(log), "checkpoint_entries": "5"}},
    )
    assert enabled.status_code == 204, enabled.text
    try:
        for i in range(6):
            http.post(f"/v1/secret/data/audited/{i}", json={"data": {"v": "x"}})
        page = ui.page
        sign_in(page, server.addr, server.root_token)
        page.get_by_role("link", name="Audit").click()
        row = page.locator("tr").filter(has_text="uifile/")
        row.get_by_role("button", name="Verify", exact=True).click()
        expect(page.locator("#verify-result")).to_contain_text("chain intact")
        chains = page.get_by_role("table", name="Chains (one per writer)")
        expect(chains.locator("tbody tr")).to_have_count(1)
        expect(chains).to_contain_text("never recorded")
        row.get_by_role("button", name="Verify and record").click()
        expect(page.locator("#verify-result")).to_contain_text("Last checkpoints recorded.")
        expect(chains).to_contain_text("verified 20")
        form = page.locator("form").filter(has_text="Search the log")
        form.get_by_label("Request path").fill("secret/data/audited/*")
        form.get_by_label("Operation").select_option("create")
        form.get_by_role("button", name="Search").click()
        # each write is logged twice (request and response)
        expect(page.locator("#search-result")).to_contain_text("12 entries")
        expect(page.locator("#search-result tbody tr").first).to_contain_text(
            "secret/data/audited/0"
        )
        # a line edited on disk is found
        lines = log.read_bytes().split(b"\n")
        at = next(i for i, line in enumerate(lines) if b'"operation":"create"' in line)
        lines[at] = lines[at].replace(b'"operation":"create"', b'"operation":"delete"', 1)
        log.write_bytes(b"\n".join(lines))
        row.get_by_role("button", name="Verify", exact=True).click()
        expect(page.locator("#verify-result")).to_contain_text("BROKEN at")
        expect(page.locator("#verify-result")).to_contain_text("line")
        # sudo only
        http.put(
            "/v1/sys/policies/acl/auditsearch",
            json={"policy": 'path "sys/audit-*" { capabilities = ["read", "update"] }'},
        )
        made = http.post("/v1/auth/token/create", json={"policies": ["auditsearch"]}).json()
        plain = server.http(made["auth"]["client_token"])
        assert plain.post("/v1/sys/audit-search/uifile", json={}).status_code == 403
        assert plain.get("/v1/sys/audit-verify/uifile").status_code == 403
    finally:
        assert http.delete("/v1/sys/audit/uifile").status_code == 204


def test_leases_by_prefix_lookup_and_revoke(ui: Watched, server: ServerProcess) -> None:
    http = server.http(server.root_token)
    made = http.post("/v1/auth/token/create", json={"policies": ["default"], "ttl": "1h"}).json()
    victim = made["auth"]["client_token"]
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.get_by_role("link", name="Leases").click()
    page.get_by_role("link", name="auth/").click()
    page.get_by_role("link", name="token/").click()
    page.get_by_role("link", name="create/").click()
    expect(page.get_by_role("heading", name="Leases under auth/token/create/")).to_be_visible()
    leases = page.locator("ul.keys li")
    expect(leases.first).to_be_visible()
    # the victim's lease: its TTL is under an hour (the other tokens have the default 768h)
    ids = leases.locator("code").all_inner_texts()
    mine = [
        lease
        for lease in ids
        if http.put(
            "/v1/sys/leases/lookup", json={"lease_id": f"auth/token/create/{lease}"}
        ).json()["data"]["ttl"]
        <= 3600
    ]
    assert len(mine) == 1
    item = leases.filter(has_text=mine[0])
    item.get_by_role("button", name="Lookup").click()
    expect(page.get_by_role("cell", name=f"auth/token/create/{mine[0]}")).to_be_visible()
    for lease in mine:
        leases.filter(has_text=lease).get_by_role("button", name="Revoke").click()
        expect(leases.filter(has_text=lease)).to_have_count(0)
    assert server.http(victim).get("/v1/auth/token/lookup-self").status_code == 403


def test_unseal_form_takes_shares_one_after_another(ui: Watched, server: ServerProcess) -> None:
    # last in the module: it seals the shared dev server (and unseals it again)
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    assert server.http(server.root_token).put("/v1/sys/seal").status_code == 204
    page.get_by_role("link", name="Status").click()
    expect(page.locator("#statusbar")).to_contain_text("Sealed (0/1 key shares)")
    page.get_by_label("Unseal key share").fill("bm90IGEga2V5")
    page.get_by_role("button", name="Submit share").click()
    expect(page.get_by_role("alert")).to_be_visible()  # a wrong share is refused
    assert page.get_by_label("Unseal key share").input_value() == ""
    page.get_by_label("Unseal key share").fill(server.unseal_key)
    page.get_by_role("button", name="Submit share").click()
    expect(page.locator("#statusbar")).to_contain_text("Unsealed")
    expect(page.get_by_role("heading", name="Unseal")).to_have_count(0)
    assert server.http().get("/v1/sys/seal-status").json()["sealed"] is False


def test_transit_sign_verify_and_hmac(ui: Watched, server: ServerProcess) -> None:
    http = server.http(server.root_token)
    http.post("/v1/sys/mounts/transit-sig", json={"type": "transit"})
    page = ui.page
    sign_in(page, server.addr, server.root_token)
    page.goto(server.addr + "/ui/#/transit/transit-sig")
    page.get_by_label("Name").fill("signer")
    page.get_by_label("Type").select_option("ed25519")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="Key signer")).to_be_visible()
    sign = page.locator('form[data-op="sign"]')
    sign.get_by_label("Input (text)").fill("release v1.2")
    sign.get_by_role("button", name="Sign").click()
    expect(sign.locator("output")).to_have_text(re.compile(r"^vault:v1:"))
    signature = sign.locator("output").inner_text()
    verify = page.locator('form[data-op="verify"]')
    verify.get_by_label("Input (text)").fill("release v1.2")
    verify.get_by_label("Signature").fill(signature)
    verify.get_by_role("button", name="Verify").click()
    expect(verify.locator("output")).to_have_text("Valid signature")
    verify.get_by_label("Input (text)").fill("release v1.3")
    verify.get_by_role("button", name="Verify").click()
    expect(verify.locator("output")).to_have_text("Invalid signature")
    hmac = page.locator('form[data-op="hmac"]')
    hmac.get_by_label("Input (text)").fill("abc")
    hmac.get_by_role("button", name="HMAC").click()
    expect(hmac.locator("output")).to_have_text(re.compile(r"^vault:v1:"))
    answer = http.post(
        "/v1/transit-sig/hmac/signer", json={"input": base64.b64encode(b"abc").decode()}
    ).json()
    assert hmac.locator("output").inner_text() == answer["data"]["hmac"]
