"""Debian's chromium driven by Playwright (its own browser download is not available here).

Shared by the UI tests, ``bench/ui.py`` and ``make ui-screenshots``. A missing chromium is
an error, never a skip: CI installs it (``.ci/run``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

CHROMIUM = os.environ.get("STRONGROOM_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# records CSP violations in the page (an init script runs outside the page's CSP)
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


@contextmanager
def chromium() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page plus every console error, page error and request that left the server."""

    page: Page
    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__cspViolations || []"))

    def problems(self) -> list[str]:
        return [*self.errors, *self.foreign, *self.csp_violations()]


def watched_page(browser: Browser, origin: str, **context_args: object) -> Watched:
    context = browser.new_context(**context_args)  # type: ignore[arg-type]
    context.add_init_script(_WATCH_CSP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    watched = Watched(page, origin)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not _expected_http_error(msg.text):
            watched.errors.append(f"console: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.errors.append(f"page error: {exc}"))
    page.on(
        "request",
        lambda req: (
            None
            if req.url.startswith(origin) or req.url.startswith("data:")
            else watched.foreign.append(f"third-party request: {req.url}")
        ),
    )
    return watched


def _expected_http_error(text: str) -> bool:
    # Chromium logs every 4xx fetch ("Failed to load resource: … 403/404"); the UI asks on
    # purpose (LIST of an empty folder is a 404, a denied read a 403, anything with a token
    # on a sealed server a 503) and shows the answer. Any other console error fails a test.
    prefix = "Failed to load resource: the server responded with a status of "
    return text.startswith(prefix + "4") or text.startswith(prefix + "503")


def sign_in(page: Page, addr: str, token: str) -> None:
    page.goto(addr + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert unlabelled_controls(page) == []
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Secrets engines")).to_be_visible()


def unlabelled_controls(page: Page) -> list[str]:
    """Form controls on screen without an accessible name (a <label> or aria-label)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
              .filter((el) => !el.hidden && el.type !== 'hidden')
              .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
              .map((el) => el.outerHTML.slice(0, 80))"""
        )
    )
