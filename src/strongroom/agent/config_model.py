"""The agent configuration's records: what :mod:`.config` reads from Vault Agent's files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .template import Template


class AgentConfigError(ValueError):
    """The configuration cannot be used; the message is ``file:line: what is wrong``."""


_DEFAULT_ADDRESS = "https://127.0.0.1:8200"


@dataclass(frozen=True, slots=True)
class VaultConfig:
    address: str = _DEFAULT_ADDRESS
    ca_cert: str = ""
    ca_path: str = ""
    client_cert: str = ""
    client_key: str = ""
    tls_skip_verify: bool = False
    tls_server_name: str = ""
    namespace: str = ""
    num_retries: int = 12


@dataclass(frozen=True, slots=True)
class MethodConfig:
    type: str
    mount_path: str
    config: Mapping[str, Any]
    namespace: str = ""
    wrap_ttl: int = 0
    min_backoff: float = 1.0
    max_backoff: float = 300.0
    exit_on_err: bool = False
    max_retries: int = 0  # consecutive failed logins before giving up; 0: never give up

    def __repr__(self) -> str:
        return f"MethodConfig(type={self.type!r}, mount_path={self.mount_path!r})"


@dataclass(frozen=True, slots=True)
class SinkConfig:
    type: str
    path: str
    mode: int = 0o640
    wrap_ttl: int = 0
    dh_type: str = ""
    dh_path: str = ""
    derive_key: bool = False
    aad: str = ""
    aad_env_var: str = ""

    def __repr__(self) -> str:
        return f"SinkConfig(type={self.type!r}, path={self.path!r})"


@dataclass(frozen=True, slots=True)
class AutoAuthConfig:
    method: MethodConfig
    sinks: tuple[SinkConfig, ...] = ()
    enable_reauth_on_new_credentials: bool = False


@dataclass(frozen=True, slots=True)
class Wait:
    """consul-template's quiescence: a template whose secrets changed is written once they
    have stayed unchanged for ``min`` seconds, and at most ``max`` seconds after the first
    change (so a secret that keeps changing still gets written)."""

    min: float
    max: float


@dataclass(frozen=True, slots=True)
class TemplateConfig:
    """One ``template {}`` (or, with ``destination`` empty, one ``env_template``)."""

    template: Template
    destination: str
    source: str = ""
    perms: int | None = None
    command: tuple[str, ...] = ()
    command_timeout: float = 30.0
    error_on_missing_key: bool = False
    create_dest_dirs: bool = True
    backup: bool = False
    line: int = 0
    wait: Wait | None = None  # None: template_config's wait (if any) applies

    def __repr__(self) -> str:
        return f"TemplateConfig(destination={self.destination!r})"


@dataclass(frozen=True, slots=True)
class EnvTemplateConfig:
    name: str
    template: Template
    error_on_missing_key: bool = False


@dataclass(frozen=True, slots=True)
class TemplateSettings:
    static_secret_render_interval: float = 300.0
    exit_on_retry_failure: bool = False
    max_connections_per_host: int = 10
    lease_renewal_threshold: float = 2 / 3
    wait: Wait | None = None  # the default for templates without their own


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    type: str = "tcp"
    address: str = "127.0.0.1:8100"
    tls_disable: bool = False
    tls_cert_file: str = ""
    tls_key_file: str = ""
    require_request_header: bool = False


@dataclass(frozen=True, slots=True)
class ApiProxyConfig:
    use_auto_auth_token: str = "false"  # noqa: S105 - "true" | "false" | "force", not a secret
    # Vault's consistency headers: "always" sends the newest X-Vault-Index seen on a
    # response with every proxied request ("never": none)
    enforce_consistency: str = "never"
    # a 412 (the server has not reached that index): "retry" (within vault.retry),
    # "fail" (passed on at once), "forward" (X-Vault-Inconsistent: forward-active-node)
    when_inconsistent: str = "retry"


@dataclass(frozen=True, slots=True)
class ExecConfig:
    command: tuple[str, ...]
    restart_on_secret_changes: str = "always"  # noqa: S105 - "always" | "never"
    restart_stop_signal: str = "SIGTERM"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    path: str = ""  # the file (or files, comma-separated) it was read from
    vault: VaultConfig = field(default_factory=VaultConfig)
    auto_auth: AutoAuthConfig | None = None
    templates: tuple[TemplateConfig, ...] = ()
    template_settings: TemplateSettings = field(default_factory=TemplateSettings)
    listeners: tuple[ListenerConfig, ...] = ()
    api_proxy: ApiProxyConfig | None = None
    cache: bool = False
    exec: ExecConfig | None = None
    env_templates: tuple[EnvTemplateConfig, ...] = ()
    pid_file: str = ""
    exit_after_auth: bool = False
    log_level: str = "info"
    log_format: str = "standard"
    warnings: tuple[str, ...] = ()
