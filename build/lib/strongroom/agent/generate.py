"""``strongroom agent generate-config -type=env-template``: an agent configuration whose
``env_template`` blocks expose the keys of KV secrets, as Vault's command makes it.

Each ``-path`` names a KV v1 or v2 secret (``secret/foo``; ``secret/prefix/*`` recurses); the
mount's version comes from ``sys/internal/ui/mounts``, as the CLI's ``kv`` commands find it.
Variables are named from the path below the mount and the key (``FOO_PASSWORD``). The file uses
``token_file`` auth with ``~/.vault-token``: fine for trying things, not for production.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from ._client import ServerError, ServerUnavailable, VaultClient, vault_settings
from .config import VaultConfig

__all__ = ["generate_config", "render_env_config"]


def _hcl_string(value: str) -> str:
    return json.dumps(value)  # an HCL quoted string escapes like JSON


def _var_name(relative: str, key: str) -> str:
    name = f"{relative}_{key}" if relative else key
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


def render_env_config(
    address: str,
    token_path: str,
    command: Sequence[str],
    variables: Sequence[tuple[str, str, str, str]],
) -> str:
    """The HCL text for ``variables``: (name, secret path, key, ``.Data`` or ``.Data.data``)."""
    lines = [
        "auto_auth {",
        "",
        "  method {",
        '    type = "token_file"',
        "",
        "    config {",
        f"      token_file_path = {_hcl_string(token_path)}",
        "    }",
        "  }",
        "}",
        "",
        "template_config {",
        '  static_secret_render_interval = "5m"',
        "  exit_on_retry_failure         = true",
        "}",
        "",
        "vault {",
        f"  address = {_hcl_string(address)}",
        "}",
        "",
    ]
    for name, path, key, field in sorted(variables):
        contents = f'{{{{ with secret "{path}" }}}}{{{{ {field}.{key} }}}}{{{{ end }}}}'
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            contents = (
                f'{{{{ with secret "{path}" }}}}{{{{ index {field} {json.dumps(key)} }}}}'
                "{{ end }}"
            )
        lines += [
            f"env_template {_hcl_string(name)} {{",
            f"  contents             = {_hcl_string(contents)}",
            "  error_on_missing_key = true",
            "}",
        ]
    lines += [
        "",
        "exec {",
        f"  command                   = [{', '.join(_hcl_string(c) for c in command)}]",
        '  restart_on_secret_changes = "always"',
        '  restart_stop_signal       = "SIGTERM"',
        "}",
        "",
    ]
    return "\n".join(lines)


async def _collect(
    client: VaultClient, token: str, paths: Sequence[str]
) -> list[tuple[str, str, str, str]]:
    variables: list[tuple[str, str, str, str]] = []
    for raw in paths:
        recurse = raw.endswith("/*")
        path = raw.removesuffix("*").strip("/")
        mount_info = await client.request("GET", f"sys/internal/ui/mounts/{path}", token=token)
        info = mount_info.get("data") or {}
        mount = str(info.get("path", "")).strip("/")
        version = str((info.get("options") or {}).get("version", "1"))
        if not mount or str(info.get("type", "kv")) not in ("kv", "generic"):
            raise ValueError(f"{raw}: not a KV mount")
        relative = path[len(mount) :].strip("/")
        if version == "2" and relative.startswith("data/"):
            relative = relative[5:]
        pending = [relative]
        while pending:
            current = pending.pop()
            if recurse:
                list_path = (
                    f"{mount}/metadata/{current}" if version == "2" else f"{mount}/{current}"
                )
                try:
                    listed = await client.request(
                        "GET", list_path.rstrip("/"), token=token, params={"list": "true"}
                    )
                except ServerError as exc:
                    if exc.status != 404:
                        raise
                    listed = {}
                for key in (listed.get("data") or {}).get("keys") or []:
                    child = f"{current}/{key}".strip("/")
                    if str(key).endswith("/"):
                        pending.append(child.rstrip("/"))
                    else:
                        variables += await _secret_vars(client, token, mount, version, child)
                continue
            variables += await _secret_vars(client, token, mount, version, current)
    return variables


async def _secret_vars(
    client: VaultClient, token: str, mount: str, version: str, relative: str
) -> list[tuple[str, str, str, str]]:
    path = f"{mount}/data/{relative}" if version == "2" else f"{mount}/{relative}"
    answer = await client.request("GET", path, token=token)
    data: Any = answer.get("data") or {}
    if version == "2":
        data = data.get("data") or {}
    field = ".Data.data" if version == "2" else ".Data"
    name = relative.replace("/", "_")
    return [(_var_name(name, str(key)), path, str(key), field) for key in data]


def generate_config(argv: Sequence[str], env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    parser = argparse.ArgumentParser(prog="strongroom agent generate-config")
    parser.add_argument("-type", "--type", dest="type", default="")
    parser.add_argument("-path", "--path", dest="paths", action="append", default=[])
    parser.add_argument("-exec", "--exec", dest="exec", default="env")
    parser.add_argument("-address", "--address", dest="address", default="")
    parser.add_argument("file", nargs="?", default="agent.hcl")
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.type != "env-template":
        err.write('unsupported -type: only "env-template" is supported\n')
        return 1
    if not args.paths:
        err.write("at least one -path is required\n")
        return 1
    address = args.address or env.get("VAULT_ADDR") or "https://127.0.0.1:8200"
    vault = vault_settings(VaultConfig(address=address), {**env, "VAULT_ADDR": address})
    home = env.get("HOME", os.path.expanduser("~"))
    token_path = os.path.join(home, ".vault-token")
    token = env.get("VAULT_TOKEN", "")
    if not token and os.path.exists(token_path):
        with open(token_path, encoding="utf-8") as handle:
            token = handle.read().strip()

    async def collect() -> list[tuple[str, str, str, str]]:
        client = VaultClient(vault)
        try:
            return await _collect(client, token, args.paths)
        finally:
            await client.close()

    try:
        variables = asyncio.run(collect())
    except (ServerError, ServerUnavailable, ValueError) as exc:
        err.write(f"error: {exc}\n")
        return 2
    text = render_env_config(vault.address, token_path, shlex.split(args.exec), variables)
    with open(args.file, "w", encoding="utf-8") as handle:
        handle.write(text)
    out.write(f'Successfully generated "{args.file}" configuration file!\n')
    out.write(
        "Warning: the generated file uses 'token_file' authentication method, which is not "
        "suitable for production environments.\n"
    )
    return 0
