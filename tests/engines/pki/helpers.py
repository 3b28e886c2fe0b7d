"""Helpers shared by the PKI tests: root generation, hvac writes, openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import hvac


def root(client: hvac.Client, mount: str, **params: Any) -> dict[str, Any]:
    params.setdefault("key_type", "ec")
    params.setdefault("ttl", "720h")
    common_name = params.pop("common_name", "Root CA")
    return client.secrets.pki.generate_root(
        "internal", common_name, extra_params=params, mount_point=mount
    )["data"]


def write(client: hvac.Client, path: str, /, **data: Any) -> dict[str, Any]:
    response = client.write_data(path, data=data)
    return response["data"] if response else {}


def openssl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *args],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def verify(tmp_path: Path, ca_pem: str, leaf_pem: str, untrusted: str = "") -> str:
    ca = tmp_path / "ca.pem"
    leaf = tmp_path / "leaf.pem"
    ca.write_text(ca_pem + "\n")
    leaf.write_text(leaf_pem + "\n")
    args = ["verify", "-CAfile", str(ca)]
    if untrusted:
        chain = tmp_path / "untrusted.pem"
        chain.write_text(untrusted + "\n")
        args += ["-untrusted", str(chain)]
    result = openssl(*args, str(leaf))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
