"""``strongroom server``: start a production server from a config file, or a dev server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import logging.handlers
import os
import queue
import signal
import socket
import sys
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import uvicorn

from strongroom.core.telemetry import TelemetrySettings
from strongroom.http import StrongroomApp
from strongroom.server.cluster_listener import (
    bind_cluster_listener,
    cluster_address_of,
    tls_cluster_config,
    unix_cluster_config,
)
from strongroom.server.config import (
    ConfigError,
    ListenerConfig,
    ServerConfig,
    StorageConfig,
    load_config,
    parse_workers,
    sanitized_config,
)
from strongroom.server.listener import HeadLimits, make_ssl_context, protocol_class
from strongroom.server.siblings import SiblingKeys, read_secret
from strongroom.server.wiring import Assembly, assemble
from strongroom.server.workers import WorkerInfo, relay_to_siblings, supervise

__all__ = ["main"]

log = logging.getLogger("strongroom.server")

DEV_WARNING = """\
WARNING! dev mode is enabled! In this mode, Strongroom runs unsealed with a single
unseal key and a root token printed below. Never use dev mode in production.
"""


@dataclass(frozen=True, slots=True)
class _Args:
    dev: bool = False
    config: str = ""
    dev_listen_address: str = "127.0.0.1:8200"
    dev_root_token_id: str = ""
    dev_dir: str = ".strongroom"
    log_level: str = ""  # "": the config file's log_level, else info
    log_format: str = ""  # "": the config file's log_format, else standard
    workers: str = ""  # "": the config file's workers (default 1); a number or "auto"
    # set by a workers supervisor for the processes it starts (server/workers.py)
    worker_index: str = ""
    worker_count: str = ""
    worker_fds: str = ""
    worker_dir: str = ""
    worker_secret_fd: str = ""  # a pipe carrying the supervisor's sibling secret


def _parse(argv: Sequence[str]) -> _Args:
    values: dict[str, str | bool] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        arg = items[i].lstrip("-")
        name, sep, value = arg.partition("=")
        name = name.replace("-", "_")
        if name == "dev":
            values["dev"] = True
        elif name in (
            "config",
            "dev_listen_address",
            "dev_root_token_id",
            "dev_dir",
            "log_level",
            "log_format",
            "workers",
            "worker_index",
            "worker_count",
            "worker_fds",
            "worker_dir",
            "worker_secret_fd",
        ):
            if not sep:
                i += 1
                if i >= len(items):
                    raise ConfigError(f"flag -{name} needs a value")
                value = items[i]
            values[name] = value
        else:
            raise ConfigError(f"unknown flag: {items[i]}")
        i += 1
    return _Args(**values)  # type: ignore[arg-type]


# Vault's level names (config.py normalises the file's to these) → logging's levels
_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class JsonFormatter(logging.Formatter):
    """``log_format = "json"``: one object per record, in hclog's JSON field names.

    Records carry what the code logged and nothing else (no request bodies, no headers);
    the messages themselves never hold secrets (tests/integration/test_logs.py checks).
    """

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "@timestamp": self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
            + f".{int(record.msecs):03d}Z",
            "@level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
            "@module": record.name,
            "@message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            doc["error_type"] = record.exc_info[0].__name__
        return json.dumps(doc, ensure_ascii=False)


_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}
_STANDARD_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"


def _formatter(log_format: str) -> logging.Formatter:
    if log_format.strip().lower() == "json":
        formatter = JsonFormatter()
        formatter.converter = time.gmtime
        return formatter
    return logging.Formatter(_STANDARD_FORMAT)


_stream_handler: logging.Handler | None = None


def _set_format(log_format: str) -> None:
    if _stream_handler is not None:
        _stream_handler.setFormatter(_formatter(log_format))


def _setup_logging(level: str, log_format: str = "") -> logging.handlers.QueueListener:
    """Log lines go through a queue to a thread that writes stderr: the event loop never
    blocks on its own output."""
    global _stream_handler
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(_formatter(log_format))
    _stream_handler = stream
    listener = logging.handlers.QueueListener(records, stream)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    # httpx logs every request's URL at INFO (the forwarder, OIDC discovery…): not ours
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _set_level(level)
    listener.start()
    return listener


def _set_level(level: str) -> None:
    logging.getLogger().setLevel(_LOG_LEVELS.get(level.strip().lower(), logging.INFO))


# A timeout of 0 means "none" (as in Go's http.Server); these stand in for "never".
_NO_TIMEOUT = 365 * 24 * 3600
_UNLIMITED_SIZE = sys.maxsize


@dataclass(frozen=True, slots=True)
class _Timeouts:
    header: float  # whole request line and headers (0: none)
    body: float  # the body, once the headers are in
    idle: int  # between requests on a kept-alive connection


def _timeouts(listener: ListenerConfig) -> _Timeouts:
    """Vault's ``http_*_timeout`` with Go's fallbacks: a zero header or idle timeout takes the
    read timeout's value, and zero everywhere means no limit."""
    read = max(listener.http_read_timeout, 0)
    header = max(listener.http_read_header_timeout, 0) or read
    idle = max(listener.http_idle_timeout, 0) or read
    return _Timeouts(header=header, body=read or _NO_TIMEOUT, idle=idle or _NO_TIMEOUT)


def _listener_app(app: StrongroomApp, listener: ListenerConfig) -> StrongroomApp:
    """The app with this listener's body limits (size, read timeout); one handler for all."""
    size = listener.max_request_size
    limits = replace(
        app.limits,
        max_request_size=_UNLIMITED_SIZE if size < 0 else size,
        body_timeout=float(_timeouts(listener).body),
        max_request_duration=float(max(listener.max_request_duration, 0)),
    )
    hooks = replace(app.hooks, unauthenticated_metrics=listener.unauthenticated_metrics_access)
    if limits == app.limits and hooks == app.hooks:
        return app
    return StrongroomApp(app.handler, limits=limits, hooks=hooks)


def _uvicorn_config(app: StrongroomApp, listener: ListenerConfig) -> uvicorn.Config:
    host, _, port = listener.address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    timeouts = _timeouts(listener)
    kwargs: dict[str, object] = {}
    if not listener.tls_disable:
        context = make_ssl_context(
            listener.tls_cert_file,
            listener.tls_key_file,
            client_ca_file=listener.tls_client_ca_file,
            require_client_cert=listener.tls_require_and_verify_client_cert,
            disable_client_certs=listener.tls_disable_client_certs,
            min_version=listener.tls_min_version,
            max_version=listener.tls_max_version,
        )
        kwargs["ssl_context_factory"] = lambda _config, _default: context
        kwargs["ssl_certfile"] = listener.tls_cert_file
        kwargs["ssl_keyfile"] = listener.tls_key_file
    return uvicorn.Config(
        _listener_app(app, listener),
        host=host,
        port=int(port),
        http=protocol_class(
            HeadLimits(
                timeout=timeouts.header,
                max_header_bytes=listener.http_max_header_bytes,
                max_header_count=listener.http_max_header_count,
                max_request_line=listener.http_max_request_line_bytes,
                write_timeout=float(max(listener.http_write_timeout, 0)),
            )
        ),
        loop="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=True,
        # X-Forwarded-For is not trusted (Vault ignores it unless configured), and uvicorn's
        # proxy-headers middleware costs every request a wrapper call.
        proxy_headers=False,
        timeout_keep_alive=timeouts.idle,
        timeout_graceful_shutdown=5,
        **kwargs,  # type: ignore[arg-type]
    )


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to :func:`_serve`.

    uvicorn's own handling suits one server per process only: each server replaces the
    previous handler, and after a graceful stop it re-raises the signal under the original
    handler, which for SIGTERM kills the process before storage is closed and the log
    flushed."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve(
    assembly: Assembly,
    listeners: Sequence[ListenerConfig],
    worker: WorkerInfo | None = None,
    cluster_socket: socket.socket | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    siblings: SiblingKeys | None = None
    try:
        if worker is not None and worker.secret:
            # a restarted worker rejoins unsealed with an unsealed sibling's root key
            siblings = SiblingKeys(
                assembly.core, worker.secret, worker.directory, worker.index, worker.count
            )
            await siblings.start()
            siblings.start_join()
        servers = [_Server(_uvicorn_config(assembly.app, lst)) for lst in listeners]
        sockets: list[list[socket.socket] | None] = [None] * len(servers)
        if worker is not None:
            # the supervisor's listening sockets, and this worker's private cluster socket
            sockets = [[socket.socket(fileno=fd)] for fd in worker.fds]
            servers.append(_Server(unix_cluster_config(assembly, worker.socket_path)))
            sockets.append(None)
        if cluster_socket is not None:  # HA between nodes: mutual TLS on cluster_addr
            servers.append(_Server(tls_cluster_config(assembly)))
            sockets.append([cluster_socket])

        def stop() -> None:
            for server in servers:
                # a second signal stops without waiting for requests in flight
                server.force_exit = server.should_exit
                server.should_exit = True

        reopening: set[asyncio.Task[None]] = set()

        def reopen_audit() -> None:
            # SIGHUP, as Vault: audit devices reopen their files (after log rotation)
            task = loop.create_task(assembly.core.audit.reopen())
            reopening.add(task)
            task.add_done_callback(reopening.discard)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        loop.add_signal_handler(signal.SIGHUP, reopen_audit)
        await asyncio.gather(
            *(server.serve(sockets=socks) for server, socks in zip(servers, sockets, strict=True))
        )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        if siblings is not None:
            await siblings.close()
        await assembly.close()


def _dev_paths(args: _Args) -> tuple[str, str]:
    directory = os.path.abspath(args.dev_dir)
    return directory, os.path.join(directory, "dev.db")


def _wipe_dev(args: _Args) -> None:
    directory, db = _dev_paths(args)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(db + suffix)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(directory, _DEV_KEY_FILE))


_DEV_KEY_FILE = "dev-unseal-key"  # dev mode with workers: worker 0 hands the key to the others


async def _run_dev(args: _Args, worker: WorkerInfo | None = None) -> None:
    directory, db = _dev_paths(args)
    if worker is None:
        _wipe_dev(args)
    options: dict[str, Any] = {"path": db}
    if worker is not None:
        options["ha_enabled"] = True
    listener = ListenerConfig(address=args.dev_listen_address, tls_disable=True)
    # as Vault's dev mode: the raw storage and introspection endpoints are on
    dev_config = ServerConfig(
        listeners=(listener,),
        storage=StorageConfig(type="sqlite"),
        api_addr=f"http://{args.dev_listen_address}",
        ui=True,
        raw_storage_endpoint=True,
        introspection_endpoint=True,
    )
    assembly = await assemble(
        "sqlite",
        options,
        api_addr=dev_config.api_addr,
        cluster_addr=worker.cluster_addr if worker is not None else "",
        ui=True,
        raw_storage_endpoint=True,
        introspection_endpoint=True,
        sanitized_config=sanitized_config(dev_config),
    )
    core = assembly.core
    if worker is not None and (worker.index > 0 or await core.seal_manager.initialized()):
        # the other dev workers (and a restarted worker 0) unseal with the key worker 0
        # leaves in the dev directory (dev mode prints that key anyway: never for production)
        key_file = os.path.join(directory, _DEV_KEY_FILE)
        while not os.path.exists(key_file):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)
        with open(key_file, "rb") as handle:
            await core.seal_manager.submit_unseal_key(handle.read())
        await core.after_unseal()
        await _serve(assembly, [listener], worker)
        return
    keys, root_token = await core.initialize(1, 1)
    await core.seal_manager.submit_unseal_key(keys[0])
    await core.after_unseal()
    if core.cluster is not None:
        while not core.cluster.active or core.switching or core.sealed:
            await asyncio.sleep(0.02)
    if args.dev_root_token_id:
        await core.tokens.create(
            policies=("root",),
            parent=None,
            display_name="root",
            path="auth/token/root",
            token_id=args.dev_root_token_id,
        )
        root_token = args.dev_root_token_id
    await core.enable(
        "secret/",
        "kv",
        is_auth=False,
        options={"version": "2"},
        description="key/value secret storage",
    )
    import base64

    print(DEV_WARNING, file=sys.stderr)
    print(f"Api Address: http://{args.dev_listen_address}", file=sys.stderr)
    print(f"Storage: sqlite at {db}", file=sys.stderr)
    print(f"Unseal Key: {base64.b64encode(keys[0]).decode()}", file=sys.stderr)
    print(f"Root Token: {root_token}", file=sys.stderr)
    print("", file=sys.stderr, flush=True)
    if worker is not None:
        key_file = os.path.join(directory, _DEV_KEY_FILE)
        fd = os.open(key_file + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(keys[0])
        os.replace(key_file + ".tmp", key_file)
    await _serve(assembly, [listener], worker)


async def _run_config(config: ServerConfig, worker: WorkerInfo | None = None) -> None:
    options = dict(config.storage.options)
    cluster_addr = cluster_address_of(config)
    cluster_socket = None
    if worker is not None:
        options["ha_enabled"] = True  # workers are an HA cluster on one node
        cluster_addr = worker.cluster_addr
    elif cluster_addr:
        cluster_socket = bind_cluster_listener(config, cluster_addr)
        if cluster_socket is None:
            cluster_addr = ""  # not reachable: standbys redirect to this node
    assembly = await assemble(
        config.storage.type,
        options,
        default_lease_ttl=config.default_lease_ttl,
        max_lease_ttl=config.max_lease_ttl,
        api_addr=config.api_addr,
        cluster_addr=cluster_addr,
        audit_directory=config.audit_directory,
        snapshot_schedule=config.automated_snapshots,
        telemetry=TelemetrySettings(config.prometheus_retention_time, config.disable_hostname),
        ui=config.ui,
        raw_storage_endpoint=config.raw_storage_endpoint,
        introspection_endpoint=config.introspection_endpoint,
        sanitized_config=sanitized_config(config),
        disable_clustering=config.disable_clustering,
    )
    if worker is not None:

        async def relay(method: str, path: str, body: dict[str, Any], token: str) -> None:
            await relay_to_siblings(worker, method, path, body, token)

        assembly.core.peer_relay = relay
    for listener in config.listeners:
        scheme = "http" if listener.tls_disable else "https"
        log.info("listening on %s://%s", scheme, listener.address)
    if worker is not None:
        await _serve(assembly, config.listeners, worker)
        return
    with _pid_file(config.pid_file):
        await _serve(assembly, config.listeners, cluster_socket=cluster_socket)


@contextlib.contextmanager
def _pid_file(path: str) -> Generator[None, None, None]:
    """Vault's ``pid_file``: this process's ID while it serves, removed when it stops."""
    if not path:
        yield
        return
    with open(path, "w", encoding="ascii") as handle:
        handle.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _worker_info(args: _Args) -> WorkerInfo:
    return WorkerInfo(
        index=int(args.worker_index or 0),
        count=int(args.worker_count or 1),
        fds=tuple(int(fd) for fd in args.worker_fds.split(",")),
        directory=args.worker_dir,
        secret=read_secret(int(args.worker_secret_fd)) if args.worker_secret_fd else b"",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(argv)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    listener = _setup_logging(args.log_level or "info", args.log_format)
    try:
        if args.dev:
            if args.worker_fds:
                runner = _run_dev(args, _worker_info(args))
            elif args.workers and parse_workers(args.workers, "-workers") > 1:
                _wipe_dev(args)
                dev = ListenerConfig(address=args.dev_listen_address, tls_disable=True)
                return supervise(argv, [dev], parse_workers(args.workers, "-workers"))
            else:
                runner = _run_dev(args)
        else:
            if not args.config:
                print("Error: a configuration file must be given with -config", file=sys.stderr)
                return 1
            try:
                config = load_config(args.config)
            except (ConfigError, OSError) as exc:
                print(f"Error loading configuration from {args.config}: {exc}", file=sys.stderr)
                return 1
            _set_level(args.log_level or config.log_level)
            _set_format(args.log_format or config.log_format)
            for warning in config.warnings:
                log.warning("config: %s", warning)
            if args.worker_fds:
                runner = _run_config(config, _worker_info(args))
            else:
                workers = (
                    parse_workers(args.workers, "-workers") if args.workers else config.workers
                )
                if workers > 1:
                    if config.storage.type not in ("sqlite", "postgresql"):
                        print("Error: workers need sqlite or postgresql storage", file=sys.stderr)
                        return 1
                    with _pid_file(config.pid_file):
                        return supervise(argv, config.listeners, workers)
                runner = _run_config(config)
        try:
            import uvloop

            uvloop.run(runner)
        except ImportError:
            asyncio.run(runner)
        except KeyboardInterrupt:
            pass
        return 0
    except Exception as exc:
        log.error("server failed: %s", exc)
        return 1
    finally:
        listener.stop()
