"""``secrets …``, ``auth …`` and ``audit …``: the mount tables on ``sys/mounts``, ``sys/auth``
and ``sys/audit``.

The secrets and auth commands have the same shape (enable TYPE, disable PATH, list, tune PATH)
and share one implementation parameterised by a ``_Table``; ``secrets move`` is ``sys/remount``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._client import remote
from ._command import Command, Context, expect_args, expect_at_least, sanitize_path
from ._flags import Flag, Options, UsageError, parse_data, parse_map
from ._output import columns, go_value, human_duration, render

__all__ = ["COMMANDS"]


@dataclass(frozen=True, slots=True)
class _Table:
    noun: str  # "secrets" or "auth"
    api: str  # "sys/mounts" or "sys/auth"
    thing: str  # "the secrets engine" / "the auth method"

    def enabled(self, kind: str, path: str) -> str:
        if self.noun == "auth":
            return f"Success! Enabled {kind} auth method at: {path}"
        return f"Success! Enabled the {kind} secrets engine at: {path}"


_SECRETS = _Table("secrets", "sys/mounts", "the secrets engine")
_AUTH = _Table("auth", "sys/auth", "the auth method")

# Flag name -> field of the API's config object (MountConfigInput), all optional.
_CONFIG_TEXT = {
    "default-lease-ttl": "default_lease_ttl",
    "max-lease-ttl": "max_lease_ttl",
    "listing-visibility": "listing_visibility",
}
_CONFIG_LISTS = {
    "audit-non-hmac-request-keys": "audit_non_hmac_request_keys",
    "audit-non-hmac-response-keys": "audit_non_hmac_response_keys",
    "passthrough-request-headers": "passthrough_request_headers",
    "allowed-response-headers": "allowed_response_headers",
}


def _mount_path(raw: str) -> str:
    path = sanitize_path(raw).strip("/")
    if not path:
        raise UsageError("The mount path must not be empty")
    return path + "/"


def _config(opts: Options) -> dict[str, object]:
    config: dict[str, object] = {}
    for flag, key in _CONFIG_TEXT.items():
        if opts.text(flag):
            config[key] = opts.text(flag)
    for flag, key in _CONFIG_LISTS.items():
        if opts.strings(flag):
            config[key] = opts.strings(flag)
    if opts.flag("force-no-cache"):
        config["force_no_cache"] = True
    if opts.text("token-type"):
        config["token_type"] = opts.text("token-type")
    return config


def _options(opts: Options) -> dict[str, str]:
    options = parse_map(opts.strings("options"), "options")
    if opts.number("version") > 0:
        options["version"] = str(opts.number("version"))
    return options


def _enable(table: _Table) -> Command:
    def handler(ctx: Context, opts: Options, args: list[str]) -> int:
        expect_args(args, 1)
        kind = args[0].strip()
        mount_type, options = kind, _options(opts)
        if table is _SECRETS and kind == "kv-v2":
            # Vault's server maps "kv-v2" to kv with version 2; we send the explicit form.
            mount_type, options = "kv", {**options, "version": "2"}
        path = _mount_path(opts.text("path") or kind)
        body: dict[str, object] = {"type": mount_type, "description": opts.text("description")}
        body["config"] = _config(opts)
        if options:
            body["options"] = options
        if opts.flag("local"):
            body["local"] = True
        if opts.flag("seal-wrap"):
            body["seal_wrap"] = True
        client = ctx.client()
        with remote(f"enabling {'' if table is _AUTH else table.noun + ' engine '}{kind}"):
            client.request("POST", f"{table.api}/{path.rstrip('/')}", body)
        ctx.print(table.enabled(kind, path))
        return 0

    return Command(
        f"Enable a {'secrets engine' if table is _SECRETS else 'auth method'}",
        f"Usage: strongroom {table.noun} enable [options] TYPE",
        handler,
        (
            Flag("path", help="Mount path (default: TYPE)."),
            Flag("description", help="Human-friendly description."),
            Flag("default-lease-ttl", "duration", help="Default lease TTL."),
            Flag("max-lease-ttl", "duration", help="Maximum lease TTL."),
            Flag("version", "int", help="Engine version, options.version (kv: 1 or 2)."),
            Flag("options", "multi", help="key=value engine option (repeatable)."),
            Flag("local", "bool", help="Do not replicate."),
            Flag("seal-wrap", "bool", help="Seal-wrap critical values."),
            Flag("force-no-cache", "bool", help="Do not cache reads."),
            Flag("listing-visibility", help='"unauth" or "hidden".'),
            Flag("token-type", help="Token type issued (auth methods)."),
            *(Flag(name, "list", help="Comma-separated (repeatable).") for name in _CONFIG_LISTS),
        ),
        output=False,
    )


def _disable(table: _Table) -> Command:
    def handler(ctx: Context, opts: Options, args: list[str]) -> int:
        expect_args(args, 1)
        path = _mount_path(args[0])
        client = ctx.client()
        with remote(f"disabling {table.thing} at {path}"):
            client.delete(f"{table.api}/{path.rstrip('/')}")
        ctx.print(f"Success! Disabled {table.thing} (if it existed) at: {path}")
        return 0

    return Command(
        f"Disable {table.thing}",
        f"Usage: strongroom {table.noun} disable [options] PATH",
        handler,
        output=False,
    )


def _mounts_of(body: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """The path → entry map (under ``data``, or at the top level as old servers answer)."""
    source = body.get("data") if body and isinstance(body.get("data"), Mapping) else body
    if not isinstance(source, Mapping):
        return {}
    return {k: v for k, v in source.items() if isinstance(v, Mapping) and "type" in v}


def _ttl(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key) or 0
    return "system" if value in (0, "0") else human_duration(value)


def _list(table: _Table) -> Command:
    def handler(ctx: Context, opts: Options, args: list[str]) -> int:
        expect_args(args, 0)
        client = ctx.client()
        with remote(
            f"listing {'secrets engines' if table is _SECRETS else 'enabled authentications'}"
        ):
            mounts = _mounts_of(client.request("GET", table.api))
        if ctx.format != "table":
            ctx.print(render({k: dict(v) for k, v in mounts.items()}, ctx.format))
            return 0
        detailed = opts.flag("detailed")
        header = ["Path", "Type", "Accessor", "Description"]
        if detailed:
            header = ["Path", "Plugin", "Accessor", "Default TTL", "Max TTL"]
            header += ["Token Type"] if table is _AUTH else ["Force No Cache"]
            header += ["Replication", "Seal Wrap", "Options", "Description", "UUID"]
        rows = [header, ["-" * len(h) for h in header]]
        for path in sorted(mounts):
            entry = mounts[path]
            raw_config = entry.get("config")
            config: Mapping[str, Any] = raw_config if isinstance(raw_config, Mapping) else {}
            text = [path, go_value(entry.get("type", "")), go_value(entry.get("accessor", ""))]
            if detailed:
                text += [_ttl(config, "default_lease_ttl"), _ttl(config, "max_lease_ttl")]
                if table is _AUTH:
                    text.append(go_value(config.get("token_type", "default-service")))
                else:
                    text.append(go_value(bool(config.get("force_no_cache"))))
                text.append("local" if entry.get("local") else "replicated")
                text.append(go_value(bool(entry.get("seal_wrap"))))
                options = entry.get("options")
                text.append(go_value(options) if options else "n/a")
                text += [go_value(entry.get("description", "")), go_value(entry.get("uuid", ""))]
            else:
                text.append(go_value(entry.get("description", "")))
            rows.append(text)
        ctx.print(columns(rows))
        return 0

    return Command(
        f"List {'secrets engines' if table is _SECRETS else 'auth methods'}",
        f"Usage: strongroom {table.noun} list [options]",
        handler,
        (Flag("detailed", "bool", help="Print more columns."),),
    )


def _tune(table: _Table) -> Command:
    def handler(ctx: Context, opts: Options, args: list[str]) -> int:
        expect_args(args, 1)
        path = _mount_path(args[0])
        body: dict[str, object] = _config(opts)
        if opts.is_set("description"):
            body["description"] = opts.text("description")
        options = _options(opts)
        if options:
            body["options"] = options
        client = ctx.client()
        with remote(f"tuning {table.thing} {path}"):
            client.request("POST", f"{table.api}/{path.rstrip('/')}/tune", body)
        ctx.print(f"Success! Tuned {table.thing} at: {path}")
        return 0

    return Command(
        f"Tune {table.thing} configuration",
        f"Usage: strongroom {table.noun} tune [options] PATH",
        handler,
        (
            Flag("description", help="New description."),
            Flag("default-lease-ttl", "duration", help="Default lease TTL."),
            Flag("max-lease-ttl", "duration", help="Maximum lease TTL."),
            Flag("version", "int", help="Upgrade the engine version (kv: 2)."),
            Flag("options", "multi", help="key=value engine option (repeatable)."),
            Flag("listing-visibility", help='"unauth" or "hidden".'),
            Flag("token-type", help="Token type issued (auth methods)."),
            *(Flag(name, "list", help="Comma-separated (repeatable).") for name in _CONFIG_LISTS),
        ),
        output=False,
    )


def _move(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 2)
    source, target = _mount_path(args[0]), _mount_path(args[1])
    client = ctx.client()
    with remote("moving secrets engine"):
        answer = client.request("POST", "sys/remount", {"from": source, "to": target}) or {}
    data = answer.get("data") if isinstance(answer.get("data"), Mapping) else answer
    migration = data.get("migration_id") if isinstance(data, Mapping) else None
    if migration:
        ctx.print(
            f"Started moving secrets engine {source} to {target}, with migration ID {migration}"
        )
    else:
        ctx.print(f"Success! Moved secrets engine {source} to: {target}")
    return 0


def _audit_enable(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_at_least(args, 1)
    kind = args[0].strip()
    path = _mount_path(opts.text("path") or kind)
    options = {k: str(v) for k, v in parse_data(args[1:], ctx.stdin).items()}
    body: dict[str, object] = {"type": kind, "description": opts.text("description")}
    body["options"] = options
    if opts.flag("local"):
        body["local"] = True
    client = ctx.client()
    with remote(f"enabling audit device {kind}"):
        client.write(f"sys/audit/{path.rstrip('/')}", body)
    ctx.print(f"Success! Enabled the {kind} audit device at: {path}")
    return 0


def _audit_disable(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    path = _mount_path(args[0])
    client = ctx.client()
    with remote(f"disabling audit device {path}"):
        client.delete(f"sys/audit/{path.rstrip('/')}")
    ctx.print(f"Success! Disabled audit device (if it was enabled) at: {path}")
    return 0


def _audit_list(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0)
    client = ctx.client()
    with remote("listing audits"):
        devices = _mounts_of(client.request("GET", "sys/audit"))
    if ctx.format != "table":
        ctx.print(render({k: dict(v) for k, v in devices.items()}, ctx.format))
        return 0
    if not devices:
        # Vault's audit list says so on stdout and exits 2 when nothing is enabled.
        ctx.print("No audit devices are enabled.")
        return 2
    header = ["Path", "Type", "Description"]
    if opts.flag("detailed"):
        header += ["Replication", "Options"]
    rows = [header, ["-" * len(h) for h in header]]
    for path in sorted(devices):
        entry = devices[path]
        row = [path, go_value(entry.get("type", "")), go_value(entry.get("description", ""))]
        if opts.flag("detailed"):
            row.append("local" if entry.get("local") else "replicated")
            row.append(go_value(entry.get("options") or {}))
        rows.append(row)
    ctx.print(columns(rows))
    return 0


COMMANDS: dict[tuple[str, ...], Command] = {
    ("secrets", "enable"): _enable(_SECRETS),
    ("secrets", "disable"): _disable(_SECRETS),
    ("secrets", "list"): _list(_SECRETS),
    ("secrets", "tune"): _tune(_SECRETS),
    ("secrets", "move"): Command(
        "Move a secrets engine to a new path",
        "Usage: strongroom secrets move [options] SOURCE DESTINATION",
        _move,
        output=False,
    ),
    ("auth", "enable"): _enable(_AUTH),
    ("auth", "disable"): _disable(_AUTH),
    ("auth", "list"): _list(_AUTH),
    ("auth", "tune"): _tune(_AUTH),
    ("audit", "enable"): Command(
        "Enable an audit device",
        "Usage: strongroom audit enable [options] TYPE [CONFIG K=V...]",
        _audit_enable,
        (
            Flag("path", help="Path of the device (default: TYPE)."),
            Flag("description", help="Human-friendly description."),
            Flag("local", "bool", help="Do not replicate."),
        ),
        output=False,
    ),
    ("audit", "disable"): Command(
        "Disable an audit device",
        "Usage: strongroom audit disable [options] PATH",
        _audit_disable,
        output=False,
    ),
    ("audit", "list"): Command(
        "List enabled audit devices",
        "Usage: strongroom audit list [options]",
        _audit_list,
        (Flag("detailed", "bool", help="Print replication and options."),),
    ),
}
