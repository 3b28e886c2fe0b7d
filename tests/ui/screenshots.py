"""Regenerate the UI screenshots in ``docs/ui/`` (``make ui-screenshots``).

Starts a dev server, seeds a few secrets, a transit key and a policy, and photographs the
main screens in headless chromium at 1024x640 (light scheme)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page

from tests.serverproc import start_dev_server
from tests.ui.browser import chromium, watched_page

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"


def seed(addr: str, token: str) -> str:
    import httpx

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
