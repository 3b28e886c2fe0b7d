"""Web UI benchmark: time to first render of a 1,000-key folder, and the assets' size.

Run ``python bench/ui.py`` from the repository root with the project's virtualenv (needs
Debian's chromium at /usr/bin/chromium). It starts ``strongroom server -dev``, writes 1,000
KV v2 secrets under ``secret/big/``, signs in through the UI, then measures in headless
chromium (Playwright):

- *cold*: a full page load of ``/ui/#/secrets/secret/list/big/`` (token already in the tab's
  sessionStorage) until the 1,000 rows are in the DOM, from navigation start (the page's
  ``performance.now()``; polled every animation frame, so within ~16 ms);
- *warm*: an in-app navigation (hash change) from the mounts list to the same folder.

Each is repeated (``--rounds``, default 7) and the median and min are printed, with the total
uncompressed size of every file the UI serves. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make ``tests`` importable
    sys.path.insert(0, str(HERE.parent))

from strongroom.http import static  # noqa: E402
from tests.serverproc import start_dev_server  # noqa: E402
from tests.ui.browser import chromium, watched_page  # noqa: E402

KEYS = 1000
DONE = (
    "() => document.querySelectorAll('#secret-keys li').length === "
    f"{KEYS} ? performance.now() : false"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    total = sum(len(a.body) for a in static.assets().values())
    print(f"UI assets: {len(static.MANIFEST)} files, {total:,} bytes uncompressed")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_dev_server(Path(tmp))
        try:
            seed(server.addr, server.root_token)
            cold, warm = measure(server.addr, server.root_token, args.rounds)
        finally:
            server.stop()
    for name, times in (("cold load", cold), ("in-app navigation", warm)):
        print(
            f"first render of {KEYS:,} keys, {name}: median {statistics.median(times):.0f} ms, "
            f"min {min(times):.0f} ms ({len(times)} rounds)"
        )


def seed(addr: str, token: str) -> None:
    import httpx

    def write(chunk: range) -> None:
        with httpx.Client(base_url=addr, headers={"X-Vault-Token": token}, timeout=60) as http:
            for i in chunk:
                resp = http.post(f"/v1/secret/data/big/key-{i:04d}", json={"data": {"v": str(i)}})
                resp.raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, [range(n, KEYS, 8) for n in range(8)]))


def measure(addr: str, token: str, rounds: int) -> tuple[list[float], list[float]]:
    cold: list[float] = []
    warm: list[float] = []
    with chromium() as browser:
        ui = watched_page(browser, addr)
        page = ui.page
        page.goto(addr + "/ui/")
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Secrets engines").wait_for()
        folder = addr + "/ui/#/secrets/secret/list/big/"
        for _ in range(rounds + 1):  # the first round warms the server's caches
            page.goto(addr + "/ui/#/status")
            page.goto(folder)
            page.reload()
            cold.append(float(page.wait_for_function(DONE, polling="raf").json_value()))
            page.goto(addr + "/ui/#/secrets")
            page.get_by_role("heading", name="Secrets engines").wait_for()
            start = float(
                page.evaluate(
                    "() => { location.hash = '#/secrets/secret/list/big/';"
                    " return performance.now(); }"
                )
            )
            warm.append(float(page.wait_for_function(DONE, polling="raf").json_value()) - start)
        if ui.problems():
            raise SystemExit(f"the UI reported problems: {ui.problems()}")
    return cold[1:], warm[1:]


if __name__ == "__main__":
    main()
