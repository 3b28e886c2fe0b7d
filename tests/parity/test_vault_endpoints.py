"""Endpoint coverage against Vault's API documentation (issue 13).

``vault_endpoints.txt`` lists every endpoint Vault documents for the engines, auth methods
and ``sys/`` areas Strongroom ships (made by ``tools/vault_endpoints.py``; see its docstring
for the rules and what is left out). This test starts a real dev server with every engine
and auth method mounted at Vault's default path, sends each endpoint once with its method,
plausible placeholder values and a minimal body, and classifies the answer:

- **missing**: 405, or 404 saying "unsupported path" or "no handler for route" (the
  router found no handler);
- **routed**: anything else (200/204, a 400 naming a field, a 404 for a missing object,
  403 …): the endpoint exists and answered as a handler.

It asserts the routed share is at least :data:`RATCHET` (raise it when you add endpoints; it
must never go down) and prints what is missing and any 5xx answer. Run it with ``-s`` to
see the report; ``python -m tests.parity.test_vault_endpoints`` prints it standalone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.serverproc import ServerProcess, start_dev_server

LIST_FILE = Path(__file__).with_name("vault_endpoints.txt")

# The routed share measured when this was last raised (a ratchet: never lower it).
RATCHET = 1.0  # 542 of 542 (was 482 of 542, 88.9 %, at 3ae177e)

# Where the docs' example mounts live on our server (doc file → (doc prefix, our prefix)).
REMOUNT = {"secret/kv/kv-v1.mdx": ("/secret/", "/kv1/")}

# Placeholder values by parameter name; a path's own override wins (first regex match).
PLACEHOLDER = {
    "id": "00000000-0000-0000-0000-000000000000",
    "method_id": "00000000-0000-0000-0000-000000000000",
    "issuer_ref": "default",
    "key_ref": "default",
    "serial": "01-02-03",
    "type": "internal",
    "key_type": "encryption-key",
    "version": "1",
    "source": "platform",
    "bytes": "8",
    "algorithm": "sha2-256",
    "hash_algorithm": "sha2-256",
    "prefix": "parity/",
    "mount_accessor": "auth_userpass_00000000",
    "tag": "root",
    "plugin_name": "postgresql-database-plugin",
    "request": "MEQwQjBAMD4wPDAJBgUrDgMCGgUABBQ",
    "path": "parity",
}
OVERRIDES: tuple[tuple[str, dict[str, str]], ...] = (
    (r"^/transit/datakey/", {"type": "plaintext"}),
    (r"^/transit/byok-export/", {"source": "parity"}),
    (r"^/sys/plugins/(catalog|reload)/", {"type": "secret", "name": "kv"}),
    (r"^/sys/(mounts|auth|audit|audit-hash)/", {"path": "parity-nothing"}),
    (r"^/sys/internal/ui/mounts/", {"path": "secret"}),
    (r"^/sys/loggers/", {"name": "strongroom"}),
)

# Sent last, in this order: they end the session (the root token is kept for the others).
LAST = ("/sys/step-down", "/sys/seal")

MOUNTS = {
    "kv1": {"type": "kv", "options": {"version": "1"}},
    "transit": {"type": "transit"},
    "pki": {"type": "pki"},
    "ssh": {"type": "ssh"},
    "totp": {"type": "totp"},
    "database": {"type": "database"},
}
AUTH = ("userpass", "approle", "jwt", "kubernetes", "cert")


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    template: str
    doc: str

    def url(self) -> str:
        path = self.template
        if self.doc in REMOUNT:
            old, new = REMOUNT[self.doc]
            path = path.replace(old, new, 1)
        values = dict(PLACEHOLDER)
        for pattern, override in OVERRIDES:
            if re.search(pattern, self.template):
                values |= override
                break
        return re.sub(r":([a-z_-]+)", lambda m: values.get(m.group(1), "parity"), path)


# What a 404 says when no handler exists (the router's own answers, as in Vault).
_NO_HANDLER = ("unsupported path", "no handler for route")


@dataclass(frozen=True, slots=True)
class Answer:
    endpoint: Endpoint
    status: int
    text: str

    @property
    def missing(self) -> bool:
        if self.status == 405:
            return True
        return self.status == 404 and any(sign in self.text for sign in _NO_HANDLER)


def load() -> list[Endpoint]:
    out = []
    for line in LIST_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            method, template, doc = line.split("\t")
            out.append(Endpoint(method, template, doc))
    return out


def _order(endpoint: Endpoint) -> int:
    return LAST.index(endpoint.template) + 1 if endpoint.template in LAST else 0


def send(http: httpx.Client, endpoint: Endpoint, token: str) -> Answer:
    headers = {"X-Vault-Token": token}
    body: bytes | None = None
    if endpoint.method in ("POST", "PATCH"):
        body = b"{}"
        headers["Content-Type"] = (
            "application/merge-patch+json" if endpoint.method == "PATCH" else "application/json"
        )
    request = http.build_request(
        endpoint.method, "/v1" + endpoint.url(), headers=headers, content=body
    )
    response = http.send(request, stream=True)
    try:
        # a streaming endpoint (sys/monitor) answers its status at once; read a little only
        text = ""
        if response.status_code >= 400:
            text = response.read().decode("utf-8", "replace")[:500]
        return Answer(endpoint, response.status_code, text)
    finally:
        response.close()


def prepare(http: httpx.Client, token: str) -> None:
    headers = {"X-Vault-Token": token}
    for path, body in MOUNTS.items():
        http.post(f"/v1/sys/mounts/{path}", json=body, headers=headers).raise_for_status()
    for path in AUTH:
        http.post(f"/v1/sys/auth/{path}", json={"type": path}, headers=headers).raise_for_status()


def survey(server: ServerProcess) -> list[Answer]:
    endpoints = sorted(load(), key=_order)
    answers = []
    with httpx.Client(base_url=server.addr, timeout=30.0) as http:
        prepare(http, server.root_token)
        for endpoint in endpoints:
            token = server.root_token
            if endpoint.template == "/auth/token/revoke-self":
                created = http.post(
                    "/v1/auth/token/create", json={}, headers={"X-Vault-Token": token}
                )
                token = created.json()["auth"]["client_token"]
            answers.append(send(http, endpoint, token))
    return answers


def report(answers: list[Answer]) -> str:
    routed = [a for a in answers if not a.missing]
    lines = [f"routed {len(routed)} of {len(answers)} ({len(routed) / len(answers):.1%})"]
    by_doc: dict[str, list[Answer]] = {}
    for answer in answers:
        if answer.missing:
            by_doc.setdefault(answer.endpoint.doc, []).append(answer)
    for doc, missing in sorted(by_doc.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"missing in {doc} ({len(missing)}):")
        lines.extend(f"  {a.endpoint.method} {a.endpoint.template}" for a in missing)
    errors = [a for a in answers if a.status >= 500]
    if errors:
        lines.append(f"5xx answers ({len(errors)}):")
        lines.extend(
            f"  {a.status} {a.endpoint.method} {a.endpoint.url()} {a.text[:120]}" for a in errors
        )
    return "\n".join(lines)


@pytest.fixture
def parity_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_dev_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_routed_share_does_not_go_down(parity_server: ServerProcess) -> None:
    answers = survey(parity_server)
    text = report(answers)
    print(text)
    share = sum(not a.missing for a in answers) / len(answers)
    assert share >= RATCHET, text


def test_list_is_well_formed() -> None:
    endpoints = load()
    assert len(endpoints) > 400
    seen = set()
    for endpoint in endpoints:
        assert endpoint.method in {"GET", "HEAD", "POST", "PATCH", "DELETE", "LIST"}, endpoint
        assert endpoint.template.startswith("/"), endpoint
        assert (endpoint.method, endpoint.template) not in seen, endpoint
        seen.add((endpoint.method, endpoint.template))


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        dev = start_dev_server(Path(tmp))
        try:
            print(report(survey(dev)))
        finally:
            dev.stop()
