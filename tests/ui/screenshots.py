"""Regenerate the UI screenshots in ``docs/ui/`` (``make ui-screenshots``).

Starts a dev server, seeds a few secrets, a transit key and a policy, and photographs the
main screens in headless chromium at 1024x640 (light scheme)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page

from tests.serverproc import start_dev_server
from tests.ui.browser import chromium, watched_page

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"


def seed(addr: str, token: str) -> str:
    with httpx.Client(base_url=addr, headers={"X-Vault-Token": token}, timeout=30) as http:
        for name in ("billing/stripe", "billing/ledger-db", "web/session-key", "ci/deploy-key"):
            http.post(
                f"/v1/secret/data/{name}", json={"data": {"api_key": "s3cr3t", "owner": "ops"}}
            )
        http.post(
            "/v1/secret/data/billing/stripe", json={"data": {"api_key": "rotated", "owner": "ops"}}
        )
        http.post("/v1/sys/mounts/transit", json={"type": "transit"})
        http.post("/v1/transit/keys/orders", json={"type": "aes256-gcm96"})
        http.put(
            "/v1/sys/policies/acl/readers",
            json={"policy": 'path "secret/metadata/*" {\n  capabilities = ["list"]\n}\n'},
        )
        http.post("/v1/sys/auth/approle", json={"type": "approle", "description": "machines"})
        http.post(
            "/v1/auth/approle/role/ci-runner",
            json={"token_policies": ["ci"], "secret_id_num_uses": 10, "token_ttl": "20m"},
        )
        http.post("/v1/auth/approle/role/web", json={"token_policies": ["web"]})
        made = http.post("/v1/identity/entity", json={"name": "alice", "policies": ["ops"]})
        accessor = http.get("/v1/sys/auth").json()["data"]["approle/"]["accessor"]
        http.post(
            "/v1/identity/entity-alias",
            json={
                "name": "ci-runner",
                "mount_accessor": accessor,
                "canonical_id": made.json()["data"]["id"],
            },
        )
        made = http.post("/v1/auth/token/create", json={"policies": ["readers"]}).json()
        return str(made["auth"]["client_token"])


def shoot(page: Page, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    print(f"docs/ui/{name}.png")


def main() -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_dev_server(Path(tmp))
        try:
            reader = seed(server.addr, server.root_token)
            with chromium() as browser:
                ui = watched_page(
                    browser,
                    server.addr,
                    viewport={"width": 1024, "height": 640},
                    color_scheme="light",
                )
                page = ui.page
                page.on("dialog", lambda d: d.accept())
                page.goto(server.addr + "/ui/")
                page.get_by_role("heading", name="Sign in").wait_for()
                shoot(page, "sign-in")
                page.get_by_label("Token").fill(server.root_token)
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("heading", name="Secrets engines").wait_for()
                page.goto(server.addr + "/ui/#/secrets/secret/list/billing/")
                page.get_by_role("link", name="Secret stripe").wait_for()
                shoot(page, "secrets-list")
                page.get_by_role("link", name="Secret stripe").click()
                page.get_by_role("button", name="Reveal").first.click()
                shoot(page, "secret")
                page.goto(server.addr + "/ui/#/transit/transit/key/orders")
                form = page.locator('form[data-op="encrypt"]')
                form.get_by_label("Plaintext").fill("attack at dawn")
                form.get_by_role("button", name="Encrypt").click()
                form.locator("output").filter(has_text="vault:v1:").wait_for()
                page.locator("section.ops").scroll_into_view_if_needed()
                shoot(page, "transit")
                page.goto(server.addr + "/ui/#/policies/readers")
                page.get_by_label("Policy (HCL)").fill(
                    'path "secret/metadata/*" {\n  capabilities = ["list"]\n  oops = = 1\n}\n'
                )
                page.get_by_role("button", name="Save policy").click()
                page.get_by_text("Syntax error at line 3").wait_for()
                shoot(page, "policy-error")
                page.goto(server.addr + "/ui/#/auth-methods/approle")
                page.get_by_role("heading", name="approle at approle/").wait_for()
                shoot(page, "auth-method")
                page.goto(server.addr + "/ui/#/auth-methods/approle/edit/ci-runner")
                page.get_by_label("secret_id_num_uses").wait_for()
                shoot(page, "role-editor")
                page.goto(server.addr + "/ui/#/identity")
                page.get_by_role("link", name="alice").click()
                page.get_by_role("table", name="Aliases").wait_for()
                shoot(page, "identity-entity")
                audit_log = Path(tmp) / "audit.log"
                with httpx.Client(
                    base_url=server.addr,
                    headers={"X-Vault-Token": server.root_token},
                    timeout=30,
                ) as http:
                    options = {"file_path": str(audit_log), "checkpoint_entries": "4"}
                    http.put("/v1/sys/audit/file", json={"type": "file", "options": options})
                    for i in range(6):
                        http.get(f"/v1/secret/data/billing/stripe?n={i}")
                page.goto(server.addr + "/ui/#/audit")
                page.get_by_role("button", name="Verify and record").click()
                page.get_by_role("table", name="Chains (one per writer)").wait_for()
                shoot(page, "audit-verify")
                page.goto(server.addr + "/ui/#/status")
                page.get_by_role("heading", name="Metrics").wait_for()
                shoot(page, "status")
                page.get_by_role("button", name="Sign out").click()
                page.get_by_label("Token").fill(reader)
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("heading", name="Secrets engines").wait_for()
                page.goto(server.addr + "/ui/#/secrets/secret/show/billing/stripe")
                page.get_by_text("Permission denied").wait_for()
                shoot(page, "permission-denied")
                if ui.problems():
                    raise SystemExit(f"the UI reported problems: {ui.problems()}")
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
