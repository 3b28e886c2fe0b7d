"""Accessibility in a real browser: text contrast (WCAG 2.x AA) computed from the computed
styles of every visible text on the main screens, in the light and the dark scheme, and
keyboard-only use (tab order, focus ring, Enter to act, no focus trap). On the way round the
screens, every call to /v1 is checked to carry X-Vault-Token (no cookie, no token in a URL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.serverproc import ServerProcess, start_dev_server
from tests.ui.browser import Watched, chromium, sign_in, watched_page

# For every visible element holding text (and every form control showing a value): the
# contrast ratio of its colour over its effective background (the backgrounds of its
# ancestors composited, alpha included), against 4.5:1, or 3:1 for large text (>= 24px,
# or >= 18.66px bold). Returns the failures.
CONTRAST = """() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c || '');
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const visible = (el) => {
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || st.display === 'none') return false;
    if (Number(st.opacity) === 0) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0 && !el.closest('[hidden]');
  };
  const check = (el, what) => {
    const st = getComputedStyle(el);
    const bg = background(el);
    const fg = over(parse(st.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (Number(st.fontWeight) >= 700 && size >= 18.66);
    const need = large ? 3 : 4.5;
    if (ratio + 1e-6 < need) {
      return `${el.tagName.toLowerCase()}.${el.className || ''} "${what.trim().slice(0, 40)}": `
        + `${ratio.toFixed(2)}:1 < ${need}:1 (${st.color} on rgb(${bg.r|0}, ${bg.g|0}, ${bg.b|0}))`;
    }
    return null;
  };
  const failures = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode;
    const el = text.parentElement;
    if (!text.textContent.trim() || !el || seen.has(el)) continue;
    if (el.closest('option, script, noscript')) continue;
    seen.add(el);
    if (!visible(el)) continue;
    const bad = check(el, text.textContent);
    if (bad) failures.push(bad);
  }
  const controls = 'input:not([type=checkbox]):not([type=radio]), select, textarea';
  for (const el of document.querySelectorAll(controls)) {
    if (!visible(el)) continue;
    const bad = check(el, el.value || el.tagName);
    if (bad) failures.push(bad);
  }
  return failures;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_dev_server(tmp_path_factory.mktemp("ui-a11y"))
    http = proc.http(proc.root_token)
    for name in ("app/db", "app/api", "web/session"):
        http.post(f"/v1/secret/data/{name}", json={"data": {"password": "pw", "user": "u"}})
    http.post("/v1/secret/data/app/db", json={"data": {"password": "pw2"}})
    http.request("DELETE", "/v1/secret/data/app/db")  # version 2 deleted: a warn-coloured state
    http.post("/v1/sys/mounts/transit", json={"type": "transit"})
    http.post("/v1/transit/keys/orders", json={})
    http.post("/v1/sys/auth/userpass", json={"type": "userpass"})
    http.post("/v1/auth/userpass/users/alice", json={"password": "pw"})
    http.post("/v1/identity/entity", json={"name": "alice-entity"})
    http.put("/v1/sys/policies/acl/readers", json={"policy": 'path "secret/*" {\n}\n'})
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


SCREENS = [
    ("#/secrets", "Secrets engines"),
    ("#/secrets/secret/list/app/", "app/"),
    ("#/secrets/secret/show/app/db", "app/db"),
    ("#/transit/transit/key/orders", "Key orders"),
    ("#/policies/readers", "Policy readers"),
    ("#/auth-methods", "Auth methods"),
    ("#/auth-methods/userpass", "userpass at userpass/"),
    ("#/auth-methods/userpass/edit/alice", "user alice"),
    ("#/identity", "Identity"),
    ("#/tokens", "Tokens"),
    ("#/leases", "Leases"),
    ("#/audit", "Audit devices"),
    ("#/status", "Status"),
]


# what the app asks without a token: the sign-in screen and the status bar/panel
PUBLIC_CALLS = {"sys/internal/ui/mounts", "sys/seal-status", "sys/leader"}


def contrast_failures(page: Page) -> list[str]:
    return list(page.evaluate(CONTRAST))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa_on_the_main_screens(
    browser: Browser, server: ServerProcess, scheme: str
) -> None:
    ui = watched_page(browser, server.addr, color_scheme=scheme)
    page = ui.page
    sent: list[tuple[str, dict[str, str]]] = []
    page.on("request", lambda req: sent.append((req.url, req.headers)))
    try:
        page.goto(server.addr + "/ui/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        failures = {"sign-in": contrast_failures(page)}
        sign_in(page, server.addr, server.root_token)
        for route, heading in SCREENS:
            page.goto(f"{server.addr}/ui/{route}")
            expect(page.get_by_role("heading", name=heading).first).to_be_visible()
            page.wait_for_load_state("networkidle")
            failures[route] = contrast_failures(page)
        # states shown only after an action: revealed values, errors, the policy error line
        page.goto(f"{server.addr}/ui/#/policies/readers")
        page.get_by_label("Policy (HCL)").fill('path "x" {\n  oops = = 1\n}\n')
        page.get_by_role("button", name="Save policy").click()
        expect(page.locator(".gutter .bad")).to_be_visible()
        failures["policy error"] = contrast_failures(page)
        page.goto(f"{server.addr}/ui/#/secrets/secret/show/app/db")
        expect(page.get_by_text("Version 2 is deleted: no data.")).to_be_visible()
        failures["deleted version"] = contrast_failures(page)
        bad = [f"{screen}: {failure}" for screen, found in failures.items() for failure in found]
        assert not bad, "\n".join(bad)
        # on the way: every call to /v1 carries X-Vault-Token, but for the few that need
        # none; no cookie, and the token never in a URL
        calls = [(url, headers) for url, headers in sent if "/v1/" in url]
        assert len(calls) > 30
        for url, headers in calls:
            assert server.root_token not in url and "cookie" not in headers, url
            path = url.split("/v1/", 1)[1].split("?")[0]
            if path not in PUBLIC_CALLS:
                assert headers.get("x-vault-token") == server.root_token, url
        assert ui.problems() == []
    finally:
        page.context.close()


def focused(page: Page) -> dict[str, str]:
    return dict(
        page.evaluate(
            """() => {
              const el = document.activeElement;
              const st = getComputedStyle(el);
              return { tag: el.tagName.toLowerCase(), id: el.id,
                       text: (el.textContent || '').trim(),
                       label: el.labels && el.labels.length ? el.labels[0].textContent : '',
                       outline: st.outlineStyle, outlineWidth: st.outlineWidth };
            }"""
        )
    )


def test_keyboard_only_sign_in_and_navigation(browser: Browser, server: ServerProcess) -> None:
    ui: Watched = watched_page(browser, server.addr)
    page = ui.page
    try:
        page.goto(server.addr + "/ui/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        # the sign-in form takes focus, a token typed in and Enter signs in
        assert focused(page)["label"] in ("Method", "Token")
        if focused(page)["label"] == "Method":
            page.keyboard.press("Tab")
        assert focused(page)["label"] == "Token"
        page.keyboard.type(server.root_token)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Secrets engines")).to_be_visible()
        # from the top: the skip link, then the main navigation in order, each with a
        # visible focus ring
        page.reload()  # focus navigation starts again at the top of the document
        expect(page.get_by_role("heading", name="Secrets engines")).to_be_visible()
        page.keyboard.press("Tab")
        assert focused(page)["id"] == "skip"
        order = []
        for _ in range(9):
            page.keyboard.press("Tab")
            now = focused(page)
            assert now["tag"] == "a" and now["outline"] != "none", now
            order.append(now["text"])
        assert order == [
            "Secrets",
            "Transit",
            "Policies",
            "Auth methods",
            "Identity",
            "Tokens",
            "Leases",
            "Audit",
            "Status",
        ]
        page.keyboard.press("Tab")
        assert focused(page)["text"] == "Sign out"
        # Enter follows a link; shift-tab goes back
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")
        assert focused(page)["text"] == "Audit"
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Audit devices")).to_be_visible()
        # every control of a busy screen is reached by Tab, and Tab leaves none of them
        # stuck (no focus trap): the cycle comes back to the skip link
        page.goto(server.addr + "/ui/#/auth-methods/userpass")
        expect(page.get_by_role("heading", name="userpass at userpass/")).to_be_visible()
        page.wait_for_load_state("networkidle")
        expected = page.evaluate(
            """() => [...document.querySelectorAll('a[href], button, input, select, textarea')]
              .filter((el) => !el.disabled && !el.closest('[hidden]') && el.getClientRects().length
                      && el.tabIndex >= 0).length"""
        )
        reached = set()
        for _ in range(expected + 5):
            page.keyboard.press("Tab")
            key = page.evaluate(
                "() => { const e = document.activeElement;"
                " if (!e.dataset.k) e.dataset.k = String(Math.random());"
                " return e.tagName === 'BODY' ? '' : e.dataset.k; }"
            )
            if key:
                reached.add(key)
        assert len(reached) == expected
        # a form is used with the keyboard alone: tune the description, Enter submits
        page.get_by_label("description").focus()
        page.keyboard.type("people")
        page.keyboard.press("Enter")
        expect(page.locator("#tune-result")).to_contain_text("Saved: description")
        tuned = server.http(server.root_token).get("/v1/sys/auth/userpass/tune").json()
        assert tuned["data"]["description"] == "people"
        assert ui.problems() == []
    finally:
        page.context.close()
