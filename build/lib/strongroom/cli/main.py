"""The ``strongroom`` command: Vault's CLI, as a pure client of the HTTP API.

``main()`` is the console entry point; ``run()`` is the same with the outside world injected
(environment, streams, an httpx transport) so tests drive it against a fake server.

Exit codes follow Vault: 0 success, 1 a local error (usage, flags, files), 2 a remote error
(the API refused, or could not be reached); ``status`` exits 2 when sealed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import httpx

from . import _audit, _generic, _kv, _lease, _mounts, _operator, _policy, _snapshot, _token
from ._client import CommandError
from ._command import Command, Context, resolve_format
from ._flags import UsageError, parse

__all__ = ["COMMANDS", "main", "run"]

COMMANDS: dict[tuple[str, ...], Command] = {
    **_audit.COMMANDS,
    **_generic.COMMANDS,
    **_kv.COMMANDS,
    **_lease.COMMANDS,
    **_mounts.COMMANDS,
    **_operator.COMMANDS,
    **_policy.COMMANDS,
    **_snapshot.COMMANDS,
    **_token.COMMANDS,
}
_GROUPS: dict[tuple[str, ...], str] = {
    ("operator",): "Perform operator-specific tasks",
    ("operator", "snapshot"): "Save and restore snapshots of all storage",
    ("operator", "raft"): "Vault's raft commands (snapshot save and restore)",
    ("operator", "raft", "snapshot"): "Save and restore snapshots of all storage",
    ("kv",): "Interact with the key/value store",
    ("kv", "metadata"): "Interact with key metadata in the KV store",
    ("secrets",): "Interact with secrets engines",
    ("auth",): "Interact with auth methods",
    ("audit",): "Interact with audit devices",
    ("policy",): "Interact with policies",
    ("token",): "Interact with tokens",
    ("lease",): "Interact with leases",
}
_COMMON = ("read", "write", "delete", "list", "login", "server", "status")


def _version() -> str:
    from strongroom import __version__

    return f"Strongroom v{__version__}"


def _usage(prefix: tuple[str, ...] = ()) -> str:
    name = " ".join(("strongroom", *prefix))
    children: dict[str, str] = {}
    for key, command in COMMANDS.items():
        if key[: len(prefix)] == prefix and len(key) > len(prefix):
            child = key[len(prefix)]
            deeper = (*prefix, child)
            children[child] = _GROUPS.get(deeper) or command.synopsis
    if prefix == ("operator",):
        children["migrate"] = "Migrates Strongroom data between storage backends"
    if not prefix:
        children["server"] = "Start a Strongroom server"
        children["agent"] = "Start a Strongroom agent (Vault Agent configurations)"
        children["injector"] = "Start the Kubernetes agent injector webhook"
        children["service-registration"] = "Label a server's pod with its HA role (Kubernetes)"
        common = {k: v for k, v in children.items() if k in _COMMON}
        other = {k: v for k, v in children.items() if k not in _COMMON}
        width = max(len(k) for k in children)
        lines = [f"Usage: {name} <command> [args]", "", "Common commands:"]
        lines += [f"    {k.ljust(width)}    {common[k]}" for k in sorted(common)]
        lines += ["", "Other commands:"]
        lines += [f"    {k.ljust(width)}    {other[k]}" for k in sorted(other)]
        return "\n".join(lines)
    width = max((len(k) for k in children), default=0)
    lines = [f"Usage: {name} <subcommand> [options] [args]", "", "Subcommands:"]
    lines += [f"    {k.ljust(width)}    {children[k]}" for k in sorted(children)]
    return "\n".join(lines)


def _find(argv: Sequence[str]) -> tuple[tuple[str, ...], Command | None, list[str]]:
    """The longest command name at the front of ``argv``, its entry, and the rest."""
    words: list[str] = []
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
    for size in range(len(words), 0, -1):
        key = tuple(words[:size])
        if key in COMMANDS:
            return key, COMMANDS[key], list(argv[size:])
    for size in range(len(words), 0, -1):
        key = tuple(words[:size])
        if key in _GROUPS:
            return key, None, list(argv[size:])
    return (), None, list(argv)


def _server(argv: list[str]) -> int:
    # The one place the CLI reaches into the server package, lazily, so that every other
    # command stays a pure HTTP client and never loads the server's modules.
    from strongroom.server.run import (  # type: ignore[import-not-found,unused-ignore]
        main as server_main,
    )

    result: int = server_main(argv)
    return result


def _migrate(argv: list[str], out: TextIO, err: TextIO) -> int:
    # offline, on physical storage: like `server`, it lives in the server package
    from strongroom.server.migrate import (  # type: ignore[import-not-found,unused-ignore]
        main as migrate_main,
    )

    result: int = migrate_main(argv, out, err)
    return result


def _agent(command: str, argv: list[str]) -> int:
    # ``agent`` and ``injector`` live in strongroom.agent (a client of the HTTP API too),
    # loaded only when asked for
    if command == "injector":
        from strongroom.agent.injector import main as injector_main

        return injector_main(argv)
    if command == "service-registration":
        from strongroom.agent.registration import main as registration_main

        return registration_main(argv)
    from strongroom.agent.run import main as agent_main

    return agent_main(argv)


def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    transport: httpx.BaseTransport | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run one ``strongroom`` invocation and return its exit code.

    Args:
        argv: the arguments after the program name.
        env: the environment (addresses, tokens, ``HOME`` for the token helper).
        out: standard output; err: standard error.
        transport: an httpx transport to use instead of the network (tests).
        stdin: standard input, for ``-`` arguments and prompts (default: ``sys.stdin``).

    Returns:
        0 on success, 1 on a local error, 2 on a remote error (``status``: 2 when sealed).
    """
    args = list(argv)
    if not args or args[0] in ("-h", "-help", "--help", "help"):
        (out if args else err).write(_usage() + "\n")
        return 0 if args else 1
    if args[0] in ("-v", "-version", "--version", "version"):
        out.write(_version() + "\n")
        return 0
    if args[0] == "server":
        return _server(args[1:])
    if args[:2] == ["operator", "migrate"]:
        return _migrate(args[2:], out, err)
    if args[0] in ("agent", "injector", "service-registration"):
        return _agent(args[0], args[1:])
    key, command, rest = _find(args)
    if command is None:
        if key:
            helping = bool(rest) and rest[0] in ("-h", "-help", "--help")
            (out if helping else err).write(_usage(key) + "\n")
            return 0 if helping else 1
        err.write(f'Unknown command "{args[0]}".\n\n{_usage()}\n')
        return 1
    ctx = Context(env=env, out=out, err=err, stdin=stdin if stdin is not None else sys.stdin)
    ctx.transport = transport
    try:
        opts, positional = parse(rest, command.all_flags())
        if opts.help:
            out.write(command.help_text() + "\n")
            return 0
        ctx.opts = opts
        ctx.format = resolve_format(opts, env) if command.output else "table"
        return command.handler(ctx, opts, positional)
    except UsageError as exc:
        err.write(f"{exc}\n\nRun 'strongroom {' '.join(key)} -h' for usage.\n")
        return 1
    except CommandError as exc:
        err.write(f"{exc}\n")
        return exc.code
    except KeyboardInterrupt:
        err.write("Interrupted\n")
        return 1
    finally:
        ctx.close()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: ``strongroom [command] [options] [args]``."""
    return run(
        sys.argv[1:] if argv is None else argv,
        os.environ,
        sys.stdout,
        sys.stderr,
        transport=None,
        stdin=sys.stdin,
    )


if __name__ == "__main__":
    sys.exit(main())
