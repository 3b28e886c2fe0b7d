"""``read``, ``write``, ``list`` and ``delete``: any path, as Vault's generic commands.

``read``/``list`` are GETs (``?list=true`` for list, as Vault's ``Logical().List``), ``write`` is
a PUT with a JSON body built from ``key=value`` arguments, ``delete`` a DELETE. Extra
``key=value`` arguments of ``read`` and ``delete`` become query parameters.
"""

from __future__ import annotations

from typing import Any

from ._client import CommandError, remote
from ._command import FIELD_FLAG, Command, Context, expect_args, expect_at_least, sanitize_path
from ._flags import Flag, Options, UsageError, parse_data

__all__ = ["COMMANDS", "list_keys"]


def _query(ctx: Context, args: list[str]) -> dict[str, str | list[str]]:
    """Extra ``key=value`` arguments as query parameters; a repeated key repeats."""
    data = parse_data(args, ctx.stdin)
    return {k: [str(i) for i in v] if isinstance(v, list) else str(v) for k, v in data.items()}


def list_keys(secret: dict[str, Any] | None) -> list[Any] | None:
    """``data.keys`` of a list response, or ``None`` when there is nothing listed."""
    if secret is None:
        return None
    data = secret.get("data")
    keys = data.get("keys") if isinstance(data, dict) else None
    return keys if isinstance(keys, list) and keys else None


def _read(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_at_least(args, 1)
    path = sanitize_path(args[0])
    params = _query(ctx, args[1:])
    client = ctx.client()
    with remote(f"reading {path}"):
        secret = client.read(path, params or None)
    if secret is None:
        raise CommandError(f"No value found at {path}", 2)
    return ctx.output_secret(secret)


def _write(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_at_least(args, 1)
    path = sanitize_path(args[0])
    data = parse_data(args[1:], ctx.stdin)
    if not data and not opts.flag("force"):
        raise UsageError("Must supply data or use -force")
    client = ctx.client()
    with remote(f"writing data to {path}"):
        secret = client.write(path, data)
    if secret is None:
        if ctx.format == "table":
            ctx.print(f"Success! Data written to: {path}")
        return 0
    return ctx.output_secret(secret)


def _list(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    path = sanitize_path(args[0])
    path = path if path.endswith("/") or not path else path + "/"
    client = ctx.client()
    with remote(f"listing {path}"):
        secret = client.list(path)
    if secret is None:
        raise CommandError(f"No value found at {path}", 2)
    if isinstance(secret.get("wrap_info"), dict):
        return ctx.output_secret(secret)
    keys = list_keys(secret)
    if keys is None:
        raise CommandError(f"No entries found at {path}", 2)
    return ctx.output_list(keys)


def _delete(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_at_least(args, 1)
    path = sanitize_path(args[0])
    params = _query(ctx, args[1:])
    client = ctx.client()
    with remote(f"deleting {path}"):
        client.delete(path, params or None)
    if ctx.format == "table":
        ctx.print(f"Success! Data deleted (if it existed) at: {path}")
    return 0


COMMANDS: dict[tuple[str, ...], Command] = {
    ("read",): Command(
        "Read data and retrieve secrets",
        "Usage: strongroom read [options] PATH [KEY=VALUE ...]\n\n"
        "  Reads data from the server at the given path (extra pairs are query parameters).",
        _read,
        (FIELD_FLAG,),
    ),
    ("write",): Command(
        "Write data, configuration, and secrets",
        "Usage: strongroom write [options] PATH [DATA K=V...]\n\n"
        "  Writes data to the server at the given path. DATA may be K=V pairs,\n"
        "  K=@file, K=- (stdin), @file.json or - (a JSON object on stdin).",
        _write,
        (FIELD_FLAG, Flag("force", "bool", help="Allow the write with no data.", aliases=("f",))),
    ),
    ("list",): Command(
        "List data or secrets",
        "Usage: strongroom list [options] PATH\n\n  Lists the keys under the given path.",
        _list,
    ),
    ("delete",): Command(
        "Delete secrets and configuration",
        "Usage: strongroom delete [options] PATH [KEY=VALUE ...]\n\n"
        "  Deletes the data at the given path (extra pairs are query parameters).",
        _delete,
        output=True,
    ),
}
