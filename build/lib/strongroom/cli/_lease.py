"""``lease …``: look up, renew, revoke and list leases through ``sys/leases/``.

As Vault's CLI: ``lookup`` and ``renew`` print the response as a secret; ``revoke`` prints one
line (``Success! Revoked lease: …`` with ``-sync``, else ``All revocation operations queued
successfully!``); ``-force`` needs ``-prefix``; ``list`` exits 2 with "No leases found".
"""

from __future__ import annotations

import re

from ._client import CommandError, remote
from ._command import FIELD_FLAG, Command, Context, expect_args
from ._flags import Flag, Options, UsageError
from ._generic import list_keys

__all__ = ["COMMANDS", "duration_seconds"]

_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")


def duration_seconds(raw: str) -> int:
    """Whole seconds of a duration flag (``30``, ``1h30m``, ``2d``) as Vault sends them."""
    text = raw.strip()
    if text.isdigit():
        return int(text)
    total = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(text))
    return int(total)


def _lease_id(args: list[str]) -> str:
    expect_args(args, 1)
    lease_id = args[0].strip()
    if not lease_id:
        raise UsageError("A lease ID must be given")
    return lease_id


def _lookup(ctx: Context, opts: Options, args: list[str]) -> int:
    lease_id = _lease_id(args)
    client = ctx.client()
    with remote(f"looking up lease id {lease_id}"):
        secret = client.write("sys/leases/lookup", {"lease_id": lease_id})
    return ctx.output_secret(secret)


def _renew(ctx: Context, opts: Options, args: list[str]) -> int:
    lease_id = _lease_id(args)
    increment = duration_seconds(opts.text("increment")) if opts.text("increment") else 0
    client = ctx.client()
    with remote(f"renewing {lease_id}"):
        secret = client.write("sys/leases/renew", {"lease_id": lease_id, "increment": increment})
    return ctx.output_secret(secret)


def _revoke(ctx: Context, opts: Options, args: list[str]) -> int:
    lease_id = _lease_id(args)
    force, prefix, sync = opts.flag("force"), opts.flag("prefix"), opts.flag("sync")
    if force and not prefix:
        raise UsageError("Specifying -force requires also specifying -prefix")
    client = ctx.client()
    if force:
        ctx.warn(
            "Warning! Force-removing leases can cause Strongroom to become out of sync\n"
            "with secret engines!"
        )
        with remote(f"force revoking leases with prefix {lease_id}"):
            client.write(f"sys/leases/revoke-force/{lease_id.lstrip('/')}")
        ctx.print(f"Success! Force revoked any leases with prefix: {lease_id}")
        return 0
    if prefix:
        with remote(f"revoking leases with prefix {lease_id}"):
            client.write(f"sys/leases/revoke-prefix/{lease_id.lstrip('/')}", {"sync": sync})
    else:
        with remote(f"revoking lease {lease_id}"):
            client.write("sys/leases/revoke", {"lease_id": lease_id, "sync": sync})
    if not sync:
        ctx.print("All revocation operations queued successfully!")
    elif prefix:
        ctx.print(f"Success! Revoked any leases with prefix: {lease_id}")
    else:
        ctx.print(f"Success! Revoked lease: {lease_id}")
    return 0


def _list(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1)
    prefix = args[0].strip().lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = ctx.client()
    with remote("listing leases"):
        secret = client.list(f"sys/leases/lookup/{prefix}")
    keys = list_keys(secret)
    if keys is None:
        raise CommandError("No leases found", 2)
    return ctx.output_list(keys)


COMMANDS: dict[tuple[str, ...], Command] = {
    ("lease", "lookup"): Command(
        "Lookup the lease of a secret",
        "Usage: strongroom lease lookup [options] ID\n\n"
        "  Retrieves information on the lease of a secret by its lease ID.",
        _lookup,
        (FIELD_FLAG,),
    ),
    ("lease", "renew"): Command(
        "Renew the lease of a secret",
        "Usage: strongroom lease renew [options] ID\n\n"
        "  Renews the lease on a secret, extending the time it can be used.",
        _renew,
        (
            Flag("increment", "duration", help="Requested extension (the server may cap it)."),
            FIELD_FLAG,
        ),
    ),
    ("lease", "revoke"): Command(
        "Revoke leases and secrets",
        "Usage: strongroom lease revoke [options] ID\n\n"
        "  Revokes the lease on a secret, invalidating the underlying secret.\n\n"
        "  strongroom lease revoke -prefix database/creds",
        _revoke,
        (
            Flag(
                "force",
                "bool",
                aliases=("f",),
                help="Delete the leases even if backend revocation fails (needs -prefix).",
            ),
            Flag("prefix", "bool", help="Treat the ID as a prefix, not an exact lease ID."),
            Flag("sync", "bool", help="Revoke synchronously instead of queuing."),
        ),
        output=False,
    ),
    ("lease", "list"): Command(
        "List leases",
        "Usage: strongroom lease list [options] PREFIX\n\n"
        "  Lists the lease IDs under a prefix (e.g. database/creds/readonly/).",
        _list,
    ),
}
