"""Vault-style server configuration: HCL and JSON, defaults, warnings and errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from strongroom import errors
from strongroom.server.config import (
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_REQUEST_SIZE,
    ConfigError,
    ListenerConfig,
    ServerConfig,
    StorageConfig,
    load_config,
    parse_config,
)

BASE = "/srv/strongroom"
PLAIN = 'listener "tcp" {\n  tls_disable = true\n}\n'
SQLITE = 'storage "sqlite" {\n  path = "data/strongroom.db"\n}\n'


def hcl(text: str) -> ServerConfig:
    return parse_config(text, "hcl", BASE)


def js(value: object) -> ServerConfig:
    return parse_config(json.dumps(value), "json", BASE)


FULL_HCL = """
# a production-like file
ui = true
api_addr     = "https://vault.example.com:8200"
cluster_addr = "https://10.0.0.5:8201"
default_lease_ttl = "1h"
max_lease_ttl     = "720h"
log_level = "Warning"
pid_file  = "run/strongroom.pid"
audit_directory = "/var/log/strongroom"
disable_mlock = true

storage "sqlite" {
  path = "data/strongroom.db"
}

listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "tls/server.crt"
  tls_key_file  = "/etc/strongroom/tls/server.key"
  tls_client_ca_file = "tls/ca.pem"
  tls_min_version = "tls13"
  max_request_size = 1048576
  max_request_duration = "30s"
}

listener "tcp" {
  address     = "127.0.0.1:8300"
  tls_disable = 1
}

telemetry {
  statsite_address = "127.0.0.1:8125"
  disable_hostname = true
}
"""

FULL_JSON = {
    "ui": True,
    "api_addr": "https://vault.example.com:8200",
    "cluster_addr": "https://10.0.0.5:8201",
    "default_lease_ttl": "1h",
    "max_lease_ttl": "720h",
    "log_level": "Warning",
    "pid_file": "run/strongroom.pid",
    "audit_directory": "/var/log/strongroom",
    "disable_mlock": True,
    "storage": {"sqlite": {"path": "data/strongroom.db"}},
    "listener": [
        {
            "tcp": {
                "address": "0.0.0.0:8200",
                "tls_cert_file": "tls/server.crt",
                "tls_key_file": "/etc/strongroom/tls/server.key",
                "tls_client_ca_file": "tls/ca.pem",
                "tls_min_version": "tls13",
                "max_request_size": 1048576,
                "max_request_duration": "30s",
            }
        },
        {"tcp": {"address": "127.0.0.1:8300", "tls_disable": 1}},
    ],
    "telemetry": {"statsite_address": "127.0.0.1:8125", "disable_hostname": True},
}


def test_full_config_in_hcl() -> None:
    config = hcl(FULL_HCL)
    assert config == ServerConfig(
        listeners=(
            ListenerConfig(
                address="0.0.0.0:8200",
                tls_cert_file=f"{BASE}/tls/server.crt",
                tls_key_file="/etc/strongroom/tls/server.key",
                tls_client_ca_file=f"{BASE}/tls/ca.pem",
                tls_min_version="tls13",
                max_request_size=1048576,
                max_request_duration=30,
            ),
            ListenerConfig(address="127.0.0.1:8300", tls_disable=True),
        ),
        storage=StorageConfig("sqlite", {"path": f"{BASE}/data/strongroom.db"}),
        api_addr="https://vault.example.com:8200",
        cluster_addr="https://10.0.0.5:8201",
        default_lease_ttl=3600,
        max_lease_ttl=720 * 3600,
        ui=True,
        log_level="warn",
        pid_file=f"{BASE}/run/strongroom.pid",
        audit_directory="/var/log/strongroom",
        disable_hostname=True,
        warnings=(
            '"disable_mlock" is not supported and is ignored',
            'telemetry: "statsite_address" is not supported and is ignored',
        ),
    )
    assert (config.listeners[0].host, config.listeners[0].port) == ("0.0.0.0", 8200)  # noqa: S104


def test_hcl_and_json_forms_are_equal() -> None:
    assert hcl(FULL_HCL) == js(FULL_JSON)


def test_json_listener_shapes_are_equivalent() -> None:
    one = {"address": "127.0.0.1:1", "tls_disable": True}
    two = {"address": "127.0.0.1:2", "tls_disable": True}
    as_list = js({"storage": {"inmem": {}}, "listener": [{"tcp": one}, {"tcp": two}]})
    as_label_list = js({"storage": {"inmem": {}}, "listener": {"tcp": [one, two]}})
    assert as_list == as_label_list
    assert [lst.address for lst in as_list.listeners] == ["127.0.0.1:1", "127.0.0.1:2"]


def test_repeated_hcl_listeners_are_kept_apart() -> None:
    # pyhcl's loads() would merge these into one listener with both sets of keys
    config = hcl(
        SQLITE
        + 'listener "tcp" {\n address = "127.0.0.1:8200"\n tls_disable = true\n}\n'
        + 'listener "tcp" {\n address = "10.0.0.5:8200"\n'
        + ' tls_cert_file = "/c"\n tls_key_file = "/k"\n}\n'
    )
    first, second = config.listeners
    assert (first.address, first.tls_disable, first.tls_cert_file) == ("127.0.0.1:8200", True, "")
    assert (second.address, second.tls_disable, second.tls_cert_file) == (
        "10.0.0.5:8200",
        False,
        "/c",
    )


def test_defaults() -> None:
    config = hcl(SQLITE + PLAIN)
    assert config.listeners == (ListenerConfig(tls_disable=True),)
    listener = config.listeners[0]
    assert listener.address == "127.0.0.1:8200"
    assert listener.max_request_size == DEFAULT_MAX_REQUEST_SIZE == 33554432
    assert listener.tls_min_version == "tls12"
    assert listener.max_request_duration == 90
    assert config.default_lease_ttl == config.max_lease_ttl == DEFAULT_LEASE_TTL == 2764800
    assert (config.ui, config.log_level, config.api_addr, config.pid_file) == (
        False,
        "info",
        "",
        "",
    )
    assert (listener.tls_cert_file, config.audit_directory) == ("", "")
    assert config.warnings == ()


def test_legacy_backend_is_storage() -> None:
    legacy = hcl('backend "sqlite" {\n path = "data/strongroom.db"\n}\n' + PLAIN)
    assert legacy == hcl(SQLITE + PLAIN)


def test_storage_and_backend_together_is_an_error() -> None:
    with pytest.raises(ConfigError, match="not both"):
        hcl(SQLITE + 'backend "inmem" {}\n' + PLAIN)


@pytest.mark.parametrize(
    "text",
    [PLAIN, SQLITE + 'storage "inmem" {}\n' + PLAIN, 'storage "sqlite" {}\n' + PLAIN],
)
def test_exactly_one_usable_storage_is_required(text: str) -> None:
    with pytest.raises(ConfigError, match="storage"):
        hcl(text)


def test_unknown_storage_type_names_the_supported_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        hcl('storage "raft" {\n path = "/data"\n node_id = "a"\n}\n' + PLAIN)
    message = str(caught.value)
    assert 'storage "raft"' in message
    for supported in ("inmem", "postgresql", "sqlite"):
        assert supported in message


def test_postgresql_is_parsed_and_its_password_never_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VAULT_PG_CONNECTION_URL", raising=False)
    url = "postgres://vault:hunter2-secret@db:5432/vault?sslmode=verify-full"
    config = hcl(
        f'storage "postgresql" {{\n connection_url = "{url}"\n ha_enabled = "true"\n}}\n' + PLAIN
    )
    assert config.storage.type == "postgresql"
    assert config.storage.options == {
        "connection_url": url,
        "table": "vault_kv_store",
        "ha_table": "vault_ha_locks",
        "ha_enabled": True,
        "max_parallel": 128,
        "skip_create_table": False,
    }
    assert "hunter2" not in repr(config)
    with pytest.raises(ConfigError) as caught:
        hcl(
            f'storage "postgresql" {{\n connection_url = "{url}"\n max_parallel = "x"\n}}\n' + PLAIN
        )
    assert "hunter2" not in str(caught.value)
    assert "max_parallel" in str(caught.value)
    with pytest.raises(ConfigError, match="connection_url is required"):
        hcl('storage "postgresql" {}\n' + PLAIN)


def test_postgresql_options_and_the_environment_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_PG_CONNECTION_URL", "postgres://from-env")
    config = hcl(
        'storage "postgresql" {\n table = "myschema.kv"\n skip_create_table = true\n'
        ' max_idle_connections = 4\n retry_timeout = "2s"\n max_parallel = 16\n}\n' + PLAIN
    )
    assert config.storage.options == {
        "connection_url": "postgres://from-env",
        "table": "myschema.kv",
        "ha_table": "vault_ha_locks",
        "ha_enabled": False,
        "max_parallel": 16,
        "skip_create_table": True,
        "max_idle_connections": 4,
        "retry_timeout": 2.0,
    }
    # as Vault: the environment wins over the file
    config = hcl('storage "postgresql" {\n connection_url = "postgres://file"\n}\n' + PLAIN)
    assert config.storage.options["connection_url"] == "postgres://from-env"
    for bad, key in [
        ('table = "a;drop table x"', "table"),
        ('ha_table = "1x"', "ha_table"),
        ("max_parallel = 0", "max_parallel"),
        ("max_idle_connections = -1", "max_idle_connections"),
        ('skip_create_table = "maybe"', "skip_create_table"),
        ("unknown_key = 1", "unknown_key"),
    ]:
        with pytest.raises(ConfigError, match=key):
            hcl(f'storage "postgresql" {{\n {bad}\n}}\n' + PLAIN)


def test_inmem_storage() -> None:
    assert hcl('storage "inmem" {}\n' + PLAIN).storage == StorageConfig("inmem", {})


def test_ignored_vault_keys_warn_and_unknown_keys_fail() -> None:
    config = hcl(
        SQLITE
        + 'disable_mlock = true\ncluster_name = "c"\nplugin_directory = "/p"\n'
        + "raw_storage_endpoint = true\n"
        + 'listener "tcp" {\n tls_disable = true\n'
        + ' x_forwarded_for_authorized_addrs = "10.0.0.0/8"\n'
        + " tls_prefer_server_cipher_suites = true\n"
        + ' custom_response_headers {\n "default" = { "X-A" = ["b"] }\n }\n}\n'
    )
    assert config.warnings == (
        '"disable_mlock" is not supported and is ignored',
        '"cluster_name" is not supported and is ignored',
        '"plugin_directory" is not supported and is ignored',
        'listener "tcp": "x_forwarded_for_authorized_addrs" is not supported and is ignored',
        'listener "tcp": "tls_prefer_server_cipher_suites" is not supported and is ignored',
        'listener "tcp": "custom_response_headers" is not supported and is ignored',
    )
    # sys/raw/* is supported: the key is read, not warned about
    assert config.raw_storage_endpoint is True and config.introspection_endpoint is False
    with pytest.raises(ConfigError, match='unknown key "disable_mlok" at the top level'):
        hcl(SQLITE + PLAIN + "disable_mlok = true\n")
    with pytest.raises(ConfigError, match='listener "tcp": unknown key "tls_disabled"'):
        hcl(SQLITE + 'listener "tcp" {\n tls_disabled = true\n}\n')
    with pytest.raises(ConfigError, match='storage "sqlite": unknown key "paht"'):
        hcl('storage "sqlite" {\n paht = "x"\n}\n' + PLAIN)


def test_seal_stanzas() -> None:
    assert hcl(SQLITE + PLAIN + 'seal "shamir" {}\n').warnings == ()
    config = hcl(SQLITE + PLAIN + 'seal "awskms" {\n region = "us-east-1"\n kms_key_id = "k"\n}\n')
    assert config.warnings == ('seal "awskms" is ignored: only Shamir unseal keys are supported',)


def test_unknown_listener_type_is_an_error() -> None:
    with pytest.raises(ConfigError, match='listener "unix": unsupported listener type'):
        hcl(SQLITE + 'listener "unix" {\n address = "/run/s.sock"\n}\n')
    with pytest.raises(ConfigError, match="at least one listener"):
        hcl(SQLITE)
    with pytest.raises(ConfigError, match="expected a stanza"):
        hcl(SQLITE + 'listener {\n address = "127.0.0.1:8200"\n}\n')


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), (1, True), (True, True), ('"true"', True), ('"1"', True)],
)
def test_tls_disable_spellings(value: object, expected: bool) -> None:
    text = f'listener "tcp" {{\n tls_disable = {str(value).lower()}\n}}\n'
    assert hcl(SQLITE + text).listeners[0].tls_disable is expected


def test_tls_needs_a_certificate_and_key_unless_disabled() -> None:
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file are required"):
        hcl(SQLITE + 'listener "tcp" {\n address = "127.0.0.1:8200"\n}\n')
    with pytest.raises(ConfigError, match="required"):
        hcl(SQLITE + 'listener "tcp" {\n tls_disable = "false"\n tls_cert_file = "c"\n}\n')


@pytest.mark.parametrize("version", ["tls10", "tls11"])
def test_old_tls_versions_are_refused_as_insecure(version: str) -> None:
    tls = ' tls_cert_file = "c"\n tls_key_file = "k"\n'
    with pytest.raises(ConfigError, match="insecure"):
        hcl(SQLITE + f'listener "tcp" {{\n{tls} tls_min_version = "{version}"\n}}\n')
    with pytest.raises(ConfigError, match="insecure"):
        hcl(SQLITE + f'listener "tcp" {{\n{tls} tls_max_version = "{version}"\n}}\n')


def test_bad_tls_settings() -> None:
    tls = 'listener "tcp" {\n tls_cert_file = "c"\n tls_key_file = "k"\n'
    with pytest.raises(ConfigError, match='must be "tls12" or "tls13"'):
        hcl(SQLITE + tls + ' tls_min_version = "ssl3"\n}\n')
    with pytest.raises(ConfigError, match="above tls_max_version"):
        hcl(SQLITE + tls + ' tls_min_version = "tls13"\n tls_max_version = "tls12"\n}\n')
    with pytest.raises(ConfigError, match="cannot both be set"):
        hcl(
            SQLITE
            + tls
            + " tls_require_and_verify_client_cert = true\n tls_disable_client_certs = true\n}\n"
        )
    with pytest.raises(ConfigError, match="needs TLS"):
        hcl(
            SQLITE
            + 'listener "tcp" {\n tls_disable = 1\n tls_require_and_verify_client_cert = 1\n}\n'
        )


def test_plain_http_off_loopback_warns() -> None:
    config = hcl(SQLITE + 'listener "tcp" {\n address = "0.0.0.0:8200"\n tls_disable = 1\n}\n')
    assert len(config.warnings) == 1
    assert "non-loopback" in config.warnings[0]


@pytest.mark.parametrize(
    ("setting", "seconds"),
    [('"768h"', 2764800), ('"90m"', 5400), ("3600", 3600), ('"1h30m"', 5400), ('"45s"', 45)],
)
def test_lease_durations(setting: str, seconds: int) -> None:
    config = hcl(SQLITE + PLAIN + f'default_lease_ttl = {setting}\nmax_lease_ttl = "768h"\n')
    assert config.default_lease_ttl == seconds


def test_duration_errors() -> None:
    with pytest.raises(ConfigError, match="default_lease_ttl must not be greater"):
        hcl(SQLITE + PLAIN + 'default_lease_ttl = "2h"\nmax_lease_ttl = "1h"\n')
    # like Vault: max alone below the 768h default is an error, not a silent clamp
    with pytest.raises(ConfigError, match="must not be greater"):
        hcl(SQLITE + PLAIN + 'max_lease_ttl = "1h"\n')
    with pytest.raises(ConfigError, match="max_lease_ttl"):
        hcl(SQLITE + PLAIN + 'max_lease_ttl = "forever"\n')
    with pytest.raises(ConfigError, match="max_request_duration"):
        hcl(SQLITE + 'listener "tcp" {\n tls_disable = 1\n max_request_duration = "soon"\n}\n')
    assert hcl(SQLITE + PLAIN + 'default_lease_ttl = "0"\n').default_lease_ttl == 2764800


def test_default_max_request_duration_applies_to_listeners() -> None:
    config = hcl(
        SQLITE
        + 'default_max_request_duration = "2m"\n'
        + PLAIN
        + 'listener "tcp" {\n address = "127.0.0.1:1"\n tls_disable = 1\n'
        + ' max_request_duration = "5s"\n}\n'
    )
    assert [lst.max_request_duration for lst in config.listeners] == [120, 5]


@pytest.mark.parametrize(
    ("setting", "size"),
    [("1024", 1024), ('"2048"', 2048), ("0", DEFAULT_MAX_REQUEST_SIZE), ("-5", -1)],
)
def test_max_request_size(setting: str, size: int) -> None:
    text = f'listener "tcp" {{\n tls_disable = 1\n max_request_size = {setting}\n}}\n'
    assert hcl(SQLITE + text).listeners[0].max_request_size == size


def test_listener_timeouts_are_kept() -> None:
    config = hcl(
        SQLITE
        + 'listener "tcp" {\n tls_disable = 1\n http_idle_timeout = "1m"\n'
        + ' http_read_header_timeout = "2s"\n http_read_timeout = "3s"\n'
        + ' http_write_timeout = "4s"\n}\n'
    )
    listener = config.listeners[0]
    assert (
        listener.http_idle_timeout,
        listener.http_read_header_timeout,
        listener.http_read_timeout,
        listener.http_write_timeout,
    ) == (60, 2, 3, 4)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "host:port", "1.2.3.4:99999", "{{ GetPrivateIP }}:8200"]
)
def test_bad_addresses(address: str) -> None:
    with pytest.raises(ConfigError, match="address"):
        hcl(SQLITE + f'listener "tcp" {{\n address = "{address}"\n tls_disable = 1\n}}\n')


def test_ipv6_address() -> None:
    config = hcl(SQLITE + 'listener "tcp" {\n address = "[::1]:8200"\n tls_disable = 1\n}\n')
    assert (config.listeners[0].host, config.listeners[0].port) == ("::1", 8200)


def test_log_level() -> None:
    assert hcl(SQLITE + PLAIN + 'log_level = "DEBUG"\n').log_level == "debug"
    assert hcl(SQLITE + PLAIN + 'log_level = "err"\n').log_level == "error"
    with pytest.raises(ConfigError, match="log_level"):
        hcl(SQLITE + PLAIN + 'log_level = "loud"\n')


def test_a_setting_given_twice_is_an_error() -> None:
    with pytest.raises(ConfigError, match='"ui" is set more than once'):
        hcl(SQLITE + PLAIN + "ui = true\nui = false\n")
    with pytest.raises(ConfigError, match="appears twice"):
        parse_config('{"ui": true, "ui": false}', "json", BASE)


def test_wrong_value_types_name_the_key() -> None:
    with pytest.raises(ConfigError, match="ui"):
        hcl(SQLITE + PLAIN + 'ui = "sometimes"\n')
    with pytest.raises(ConfigError, match='listener "tcp": address'):
        hcl(SQLITE + 'listener "tcp" {\n address = ["a", "b"]\n tls_disable = 1\n}\n')


def test_hcl_syntax_errors_carry_the_line() -> None:
    with pytest.raises(ConfigError, match=r"HCL syntax error: Line 6, column 1: unexpected"):
        hcl(SQLITE + 'listener "tcp" {\n tls_disable = \n}\n')
    with pytest.raises(ConfigError, match=r"HCL syntax error: Line 2, column 7: unexpected"):
        hcl("ui = true\nfoo = = 1\n")
    with pytest.raises(
        ConfigError, match=r"HCL syntax error: Line \d+, column \d+.*closing string quote"
    ):
        hcl('ui = "unterminated\n')
    with pytest.raises(ConfigError, match="HCL syntax error"):
        hcl('listener "tcp" {')


def test_json_syntax_errors_carry_the_line() -> None:
    with pytest.raises(ConfigError, match="JSON syntax error at line 2, column"):
        parse_config('{"ui": true,\n "api_addr": }', "json", BASE)
    with pytest.raises(ConfigError, match="must be an object"):
        parse_config("[1, 2]", "json", BASE)
    with pytest.raises(ConfigError, match="format"):
        parse_config("", "yaml", BASE)


def test_load_config_picks_the_format_and_resolves_paths_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (tmp_path / "a.hcl").write_text(FULL_HCL)
    (tmp_path / "a.json").write_text(json.dumps(FULL_JSON))
    (tmp_path / "b.conf").write_text(json.dumps(FULL_JSON))
    (tmp_path / "c.conf").write_text(FULL_HCL)
    configs = [
        load_config(str(tmp_path / name)) for name in ("a.hcl", "a.json", "b.conf", "c.conf")
    ]
    assert all(config == configs[0] for config in configs)
    assert configs[0].storage.options["path"] == str(work / "data" / "strongroom.db")
    assert configs[0].pid_file == str(work / "run" / "strongroom.pid")
    assert configs[0].listeners[0].tls_cert_file == str(work / "tls" / "server.crt")


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.hcl"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": 1}}, "x": 1}')
    with pytest.raises(ConfigError, match=f'{bad}: unknown key "x"'):
        load_config(str(bad))
    binary = tmp_path / "binary.hcl"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(str(binary))


# The package default of Vault 1.x (.release/linux/package/etc/vault.d/vault.hcl), comments
# trimmed: a "file" storage, an HTTPS listener and ui = true.
VAULT_PACKAGE_DEFAULT = """
# Full configuration options can be found at https://www.vaultproject.io/docs/configuration

ui = true

#mlock = true
#disable_mlock = true

storage "file" {
  path = "/opt/vault/data"
}

# HTTPS listener
listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/opt/vault/tls/tls.crt"
  tls_key_file  = "/opt/vault/tls/tls.key"
}
"""

# From the configuration overview page (index.mdx), with its consul storage.
VAULT_DOCS_EXAMPLE = """
storage "consul" {
  address = "127.0.0.1:8500"
  path    = "vault/"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = 1
}

telemetry {
  statsite_address = "127.0.0.1:8125"
  disable_hostname = true
}
"""


def test_vault_sample_configs() -> None:
    with pytest.raises(ConfigError, match='storage "file": unsupported storage type'):
        hcl(VAULT_PACKAGE_DEFAULT)
    config = hcl(VAULT_PACKAGE_DEFAULT.replace('storage "file"', 'storage "sqlite"'))
    assert config.ui is True
    assert config.storage == StorageConfig("sqlite", {"path": "/opt/vault/data"})
    assert config.listeners == (
        ListenerConfig(
            address="0.0.0.0:8200",
            tls_cert_file="/opt/vault/tls/tls.crt",
            tls_key_file="/opt/vault/tls/tls.key",
        ),
    )
    assert config.warnings == ()

    with pytest.raises(ConfigError, match='storage "consul": unsupported storage type'):
        hcl(VAULT_DOCS_EXAMPLE)
    config = hcl(
        VAULT_DOCS_EXAMPLE.replace('"consul" {', '"inmem" {}\n#{').replace(
            '  address = "127.0.0.1:8500"\n  path    = "vault/"\n}', ""
        )
    )
    assert config.listeners == (ListenerConfig(tls_disable=True),)
    assert config.warnings == ('telemetry: "statsite_address" is not supported and is ignored',)
    assert config.disable_hostname is True


def test_records_are_frozen_and_errors_are_invalid_requests() -> None:
    config = hcl(SQLITE + PLAIN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.ui = True  # type: ignore[misc]
    assert issubclass(ConfigError, errors.InvalidRequest)
    assert not hasattr(config, "__dict__")  # slotted


def test_head_limits_default_to_go_and_can_be_set() -> None:
    listener = hcl(SQLITE + 'listener "tcp" {\n tls_disable = 1\n}\n').listeners[0]
    assert (
        listener.http_max_header_bytes,
        listener.http_max_header_count,
        listener.http_max_request_line_bytes,
    ) == (1 << 20, 100, 64 * 1024)
    listener = hcl(
        SQLITE
        + 'listener "tcp" {\n tls_disable = 1\n http_max_header_bytes = 4096\n'
        + " http_max_header_count = 8\n http_max_request_line_bytes = 512\n}\n"
    ).listeners[0]
    assert (
        listener.http_max_header_bytes,
        listener.http_max_header_count,
        listener.http_max_request_line_bytes,
    ) == (4096, 8, 512)
    for key in ("http_max_header_bytes", "http_max_header_count", "http_max_request_line_bytes"):
        with pytest.raises(ConfigError, match=key):
            hcl(SQLITE + f'listener "tcp" {{\n tls_disable = 1\n {key} = 0\n}}\n')
