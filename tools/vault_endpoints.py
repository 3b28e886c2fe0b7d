"""Regenerate ``tests/parity/vault_endpoints.txt`` from Vault's API documentation.

Usage (from a checkout of hashicorp/vault)::

    python tools/vault_endpoints.py ~/src/vault/website/content > tests/parity/vault_endpoints.txt

Vault documents every endpoint in a Markdown table whose first two columns are ``Method`` and
``Path`` (``| `POST` | `/auth/approle/login` |``). This script reads the documentation files of
the areas Strongroom ships (:data:`DOCS`, relative to ``website/content/api-docs``), resolves
``@include 'x.mdx'`` partials (``website/content/partials``), and emits one line per endpoint::

    METHOD<TAB>/path/template<TAB>doc file

Rules, applied in order:

- a section (``##`` heading) whose heading carries ``<EnterpriseAlert`` is skipped, and so is
  a whole file whose first screen includes ``enterprise-only`` (Enterprise features);
- ``GET/POST/DELETE`` in one cell is split into one line per method; ``ACME`` (PKI's ACME
  directory table) becomes ``GET``; ``PUT`` becomes ``POST`` (Vault treats them alike);
- a query string (``?list=true``, ``?version=:n``) is dropped, and a ``GET …?list=true`` row
  becomes ``LIST``;
- optional segments written ``(/:name)`` are expanded into every combination;
- paths matching :data:`EXCLUDED` (with its reason) are left out: things Strongroom cannot
  have (replication, namespaces, external plugins, Go runtime profiling, raft internals);
- duplicates (the same method and path in two files) are dropped, the first file kept;
  the output is sorted by doc file, then path, then method.

The list checked in was made by reading these files from the stored copy of hashicorp/vault
(``website/content/api-docs`` and ``website/content/partials/api-docs``, the versions named in
the list's header) and applying exactly these rules; rerun this script on a checkout to
refresh it after a Vault release, then rerun ``tests/parity`` and raise its ratchet.
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

# The documentation files of what Strongroom ships (relative to website/content/api-docs).
DOCS: tuple[str, ...] = (
    "auth/approle.mdx",
    "auth/cert.mdx",
    "auth/jwt.mdx",
    "auth/kubernetes.mdx",
    "auth/token.mdx",
    "auth/userpass.mdx",
    "secret/cubbyhole.mdx",
    "secret/databases/index.mdx",
    "secret/identity/entity.mdx",
    "secret/identity/entity-alias.mdx",
    "secret/identity/group.mdx",
    "secret/identity/group-alias.mdx",
    "secret/identity/lookup.mdx",
    "secret/identity/tokens.mdx",
    "secret/identity/oidc-provider.mdx",
    "secret/identity/mfa/totp.mdx",
    "secret/identity/mfa/login-enforcement.mdx",
    "secret/kv/kv-v1.mdx",
    "secret/kv/kv-v2.mdx",
    "secret/pki/acme-issuance.mdx",
    "secret/pki/issuance.mdx",
    "secret/pki/accessing-authority-information.mdx",
    "secret/pki/managing-keys-and-issuers.mdx",
    "secret/pki/managing-authority-information.mdx",
    "secret/ssh.mdx",
    "secret/totp.mdx",
    "secret/transit.mdx",
    *(
        f"system/{name}.mdx"
        for name in (
            "activation-flags",
            "audit",
            "audit-hash",
            "auth",
            "capabilities",
            "capabilities-accessor",
            "capabilities-self",
            "config-auditing",
            "config-cors",
            "config-state",
            "config-ui-headers",
            "decode-token",
            "experiments",
            "generate-root",
            "ha-status",
            "health",
            "host-info",
            "in-flight-req",
            "init",
            "inspect/router",
            "internal-counters",
            "internal-specs-openapi",
            "internal-ui-feature",
            "internal-ui-mounts",
            "internal-ui-namespaces",
            "internal-ui-resultant-acl",
            "internal-ui-version",
            "key-status",
            "leader",
            "lease-count-quotas",
            "leases",
            "loggers",
            "metrics",
            "mfa/validate",
            "monitor",
            "mounts",
            "mounts-all",
            "plugins-catalog",
            "plugins-reload",
            "plugins-reload-backend",
            "policies",
            "policies-password",
            "policy",
            "quotas-config",
            "rate-limit-quotas",
            "raw",
            "rekey",
            "rekey-recovery-key",
            "remount",
            "rotate",
            "rotate-config",
            "seal",
            "seal-backend-status",
            "seal-status",
            "step-down",
            "storage/raft",
            "tools",
            "unseal",
            "user-lockout",
            "version-history",
            "well-known",
            "wrapping-lookup",
            "wrapping-rewrap",
            "wrapping-unwrap",
            "wrapping-wrap",
        )
    ),
)

# Documentation files of areas Strongroom does not ship, left out of DOCS on purpose:
# Enterprise-only (namespaces, replication/*, license, control-group, config-control-group,
# config-group-policy-application, managed-keys, sealwrap-rewrap, secrets-sync,
# utilization-report, storage/raftautosnapshots, config-ui-custom-messages and the
# internal-ui-*-messages pages, config-ui-login-default-auth, internal-ui-default-auth-methods,
# config-reload (license only), mfa/{duo,okta,pingid,totp} (the legacy Enterprise step-up MFA),
# lease-count quotas are listed because we build them); raft internals (storage/raftautopilot,
# storage/raftsnapshotload); recovery mode (generate-recovery-token, init-unseal-recovery,
# enable-unseal-recovery: `vault server -recovery` is not built); plugins we cannot run
# (plugins-pins, plugins-runtimes-catalog); Go runtime profiles (pprof); secrets engines and
# auth methods we do not ship (aws, azure, gcp, ldap, kmip, transform, ...).

# Paths left out although their file is listed, with the reason (see docs/architecture.md).
EXCLUDED: tuple[tuple[str, str], ...] = (
    (r"^/sys/policies/(rgp|egp)", "Sentinel policies: Vault Enterprise"),
    (r"^/sys/storage/raft/(?!snapshot)", "raft cluster membership: we have no raft"),
    (
        r"unified-(delta-)?(crl|ocsp)|/certs/(unified-revoked|revocation-queue)",
        "cross-cluster PKI: replication",
    ),
    (r"external-policy", "PKI CIEPS: Vault Enterprise"),
    (r"^/transit/cmac/", "transit CMAC: Vault Enterprise"),
    (r"^/ssh/keys/", "SSH dynamic keys: removed in Vault 1.13"),
    (r"^/identity/mfa/method/(duo|okta|pingid)", "MFA through Duo/Okta/PingID: external services"),
)

_ROW = re.compile(r"^\|\s*`([A-Z/]+)`\s*\|\s*`([^`]+)`")
_INCLUDE = re.compile(r"^@include\s+'([^']+)'")


def _expand(path: str) -> list[str]:
    """``/a(/:b)(/:c)`` → every combination of the optional groups."""
    parts = re.split(r"(\([^)]*\))", path)
    options = [[p[1:-1], ""] if p.startswith("(") else [p] for p in parts]
    return ["".join(combo) for combo in itertools.product(*options)]


def _lines(path: Path, partials: Path) -> list[str]:
    out: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        include = _INCLUDE.match(line.strip())
        if include and (partials / include.group(1)).is_file():
            out.extend(_lines(partials / include.group(1), partials))
        else:
            out.append(line)
    return out


def endpoints(content: Path) -> list[tuple[str, str, str]]:
    api, partials = content / "api-docs", content / "partials"
    found: dict[tuple[str, str], str] = {}
    for doc in DOCS:
        file = api / doc
        if not file.is_file():
            print(f"missing: {doc}", file=sys.stderr)
            continue
        lines = _lines(file, partials)
        if any("enterprise-only" in line for line in lines[:40]):
            continue
        skip = False
        for line in lines:
            if line.startswith("#"):
                skip = "<EnterpriseAlert" in line
                continue
            row = _ROW.match(line)
            if skip or not row:
                continue
            raw_path = row.group(2).strip()
            listing = "list=true" in raw_path
            raw_path = raw_path.split("?", 1)[0]
            for method in row.group(1).split("/"):
                method = {"ACME": "GET", "PUT": "POST"}.get(method, method)
                if listing and method == "GET":
                    method = "LIST"
                for template in _expand(raw_path):
                    if any(re.search(pattern, template) for pattern, _ in EXCLUDED):
                        continue
                    found.setdefault((method, template), doc)
    rows = [(method, template, doc) for (method, template), doc in found.items()]
    return sorted(rows, key=lambda e: (e[2], e[1], e[0]))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    for method, template, doc in endpoints(Path(argv[1])):
        print(f"{method}\t{template}\t{doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
