"""Agent configuration: Vault Agent's HCL or JSON files, so existing agent configs keep working.

Blocks (Vault's names and defaults): ``vault {}`` (with ``retry {}``), ``auto_auth { method
{} sink {} }``, ``template {}`` (any number), ``template_config {}``, ``listener`` (any
number), ``api_proxy {}``, ``cache {}``, ``exec {}``, ``env_template "NAME" {}``, and the
settings ``pid_file``, ``exit_after_auth``, ``log_level``, ``log_format``. Vault settings with no
meaning here (telemetry, log rotation, persistent caches…) are accepted and listed in
:attr:`AgentConfig.warnings`; anything else is an :class:`AgentConfigError` naming the file
and line, as are a missing auth method and a template that does not parse: the agent does not
start on a config it would misread.

Messages name keys, never values (a config may hold a secret ID path's contents? no — but an
``aad`` or a ``contents`` template can be sensitive, so values stay out).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from strongroom.errors import InvalidRequest
from strongroom.framework import parse_bool, parse_duration, parse_int, parse_str
from strongroom.hclfile import HclSyntaxError, load_hcl, stanza_lines

from .config_merge import Parts, assemble, config_files, merge
from .config_model import (
    _DEFAULT_ADDRESS,
    AgentConfig,
    AgentConfigError,
    ApiProxyConfig,
    AutoAuthConfig,
    EnvTemplateConfig,
    ExecConfig,
    ListenerConfig,
    MethodConfig,
    SinkConfig,
    TemplateConfig,
    TemplateSettings,
    VaultConfig,
    Wait,
)
from .template import Template, TemplateSyntaxError, compile_template

__all__ = [
    "AgentConfig",
    "AgentConfigError",
    "ApiProxyConfig",
    "AutoAuthConfig",
    "EnvTemplateConfig",
    "ExecConfig",
    "ListenerConfig",
    "MethodConfig",
    "SinkConfig",
    "TemplateConfig",
    "TemplateSettings",
    "VaultConfig",
    "Wait",
    "load_agent_config",
    "parse_agent_config",
]

METHOD_TYPES = ("approle", "cert", "jwt", "kubernetes", "token_file")
_LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "err", "error")


# when_inconsistent values; Vault's consistency page also spells "forward" out in full
_WHEN_INCONSISTENT = {
    "fail": "fail",
    "retry": "retry",
    "forward": "forward",
    "forward-active-node": "forward",
}


_TOP = {
    "vault",
    "auto_auth",
    "template",
    "template_config",
    "listener",
    "api_proxy",
    "cache",
    "exec",
    "env_template",
    "pid_file",
    "exit_after_auth",
    "log_level",
    "log_format",
}
_TOP_IGNORED = {
    "telemetry",
    "log_file",
    "log_rotate_bytes",
    "log_rotate_duration",
    "log_rotate_max_files",
    "disable_idle_connections",
    "disable_keep_alives",
    "disable_mlock",
}


class _Reader:
    """Turns the parsed file into an AgentConfig, naming file and line in every error."""

    def __init__(self, path: str, text: str, fmt: str) -> None:
        self.path = path or "<config>"
        self.text = text
        self.fmt = fmt
        self.base_dir = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
        self.lines = stanza_lines(text) if fmt == "hcl" else {}
        self.warnings: list[str] = []

    def line_of(self, keys: tuple[str, ...], nth: int = 0) -> int:
        found = self.lines.get(keys)
        if found:
            return found[min(nth, len(found) - 1)]
        # JSON, or a path through labels we did not track: the first line naming the key
        needle = f'"{keys[-1]}"' if self.fmt == "json" else keys[-1]
        for number, line in enumerate(self.text.splitlines(), 1):
            if needle in line:
                return number
        return 1

    def error(self, keys: tuple[str, ...], message: str, nth: int = 0) -> AgentConfigError:
        return AgentConfigError(f"{self.path}:{self.line_of(keys, nth)}: {message}")

    # -- value helpers ------------------------------------------------------------------

    def convert(self, keys: tuple[str, ...], parse: Any, value: Any, nth: int = 0) -> Any:
        name = ".".join(keys)
        try:
            return parse(value, name)
        except InvalidRequest as exc:
            raise self.error(keys, str(exc), nth) from None

    def check_keys(
        self,
        keys: tuple[str, ...],
        body: Mapping[str, Any],
        allowed: set[str],
        ignored: set[str] = frozenset(),  # type: ignore[assignment]
        nth: int = 0,
    ) -> None:
        for key in body:
            if key in ignored:
                self.warnings.append(f"{'.'.join((*keys, key))} is not supported and is ignored")
            elif key not in allowed:
                where = f' in "{keys[-1]}"' if keys else ""
                raise self.error((*keys, key), f'unknown key "{key}"{where}', nth)

    def single(self, top: Mapping[str, list[Any]], key: str) -> Any:
        values = top.get(key)
        if not values:
            return None
        if len(values) > 1:
            raise self.error((key,), f'"{key}" may appear only once', 1)
        return values[0]

    def body(self, keys: tuple[str, ...], value: Any, nth: int = 0) -> dict[str, Any]:
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, dict):
            raise self.error(keys, f'"{keys[-1]}" must be a block', nth)
        return value

    def file_path(self, value: str) -> str:
        if not value or os.path.isabs(value):
            return value
        return os.path.normpath(os.path.join(self.base_dir, value))

    def octal_literal(self, keys: tuple[str, ...], value: int, nth: int) -> int | str:
        """HCL's ``mode = 0600`` is octal (Go parses it so); pyhcl reads it as decimal 600,
        so look at how the number was written."""
        if self.fmt != "hcl":
            return value
        lines = self.text.splitlines()
        number = self.line_of(keys, nth)
        line = lines[number - 1] if 0 < number <= len(lines) else ""
        _, _, after = line.partition(keys[-1])
        literal = after.lstrip(" \t=").split()[0].rstrip(",}") if after.strip(" \t=") else ""
        if literal.startswith("0") and len(literal) > 1 and literal.isdigit():
            return literal
        return value

    # -- the whole file ---------------------------------------------------------------------

    def read(self, top: Mapping[str, list[Any]]) -> Parts:
        """Parse every block and setting this file has; checks that need the whole
        configuration (several files may make one) come later, in :func:`.config_merge.assemble`."""
        parts = Parts(self.path, self.warnings)
        for key in top:
            if key in _TOP_IGNORED:
                self.warnings.append(f"{key} is not supported and is ignored")
            elif key not in _TOP:
                raise self.error((key,), f'unknown block or setting "{key}"')
            else:
                parts.where[key] = f"{self.path}:{self.line_of((key,))}"
        found = parts.values
        if "vault" in top:
            found["vault"] = self.vault(self.single(top, "vault"))
        if "auto_auth" in top:
            found["auto_auth"] = self.auto_auth(self.single(top, "auto_auth"))
        if "template" in top:
            found["template"] = tuple(
                self.template(value, nth) for nth, value in enumerate(_flatten(top["template"]))
            )
        if "template_config" in top:
            found["template_config"] = self.template_settings(self.single(top, "template_config"))
        if "listener" in top:
            found["listener"] = tuple(self.listeners(top["listener"] or []))
        if "api_proxy" in top:
            found["api_proxy"] = self.api_proxy(self.single(top, "api_proxy"))
        cache_value = self.single(top, "cache")
        if cache_value is not None:
            found["cache"] = self.cache(cache_value)
        if "exec" in top:
            found["exec"] = self.exec(self.single(top, "exec"))
        if "env_template" in top:
            found["env_template"] = tuple(self.env_templates(top["env_template"] or []))
        if "log_level" in top:
            log_level = self.scalar(top, "log_level", parse_str, "info").lower()
            if log_level not in _LOG_LEVELS:
                raise self.error(("log_level",), f'unknown log_level "{log_level}"')
            found["log_level"] = log_level
        if "log_format" in top:
            log_format = self.scalar(top, "log_format", parse_str, "standard")
            if log_format not in ("standard", "json"):
                raise self.error(("log_format",), 'log_format must be "standard" or "json"')
            found["log_format"] = log_format
        if "pid_file" in top:
            found["pid_file"] = self.file_path(self.scalar(top, "pid_file", parse_str, ""))
        if "exit_after_auth" in top:
            found["exit_after_auth"] = self.scalar(top, "exit_after_auth", parse_bool, False)
        return parts

    def cache(self, value: Any) -> ApiProxyConfig | None:
        """The ``cache`` block; returns the ``api_proxy`` settings it holds in Vault's
        older place for them (None when it has none)."""
        cache_body = self.body(("cache",), value)
        if "persist" in cache_body:
            raise self.error(
                ("cache", "persist"),
                'cache "persist" (a persistent cache, e.g. type "kubernetes") is not '
                "supported: the agent's cache is in memory only",
            )
        self.check_keys(
            ("cache",),
            cache_body,
            {"use_auto_auth_token", "enforce_consistency", "when_inconsistent"},
            {
                "cache_static_secrets",
                "disable_caching_dynamic_secrets",
                "static_secret_token_capability_refresh_interval",
            },
        )
        older = ("use_auto_auth_token", "enforce_consistency", "when_inconsistent")
        if not any(key in cache_body for key in older):
            return None
        return ApiProxyConfig(
            self.auto_token(("cache", "use_auto_auth_token"), cache_body),
            *self.consistency(("cache",), cache_body),
        )

    def scalar(self, top: Mapping[str, list[Any]], key: str, parse: Any, default: Any) -> Any:
        value = self.single(top, key)
        return default if value is None else self.convert((key,), parse, value)

    # -- blocks -------------------------------------------------------------------------

    def vault(self, value: Any) -> VaultConfig:
        if value is None:
            return VaultConfig()
        keys = ("vault",)
        body = self.body(keys, value)
        allowed = {
            "address",
            "ca_cert",
            "ca_path",
            "client_cert",
            "client_key",
            "tls_skip_verify",
            "tls_server_name",
            "namespace",
            "retry",
        }
        self.check_keys(keys, body, allowed)
        retries = 12
        if "retry" in body:
            retry = self.body((*keys, "retry"), body["retry"])
            self.check_keys((*keys, "retry"), retry, {"num_retries"})
            retries = self.convert(
                (*keys, "retry", "num_retries"), parse_int, retry.get("num_retries", 12)
            )
            retries = 12 if retries == 0 else max(retries, 0)

        def text(key: str) -> str:
            return str(self.convert((*keys, key), parse_str, body.get(key, "")))

        return VaultConfig(
            address=text("address") or _DEFAULT_ADDRESS,
            ca_cert=self.file_path(text("ca_cert")),
            ca_path=self.file_path(text("ca_path")),
            client_cert=self.file_path(text("client_cert")),
            client_key=self.file_path(text("client_key")),
            tls_skip_verify=self.convert(
                (*keys, "tls_skip_verify"), parse_bool, body.get("tls_skip_verify", False)
            ),
            tls_server_name=text("tls_server_name"),
            namespace=text("namespace"),
            num_retries=retries,
        )

    def auto_auth(self, value: Any) -> AutoAuthConfig | None:
        if value is None:
            return None
        keys = ("auto_auth",)
        body = self.body(keys, value)
        self.check_keys(keys, body, {"method", "sink", "enable_reauth_on_new_credentials"})
        methods = list(_labelled(body.get("method")))
        if not methods:
            raise self.error(keys, 'auto_auth needs a "method" block')
        if len(methods) > 1:
            raise self.error((*keys, "method"), 'auto_auth takes exactly one "method"', 1)
        method = self.method(*methods[0])
        sinks = tuple(
            self.sink(label, sink, nth)
            for nth, (label, sink) in enumerate(_labelled(body.get("sink")))
        )
        reauth = self.convert(
            (*keys, "enable_reauth_on_new_credentials"),
            parse_bool,
            body.get("enable_reauth_on_new_credentials", False),
        )
        return AutoAuthConfig(method, sinks, reauth)

    def method(self, label: str, body: dict[str, Any]) -> MethodConfig:
        keys = ("auto_auth", "method")
        kind = label or str(body.get("type", ""))
        allowed = {
            "type",
            "mount_path",
            "namespace",
            "wrap_ttl",
            "min_backoff",
            "max_backoff",
            "exit_on_err",
            "config",
            "max_retries",
        }
        self.check_keys(keys, body, allowed)
        if not kind:
            raise self.error(keys, 'the auth method needs a type (method "approle" { … })')
        if kind not in METHOD_TYPES:
            raise self.error(
                keys, f'unsupported auth method "{kind}"; supported: {", ".join(METHOD_TYPES)}'
            )
        config = body.get("config", {})
        if isinstance(config, list) and len(config) == 1:
            config = config[0]
        if not isinstance(config, dict):
            raise self.error((*keys, "config"), "method config must be a block")
        required = {
            "approle": ("role_id_file_path",),
            "kubernetes": ("role",),
            "jwt": ("path", "role"),
            "token_file": ("token_file_path",),
            "cert": (),
        }[kind]
        for key in required:
            if not config.get(key):
                raise self.error(keys, f'auth method "{kind}" needs config.{key}')
        for key in (
            "role_id_file_path",
            "secret_id_file_path",
            "path",
            "token_path",
            "token_file_path",
            "ca_cert",
            "client_cert",
            "client_key",
            "secret_id_response_wrapping_path",
        ):
            if (
                key in config
                and key != "secret_id_response_wrapping_path"
                and isinstance(config[key], str)
            ):
                config = {**config, key: self.file_path(config[key])}

        def duration(key: str, default: float) -> float:
            if key not in body:
                return default
            return float(self.convert((*keys, key), parse_duration, body[key]))

        if duration("wrap_ttl", 0):
            # Vault then hands the sinks a wrapped login the agent itself cannot use; rather
            # than half-support that, say so (the sink's own wrap_ttl is supported)
            raise self.error(
                (*keys, "wrap_ttl"),
                "wrap_ttl on the auth method is not supported; set wrap_ttl on the sink instead",
            )
        mount = str(body.get("mount_path") or f"auth/{'cert' if kind == 'cert' else kind}")
        if kind == "token_file":
            mount = "auth/token"
        return MethodConfig(
            type=kind,
            mount_path=mount.strip("/"),
            config=config,
            namespace=str(body.get("namespace", "")),
            wrap_ttl=int(duration("wrap_ttl", 0)),
            min_backoff=duration("min_backoff", 1.0) or 1.0,
            max_backoff=duration("max_backoff", 300.0) or 300.0,
            exit_on_err=self.convert(
                (*keys, "exit_on_err"), parse_bool, body.get("exit_on_err", False)
            ),
            max_retries=max(
                self.convert((*keys, "max_retries"), parse_int, body.get("max_retries", 0)), 0
            ),
        )

    def sink(self, label: str, body: dict[str, Any], nth: int) -> SinkConfig:
        keys = ("auto_auth", "sink")
        kind = label or str(body.get("type", ""))
        allowed = {
            "type",
            "wrap_ttl",
            "dh_type",
            "dh_path",
            "derive_key",
            "aad",
            "aad_env_var",
            "config",
        }
        self.check_keys(keys, body, allowed, nth=nth)
        if kind != "file":
            raise self.error(keys, f'unsupported sink type "{kind}"; supported: file', nth)
        config = body.get("config", {})
        if isinstance(config, list) and len(config) == 1:
            config = config[0]
        if not isinstance(config, dict) or not config.get("path"):
            raise self.error(keys, 'a "file" sink needs config.path', nth)
        self.check_keys((*keys, "config"), config, {"path", "mode"}, nth=nth)
        mode = config.get("mode", 0o640)
        if isinstance(mode, int):
            mode = self.octal_literal((*keys, kind, "config", "mode"), mode, nth)
        if isinstance(mode, str):
            try:
                mode = int(mode, 8)
            except ValueError:
                raise self.error(keys, "sink config.mode must be an octal mode", nth) from None
        dh_type = str(body.get("dh_type", ""))
        dh_path = self.file_path(str(body.get("dh_path", "")))
        if dh_type not in ("", "curve25519"):
            raise self.error(keys, 'dh_type must be "curve25519"', nth)
        if bool(dh_type) != bool(dh_path):
            raise self.error(keys, "dh_type and dh_path go together", nth)
        if (body.get("aad") or body.get("aad_env_var") or body.get("derive_key")) and not dh_type:
            raise self.error(keys, "aad, aad_env_var and derive_key need dh_type", nth)
        wrap_ttl = self.convert((*keys, "wrap_ttl"), parse_duration, body.get("wrap_ttl", 0), nth)
        return SinkConfig(
            type=kind,
            path=self.file_path(str(config["path"])),
            mode=int(mode),
            wrap_ttl=int(wrap_ttl),
            dh_type=dh_type,
            dh_path=dh_path,
            derive_key=self.convert(
                (*keys, "derive_key"), parse_bool, body.get("derive_key", False), nth
            ),
            aad=str(body.get("aad", "")),
            aad_env_var=str(body.get("aad_env_var", "")),
        )

    def compile(
        self, keys: tuple[str, ...], nth: int, body: dict[str, Any], name: str, source: str
    ) -> Template:
        left = str(body.get("left_delimiter", ""))
        right = str(body.get("right_delimiter", ""))
        if source:
            try:
                with open(source, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise self.error(
                    keys, f"cannot read template source: {exc.strerror}", nth
                ) from None
            try:
                return compile_template(text, name, left, right)
            except TemplateSyntaxError as exc:
                raise AgentConfigError(
                    f"{source}:{exc.line}: template syntax error: {exc.detail} "
                    f"(template at {self.path}:{self.line_of(keys, nth)})"
                ) from None
        contents = body.get("contents")
        if not isinstance(contents, str):
            raise self.error(keys, 'a template needs "source" or "contents"', nth)
        try:
            return compile_template(contents, name, left, right)
        except TemplateSyntaxError as exc:
            # the contents start on the "contents" line (a heredoc: on the line after it)
            start = self.line_of((*keys, "contents"), nth) if self.fmt == "hcl" else 0
            start = start or self.line_of(keys, nth)
            lines = self.text.splitlines()
            if self.fmt == "hcl" and 0 < start <= len(lines) and "<<" in lines[start - 1]:
                start += 1
            raise AgentConfigError(
                f"{self.path}:{start + exc.line - 1}: template syntax error: {exc.detail}"
            ) from None

    def template(self, value: Any, nth: int) -> TemplateConfig:
        keys = ("template",)
        body = self.body(keys, value, nth)
        allowed = {
            "source",
            "contents",
            "destination",
            "perms",
            "command",
            "command_timeout",
            "error_on_missing_key",
            "left_delimiter",
            "right_delimiter",
            "create_dest_dirs",
            "backup",
            "exec",
            "wait",
        }
        self.check_keys(
            keys,
            body,
            allowed,
            {
                "sandbox_path",
                "function_denylist",
                "function_blacklist",
                "user",
                "uid",
                "group",
                "gid",
            },
            nth,
        )
        if "source" in body and "contents" in body:
            raise self.error(keys, '"source" and "contents" are mutually exclusive', nth)
        destination = str(body.get("destination", ""))
        if not destination:
            raise self.error(keys, 'a template needs a "destination"', nth)
        source = self.file_path(str(body.get("source", "")))
        template = self.compile(keys, nth, body, destination, source)
        perms = None
        if "perms" in body:
            raw = body["perms"]
            if isinstance(raw, int):
                raw = self.octal_literal((*keys, "perms"), raw, nth)
            try:
                perms = int(raw, 8) if isinstance(raw, str) else int(raw)
            except (TypeError, ValueError):
                raise self.error((*keys, "perms"), "perms must be an octal mode", nth) from None
        command: tuple[str, ...] = _command(body.get("command"))
        timeout = self.convert(
            (*keys, "command_timeout"), parse_duration, body.get("command_timeout", 30), nth
        )
        if "exec" in body:
            block = self.body((*keys, "exec"), body["exec"], nth)
            self.check_keys((*keys, "exec"), block, {"command", "timeout"}, nth=nth)
            command = _command(block.get("command"))
            timeout = self.convert(
                (*keys, "exec", "timeout"), parse_duration, block.get("timeout", 30), nth
            )

        def flag(key: str, default: bool) -> bool:
            return bool(self.convert((*keys, key), parse_bool, body.get(key, default), nth))

        return TemplateConfig(
            template=template,
            destination=self.file_path(destination),
            source=source,
            perms=perms,
            command=command,
            command_timeout=float(timeout or 30),
            error_on_missing_key=flag("error_on_missing_key", False),
            create_dest_dirs=flag("create_dest_dirs", True),
            backup=flag("backup", False),
            line=self.line_of(keys, nth),
            wait=self.wait((*keys, "wait"), body.get("wait"), nth),
        )

    def wait(self, keys: tuple[str, ...], value: Any, nth: int = 0) -> Wait | None:
        """consul-template's ``wait``: a block ``{ min = "5s" max = "20s" }`` or a string
        ``"5s:20s"`` / ``"5s"``; without a max, it is four times the min (consul-template's
        rule). A zero min turns the wait off."""
        if value is None:
            return None
        if isinstance(value, list) and value:
            value = value[-1]  # several wait blocks: the last wins, as consul-template
        if isinstance(value, str):
            first, _, second = value.partition(":")
            value = {"min": first} if not second else {"min": first, "max": second}
        if not isinstance(value, dict):
            raise self.error(keys, 'wait must be a block { min = "5s" max = "20s" }', nth)
        self.check_keys(keys, value, {"min", "max"}, nth=nth)
        low = float(self.convert((*keys, "min"), parse_duration, value.get("min", 0), nth))
        high = float(self.convert((*keys, "max"), parse_duration, value.get("max", 4 * low), nth))
        if low <= 0:
            return None
        if high < low:
            raise self.error(keys, "wait max must not be less than min", nth)
        return Wait(low, high)

    def template_settings(self, value: Any) -> TemplateSettings:
        if value is None:
            return TemplateSettings()
        keys = ("template_config",)
        body = self.body(keys, value)
        self.check_keys(
            keys,
            body,
            {
                "static_secret_render_interval",
                "exit_on_retry_failure",
                "max_connections_per_host",
                "lease_renewal_threshold",
                "wait",
            },
        )
        interval = self.convert(
            (*keys, "static_secret_render_interval"),
            parse_duration,
            body.get("static_secret_render_interval", 300),
        )
        threshold = float(body.get("lease_renewal_threshold", 2 / 3))
        if not 0 < threshold < 1:
            raise self.error(
                (*keys, "lease_renewal_threshold"),
                "lease_renewal_threshold must be between 0 and 1",
            )
        return TemplateSettings(
            static_secret_render_interval=float(interval or 300),
            exit_on_retry_failure=self.convert(
                (*keys, "exit_on_retry_failure"),
                parse_bool,
                body.get("exit_on_retry_failure", False),
            ),
            max_connections_per_host=self.convert(
                (*keys, "max_connections_per_host"),
                parse_int,
                body.get("max_connections_per_host", 10),
            ),
            lease_renewal_threshold=threshold,
            wait=self.wait((*keys, "wait"), body.get("wait")),
        )

    def listeners(self, values: list[Any]) -> Iterator[ListenerConfig]:
        nth = 0
        for value in values:
            for label, body in _labelled(value):
                keys = ("listener",)
                kind = label or str(body.get("type", "tcp"))
                if kind not in ("tcp", "unix"):
                    raise self.error(keys, f'unsupported listener type "{kind}"', nth)
                self.check_keys(
                    keys,
                    body,
                    {
                        "type",
                        "address",
                        "tls_disable",
                        "tls_cert_file",
                        "tls_key_file",
                        "require_request_header",
                    },
                    {
                        "role",
                        "agent_api",
                        "tls_min_version",
                        "proxy_api",
                        "tls_client_ca_file",
                        "socket_mode",
                        "socket_user",
                        "socket_group",
                    },
                    nth,
                )
                tls_disable = self.convert(
                    (*keys, "tls_disable"), parse_bool, body.get("tls_disable", False), nth
                )
                cert = self.file_path(str(body.get("tls_cert_file", "")))
                key = self.file_path(str(body.get("tls_key_file", "")))
                if not tls_disable and not (cert and key):
                    raise self.error(
                        keys,
                        "a TLS listener needs tls_cert_file and tls_key_file "
                        "(or tls_disable = true)",
                        nth,
                    )
                yield ListenerConfig(
                    type=kind,
                    address=str(body.get("address", "127.0.0.1:8100")),
                    tls_disable=tls_disable,
                    tls_cert_file=cert,
                    tls_key_file=key,
                    require_request_header=self.convert(
                        (*keys, "require_request_header"),
                        parse_bool,
                        body.get("require_request_header", False),
                        nth,
                    ),
                )
                nth += 1

    def auto_token(self, keys: tuple[str, ...], body: Mapping[str, Any]) -> str:
        raw = body.get(keys[-1], False)
        if isinstance(raw, str) and raw.strip().lower() == "force":
            return "force"
        return "true" if self.convert(keys, parse_bool, raw) else "false"

    def api_proxy(self, value: Any) -> ApiProxyConfig | None:
        if value is None:
            return None
        keys = ("api_proxy",)
        body = self.body(keys, value)
        self.check_keys(
            keys, body, {"use_auto_auth_token", "enforce_consistency", "when_inconsistent"}
        )
        return ApiProxyConfig(
            self.auto_token((*keys, "use_auto_auth_token"), body), *self.consistency(keys, body)
        )

    def consistency(self, keys: tuple[str, ...], body: Mapping[str, Any]) -> tuple[str, str]:
        """``enforce_consistency`` and ``when_inconsistent`` (of ``api_proxy``, or of
        ``cache`` in older configs), checked as Vault does."""
        enforce = str(body.get("enforce_consistency") or "never").strip().lower()
        if enforce not in ("always", "never"):
            raise self.error(
                (*keys, "enforce_consistency"),
                'enforce_consistency must be "always" or "never"',
            )
        when = str(body.get("when_inconsistent") or "retry").strip().lower()
        when = _WHEN_INCONSISTENT.get(when, "")
        if not when:
            raise self.error(
                (*keys, "when_inconsistent"),
                'when_inconsistent must be "fail", "retry" or "forward"',
            )
        return enforce, when

    def exec(self, value: Any) -> ExecConfig | None:
        if value is None:
            return None
        keys = ("exec",)
        body = self.body(keys, value)
        self.check_keys(
            keys,
            body,
            {"command", "restart_on_secret_changes", "restart_stop_signal"},
            {"child_process_stdout", "child_process_stderr"},
        )
        command = _command(body.get("command"))
        if not command:
            raise self.error(keys, 'exec needs a "command"')
        restart = str(body.get("restart_on_secret_changes", "always"))
        if restart not in ("always", "never"):
            raise self.error(
                (*keys, "restart_on_secret_changes"),
                'restart_on_secret_changes must be "always" or "never"',
            )
        signal_name = str(body.get("restart_stop_signal", "SIGTERM")).upper()
        import signal as signals

        if not signal_name.startswith("SIG"):
            signal_name = "SIG" + signal_name
        if not hasattr(signals, signal_name):
            raise self.error((*keys, "restart_stop_signal"), "unknown restart_stop_signal")
        return ExecConfig(command, restart, signal_name)

    def env_templates(self, values: list[Any]) -> Iterator[EnvTemplateConfig]:
        nth = 0
        for value in values:
            for name, body in _labelled(value):
                keys = ("env_template",)
                if not name:
                    raise self.error(keys, "env_template needs a variable name label", nth)
                self.check_keys(
                    keys,
                    body,
                    {"contents", "error_on_missing_key", "left_delimiter", "right_delimiter"},
                    nth=nth,
                )
                template = self.compile(keys, nth, body, name, "")
                yield EnvTemplateConfig(
                    name,
                    template,
                    self.convert(
                        (*keys, "error_on_missing_key"),
                        parse_bool,
                        body.get("error_on_missing_key", False),
                        nth,
                    ),
                )
                nth += 1


def _flatten(values: list[Any] | None) -> Iterator[Any]:
    for value in values or []:
        if isinstance(value, list):
            yield from value
        else:
            yield value


def _labelled(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Blocks as (label, body): ``x "label" {…}`` in HCL is ``{"label": {…}}``; ``x {…}``
    (with ``type`` inside) is the body itself; JSON may give a list of either."""
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            yield from _labelled(item)
        return
    if not isinstance(value, dict):
        return
    if value and all(isinstance(v, dict | list) for v in value.values()) and "config" not in value:
        for label, body in value.items():
            if isinstance(body, list):
                for item in body:
                    yield label, item
            else:
                yield label, body
        return
    yield "", value


def _command(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list):
        return tuple(str(part) for part in value)
    # a string is a shell command line, as consul-template runs it
    return ("/bin/sh", "-c", str(value))


def _read_text(text: str, fmt: str, path: str) -> Parts:
    reader = _Reader(path, text, fmt)
    if fmt == "json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AgentConfigError(
                f"{reader.path}:{exc.lineno}: JSON syntax error: {exc.msg}"
            ) from None
        if not isinstance(raw, dict):
            raise AgentConfigError(f"{reader.path}:1: expected a JSON object")
        top = {key: [value] for key, value in raw.items()}
        for key in ("template", "listener", "env_template"):
            if isinstance(raw.get(key), list):
                top[key] = list(raw[key])
    else:
        try:
            top = load_hcl(text)
        except HclSyntaxError as exc:
            message = str(exc)
            if "Line " in message:
                line = message.split("Line ", 1)[1].split(",", 1)[0]
            else:  # pyhcl reports an unexpected end of file without a line: the last one
                line = str(max(text.count("\n"), 1))
            raise AgentConfigError(f"{reader.path}:{line}: {message}") from None
    return reader.read(top)


def parse_agent_config(text: str, fmt: str = "hcl", path: str = "") -> AgentConfig:
    """Parse agent configuration text.

    Raises:
        AgentConfigError: ``file:line: problem`` for syntax errors, unknown blocks or keys,
            a missing auth method, a template that does not parse, an unusable value.
    """
    return assemble(_read_text(text, fmt, path))


def _read_file(path: str) -> Parts:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise AgentConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from None
    fmt = "json" if path.endswith(".json") or text.lstrip().startswith("{") else "hcl"
    return _read_text(text, fmt, path)


def load_agent_config(*paths: str) -> AgentConfig:
    """Read an agent configuration from one or more files or directories (``-config``
    given several times), merged as Vault Agent merges them (:mod:`.config_merge`); the
    checks that span blocks apply to the merged whole. ``.json`` files are JSON, others
    HCL."""
    if not paths:
        raise AgentConfigError("no configuration file given")
    parts: list[Parts] = []
    for path in paths:
        if os.path.isdir(path):
            files = config_files(path)
            if not files:
                raise AgentConfigError(f"{path}: no .hcl or .json configuration files")
            parts.extend(_read_file(name) for name in files)
        else:
            parts.append(_read_file(path))
    return assemble(parts[0] if len(parts) == 1 else merge(parts))
