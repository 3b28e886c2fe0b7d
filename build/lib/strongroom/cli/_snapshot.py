"""``operator snapshot save|restore`` (and Vault's ``operator raft snapshot save|restore``).

``save FILE`` GETs ``sys/storage/raft/snapshot`` and writes the file (mode 0600, through a
temporary file renamed into place, so a failed download never leaves half a snapshot under
the name); ``restore [-force] FILE`` POSTs it to ``sys/storage/raft/snapshot`` (or
``…/snapshot-force``). The snapshot holds only ciphertext; it is checksummed by the server.
"""

from __future__ import annotations

import contextlib
import os

import orjson

from ._client import APIError, Client, CommandError, remote
from ._command import Command, Context, expect_args
from ._flags import Flag, Options

__all__ = ["COMMANDS"]


def _fail(client: Client, method: str, path: str, status: int, body: bytes) -> APIError:
    try:
        parsed = orjson.loads(body)
        errors = [str(e) for e in parsed.get("errors", [])] if isinstance(parsed, dict) else []
    except orjson.JSONDecodeError:
        errors = [body.decode(errors="replace")[:500]] if body else []
    return APIError(method, f"{client.settings.address}/v1/{path}", status, errors)


def _save(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    target = args[0]
    client = ctx.client()
    path = "sys/storage/raft/snapshot"
    with remote("saving snapshot"):
        response = client.raw("GET", path)
        if response.status_code != 200:
            raise _fail(client, "GET", path, response.status_code, response.content)
    temp = f"{target}.partial"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(response.content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise CommandError(f"Error writing snapshot to {target}: {exc.strerror}") from None
    return 0


def _restore(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    try:
        with open(args[0], "rb") as file:
            data = file.read()
    except OSError as exc:
        raise CommandError(f"Error opening snapshot file: {exc.strerror}") from None
    client = ctx.client()
    path = "sys/storage/raft/snapshot-force" if opts.flag("force") else "sys/storage/raft/snapshot"
    with remote("installing snapshot"):
        response = client.raw("POST", path, content=data, content_type="application/octet-stream")
        if response.status_code >= 400:
            raise _fail(client, "POST", path, response.status_code, response.content)
    return 0


_FORCE = Flag(
    "force",
    "bool",
    help="Install the snapshot even if it comes from another cluster (its keys will be"
    " needed to unseal).",
)


def _save_command(name: str) -> Command:
    return Command(
        "Saves a snapshot of all storage into a file",
        f"Usage: strongroom {name} save <snapshot_file>\n\n"
        "  Saves a consistent, checksummed snapshot of the whole (encrypted) storage.",
        _save,
        output=False,
    )


def _restore_command(name: str) -> Command:
    return Command(
        "Installs a snapshot, returning storage to the state in it",
        f"Usage: strongroom {name} restore [-force] <snapshot_file>\n\n"
        "  Replaces all storage with the snapshot and reloads the server.",
        _restore,
        flags=(_FORCE,),
        output=False,
    )


COMMANDS: dict[tuple[str, ...], Command] = {
    ("operator", "snapshot", "save"): _save_command("operator snapshot"),
    ("operator", "snapshot", "restore"): _restore_command("operator snapshot"),
    ("operator", "raft", "snapshot", "save"): _save_command("operator raft snapshot"),
    ("operator", "raft", "snapshot", "restore"): _restore_command("operator raft snapshot"),
}
