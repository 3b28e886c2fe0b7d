"""``kv``: the key/value commands, for both KV versions.

Like Vault's CLI we ask ``sys/internal/ui/mounts/<path>`` which mount holds the path and at
which version (``data.path`` is the mount path with its slash, ``data.options.version``); a 404
there means an old server, so version 1. For version 2 the user's ``secret/foo`` becomes
``secret/data/foo``, ``secret/metadata/foo``, ``secret/delete/foo``… The ``-mount=secret`` form
(``kv get -mount=secret foo``) names the mount explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._client import APIError, Client, CommandError, remote
from ._command import FIELD_FLAG, Command, Context, expect_args, expect_at_least, sanitize_path
from ._flags import Flag, Options, UsageError, parse_data, parse_map
from ._generic import list_keys
from ._output import header_for_map, pad_equal_signs, render_data

__all__ = ["COMMANDS", "KVPath", "kv_path"]

_MOUNT = Flag("mount", help="The KV mount; then PATH is relative to it (-mount=secret foo).")
_MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True, slots=True)
class KVPath:
    """A user path resolved against its mount: ``mount`` ends in ``/`` (or is empty)."""

    path: str
    mount: str
    version: int

    def api(self, prefix: str) -> str:
        """``secret/foo`` → ``secret/<prefix>/foo`` on version 2; unchanged on version 1."""
        if self.version != 2:
            return self.path
        mount = self.mount or self.path.split("/", 1)[0] + "/"
        rest = self.path[len(mount) :] if self.path.startswith(mount) else ""
        if self.path == mount.rstrip("/"):
            rest = ""
        return "/".join(p for p in (mount.rstrip("/"), prefix, rest.strip("/")) if p)


def _preflight(client: Client, path: str) -> tuple[str, int]:
    try:
        body = client.request("GET", f"sys/internal/ui/mounts/{path}")
    except APIError as exc:
        if exc.status == 404:
            return "", 1
        raise
    data = body.get("data") if body else None
    if not isinstance(data, Mapping):
        raise CommandError(f"Error determining the KV version of {path}: empty response", 2)
    mount = str(data.get("path") or "")
    options = data.get("options")
    version = options.get("version") if isinstance(options, Mapping) else None
    return mount, 2 if str(version) == "2" else 1


def kv_path(client: Client, opts: Options, raw: str) -> KVPath:
    """Resolve a command's PATH argument (and ``-mount``) to mount and KV version."""
    mount_flag = sanitize_path(opts.text("mount")).strip("/")
    given = sanitize_path(raw)
    lookup = mount_flag or given
    if mount_flag:
        given = f"{mount_flag}/{given.strip('/')}".rstrip("/")
    with remote(f"determining the KV version of {lookup}"):
        mount, version = _preflight(client, lookup)
    if mount_flag and not mount:
        mount = mount_flag + "/"
    return KVPath(given, mount, version)


def _version1_only(kv: KVPath, what: str) -> None:
    if kv.version != 2:
        raise CommandError(f"{what} not supported on KV Version 1", 1)


def _versions(opts: Options) -> list[int]:
    raw = opts.strings("versions")
    try:
        return [int(v) for v in raw]
    except ValueError:
        raise UsageError(f"invalid -versions value: {','.join(raw)}") from None


def _output_path(ctx: Context, path: str, title: str) -> None:
    ctx.print(pad_equal_signs(title, len(path)))
    ctx.print(path)
    ctx.print()


def _print_section(ctx: Context, title: str, data: Mapping[str, object]) -> None:
    ctx.print(header_for_map(title, data))
    text = render_data(data, "table")
    if text:
        ctx.print(text)


def _get(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    client = ctx.client()
    kv = kv_path(client, opts, args[0])
    full = kv.api("data")
    params = {"version": str(opts.number("version"))} if opts.is_set("version") else None
    with remote(f"reading {full}"):
        secret = client.read(full, params)
    if secret is None:
        suffix = f" with version {opts.number('version')}" if params else ""
        raise CommandError(f"No value found at {full}{suffix}", 2)
    data = secret.get("data")
    field = opts.text("field")
    if field and kv.version == 2:
        inner = data.get("data") if isinstance(data, Mapping) else None
        if not isinstance(inner, Mapping):
            raise CommandError(f"No data found at {full}", 2)
        if field == "data" and "data" not in inner:
            return ctx.output_secret(secret)
        return ctx.output_data(inner)
    if field or secret.get("wrap_info") or ctx.format != "table":
        return ctx.output_secret(secret)
    ctx.print_warnings(secret)
    if kv.version == 2:
        _output_path(ctx, full, "Secret Path")
    metadata = data.get("metadata") if isinstance(data, Mapping) else None
    if isinstance(metadata, Mapping):
        _print_section(ctx, "Metadata", metadata)
        ctx.print()
    shown = data.get("data") if kv.version == 2 and isinstance(data, Mapping) else data
    if isinstance(shown, Mapping):
        _print_section(ctx, "Data", shown)
    return 0


def _written(ctx: Context, kv: KVPath, full: str, secret: dict[str, Any] | None) -> int:
    """Vault's kv put output: the path and the new version's metadata."""
    if secret is None:
        if ctx.format == "table":
            ctx.print(f"Success! Data written to: {kv.path}")
        return 0
    if ctx.opts.text("field") or ctx.format != "table":
        return ctx.output_secret(secret)
    ctx.print_warnings(secret)
    _output_path(ctx, full, "Secret Path")
    data = secret.get("data")
    _print_section(ctx, "Metadata", data if isinstance(data, Mapping) else {})
    return 0


def _put(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_at_least(args, 2)
    data = parse_data(args[1:], ctx.stdin)
    if not data:
        raise UsageError("Must supply data")
    client = ctx.client()
    kv = kv_path(client, opts, args[0])
    full = kv.api("data")
    body: dict[str, object] = data
    if kv.version == 2:
        body = {"data": data}
        if opts.number("cas") > -1:
            body["options"] = {"cas": opts.number("cas")}
    with remote(f"writing data to {full}"):
        secret = client.write(full, body)
    return _written(ctx, kv, full, secret)


def _patch(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_at_least(args, 1)
    data: dict[str, object] = parse_data(args[1:], ctx.stdin)
    for key in opts.strings("remove-data"):
        data[key] = None
    if not data:
        raise UsageError("Must supply data")
    method = opts.text("method") or "patch"
    if method not in ("patch", "rw"):
        raise UsageError(f'Unsupported method provided to -method flag: "{method}"')
    client = ctx.client()
    kv = kv_path(client, opts, args[0])
    if kv.version != 2:
        raise CommandError("K/V engine mount must be version 2 for patch support", 2)
    full = kv.api("data")
    if method == "rw":
        return _read_then_write(ctx, opts, client, kv, full, data)
    body: dict[str, object] = {"data": data}
    if opts.is_set("cas"):
        body["options"] = {"cas": opts.number("cas")}
    with remote(f"writing data to {full}"):
        try:
            secret = client.request("PATCH", full, body, content_type=_MERGE_PATCH)
        except APIError as exc:
            if exc.status == 404:
                raise CommandError(f"No value found at {full}", 2) from None
            raise
    return _written(ctx, kv, full, secret)


def _read_then_write(
    ctx: Context, opts: Options, client: Client, kv: KVPath, full: str, data: dict[str, object]
) -> int:
    with remote(f"doing pre-read at {full}"):
        current = client.read(full)
    inner = current.get("data") if current else None
    existing = inner.get("data") if isinstance(inner, Mapping) else None
    metadata = inner.get("metadata") if isinstance(inner, Mapping) else None
    if not isinstance(existing, Mapping) or not isinstance(metadata, Mapping):
        raise CommandError(f"No value found at {full}", 2)
    merged = {**existing, **data}
    merged = {k: v for k, v in merged.items() if v is not None}
    cas = opts.number("cas") if opts.is_set("cas") else metadata.get("version")
    with remote(f"writing data to {full}"):
        secret = client.write(full, {"data": merged, "options": {"cas": cas}})
    return _written(ctx, kv, full, secret)


def _delete(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    client = ctx.client()
    kv = kv_path(client, opts, args[0])
    versions = _versions(opts)
    if kv.version == 2 and versions:
        full = kv.api("delete")
        with remote(f"deleting {full}"):
            client.write(full, {"versions": versions})
    else:
        full = kv.api("data")
        with remote(f"deleting {full}"):
            client.delete(full)
    if ctx.format == "table":
        ctx.print(f"Success! Data deleted (if it existed) at: {full}")
    return 0


def _versioned(action: str, title: str) -> Command:
    def handler(ctx: Context, opts: Options, args: list[str]) -> int:
        expect_args(args, 1)
        versions = _versions(opts)
        if not versions:
            raise UsageError(
                'No versions provided, use the "-versions" flag to specify the version'
                f" to {action}."
            )
        client = ctx.client()
        kv = kv_path(client, opts, args[0])
        _version1_only(kv, title)
        full = kv.api(action)
        with remote(f"writing data to {full}"):
            client.write(full, {"versions": versions})
        if ctx.format == "table":
            ctx.print(f"Success! Data written to: {full}")
        return 0

    verb = "Undeletes" if action == "undelete" else "Permanently removes"
    return Command(
        f"{verb} versions in the KV store",
        f"Usage: strongroom kv {action} [options] KEY\n\n"
        f"  {verb} the given versions of a KV v2 secret.",
        handler,
        (_MOUNT, Flag("versions", "list", help="Comma-separated versions (repeatable).")),
    )


def _list(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    client = ctx.client()
    kv = kv_path(client, opts, args[0])
    full = kv.api("metadata").rstrip("/") + "/"
    with remote(f"listing {full}"):
        secret = client.list(full)
    keys = list_keys(secret)
    if keys is None:
        raise CommandError(f"No value found at {full}", 2)
    return ctx.output_list(keys)


def _metadata_get(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    client = ctx.client()
    kv = kv_path(client, opts, args[0])
    _version1_only(kv, "Metadata")
    full = kv.api("metadata")
    with remote(f"reading {full}"):
        secret = client.read(full)
    if secret is None:
        raise CommandError(f"No value found at {full}", 2)
    if ctx.format != "table":
        return ctx.output_secret(secret)
    ctx.print_warnings(secret)
    data = secret.get("data")
    data = dict(data) if isinstance(data, Mapping) else {}
    versions = data.pop("versions", None)
    _output_path(ctx, full, "Metadata Path")
    _print_section(ctx, "Metadata", data)
    if isinstance(versions, Mapping):
        for number in sorted(versions, key=lambda v: int(v) if str(v).isdigit() else 0):
            entry = versions[number]
            if isinstance(entry, Mapping):
                ctx.print()
                _print_section(ctx, f"Version {number}", entry)
    return 0


def _metadata_write(method: str) -> Command:
    def handler(ctx: Context, opts: Options, args: list[str]) -> int:
        expect_args(args, 1)
        body: dict[str, object] = {}
        if opts.is_set("max-versions"):
            body["max_versions"] = opts.number("max-versions")
        if opts.is_set("cas-required"):
            body["cas_required"] = opts.flag("cas-required")
        if opts.is_set("delete-version-after"):
            body["delete_version_after"] = opts.text("delete-version-after")
        if opts.is_set("custom-metadata"):
            body["custom_metadata"] = parse_map(opts.strings("custom-metadata"), "custom-metadata")
        if method == "PATCH" and not body:
            raise UsageError("Must supply at least one of the metadata flags")
        client = ctx.client()
        kv = kv_path(client, opts, args[0])
        _version1_only(kv, "Metadata")
        full = kv.api("metadata")
        with remote(f"writing data to {full}"):
            if method == "PATCH":
                client.request("PATCH", full, body, content_type=_MERGE_PATCH)
            else:
                client.write(full, body)
        if ctx.format == "table":
            ctx.print(f"Success! Data written to: {full}")
        return 0

    verb = "put" if method == "PUT" else "patch"
    return Command(
        f"{'Sets' if verb == 'put' else 'Patches'} key metadata in the KV store",
        f"Usage: strongroom kv metadata {verb} [options] KEY",
        handler,
        (
            _MOUNT,
            Flag("max-versions", "int", help="Versions to keep (0: the mount's setting)."),
            Flag("cas-required", "bool", help="Require check-and-set on writes."),
            Flag("delete-version-after", "duration", help="Delete versions after this long."),
            Flag("custom-metadata", "multi", help="key=value metadata (repeatable)."),
        ),
    )


def _metadata_delete(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    client = ctx.client()
    kv = kv_path(client, opts, args[0])
    _version1_only(kv, "Metadata")
    full = kv.api("metadata")
    with remote(f"deleting {full}"):
        client.delete(full)
    if ctx.format == "table":
        ctx.print(f"Success! Data deleted (if it existed) at: {full}")
    return 0


_CAS = Flag("cas", "int", default=-1, help="Check-and-set version (v2; -1 disables).")

COMMANDS: dict[tuple[str, ...], Command] = {
    ("kv", "get"): Command(
        "Retrieves data from the KV store",
        "Usage: strongroom kv get [options] KEY",
        _get,
        (_MOUNT, FIELD_FLAG, Flag("version", "int", help="Version to read (v2).")),
    ),
    ("kv", "put"): Command(
        "Sets or updates data in the KV store",
        "Usage: strongroom kv put [options] KEY [DATA]\n\n"
        "  DATA is K=V pairs, K=@file, K=-, @file.json or - (JSON object on stdin).",
        _put,
        (_MOUNT, FIELD_FLAG, _CAS),
    ),
    ("kv", "patch"): Command(
        "Sets or updates data in the KV store without overwriting",
        "Usage: strongroom kv patch [options] KEY [DATA]",
        _patch,
        (
            _MOUNT,
            FIELD_FLAG,
            Flag("cas", "int", help="Check-and-set version."),
            Flag("method", help='"patch" (HTTP PATCH, the default) or "rw" (read then write).'),
            Flag("remove-data", "multi", help="Key to remove (repeatable)."),
        ),
    ),
    ("kv", "delete"): Command(
        "Deletes versions in the KV store",
        "Usage: strongroom kv delete [options] PATH",
        _delete,
        (_MOUNT, Flag("versions", "list", help="Versions to delete (v2; default the latest).")),
    ),
    ("kv", "undelete"): _versioned("undelete", "Undelete"),
    ("kv", "destroy"): _versioned("destroy", "Destroy"),
    ("kv", "list"): Command(
        "List data or secrets", "Usage: strongroom kv list [options] PATH", _list, (_MOUNT,)
    ),
    ("kv", "metadata", "get"): Command(
        "Retrieves key metadata from the KV store",
        "Usage: strongroom kv metadata get [options] KEY",
        _metadata_get,
        (_MOUNT,),
    ),
    ("kv", "metadata", "put"): _metadata_write("PUT"),
    ("kv", "metadata", "patch"): _metadata_write("PATCH"),
    ("kv", "metadata", "delete"): Command(
        "Deletes all versions and metadata for a key in the KV store",
        "Usage: strongroom kv metadata delete [options] PATH",
        _metadata_delete,
        (_MOUNT,),
    ),
}
