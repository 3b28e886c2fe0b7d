"""Server configuration: Vault-style HCL (HCL1) or JSON files, so Vault configs keep working.

Supported, with Vault's names and defaults (website/content/docs/configuration/):

- ``listener "tcp" { ... }``, one or more: ``address`` (``127.0.0.1:8200``), ``tls_disable``,
  ``tls_cert_file``, ``tls_key_file``, ``tls_client_ca_file``, ``tls_min_version`` (``tls12``),
  ``tls_max_version`` (``tls13``), ``tls_require_and_verify_client_cert``,
  ``tls_disable_client_certs``, ``max_request_size`` (32 MiB; negative: unlimited),
  ``max_request_duration`` (90s) and the ``http_*_timeout`` durations; and our own bounds
  on a request's head, ``http_max_header_bytes`` (1 MiB, Go's default, which Vault keeps),
  ``http_max_header_count`` (100 fields) and ``http_max_request_line_bytes`` (64 KiB);
  ``cluster_address`` (where the HA cluster listener binds; docs/ha.md);
- exactly one ``storage "sqlite" { path }``, ``storage "inmem" {}`` or ``storage "postgresql"
  { connection_url, table, ha_enabled, ha_table, max_parallel, max_idle_connections }``
  (``backend`` is its legacy name) with our own ``skip_create_table`` and ``retry_timeout``
  (see docs/storage.md); with ``ha_enabled``, ``ha_lock_ttl``, ``ha_renew_interval`` and our
  ``ha_echo_interval`` (docs/ha.md);
- ``api_addr``, ``cluster_addr``, ``disable_clustering``, ``default_lease_ttl``/
  ``max_lease_ttl`` (768h each), ``default_max_request_duration``, ``ui``, ``log_level``,
  ``pid_file``, ``raw_storage_endpoint`` (sys/raw), ``introspection_endpoint``
  (sys/internal/inspect), and our own
  ``audit_directory`` and ``automated_snapshots { directory, interval, retain, file_prefix }``
  (scheduled snapshots, see docs/storage.md).

Vault keys we do not implement are accepted with a warning in :attr:`ServerConfig.warnings`
(so an existing file still starts); anything else is a :class:`ConfigError` naming the key and
its stanza, because a typo in a security setting must not pass silently. TLS 1.0 and 1.1 are
refused outright. Relative paths resolve against ``base_dir`` (the working directory for
:func:`load_config`), as Vault resolves them against its working directory.

Error messages name keys and stanzas, never values: a ``connection_url`` holds a password.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strongroom import errors
from strongroom.core.snapshots import SnapshotSchedule
from strongroom.framework import parse_bool, parse_duration, parse_int, parse_str
from strongroom.hclfile import HclSyntaxError, load_hcl
from strongroom.storage.postgresql import check_table_name

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_LEASE_TTL",
    "DEFAULT_MAX_REQUEST_DURATION",
    "DEFAULT_MAX_REQUEST_SIZE",
    "ConfigError",
    "ListenerConfig",
    "MigrationConfig",
    "ServerConfig",
    "StorageConfig",
    "load_config",
    "load_migration_config",
    "parse_config",
    "parse_workers",
    "sanitized_config",
]

_T = TypeVar("_T")

DEFAULT_ADDRESS = "127.0.0.1:8200"
DEFAULT_MAX_REQUEST_SIZE = 33554432
DEFAULT_MAX_REQUEST_DURATION = 90
DEFAULT_LEASE_TTL = 768 * 3600

_TLS_VERSIONS = ("tls12", "tls13")
_INSECURE_TLS_VERSIONS = ("tls10", "tls11")
_LOG_LEVELS = {
    "trace": "trace",
    "debug": "debug",
    "info": "info",
    "notice": "info",
    "warn": "warn",
    "warning": "warn",
    "err": "error",
    "error": "error",
}

_TOP_KEYS = frozenset(
    {
        "listener",
        "storage",
        "backend",
        "api_addr",
        "cluster_addr",
        "default_lease_ttl",
        "max_lease_ttl",
        "default_max_request_duration",
        "ui",
        "log_level",
        "pid_file",
        "workers",
        "audit_directory",
        "automated_snapshots",
        "seal",
        "telemetry",
        "log_format",
        "raw_storage_endpoint",
        "introspection_endpoint",
        "disable_clustering",
    }
)
# Vault settings with no meaning here: accepted so Vault files load, reported as warnings
_TOP_IGNORED = frozenset(
    {
        "administrative_namespace_path",
        "cache_size",
        "cluster_cipher_suites",
        "cluster_name",
        "detect_deadlocks",
        "disable_cache",
        "disable_mlock",
        "disable_performance_standby",
        "disable_printable_check",
        "disable_sealwrap",
        "disable_sentinel_trace",
        "enable_post_unseal_trace",
        "enable_response_header_hostname",
        "enable_response_header_raft_node_id",
        "entropy",
        "experiments",
        "ha_backend",
        "ha_storage",
        "imprecise_lease_role_tracking",
        "license_path",
        "log_file",
        "log_requests_level",
        "log_rotate_bytes",
        "log_rotate_duration",
        "log_rotate_max_files",
        "plugin_directory",
        "plugin_file_permissions",
        "plugin_file_uid",
        "plugin_tmpdir",
        "post_unseal_trace_directory",
        "reporting",
        "sentinel",
        "service_registration",
        "user_lockout",
    }
)
_LISTENER_KEYS = frozenset(
    {
        "address",
        "tls_disable",
        "tls_cert_file",
        "tls_key_file",
        "tls_client_ca_file",
        "tls_min_version",
        "tls_max_version",
        "tls_require_and_verify_client_cert",
        "tls_disable_client_certs",
        "max_request_size",
        "max_request_duration",
        "http_idle_timeout",
        "http_read_header_timeout",
        "http_read_timeout",
        "http_write_timeout",
        "http_max_header_bytes",
        "http_max_header_count",
        "http_max_request_line_bytes",
        "telemetry",
        "cluster_address",
    }
)
_LISTENER_IGNORED = frozenset(
    {
        "agent_api",
        "chroot_namespace",
        "cors",
        "custom_response_headers",
        "disable_replication_status_endpoints",
        "disable_request_limiter",
        "inflight_requests_logging",
        "profiling",
        "proxy_protocol_authorized_addrs",
        "proxy_protocol_behavior",
        "redact_addresses",
        "redact_cluster_name",
        "redact_version",
        "replication_status_endpoints",
        "require_request_header",
        "tls_cipher_suites",
        "tls_prefer_server_cipher_suites",
        "x_forwarded_for_authorized_addrs",
        "x_forwarded_for_client_cert_header",
        "x_forwarded_for_client_cert_header_decoder",
        "x_forwarded_for_hop_skips",
        "x_forwarded_for_reject_not_authorized",
        "x_forwarded_for_reject_not_present",
    }
)
# keys Vault accepts inside any storage stanza (HA and clustering leftovers)
_HA_KEYS = ("ha_enabled", "ha_lock_ttl", "ha_renew_interval", "ha_echo_interval")
_STORAGE_IGNORED = frozenset({"redirect_addr", "cluster_addr", "disable_clustering"})
_STORAGE_TYPES = ("inmem", "postgresql", "sqlite")


class ConfigError(errors.InvalidRequest):
    """The configuration cannot be used. The message names the key and stanza, not values."""


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """One ``listener "tcp"`` stanza. Durations are seconds; paths are absolute, "" if unset."""

    type: str = "tcp"
    address: str = DEFAULT_ADDRESS
    tls_disable: bool = False
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    tls_min_version: str = "tls12"
    tls_max_version: str = "tls13"
    tls_require_and_verify_client_cert: bool = False
    tls_disable_client_certs: bool = False
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE  # -1: unlimited
    max_request_duration: int = DEFAULT_MAX_REQUEST_DURATION
    http_idle_timeout: int = 300
    http_read_header_timeout: int = 10
    http_read_timeout: int = 30
    http_write_timeout: int = 0  # 0: no limit
    # a request's head (ours; Vault has Go's fixed 1 MiB): over them, 431 (414 for the line)
    http_max_header_bytes: int = 1 << 20
    http_max_header_count: int = 100
    http_max_request_line_bytes: int = 64 * 1024
    # telemetry { unauthenticated_metrics_access = true }: sys/metrics without a token
    unauthenticated_metrics_access: bool = False
    # where the HA cluster listener binds ("": the host and port of cluster_addr)
    cluster_address: str = ""

    @property
    def host(self) -> str:
        """The address without its port; brackets stripped from IPv6 (``[::]`` → ``::``)."""
        host = self.address.rpartition(":")[0]
        return host[1:-1] if host.startswith("[") and host.endswith("]") else host

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """The storage stanza: ``type`` is one of inmem, postgresql, sqlite.

    ``options`` (never printed: a ``connection_url`` holds a password) are normalized:
    sqlite ``{"path": absolute path}``; postgresql ``connection_url`` (``VAULT_PG_CONNECTION_URL``
    wins when set, as in Vault), ``table``, ``ha_table``, ``ha_enabled`` (bool),
    ``max_parallel`` (int), ``skip_create_table`` (bool) and, if set,
    ``max_idle_connections`` (int) and ``retry_timeout`` (seconds, float).
    """

    type: str
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The whole file. Unset strings are "" (as in Vault); TTLs are seconds; ``warnings``
    lists the Vault settings that were accepted but have no effect here."""

    listeners: tuple[ListenerConfig, ...]
    storage: StorageConfig
    api_addr: str = ""
    cluster_addr: str = ""
    default_lease_ttl: int = DEFAULT_LEASE_TTL
    max_lease_ttl: int = DEFAULT_LEASE_TTL
    ui: bool = False
    log_level: str = "info"
    pid_file: str = ""
    audit_directory: str = ""
    automated_snapshots: SnapshotSchedule | None = None
    log_format: str = "standard"  # or "json": one JSON object per log record
    # the telemetry stanza (Vault's defaults: Prometheus kept 24 h, hostname label on)
    prometheus_retention_time: int = 24 * 3600
    disable_hostname: bool = False
    workers: int = 1  # worker processes sharing the listeners ("auto": one per CPU)
    raw_storage_endpoint: bool = False  # sys/raw/* (sudo): the decrypted storage
    introspection_endpoint: bool = False  # sys/internal/inspect/router/:tag
    # Vault's key: no request forwarding between HA nodes (standbys answer 307)
    disable_clustering: bool = False
    warnings: tuple[str, ...] = ()


def parse_workers(value: Any, where: str) -> int:
    """``workers``: a positive number, or ``auto`` for one per CPU (``None``: 1)."""
    if value is None:
        return 1
    if isinstance(value, str) and value.strip().lower() == "auto":
        return max(os.cpu_count() or 1, 1)
    count = _convert(parse_int, value, where)
    if not 1 <= count <= 256:
        raise ConfigError(f'{where}: expected a number from 1 to 256 or "auto"')
    return int(count)


def load_config(path: str) -> ServerConfig:
    """Read a configuration file: ``.hcl`` is HCL, ``.json`` is JSON, otherwise JSON if the
    text starts with ``{`` and HCL if not. Relative paths inside resolve against the current
    working directory.

    Raises:
        ConfigError: the file cannot be read, parsed or used; the message starts with ``path``.
    """
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: configuration file is not UTF-8 text") from None
    extension = os.path.splitext(path)[1].lower()
    if extension in (".hcl", ".json"):
        fmt = extension[1:]
    else:
        fmt = "json" if text.lstrip().startswith("{") else "hcl"
    try:
        return parse_config(text, fmt, os.getcwd())
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_config(text: str, fmt: str, base_dir: str) -> ServerConfig:
    """Parse configuration text.

    Args:
        text: the file's contents.
        fmt: ``"hcl"`` or ``"json"``.
        base_dir: the directory relative paths resolve against.

    Raises:
        ConfigError: a syntax error (with the line), an unknown key or stanza, a bad value.

    Returns:
        The configuration, with Vault's defaults filled in and warnings for ignored keys.
    """
    if fmt == "hcl":
        top = _load_hcl(text)
    elif fmt == "json":
        top = _load_json(text)
    else:
        raise ConfigError(f'unknown configuration format "{fmt}"; expected "hcl" or "json"')
    return _Parser(base_dir).server(top)


@dataclass(frozen=True, slots=True)
class MigrationConfig:
    """``operator migrate``'s file: ``storage_source`` and ``storage_destination`` stanzas."""

    source: StorageConfig
    destination: StorageConfig


def load_migration_config(path: str) -> MigrationConfig:
    """Read Vault's migration file (HCL or JSON). ``cluster_addr`` is accepted and ignored;
    ``VAULT_PG_CONNECTION_URL`` is *not* applied (it would make both sides one database).

    Raises:
        ConfigError: unreadable, unparsable, a stanza missing or repeated, a bad setting.
    """
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read migration file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: migration file is not UTF-8 text") from None
    fmt = "json" if path.endswith(".json") or text.lstrip().startswith("{") else "hcl"
    try:
        top = _load_hcl(text) if fmt == "hcl" else _load_json(text)
        parser = _Parser(os.getcwd())
        sides: dict[str, StorageConfig] = {}
        for key in top:
            if key not in ("storage_source", "storage_destination", "cluster_addr"):
                raise ConfigError(f'unknown key "{key}" at the top level')
        for name in ("storage_source", "storage_destination"):
            stanzas = _blocks(top.get(name, []), name)
            if len(stanzas) != 1:
                raise ConfigError(f'exactly one {name} "<type>" {{ ... }} stanza is required')
            kind, body = stanzas[0]
            sides[name] = parser.storage_stanza(kind, body, f'{name} "{kind}"', env=False)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return MigrationConfig(sides["storage_source"], sides["storage_destination"])


# -- reading -----------------------------------------------------------------------------------

# Top-level keys map to every value they were given, in file order: HCL lets a stanza repeat
# (two ``listener "tcp"`` blocks), and a repeated plain setting is an error, not "last wins".
_Top = dict[str, list[Any]]


def _load_hcl(text: str) -> _Top:
    try:
        return load_hcl(text)
    except HclSyntaxError as exc:
        raise ConfigError(str(exc)) from None


def _load_json(text: str) -> _Top:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ConfigError(f'JSON: key "{key}" appears twice in one object')
            out[key] = value
        return out

    try:
        result = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(result, dict):
        raise ConfigError("JSON: the configuration must be an object")
    return {key: [value] for key, value in result.items()}


def _blocks(values: list[Any], name: str) -> list[tuple[str, dict[str, Any]]]:
    """``name "label" { body }`` stanzas, from HCL (dicts) or JSON (dicts, lists of dicts,
    or a label mapping to a list of bodies), in order."""
    out: list[tuple[str, dict[str, Any]]] = []
    pending = list(reversed(values))
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(reversed(item))
            continue
        if not isinstance(item, dict):
            raise ConfigError(f'expected a stanza: {name} "<type>" {{ ... }}')
        for label, body in item.items():
            for one in body if isinstance(body, list) else [body]:
                if not isinstance(one, dict):
                    raise ConfigError(f'expected a stanza: {name} "<type>" {{ ... }}')
                out.append((str(label), one))
    return out


# -- interpreting --------------------------------------------------------------------------------


class _Parser:
    def __init__(self, base_dir: str) -> None:
        self._base_dir = base_dir
        self._warnings: list[str] = []

    def server(self, top: _Top) -> ServerConfig:
        for key in top:
            if key in _TOP_IGNORED:
                self._warnings.append(f'"{key}" is not supported and is ignored')
            elif key not in _TOP_KEYS:
                raise ConfigError(f'unknown key "{key}" at the top level')
        for label, _body in _blocks(top.get("seal", []), "seal"):
            if label != "shamir":
                self._warnings.append(
                    f'seal "{label}" is ignored: only Shamir unseal keys are supported'
                )

        default_ttl = self._duration(top, "default_lease_ttl") or DEFAULT_LEASE_TTL
        max_ttl = self._duration(top, "max_lease_ttl") or DEFAULT_LEASE_TTL
        if default_ttl > max_ttl:
            raise ConfigError("default_lease_ttl must not be greater than max_lease_ttl")
        max_duration = (
            self._duration(top, "default_max_request_duration") or DEFAULT_MAX_REQUEST_DURATION
        )
        storage = self._storage(top)
        stanzas = _blocks(top.get("listener", []), "listener")
        if not stanzas:
            raise ConfigError('at least one listener "tcp" stanza is required')
        listeners = tuple(
            self._listener(
                label, body, f'listener "{label}"' + _nth(index, len(stanzas)), max_duration
            )
            for index, (label, body) in enumerate(stanzas)
        )
        level = (self._string(top, "log_level") or "info").strip().lower()
        if level not in _LOG_LEVELS:
            raise ConfigError("log_level: expected trace, debug, info, warn or error")
        ui = self._single(top, "ui")
        log_format = (self._string(top, "log_format") or "standard").strip().lower()
        if log_format not in ("standard", "json"):
            raise ConfigError('log_format: expected "standard" or "json"')
        telemetry = self._telemetry(top)
        return ServerConfig(
            listeners=listeners,
            storage=storage,
            # as Vault: VAULT_API_ADDR / VAULT_CLUSTER_ADDR win (one file, many pods)
            api_addr=(os.environ.get("VAULT_API_ADDR") or self._string(top, "api_addr")).strip(),
            cluster_addr=(
                os.environ.get("VAULT_CLUSTER_ADDR") or self._string(top, "cluster_addr")
            ).strip(),
            default_lease_ttl=default_ttl,
            max_lease_ttl=max_ttl,
            ui=False if ui is None else _convert(parse_bool, ui, "ui"),
            log_level=_LOG_LEVELS[level],
            pid_file=self._path(self._single(top, "pid_file"), "pid_file"),
            audit_directory=self._path(self._single(top, "audit_directory"), "audit_directory"),
            automated_snapshots=self._snapshots(top),
            log_format=log_format,
            prometheus_retention_time=telemetry[0],
            disable_hostname=telemetry[1],
            workers=parse_workers(self._single(top, "workers"), "workers"),
            raw_storage_endpoint=self._flag(top, "raw_storage_endpoint"),
            introspection_endpoint=self._flag(top, "introspection_endpoint"),
            disable_clustering=self._flag(top, "disable_clustering"),
            warnings=tuple(self._warnings),
        )

    def _telemetry(self, top: _Top) -> tuple[int, bool]:
        """(prometheus_retention_time, disable_hostname); other sinks are warned about."""
        body = self._stanza_body(self._single(top, "telemetry"), "telemetry")
        retention, hostname = 24 * 3600, False
        for key, value in body.items():
            if key == "prometheus_retention_time":
                retention = int(_convert(parse_duration, value, "telemetry: " + key))
            elif key == "disable_hostname":
                hostname = _convert(parse_bool, value, "telemetry: " + key)
            else:
                self._warnings.append(f'telemetry: "{key}" is not supported and is ignored')
        return retention, hostname

    @staticmethod
    def _stanza_body(value: Any, where: str) -> dict[str, Any]:
        """A nested ``name { ... }`` block: a dict (HCL) or a list of one dict (JSON)."""
        if value is None:
            return {}
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a stanza {{ ... }}")
        return value

    def _listener(
        self, label: str, body: dict[str, Any], where: str, max_duration: int
    ) -> ListenerConfig:
        if label != "tcp":
            raise ConfigError(f'{where}: unsupported listener type; supported: "tcp"')
        self._check_keys(body, _LISTENER_KEYS, _LISTENER_IGNORED, where)

        def flag(key: str) -> bool:
            return key in body and _convert(parse_bool, body[key], f"{where}: {key}")

        def duration(key: str, default: int) -> int:
            if key not in body:
                return default
            return int(_convert(parse_duration, body[key], f"{where}: {key}"))

        def positive(key: str, default: int) -> int:
            if key not in body:
                return default
            value = int(_convert(parse_int, body[key], f"{where}: {key}"))
            if value <= 0:
                raise ConfigError(f"{where}: {key} must be a positive number")
            return value

        address = DEFAULT_ADDRESS
        if "address" in body:
            address = _convert(parse_str, body["address"], f"{where}: address").strip()
        _check_address(address, where)
        size = DEFAULT_MAX_REQUEST_SIZE
        if "max_request_size" in body:
            size = _convert(parse_int, body["max_request_size"], f"{where}: max_request_size")
            size = DEFAULT_MAX_REQUEST_SIZE if size == 0 else max(size, -1)
        listener = ListenerConfig(
            address=address,
            tls_disable=flag("tls_disable"),
            tls_cert_file=self._path(body.get("tls_cert_file"), f"{where}: tls_cert_file"),
            tls_key_file=self._path(body.get("tls_key_file"), f"{where}: tls_key_file"),
            tls_client_ca_file=self._path(
                body.get("tls_client_ca_file"), f"{where}: tls_client_ca_file"
            ),
            tls_min_version=_tls_version(body.get("tls_min_version"), "tls12", where, "min"),
            tls_max_version=_tls_version(body.get("tls_max_version"), "tls13", where, "max"),
            tls_require_and_verify_client_cert=flag("tls_require_and_verify_client_cert"),
            tls_disable_client_certs=flag("tls_disable_client_certs"),
            max_request_size=size,
            max_request_duration=duration("max_request_duration", 0) or max_duration,
            http_idle_timeout=duration("http_idle_timeout", 300),
            http_read_header_timeout=duration("http_read_header_timeout", 10),
            http_read_timeout=duration("http_read_timeout", 30),
            http_write_timeout=duration("http_write_timeout", 0),
            http_max_header_bytes=positive("http_max_header_bytes", 1 << 20),
            http_max_header_count=positive("http_max_header_count", 100),
            http_max_request_line_bytes=positive("http_max_request_line_bytes", 64 * 1024),
            unauthenticated_metrics_access=self._listener_telemetry(body, where),
            cluster_address=self._cluster_address(body, where),
        )
        self._check_tls(listener, where)
        return listener

    def _flag(self, top: _Top, key: str) -> bool:
        value = self._single(top, key)
        return False if value is None else bool(_convert(parse_bool, value, key))

    @staticmethod
    def _cluster_address(body: dict[str, Any], where: str) -> str:
        if "cluster_address" not in body:
            return ""
        address = _convert(parse_str, body["cluster_address"], f"{where}: cluster_address")
        _check_address(address.strip(), f"{where}: cluster_address")
        return str(address).strip()

    def _listener_telemetry(self, body: dict[str, Any], where: str) -> bool:
        telemetry = self._stanza_body(body.get("telemetry"), f"{where}: telemetry")
        allowed = False
        for key, value in telemetry.items():
            if key == "unauthenticated_metrics_access":
                allowed = _convert(parse_bool, value, f"{where}: telemetry: {key}")
            else:
                self._warnings.append(f'{where}: telemetry: "{key}" is not supported')
        return allowed

    def _check_tls(self, listener: ListenerConfig, where: str) -> None:
        if _TLS_VERSIONS.index(listener.tls_min_version) > _TLS_VERSIONS.index(
            listener.tls_max_version
        ):
            raise ConfigError(f"{where}: tls_min_version is above tls_max_version")
        if listener.tls_require_and_verify_client_cert and listener.tls_disable_client_certs:
            raise ConfigError(
                f"{where}: tls_require_and_verify_client_cert and tls_disable_client_certs"
                " cannot both be set"
            )
        if listener.tls_disable:
            # asking for client certificates over plain HTTP is a mistake, not a preference
            if listener.tls_require_and_verify_client_cert:
                raise ConfigError(
                    f"{where}: tls_require_and_verify_client_cert needs TLS (tls_disable is set)"
                )
            if listener.host not in ("127.0.0.1", "::1", "localhost"):
                self._warnings.append(
                    f"{where}: tls_disable is set on a non-loopback address; "
                    "tokens and secrets will cross the network in clear"
                )
            return
        if not listener.tls_cert_file or not listener.tls_key_file:
            raise ConfigError(
                f"{where}: tls_cert_file and tls_key_file are required unless tls_disable is set"
            )

    def _storage(self, top: _Top) -> StorageConfig:
        if "storage" in top and "backend" in top:
            raise ConfigError('set "storage" or its legacy name "backend", not both')
        name = "backend" if "backend" in top else "storage"
        stanzas = _blocks(top.get(name, []), name)
        if len(stanzas) != 1:
            raise ConfigError(
                f'exactly one {name} stanza is required, e.g. {name} "sqlite" {{ path = "…" }}'
            )
        kind, body = stanzas[0]
        return self.storage_stanza(kind, body, f'{name} "{kind}"')

    def storage_stanza(
        self, kind: str, body: dict[str, Any], where: str, env: bool = True
    ) -> StorageConfig:
        if kind == "inmem":
            self._check_keys(body, frozenset(), _STORAGE_IGNORED, where)
            return StorageConfig("inmem", {})
        if kind == "sqlite":
            self._check_keys(body, frozenset({"path", *_HA_KEYS}), _STORAGE_IGNORED, where)
            path = self._path(body.get("path"), f"{where}: path")
            if not path:
                raise ConfigError(f"{where}: path is required")
            return StorageConfig("sqlite", {"path": path, **self._ha_options(body, where)})
        if kind == "postgresql":
            return StorageConfig("postgresql", self._postgresql(body, where, env))
        supported = ", ".join(f'"{name}"' for name in _STORAGE_TYPES)
        raise ConfigError(f"{where}: unsupported storage type; supported: {supported}")

    def _ha_options(self, body: dict[str, Any], where: str) -> dict[str, Any]:
        """``ha_enabled`` (bool), ``ha_lock_ttl``, ``ha_renew_interval`` and our
        ``ha_echo_interval`` (durations)."""
        options: dict[str, Any] = {}
        if "ha_enabled" in body:
            options["ha_enabled"] = _convert(parse_bool, body["ha_enabled"], f"{where}: ha_enabled")
        for key in ("ha_lock_ttl", "ha_renew_interval", "ha_echo_interval"):
            if key in body:
                value = int(_convert(parse_duration, body[key], f"{where}: {key}"))
                if value <= 0:
                    raise ConfigError(f"{where}: {key} must be positive")
                options[key] = value
        return options

    def _postgresql(self, body: dict[str, Any], where: str, env: bool = True) -> dict[str, Any]:
        keys = {"connection_url", "table", "ha_table", "ha_enabled", "max_parallel"}
        keys |= {"max_idle_connections", "skip_create_table", "retry_timeout", *_HA_KEYS}
        self._check_keys(body, frozenset(keys), _STORAGE_IGNORED, where)
        url = _convert(parse_str, body.get("connection_url", ""), f"{where}: connection_url")
        # as Vault: the environment variable, when set, wins over the file
        if env:
            url = os.environ.get("VAULT_PG_CONNECTION_URL", "") or url
        if not url:
            raise ConfigError(
                f"{where}: connection_url is required (or set VAULT_PG_CONNECTION_URL)"
            )
        options: dict[str, Any] = {
            "connection_url": url,
            "table": _convert(parse_str, body.get("table", "vault_kv_store"), f"{where}: table"),
            "ha_table": _convert(
                parse_str, body.get("ha_table", "vault_ha_locks"), f"{where}: ha_table"
            ),
            "ha_enabled": _convert(
                parse_bool, body.get("ha_enabled", False), f"{where}: ha_enabled"
            ),
            "max_parallel": _convert(
                parse_int, body.get("max_parallel", 128), f"{where}: max_parallel"
            ),
            "skip_create_table": _convert(
                parse_bool, body.get("skip_create_table", False), f"{where}: skip_create_table"
            ),
        }
        for name in ("table", "ha_table"):
            try:
                check_table_name(options[name], f"{where}: {name}")
            except errors.InvalidRequest as exc:
                raise ConfigError(str(exc)) from None
        if options["max_parallel"] < 1:
            raise ConfigError(f"{where}: max_parallel must be at least 1")
        if "max_idle_connections" in body:
            idle = _convert(
                parse_int, body["max_idle_connections"], f"{where}: max_idle_connections"
            )
            if idle < 0:
                raise ConfigError(f"{where}: max_idle_connections must not be negative")
            options["max_idle_connections"] = idle
        options.update(self._ha_options(body, where))
        if "retry_timeout" in body:
            options["retry_timeout"] = float(
                _convert(parse_duration, body["retry_timeout"], f"{where}: retry_timeout")
            )
        return options

    def _snapshots(self, top: _Top) -> SnapshotSchedule | None:
        """Our ``automated_snapshots { directory, interval, retain, file_prefix }``."""
        body = self._single(top, "automated_snapshots")
        if body is None:
            return None
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        where = "automated_snapshots"
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: expected a stanza: {where} {{ directory = ... }}")
        keys = frozenset({"directory", "interval", "retain", "file_prefix"})
        self._check_keys(body, keys, frozenset(), where)
        directory = self._path(body.get("directory"), f"{where}: directory")
        if not directory:
            raise ConfigError(f"{where}: directory is required")
        interval = int(_convert(parse_duration, body.get("interval", "1h"), f"{where}: interval"))
        retain = _convert(parse_int, body.get("retain", 24), f"{where}: retain")
        prefix = _convert(
            parse_str, body.get("file_prefix", "strongroom-snapshot"), f"{where}: file_prefix"
        )
        if interval < 1:
            raise ConfigError(f"{where}: interval must be at least 1s")
        if retain < 1:
            raise ConfigError(f"{where}: retain must be at least 1")
        if not prefix or "/" in prefix or prefix.startswith("."):
            raise ConfigError(f"{where}: file_prefix must be a plain file name prefix")
        return SnapshotSchedule(directory, interval, retain, prefix)

    def _check_keys(
        self, body: dict[str, Any], known: frozenset[str], ignored: frozenset[str], where: str
    ) -> None:
        for key in body:
            if key in ignored:
                self._warnings.append(f'{where}: "{key}" is not supported and is ignored')
            elif key not in known:
                raise ConfigError(f'{where}: unknown key "{key}"')

    def _single(self, top: _Top, key: str) -> Any:
        values = top.get(key)
        if not values:
            return None
        if len(values) > 1:
            raise ConfigError(f'"{key}" is set more than once')
        return values[0]

    def _string(self, top: _Top, key: str) -> str:
        value = self._single(top, key)
        return "" if value is None else _convert(parse_str, value, key)

    def _duration(self, top: _Top, key: str) -> int:
        value = self._single(top, key)
        return 0 if value is None else int(_convert(parse_duration, value, key))

    def _path(self, value: Any, name: str) -> str:
        """An absolute path, or "" when unset (Vault's "unset" for every string setting)."""
        text = "" if value is None else _convert(parse_str, value, name).strip()
        return os.path.normpath(os.path.join(self._base_dir, text)) if text else ""


def _convert(parse: Callable[[Any, str], _T], value: Any, name: str) -> _T:
    """Run a framework parser, turning its InvalidRequest into a ConfigError (same message)."""
    try:
        return parse(value, name)
    except errors.InvalidRequest as exc:
        raise ConfigError(str(exc)) from None


def _tls_version(value: Any, default: str, where: str, bound: str) -> str:
    if value is None:
        return default
    version = _convert(parse_str, value, f"{where}: tls_{bound}_version").strip().lower()
    if version in _INSECURE_TLS_VERSIONS:
        # TLS 1.0/1.1 are deprecated (RFC 8996); a secrets server must not offer them
        raise ConfigError(
            f'{where}: tls_{bound}_version "{version}" is insecure and refused; '
            'use "tls12" or "tls13"'
        )
    if version not in _TLS_VERSIONS:
        raise ConfigError(f'{where}: tls_{bound}_version must be "tls12" or "tls13"')
    return version


def _check_address(address: str, where: str) -> None:
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f'{where}: address must be "host:port", e.g. "{DEFAULT_ADDRESS}"')
    if "{{" in host:
        raise ConfigError(f"{where}: go-sockaddr templates in address are not supported")


def _nth(index: int, count: int) -> str:
    return f" #{index + 1}" if count > 1 else ""


def sanitized_config(config: ServerConfig) -> dict[str, Any]:
    """The configuration as ``sys/config/state/sanitized`` shows it (Vault's key names):
    no storage options (a ``connection_url`` holds a password), listeners' settings only."""
    listeners = []
    for listener in config.listeners:
        settings = {
            name: getattr(listener, name)
            for name in ListenerConfig.__dataclass_fields__
            if name != "type"
        }
        listeners.append({"type": listener.type, "config": settings})
    return {
        "api_addr": config.api_addr,
        "cache_size": 0,
        "cluster_addr": config.cluster_addr,
        "cluster_name": "",
        "default_lease_ttl": config.default_lease_ttl,
        "default_max_request_duration": max(
            (listener.max_request_duration for listener in config.listeners), default=0
        ),
        "disable_cache": False,
        "disable_clustering": config.disable_clustering,
        "disable_mlock": True,
        "enable_ui": config.ui,
        "introspection_endpoint": config.introspection_endpoint,
        "listeners": listeners,
        "log_format": config.log_format,
        "log_level": config.log_level,
        "max_lease_ttl": config.max_lease_ttl,
        "pid_file": config.pid_file,
        "plugin_directory": "",
        "raw_storage_endpoint": config.raw_storage_endpoint,
        "seals": [{"disabled": False, "type": "shamir"}],
        "storage": {
            "type": config.storage.type,
            "redirect_addr": config.api_addr,
            "cluster_addr": config.cluster_addr,
            "disable_clustering": config.disable_clustering,
        },
        "telemetry": {
            "prometheus_retention_time": config.prometheus_retention_time,
            "disable_hostname": config.disable_hostname,
        },
        "workers": config.workers,
    }
