"""The UI's static handler over real HTTP: on only when configured, a fixed manifest, the
security headers, no path traversal."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.http import static
from tests.serverproc import INMEM_CONFIG, ServerProcess, start_config_server


def raw_get(
    server: ServerProcess, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` exactly as written (no client-side normalisation of ``..``)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def ui_on(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_config_server(tmp_path_factory.mktemp("ui-on"), INMEM_CONFIG + "ui = true\n")
    try:
        yield server
    finally:
        server.stop()


def test_ui_is_off_unless_configured(tmp_path: Path) -> None:
    server = start_config_server(tmp_path, INMEM_CONFIG + "ui = false\n")
    try:
        for path in ("/ui", "/ui/", "/ui/js/app.js", "/"):
            assert raw_get(server, path)[0] == 404, path
    finally:
        server.stop()


def test_ui_served_with_security_headers(ui_on: ServerProcess) -> None:
    status, headers, body = raw_get(ui_on, "/")
    assert (status, headers["location"]) == (302, "/ui/")
    status, headers, body = raw_get(ui_on, "/ui/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="/ui/js/app.js">' in body
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    for path, kind in (("/ui/js/app.js", "text/javascript"), ("/ui/app.css", "text/css")):
        status, headers, body = raw_get(ui_on, path)
        assert status == 200 and headers["content-type"].startswith(kind) and body
        assert raw_get(ui_on, path, {"If-None-Match": headers["etag"]})[0] == 304


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../pyproject.toml",
        "/ui/js/../../server/config.py",
        "/ui/%2e%2e/static.py",
        "/ui/..%2fstatic.py",
        "/ui//etc/passwd",
        "/ui/js/app.js/",
        "/ui/index.html/..",
        "/ui/js/",
        "/ui/../../../../etc/passwd",
        "/ui/%00",
    ],
)
def test_traversal_is_refused(ui_on: ServerProcess, path: str) -> None:
    status, _, body = raw_get(ui_on, path)
    assert status == 404
    assert b"root:" not in body and b"import" not in body


def test_manifest_files_exist_and_are_small() -> None:
    files = static.assets()
    assert set(files) == set(static.MANIFEST)
    total = sum(len(a.body) for a in files.values())
    assert 0 < total < 500_000
    assert static.serve("GET", "/ui/nope.js").status == 404
    assert static.serve("POST", "/ui/").status == 405


def test_a_missing_chromium_is_an_error_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.ui import browser

    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(RuntimeError, match="apt-get install -y chromium"), browser.chromium():
        pass
