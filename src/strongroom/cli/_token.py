"""``login`` and ``token …``: authenticate, and manage tokens on ``auth/token/``.

``login`` validates a token by looking it up (``auth/token/lookup-self``), runs the OIDC
browser login for ``-method=oidc`` (``_oidc.py``) or, for any other method, posts
``key=value`` credentials to ``auth/<path>/login`` (``…/login/<username>`` for the
username/password methods; ``role_id=… secret_id=…`` for approle), then stores the token
with Vault's token helper: the file ``~/.vault-token``, written 0600 and atomically (see
``_client.write_token_helper``).
A token is printed only where Vault prints one: after ``login`` and ``token create``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._client import CommandError, env_value, remote, write_token_helper
from ._command import FIELD_FLAG, Command, Context, expect_args, sanitize_path
from ._flags import Flag, Options, UsageError, parse_data, parse_map
from ._oidc import login_oidc
from ._output import render

__all__ = ["COMMANDS", "token_secret"]

# Methods whose login path ends in the username, as Vault's CLI handlers build it.
_USERNAME_METHODS = frozenset({"userpass", "ldap", "okta", "radius"})


def token_secret(token: str, lookup: Mapping[str, Any]) -> dict[str, Any]:
    """The ``auth`` block Vault's token login handler builds from a lookup-self answer."""
    data = lookup.get("data")
    info: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    policies = list(info.get("policies") or [])
    return {
        "auth": {
            "client_token": token,
            "accessor": info.get("accessor", ""),
            "policies": policies,
            "token_policies": policies,
            "identity_policies": list(info.get("identity_policies") or []),
            "metadata": info.get("meta") or {},
            "lease_duration": info.get("ttl") or 0,
            "renewable": bool(info.get("renewable")),
        }
    }


def _login_token(ctx: Context, args: list[str]) -> dict[str, Any]:
    expect_args(args, 0, 1)
    if args and "=" in args[0]:
        token = str(parse_data(args, ctx.stdin).get("token", ""))
    elif args and args[0] == "-":
        token = ctx.read_stdin()
    elif args:
        token = args[0]
    else:
        token = ctx.read_secret("Token (will be hidden): ")
    token = token.strip()
    if not token:
        raise UsageError(
            "A token must be passed to auth. Please view the help for more information."
        )
    client = ctx.client()
    client.token = token
    with remote("looking up token"):
        lookup = client.request("GET", "auth/token/lookup-self")
    if not lookup:
        raise CommandError("Error looking up token: empty response", 2)
    return token_secret(token, lookup)


def _login_method(ctx: Context, method: str, mount: str, args: list[str]) -> dict[str, Any]:
    data = parse_data(args, ctx.stdin)
    path = f"auth/{mount}/login"
    if method in _USERNAME_METHODS:
        username = str(data.pop("username", "") or "")
        if not username:
            raise UsageError(f'Missing "username" for the {method} method (username=NAME)')
        if "password" not in data:
            data["password"] = ctx.read_secret("Password (will be hidden): ")
        path = f"{path}/{username}"
    client = ctx.client()
    # As in Vault: a token picked up from the environment or helper is not sent with a login.
    client.token = ""
    with remote("authenticating"):
        secret = client.write(path, data)
    auth = secret.get("auth") if secret else None
    if not isinstance(auth, Mapping) or not auth.get("client_token"):
        raise CommandError("Error authenticating: empty response from auth helper", 2)
    return secret or {}


def _login(ctx: Context, opts: Options, args: list[str]) -> int:
    method = (opts.text("method") or "token").strip().lower()
    mount = sanitize_path(opts.text("path") or method).strip("/")
    if method == "token":
        secret = _login_token(ctx, args)
    elif method == "oidc":
        secret = login_oidc(ctx, mount, args)
    else:
        secret = _login_method(ctx, method, mount, args)
    token = str(secret["auth"]["client_token"])
    stored = not opts.flag("no-store")
    if stored:
        write_token_helper(ctx.env, token)
        if env_value(ctx.env, "TOKEN"):
            ctx.warn(
                "WARNING! The STRONGROOM_TOKEN (or VAULT_TOKEN) environment variable is set!\n"
                "Its value takes precedence over the stored token; unset it or update it."
            )
    else:
        ctx.warn(
            "The token was not stored in the token helper. Set STRONGROOM_TOKEN or pass\n"
            "the token below with each request.\n"
        )
    if opts.flag("token-only"):
        ctx.print(token)
        return 0
    if opts.flag("no-print"):
        return 0
    if opts.text("field"):
        return ctx.output_secret(secret)
    if ctx.format == "table" and stored:
        ctx.print(
            "Success! You are now authenticated. The token information displayed below\n"
            "is already stored in the token helper. You do NOT need to run\n"
            '"strongroom login" again. Future requests will automatically use this token.\n'
        )
    return ctx.output_secret(secret)


def _create(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0)
    body: dict[str, object] = {"renewable": opts.flag("renewable")}
    for flag, key in (
        ("id", "id"),
        ("ttl", "ttl"),
        ("explicit-max-ttl", "explicit_max_ttl"),
        ("period", "period"),
        ("display-name", "display_name"),
        ("type", "type"),
        ("entity-alias", "entity_alias"),
    ):
        if opts.text(flag):
            body[key] = opts.text(flag)
    if opts.strings("policy"):
        body["policies"] = opts.strings("policy")
    if opts.strings("metadata"):
        body["meta"] = parse_map(opts.strings("metadata"), "metadata")
    if opts.is_set("use-limit"):
        body["num_uses"] = opts.number("use-limit")
    if opts.flag("no-default-policy"):
        body["no_default_policy"] = True
    if opts.text("role"):
        path = f"auth/token/create/{opts.text('role')}"
    elif opts.flag("orphan"):
        path = "auth/token/create-orphan"
    else:
        path = "auth/token/create"
    client = ctx.client()
    with remote("creating token"):
        secret = client.request("POST", path, body)
    return ctx.output_secret(secret)


def _lookup(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0, 1)
    client = ctx.client()
    with remote("looking up token"):
        if opts.flag("accessor"):
            if not args:
                raise UsageError("Not enough arguments with -accessor (expected 1, got 0)")
            secret = client.request("POST", "auth/token/lookup-accessor", {"accessor": args[0]})
        elif args:
            secret = client.request("POST", "auth/token/lookup", {"token": args[0]})
        else:
            secret = client.request("GET", "auth/token/lookup-self")
    return ctx.output_secret(secret)


def _renew(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 0, 1)
    body: dict[str, object] = {}
    if opts.text("increment"):
        body["increment"] = opts.text("increment")
    if opts.flag("accessor"):
        if not args:
            raise UsageError("Not enough arguments with -accessor (expected 1, got 0)")
        path, body["accessor"] = "auth/token/renew-accessor", args[0]
    elif args:
        path, body["token"] = "auth/token/renew", args[0]
    else:
        path = "auth/token/renew-self"
    client = ctx.client()
    with remote("renewing token"):
        secret = client.write(path, body)
    return ctx.output_secret(secret)


def _revoke(ctx: Context, opts: Options, args: list[str]) -> int:
    mode = opts.text("mode")
    if mode not in ("", "orphan", "path"):
        raise UsageError(f'Invalid mode "{mode}": use "orphan" or "path"')
    if opts.flag("self"):
        if args or opts.flag("accessor") or mode:
            raise UsageError("-self takes no arguments and no -accessor or -mode")
        path, body = "auth/token/revoke-self", {}
    else:
        expect_args(args, 1)
        if opts.flag("accessor") and mode:
            raise UsageError("Use of -mode is not supported with -accessor")
        if opts.flag("accessor"):
            path, body = "auth/token/revoke-accessor", {"accessor": args[0]}
        elif mode == "orphan":
            path, body = "auth/token/revoke-orphan", {"token": args[0]}
        elif mode == "path":
            path, body = f"sys/leases/revoke-prefix/{sanitize_path(args[0])}", {}
        else:
            path, body = "auth/token/revoke", {"token": args[0]}
    client = ctx.client()
    with remote("revoking token"):
        client.write(path, body)
    ctx.print("Success! Revoked token (if it existed)")
    return 0


def _capabilities(ctx: Context, opts: Options, args: list[str]) -> int:
    expect_args(args, 1, 2)
    path = sanitize_path(args[-1])
    body: dict[str, object]
    if len(args) == 1:
        if opts.flag("accessor"):
            raise UsageError("Not enough arguments with -accessor (expected 2, got 1)")
        endpoint, body = "sys/capabilities-self", {"paths": [path]}
    elif opts.flag("accessor"):
        endpoint, body = "sys/capabilities-accessor", {"accessor": args[0], "paths": [path]}
    else:
        endpoint, body = "sys/capabilities", {"token": args[0], "paths": [path]}
    client = ctx.client()
    with remote("listing capabilities"):
        secret = client.request("POST", endpoint, body) or {}
    data = secret.get("data")
    source: Mapping[str, Any] = data if isinstance(data, Mapping) else secret
    found = source.get(path, source.get("capabilities"))
    capabilities = sorted(str(c) for c in found) if isinstance(found, list) else []
    if ctx.format != "table":
        ctx.print(render(capabilities, ctx.format))
    else:
        ctx.print(", ".join(capabilities))
    return 0


_ACCESSOR = Flag("accessor", "bool", help="Treat the argument as an accessor, not a token.")

COMMANDS: dict[tuple[str, ...], Command] = {
    ("login",): Command(
        "Authenticate locally",
        "Usage: strongroom login [options] [AUTH K=V...]\n\n"
        "  strongroom login TOKEN\n"
        "  strongroom login -method=userpass username=NAME [password=…]\n"
        "  strongroom login -method=approle role_id=… secret_id=…\n"
        "  strongroom login -method=oidc [-path=oidc] [role=NAME] [port=8250] [skip_browser=true]\n"
        "      (listens on localhost:8250 for the provider's redirect to /oidc/callback;\n"
        "      callbackmode=direct polls the server instead)",
        _login,
        (
            Flag(
                "method",
                default="token",
                help="Auth method type (token, userpass, approle, oidc, …).",
            ),
            Flag("path", help="Mount path of the auth method (default: the method name)."),
            Flag("no-store", "bool", help="Do not store the token in the token helper."),
            Flag("no-print", "bool", help="Print nothing on success."),
            Flag("token-only", "bool", help="Print only the token."),
            FIELD_FLAG,
        ),
    ),
    ("token", "create"): Command(
        "Create a new token",
        "Usage: strongroom token create [options]",
        _create,
        (
            Flag("policy", "list", help="Policy for the token (repeatable)."),
            Flag("ttl", "duration", help="Initial TTL."),
            Flag("explicit-max-ttl", "duration", help="Hard maximum lifetime."),
            Flag("period", "duration", help="Make it a periodic token."),
            Flag("use-limit", "int", help="Number of uses (0: unlimited)."),
            Flag("display-name", help="Display name."),
            Flag("renewable", "bool", default=True, help="Allow renewal (default true)."),
            Flag("orphan", "bool", help="Create without a parent."),
            Flag("no-default-policy", "bool", help='Do not attach "default".'),
            Flag("metadata", "multi", help="key=value metadata (repeatable)."),
            Flag("role", help="Create against this token role."),
            Flag("type", help='"service" or "batch".'),
            Flag("id", help="The token value to use (root only)."),
            Flag("entity-alias", help="Entity alias to associate."),
            FIELD_FLAG,
        ),
    ),
    ("token", "lookup"): Command(
        "Display information about a token",
        "Usage: strongroom token lookup [options] [TOKEN | ACCESSOR]",
        _lookup,
        (_ACCESSOR, FIELD_FLAG),
    ),
    ("token", "renew"): Command(
        "Renew a token lease",
        "Usage: strongroom token renew [options] [TOKEN | ACCESSOR]",
        _renew,
        (
            Flag("increment", "duration", aliases=("i",), help="Requested extension."),
            _ACCESSOR,
            FIELD_FLAG,
        ),
    ),
    ("token", "revoke"): Command(
        "Revoke a token and its children",
        "Usage: strongroom token revoke [options] [TOKEN | ACCESSOR | PREFIX]",
        _revoke,
        (
            _ACCESSOR,
            Flag("self", "bool", help="Revoke the token in use."),
            Flag("mode", help='"" (token and children), "orphan", or "path" (a prefix).'),
        ),
        output=False,
    ),
    ("token", "capabilities"): Command(
        "Print capabilities of a token on a path",
        "Usage: strongroom token capabilities [options] [TOKEN | ACCESSOR] PATH",
        _capabilities,
        (_ACCESSOR,),
    ),
}
