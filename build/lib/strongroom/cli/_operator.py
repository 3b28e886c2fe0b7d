"""``status`` and ``operator …``: seal status, init, unseal, seal, root generation, rekey, rotate.

All of these are plain calls on ``sys/`` (seal-status, init, unseal, seal, generate-root/*,
rekey/*, rotate, key-status). The one piece of local logic is ``generate-root -decode``: the
server hands out the new root token XORed with the operator's one-time password and base64
encoded, and only the holder of the OTP can undo that, here, without the server.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
from collections.abc import Mapping
from typing import Any

from ._client import APIError, Client, CommandError, remote
from ._command import Command, Context, expect_args
from ._flags import Flag, Options, UsageError
from ._output import columns, go_value, render, table

__all__ = ["COMMANDS", "decode_root_token", "generate_otp"]

_OTP_ALPHABET = string.ascii_letters + string.digits
_KEY_PROMPT = "Unseal Key (will be hidden): "


def decode_root_token(encoded: str, otp: str) -> str:
    """Undo the server's encoding: unpadded standard base64, XOR with the OTP's bytes.

    Raises:
        CommandError: malformed base64, or an OTP of another length than the token.
    """
    raw = encoded.strip().rstrip("=")
    try:
        data = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CommandError("Error decoding root token: the encoded token is not base64") from None
    key = otp.strip().encode()
    if len(data) != len(key):
        raise CommandError(
            "Error decoding root token: the encoded token and the OTP differ in length"
        )
    try:
        return bytes(a ^ b for a, b in zip(data, key, strict=True)).decode()
    except UnicodeDecodeError:
        raise CommandError("Error decoding root token: wrong OTP") from None


def generate_otp(length: int) -> str:
    """A base62 one-time password of ``length`` characters, as Vault's roottoken.GenerateOTP."""
    return "".join(secrets.choice(_OTP_ALPHABET) for _ in range(length))


def _seal_rows(status: Mapping[str, Any]) -> list[list[str]]:
    rows = [
        ["Seal Type", go_value(status.get("type", ""))],
        ["Initialized", go_value(bool(status.get("initialized")))],
        ["Sealed", go_value(bool(status.get("sealed")))],
        ["Total Shares", go_value(status.get("n", 0))],
        ["Threshold", go_value(status.get("t", 0))],
    ]
    if status.get("sealed"):
        rows.append(["Unseal Progress", f"{status.get('progress', 0)}/{status.get('t', 0)}"])
        rows.append(["Unseal Nonce", go_value(status.get("nonce", ""))])
    rows.append(["Version", go_value(status.get("version", ""))])
    if status.get("build_date"):
        rows.append(["Build Date", go_value(status["build_date"])])
    rows.append(["Storage Type", go_value(status.get("storage_type", ""))])
    if status.get("cluster_name") and status.get("cluster_id"):
        rows.append(["Cluster Name", go_value(status["cluster_name"])])
        rows.append(["Cluster ID", go_value(status["cluster_id"])])
    if "ha_enabled" in status:
        rows.append(["HA Enabled", go_value(bool(status["ha_enabled"]))])
        if status["ha_enabled"]:
            rows.append(["HA Mode", "active" if status.get("is_self") else "standby"])
            if not status.get("is_self") and status.get("leader_address"):
                rows.append(["Active Node Address", go_value(status["leader_address"])])
    return rows


def _print_seal_status(ctx: Context, status: Mapping[str, Any]) -> None:
    if ctx.format != "table":
        ctx.print(render(dict(status), ctx.format))
    else:
        ctx.print(table(["Key", "Value"], _seal_rows(status)))


def _status(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0)
    client = ctx.client()
    with remote("checking seal status", code=1):
        status = client.request("GET", "sys/seal-status") or {}
    merged = dict(status)
    if not status.get("sealed"):
        try:
            leader = client.request("GET", "sys/leader") or {}
        except APIError:
            leader = {}  # an older server, or HA not reported: status still answers
        for key in ("ha_enabled", "is_self", "leader_address", "leader_cluster_address"):
            if key in leader:
                merged[key] = leader[key]
    _print_seal_status(ctx, merged)
    # Vault's convention: 0 unsealed, 2 sealed, 1 error.
    return 2 if status.get("sealed") else 0


def _init(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0)
    client = ctx.client()
    if opts.flag("status"):
        with remote("checking init status", code=1):
            body = client.request("GET", "sys/init") or {}
        if body.get("initialized"):
            ctx.print("Strongroom is initialized")
            return 0
        ctx.print("Strongroom is not initialized")
        return 2
    shares, threshold = opts.number("key-shares"), opts.number("key-threshold")
    if shares < 1 or threshold < 1 or threshold > shares:
        raise UsageError("-key-threshold must be between 1 and -key-shares")
    request = {"secret_shares": shares, "secret_threshold": threshold}
    with remote("initializing"):
        result = client.write("sys/init", request) or {}
    keys_b64 = [str(k) for k in result.get("keys_base64") or []]
    keys_hex = [str(k) for k in result.get("keys") or []]
    if ctx.format != "table":
        document = {
            "unseal_keys_b64": keys_b64,
            "unseal_keys_hex": keys_hex,
            "unseal_shares": shares,
            "unseal_threshold": threshold,
            "recovery_keys_b64": [],
            "recovery_keys_hex": [],
            "recovery_keys_shares": 0,
            "recovery_keys_threshold": 0,
            "root_token": result.get("root_token", ""),
        }
        ctx.print(render(document, ctx.format))
        return 0
    for i, key in enumerate(keys_b64 or keys_hex, start=1):
        ctx.print(f"Unseal Key {i}: {key}")
    ctx.print()
    ctx.print(f"Initial Root Token: {result.get('root_token', '')}")
    ctx.print()
    ctx.print(
        f"Strongroom initialized with {shares} key shares and a key threshold of {threshold}.\n"
        "Please securely distribute the key shares printed above. When the server is\n"
        f"re-sealed, restarted, or stopped, you must supply at least {threshold} of these keys\n"
        "to unseal it before it can start servicing requests.\n\n"
        f"Strongroom does not store the generated root key. Without at least {threshold}\n"
        "keys to reconstruct the root key, the server will remain permanently sealed!\n\n"
        "It is possible to generate new unseal keys, provided you have a quorum of\n"
        'existing unseal keys shares. See "strongroom operator rekey" for more information.'
    )
    return 0


def _key_argument(ctx: Context, args: list[str]) -> str:
    expect_args(args, 0, 1)
    if args and args[0] != "-":
        key = args[0].strip()
    elif args:
        key = ctx.read_stdin()
    else:
        key = ctx.read_secret(_KEY_PROMPT)
    if not key:
        raise UsageError("Missing unseal key")
    return key


def _unseal(ctx: Context, opts: Options, args: list[str]) -> int:
    client = ctx.client()
    if opts.flag("reset"):
        expect_args(args, 0)
        body: dict[str, object] = {"reset": True}
    else:
        body = {"key": _key_argument(ctx, args)}
    with remote("unsealing"):
        status = client.write("sys/unseal", body) or {}
    _print_seal_status(ctx, status)
    return 0


def _seal(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0)
    client = ctx.client()
    with remote("sealing"):
        client.write("sys/seal")
    ctx.print("Success! Strongroom is sealed.")
    return 0


def _one_mode(opts: Options, names: tuple[str, ...]) -> None:
    chosen = [n for n in names if opts.flag(n) or (n == "decode" and opts.is_set(n))]
    if len(chosen) > 1:
        raise UsageError("Only one of " + ", ".join(f"-{n}" for n in names) + " may be specified")


def _print_generate_root(ctx: Context, status: Mapping[str, Any]) -> None:
    if ctx.format != "table":
        ctx.print(render(dict(status), ctx.format))
        return
    rows = [
        ["Nonce", go_value(status.get("nonce", ""))],
        ["Started", go_value(bool(status.get("started")))],
        ["Progress", f"{status.get('progress', 0)}/{status.get('required', 0)}"],
        ["Complete", go_value(bool(status.get("complete")))],
    ]
    if status.get("pgp_fingerprint"):
        rows.append(["PGP Fingerprint", go_value(status["pgp_fingerprint"])])
    if status.get("encoded_token"):
        rows.append(["Encoded Token", go_value(status["encoded_token"])])
    elif status.get("encoded_root_token"):
        rows.append(["Encoded Root Token", go_value(status["encoded_root_token"])])
    if status.get("otp"):
        ctx.warn(
            "A One-Time-Password has been generated for you and is shown in the OTP field.\n"
            "You will need this value to decode the resulting root token, so keep it safe."
        )
        rows.append(["OTP", go_value(status["otp"])])
    if status.get("otp_length"):
        rows.append(["OTP Length", go_value(status["otp_length"])])
    ctx.print(columns(rows))


def _generate_root(ctx: Context, opts: Options, args: list[str]) -> int:
    _one_mode(opts, ("init", "cancel", "status", "decode", "generate-otp"))
    if opts.is_set("decode"):
        expect_args(args, 0)
        if not opts.text("otp"):
            raise UsageError("The -otp flag is required with -decode")
        encoded = opts.text("decode")
        encoded = ctx.read_stdin() if encoded == "-" else encoded
        ctx.print(decode_root_token(encoded, opts.text("otp")))
        return 0
    client = ctx.client()
    path = "sys/generate-root/attempt"
    if opts.flag("generate-otp"):
        expect_args(args, 0)
        with remote("getting root generation status"):
            status = client.request("GET", path) or {}
        length = status.get("otp_length")
        if not isinstance(length, int) or length <= 0:
            raise CommandError("Error generating OTP: the server reported no OTP length", 2)
        ctx.print(generate_otp(length))
        return 0
    if opts.flag("cancel"):
        expect_args(args, 0)
        with remote("canceling root token generation"):
            client.delete(path)
        ctx.print("Success! Root token generation canceled (if it was started)")
        return 0
    if opts.flag("status") or opts.flag("init"):
        expect_args(args, 0)
        with remote("getting root generation status" if opts.flag("status") else "initializing"):
            if opts.flag("status"):
                status = client.request("GET", path) or {}
            else:
                body = {"otp": opts.text("otp")} if opts.text("otp") else {}
                status = client.write(path, body) or {}
        _print_generate_root(ctx, status)
        return 0
    nonce = opts.text("nonce") or _current_nonce(client, path, "root generation")
    key = _key_argument(ctx, args)
    with remote("posting unseal key"):
        status = client.write("sys/generate-root/update", {"key": key, "nonce": nonce}) or {}
    _print_generate_root(ctx, status)
    return 0


def _current_nonce(client: Client, path: str, what: str) -> str:
    with remote(f"getting {what} status"):
        status = client.request("GET", path) or {}
    if not status.get("started"):
        raise CommandError(f"No {what} is in progress. Start one with -init.", 1)
    return str(status.get("nonce", ""))


def _print_rekey(ctx: Context, status: Mapping[str, Any], verify: bool) -> None:
    if ctx.format != "table":
        ctx.print(render(dict(status), ctx.format))
        return
    started = bool(status.get("started"))
    rows = [["Nonce", go_value(status.get("nonce", ""))], ["Started", go_value(started)]]
    progress = f"{status.get('progress', 0)}/{status.get('required', status.get('t', 0))}"
    if started and verify:
        rows += [
            ["New Shares", go_value(status.get("n", 0))],
            ["New Threshold", go_value(status.get("t", 0))],
            ["Verification Progress", progress],
        ]
    elif started:
        rows += [
            ["Rekey Progress", progress],
            ["New Shares", go_value(status.get("n", 0))],
            ["New Threshold", go_value(status.get("t", 0))],
            ["Verification Required", go_value(bool(status.get("verification_required")))],
        ]
        if status.get("verification_nonce"):
            rows.append(["Verification Nonce", go_value(status["verification_nonce"])])
    ctx.print(table(["Key", "Value"], rows))


def _print_rekey_keys(ctx: Context, result: Mapping[str, Any]) -> None:
    if ctx.format != "table":
        ctx.print(render(dict(result), ctx.format))
        return
    keys = result.get("keys_base64") or result.get("keys") or []
    for i, key in enumerate(keys, start=1):
        ctx.print(f"Key {i}: {key}")
    ctx.print()
    ctx.print(f"Operation nonce: {result.get('nonce', '')}")
    ctx.print()
    if result.get("verification_required"):
        ctx.print(
            f"Strongroom has created a new key, split into {len(keys)} key shares. These will\n"
            "not be active until after verification is complete. Provide a quorum of the\n"
            "new keys with -verify and this verification nonce:\n\n"
            f"Verification Nonce: {result.get('verification_nonce', '')}"
        )
    else:
        ctx.print(
            f"Strongroom rekeyed with {len(keys)} key shares. Please securely distribute the\n"
            "key shares printed above. When the server is re-sealed, restarted, or stopped,\n"
            "you must supply a quorum of these keys to unseal it."
        )


def _rekey(ctx: Context, opts: Options, args: list[str]) -> int:
    _one_mode(opts, ("init", "cancel", "status"))
    if opts.text("target") not in ("", "barrier"):
        raise UsageError("Only -target=barrier is supported (no recovery keys: Shamir seal only)")
    verify = opts.flag("verify")
    status_path = "sys/rekey/verify" if verify else "sys/rekey/init"
    client = ctx.client()
    if opts.flag("init"):
        expect_args(args, 0)
        body = {
            "secret_shares": opts.number("key-shares"),
            "secret_threshold": opts.number("key-threshold"),
            "require_verification": verify,
        }
        with remote("initializing rekey"):
            status = client.write("sys/rekey/init", body) or {}
        _print_rekey(ctx, status, verify=False)
        return 0
    if opts.flag("cancel"):
        expect_args(args, 0)
        # The server (like Vault since the rekey-cancel fix) wants the attempt's nonce to
        # cancel a recent rekey; without -nonce, cancel the attempt in progress. Vault's
        # HTTP handler reads it from the DELETE's JSON body.
        nonce = opts.text("nonce")
        if not nonce and not verify:
            with remote("reading rekey status"):
                nonce = str((client.request("GET", status_path) or {}).get("nonce") or "")
        with remote("canceling rekey"):
            client.request("DELETE", status_path, body={"nonce": nonce} if nonce else None)
        ctx.print("Success! Canceled rekeying (if it was started)")
        return 0
    if opts.flag("status"):
        expect_args(args, 0)
        with remote("reading rekey status"):
            status = client.request("GET", status_path) or {}
        _print_rekey(ctx, status, verify)
        return 0
    nonce = opts.text("nonce") or _current_nonce(client, status_path, "rekey")
    key = _key_argument(ctx, args)
    update = "sys/rekey/verify" if verify else "sys/rekey/update"
    with remote("posting unseal key"):
        result = client.write(update, {"key": key, "nonce": nonce}) or {}
    if verify and result.get("complete"):
        ctx.print("Success! Rekey verification successful. The rekey operation is complete")
        ctx.print("and the new keys are now active.")
    elif result.get("complete") or result.get("keys") or result.get("keys_base64"):
        _print_rekey_keys(ctx, result)
    else:
        _print_rekey(ctx, result, verify)
    return 0


def _print_key_status(ctx: Context, status: Mapping[str, Any]) -> None:
    if ctx.format != "table":
        ctx.print(render(dict(status), ctx.format))
        return
    inner = status.get("data")
    data: Mapping[str, Any] = inner if isinstance(inner, Mapping) else status
    rows = [
        ["Key Term", go_value(data.get("term", 0))],
        ["Install Time", go_value(data.get("install_time", ""))],
    ]
    if "encryptions" in data:
        rows.append(["Encryption Count", go_value(data["encryptions"])])
    ctx.print(columns(rows))


def _rotate(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0)
    client = ctx.client()
    with remote("rotating key"):
        client.write("sys/rotate")
    with remote("reading key status"):
        status = client.request("GET", "sys/key-status") or {}
    if ctx.format == "table":
        ctx.print("Success! Rotated key")
        ctx.print()
    _print_key_status(ctx, status)
    return 0


def _step_down(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0)
    client = ctx.client()
    with remote("stepping down"):
        client.write("sys/step-down")
    ctx.print("Success! Stepped down: another node (or this one, later) becomes active.")
    return 0


def _key_status(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0)
    client = ctx.client()
    with remote("reading key status"):
        status = client.request("GET", "sys/key-status") or {}
    _print_key_status(ctx, status)
    return 0


_SHARES = Flag("key-shares", "int", default=5, aliases=("n",), help="Number of key shares.")
_THRESHOLD = Flag("key-threshold", "int", default=3, aliases=("t",), help="Shares to unseal.")
_NONCE = Flag("nonce", help="Nonce of the operation in progress (default: asked of the server).")

COMMANDS: dict[tuple[str, ...], Command] = {
    ("status",): Command(
        "Print seal and HA status",
        "Usage: strongroom status [options]\n\n  Exit code: 0 unsealed, 2 sealed, 1 error.",
        _status,
    ),
    ("operator", "init"): Command(
        "Initializes a server",
        "Usage: strongroom operator init [options]",
        _init,
        (_SHARES, _THRESHOLD, Flag("status", "bool", help="Exit 0 if initialized, 2 if not.")),
    ),
    ("operator", "unseal"): Command(
        "Unseals the server",
        "Usage: strongroom operator unseal [options] [KEY]\n\n"
        '  KEY "-" reads stdin; with no KEY the key is prompted for (hidden).',
        _unseal,
        (Flag("reset", "bool", help="Discard the unseal keys given so far."),),
    ),
    ("operator", "seal"): Command(
        "Seals the server", "Usage: strongroom operator seal [options]", _seal, output=False
    ),
    ("operator", "generate-root"): Command(
        "Generates a new root token",
        "Usage: strongroom operator generate-root [options] [KEY]",
        _generate_root,
        (
            Flag("init", "bool", help="Start a root token generation."),
            Flag("cancel", "bool", help="Cancel the generation in progress."),
            Flag("status", "bool", help="Print the status of the generation in progress."),
            Flag("decode", help='Decode this encoded token ("-": stdin); needs -otp.'),
            Flag("generate-otp", "bool", help="Print a one-time password for -init."),
            Flag("otp", help="The one-time password, for -init and -decode."),
            _NONCE,
        ),
    ),
    ("operator", "rekey"): Command(
        "Generates new unseal keys",
        "Usage: strongroom operator rekey [options] [KEY]",
        _rekey,
        (
            Flag("init", "bool", help="Start a rekey."),
            Flag("cancel", "bool", help="Cancel the rekey (or its verification with -verify)."),
            Flag("status", "bool", help="Print the rekey (or verification) status."),
            _SHARES,
            _THRESHOLD,
            _NONCE,
            Flag("verify", "bool", help="With -init: require verification; else verify."),
            Flag("target", default="barrier", help='Only "barrier".'),
        ),
    ),
    ("operator", "rotate"): Command(
        "Rotates the underlying encryption key",
        "Usage: strongroom operator rotate [options]",
        _rotate,
    ),
    ("operator", "step-down"): Command(
        "Forces the active node to give up active duty",
        "Usage: strongroom operator step-down [options]\n\n"
        "  Sent to any node: a standby sends it on to the active (sudo on sys/step-down).",
        _step_down,
        output=False,
    ),
    ("operator", "key-status"): Command(
        "Provides information about the active encryption key",
        "Usage: strongroom operator key-status [options]",
        _key_status,
    ),
}
