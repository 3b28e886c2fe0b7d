"""What a screen hides stays hidden: the ``hidden`` attribute beats every display rule of
the stylesheet (``.field``'s flex, ``button``'s inline-block …). On every screen, every
element carrying ``hidden`` must compute to ``display: none``; the sign-in screen's method
switch and the secret editor's JSON mode are checked by what a user sees."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.serverproc import ServerProcess
from tests.ui.browser import Watched, chromium, sign_in, watched_page

SCREENS = (
    "#/secrets",
    "#/secrets/secret/create/",
    "#/transit",
    "#/policies",
    "#/auth-methods",
    "#/identity",
    "#/tokens",
    "#/leases",
    "#/audit",
    "#/status",
)

# every element with the hidden attribute whose computed display is not none
_SHOWN_THOUGH_HIDDEN = """() => [...document.querySelectorAll('[hidden]')]
  .filter((el) => getComputedStyle(el).display !== 'none')
  .map((el) => el.outerHTML.slice(0, 100))"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def ui(browser: Browser, dev_server: ServerProcess) -> Iterator[Watched]:
    watched = watched_page(browser, dev_server.addr)
    try:
        yield watched
        assert watched.problems() == []
    finally:
        watched.page.context.close()


def _shown_though_hidden(page: Page) -> list[str]:
    return list(page.evaluate(_SHOWN_THOUGH_HIDDEN))


def test_hidden_elements_are_hidden_on_every_screen(ui: Watched, dev_server: ServerProcess) -> None:
    page = ui.page
    page.goto(dev_server.addr + "/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # signed out: no "Sign out" button (a <button hidden>, which button's display once beat)
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert page.locator("[hidden]").count() >= 2
    assert _shown_though_hidden(page) == []

    sign_in(page, dev_server.addr, dev_server.root_token)
    for screen in SCREENS:
        page.goto(f"{dev_server.addr}/ui/{screen}")
        expect(page.locator("main h1").first).to_be_visible()
        assert _shown_though_hidden(page) == [], screen

    # the secret editor: JSON mode hides the rows and the "Add row" button
    page.goto(f"{dev_server.addr}/ui/#/secrets/secret/create/")
    add_row = page.get_by_role("button", name="Add row")
    expect(add_row).to_be_visible()
    expect(page.get_by_label("Secret data as JSON")).to_be_hidden()
    page.get_by_label("Edit as JSON").check()
    expect(page.get_by_label("Secret data as JSON")).to_be_visible()
    expect(add_row).to_be_hidden()
    assert _shown_though_hidden(page) == []
    page.get_by_label("Edit as JSON").uncheck()
    expect(add_row).to_be_visible()


def test_the_stylesheet_lets_hidden_win(ui: Watched, dev_server: ServerProcess) -> None:
    """Any element of any class the stylesheet gives a display: hidden still hides it."""
    page = ui.page
    page.goto(dev_server.addr + "/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shown = page.evaluate(
        """() => ['field', 'field check', 'actions', 'kv-row', 'titlebar', 'buttonlike', 'top',
                  'editor', 'grid2', 'ops', 'keys'].concat(['button', 'output', 'table'])
          .map((what) => {
            const el = ['button', 'output', 'table'].includes(what)
              ? document.createElement(what) : document.createElement('div');
            if (el.tagName === 'DIV') el.className = what;
            el.hidden = true;
            document.body.appendChild(el);
            const display = getComputedStyle(el).display;
            el.remove();
            return display === 'none' ? null : `${what}: ${display}`;
          }).filter(Boolean)"""
    )
    assert shown == []
