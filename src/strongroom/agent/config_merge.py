"""Several configuration files make one agent configuration, as in Vault Agent: ``-config``
given more than once, or a directory of ``*.hcl`` / ``*.json`` files, merged; then the checks
that span blocks run on the whole."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .config_model import (
    AgentConfig,
    AgentConfigError,
    ApiProxyConfig,
    AutoAuthConfig,
    EnvTemplateConfig,
    ExecConfig,
    ListenerConfig,
    TemplateConfig,
    TemplateSettings,
    VaultConfig,
)

__all__ = ["Parts", "assemble", "config_files", "merge"]


@dataclass
class Parts:
    """What one file holds: parsed values by top-level key, and where each key is."""

    path: str
    warnings: list[str]
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)


# repeated blocks: every file's are kept, in order; anything else: a later file's wins
_APPENDED = ("template", "listener", "env_template")


def merge(parts: Sequence[Parts]) -> Parts:
    """Vault Agent's merge of several files (``-config`` repeated, or a directory):
    ``template``, ``listener`` and ``env_template`` blocks add up; ``exit_after_auth`` is
    true if any file sets it; any other block or setting comes from the last file that has
    it, whole (blocks are not merged key by key)."""
    merged = Parts(", ".join(p.path for p in parts), [w for p in parts for w in p.warnings])
    for part in parts:
        for key, value in part.values.items():
            if key in _APPENDED:
                merged.values[key] = merged.values.get(key, ()) + value
                merged.where.setdefault(key, part.where[key])
            elif key == "exit_after_auth":
                merged.values[key] = bool(merged.values.get(key)) or value
                merged.where[key] = part.where[key]
            else:
                merged.values[key] = value
                merged.where[key] = part.where[key]
    return merged


def assemble(parts: Parts) -> AgentConfig:
    """The checks that look at the whole configuration, then the record."""
    found, where = parts.values, parts.where

    def error(key: str, message: str) -> AgentConfigError:
        return AgentConfigError(f"{where.get(key) or parts.path + ':1'}: {message}")

    templates: tuple[TemplateConfig, ...] = found.get("template", ())
    env_templates: tuple[EnvTemplateConfig, ...] = found.get("env_template", ())
    listeners: tuple[ListenerConfig, ...] = found.get("listener", ())
    auto_auth: AutoAuthConfig | None = found.get("auto_auth")
    exec_config: ExecConfig | None = found.get("exec")
    has_cache = "cache" in found
    # the cache block's older api_proxy keys count when there is no api_proxy block
    api_proxy: ApiProxyConfig | None = found.get("api_proxy") or found.get("cache")
    if env_templates and exec_config is None:
        raise error("env_template", '"env_template" needs an "exec" block')
    if exec_config is not None and not env_templates:
        raise error("exec", '"exec" needs at least one "env_template" block')
    if auto_auth is None and (templates or env_templates):
        key = "template" if templates else "env_template"
        raise error(key, 'templates need an "auto_auth" block to fetch secrets')
    if auto_auth is None and not listeners:
        first = parts.path.split(", ")[0] or "<config>"
        raise AgentConfigError(
            f'{first}:1: no "auto_auth" or "listener" block: the agent has nothing to do'
        )
    if has_cache and not listeners:
        raise error("cache", '"cache" needs a "listener" block')
    auto_token = api_proxy.use_auto_auth_token if api_proxy is not None else "false"
    if auto_token != "false" and not auto_auth:  # noqa: S105 - a setting, not a secret
        raise error(
            "api_proxy" if "api_proxy" in found else "cache",
            'use_auto_auth_token needs an "auto_auth" block',
        )
    return AgentConfig(
        path=parts.path,
        vault=found.get("vault") or VaultConfig(),
        auto_auth=auto_auth,
        templates=templates,
        template_settings=found.get("template_config") or TemplateSettings(),
        listeners=listeners,
        api_proxy=api_proxy,
        cache=has_cache,
        exec=exec_config,
        env_templates=env_templates,
        pid_file=found.get("pid_file", ""),
        exit_after_auth=bool(found.get("exit_after_auth", False)),
        log_level=found.get("log_level", "info"),
        log_format=found.get("log_format", "standard"),
        warnings=tuple(parts.warnings),
    )


def config_files(directory: str) -> list[str]:
    """A directory's configuration files as Vault takes them: ``*.hcl`` and ``*.json``, in
    name order, leaving out subdirectories and editors' temporary files."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise AgentConfigError(
            f"{directory}: cannot read the configuration directory: {exc.strerror}"
        ) from None
    return [
        os.path.join(directory, name)
        for name in names
        if name.endswith((".hcl", ".json"))
        and not (name.startswith(".") or name.endswith("~") or name.startswith("#"))
        and os.path.isfile(os.path.join(directory, name))
    ]
