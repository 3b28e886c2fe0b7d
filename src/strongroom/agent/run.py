"""``strongroom agent``: load the configuration, then run auto-auth, the template runner, the
exec supervisor and the API proxy listeners together until a signal (or ``exit_after_auth``,
or the exec child's exit) ends them.

Exit codes: 0 done (a signal, ``exit_after_auth``), 1 a configuration or fatal runtime error;
in exec mode, the child's exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import signal
import ssl
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from ._client import VaultClient, vault_settings
from .auth import AuthError, AuthHandler
from .config import AgentConfig, AgentConfigError, load_agent_config, parse_agent_config
from .exec import Supervisor
from .templates import FatalTemplateError, TemplateRunner

__all__ = ["Agent", "main"]

log = logging.getLogger("strongroom.agent")

_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "err": logging.ERROR,
    "error": logging.ERROR,
}


class _JsonFormatter(logging.Formatter):
    """hclog's JSON shape: ``@timestamp``, ``@level``, ``@module``, ``@message``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return json.dumps(
            {
                "@timestamp": f"{stamp}.{int(record.msecs):03d}Z",
                "@level": record.levelname.lower(),
                "@module": record.name,
                "@message": record.getMessage(),
            }
        )


def _setup_logging(level: str, fmt: str, stream: TextIO) -> None:
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
    root = logging.getLogger("strongroom.agent")
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    root.propagate = False


class Agent:
    """Everything one configuration runs. ``run()`` returns the exit code."""

    def __init__(
        self,
        config: AgentConfig,
        env: Mapping[str, str],
        reload: Callable[[], AgentConfig] | None = None,
        fixed_level: str = "",
    ) -> None:
        self.config = config
        self.reload = reload  # reads the configuration again (SIGHUP)
        self.fixed_level = fixed_level  # -log-level / VAULT_LOG_LEVEL: wins over the files
        self._reloading: asyncio.Task[None] | None = None
        self.env = dict(env)
        self.vault = vault_settings(config.vault, env)
        self.client = VaultClient(self.vault, config.template_settings.max_connections_per_host)
        self.auth: AuthHandler | None = None
        if config.auto_auth is not None:
            self.auth = AuthHandler(config.auto_auth, self.vault, env, self.client)
        self.runner: TemplateRunner | None = None
        self.supervisor: Supervisor | None = None
        self.proxies: list[Any] = []
        self.cache: Any = None  # the proxy's LeaseCache, with cache {}
        self.stopping = asyncio.Event()

    def __repr__(self) -> str:
        return f"Agent({self.config.path!r})"

    def _token(self) -> str:
        return self.auth.token if self.auth is not None else ""

    def _invalidate(self) -> None:
        if self.auth is not None:
            self.auth.invalidate()

    async def run(self) -> int:
        config = self.config
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._sighup)
        if config.pid_file:
            with open(config.pid_file, "w", encoding="utf-8") as handle:
                handle.write(str(os.getpid()))
        tasks: dict[str, asyncio.Task[Any]] = {}
        try:
            if config.exec is not None:
                self.supervisor = Supervisor(config.exec, self.env)
            if config.templates or config.env_templates:
                self.runner = TemplateRunner(
                    config.templates,
                    config.env_templates,
                    config.template_settings,
                    self.client,
                    self._token,
                    self._invalidate,
                    num_retries=self.vault.num_retries,
                    on_env=self.supervisor.update if self.supervisor is not None else None,
                    once=config.exit_after_auth,
                )
            if self.auth is not None:
                tasks["auth"] = asyncio.create_task(self.auth.run())
                runner = self.runner

                async def token_changed(_token: str) -> None:
                    if runner is not None and self.auth is not None and self.auth.logins > 1:
                        runner.token_changed()

                self.auth.listeners.append(token_changed)
            if config.listeners:
                from .proxy import start_proxies

                self.proxies = await start_proxies(config, self.vault, self)
            if self.runner is not None and not (config.exit_after_auth and config.exec):
                tasks["templates"] = asyncio.create_task(self._templates(self.runner))
            if config.exit_after_auth:
                tasks["done"] = asyncio.create_task(self._exit_after_auth())
            if self.supervisor is not None and not config.exit_after_auth:
                tasks["child"] = asyncio.create_task(self.supervisor.wait())
            tasks["stop"] = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
            finished = next(iter(done))
            name = next(key for key, task in tasks.items() if task is finished)
            if name == "stop":
                log.info("shutting down")
                return 0
            if name == "child":
                code = int(finished.result())
                log.info("the child process exited with %d", code)
                return code
            if name == "done":
                return 0
            exc = finished.exception()
            if exc is not None:
                log.error("%s", exc)
                return 1
            return 0
        finally:
            for task in tasks.values():
                task.cancel()
            for task in tasks.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self.supervisor is not None:
                await self.supervisor.close()
            if self._reloading is not None:
                self._reloading.cancel()
            for proxy in self.proxies:
                await proxy.close()
            await self.client.close()
            if self.auth is not None and self.auth.login_client is not self.client:
                await self.auth.login_client.close()
            if config.pid_file:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(config.pid_file)

    def _sighup(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self.reload_now())

    async def reload_now(self) -> None:
        """SIGHUP, as Vault Agent: read the configuration files again and apply what can
        change while running — the log level and the TLS certificates of the listeners
        (read again from their files). Anything else takes effect at the next start. A
        configuration that no longer loads is logged and the running one kept."""
        log.info("caught SIGHUP: reloading the configuration")
        if self.reload is not None:
            try:
                fresh = await asyncio.to_thread(self.reload)
            except AgentConfigError as exc:
                log.error("reloading the configuration failed, keeping the running one: %s", exc)
                return
            if not self.fixed_level:
                logging.getLogger("strongroom.agent").setLevel(
                    _LEVELS.get(fresh.log_level, logging.INFO)
                )
                log.info("log level: %s", fresh.log_level)
        for proxy in self.proxies:
            if proxy.listener is None or proxy.listener.tls_disable:
                continue
            try:
                await asyncio.to_thread(proxy.reload_certificate)
            except (OSError, ssl.SSLError) as exc:
                log.error(
                    "listener %s: the certificate could not be reloaded, keeping the old one: %s",
                    proxy.listener.address,
                    exc,
                )
            else:
                log.info("listener %s: certificate reloaded", proxy.listener.address)
        log.info("reload done")

    async def _templates(self, runner: TemplateRunner) -> None:
        if self.auth is not None:
            await self.auth.authenticated.wait()
        await runner.run()

    async def _exit_after_auth(self) -> None:
        assert self.auth is not None
        await self.auth.authenticated.wait()
        if self.runner is not None and not self.config.exec:
            await self.runner.rendered_once.wait()
        log.info("exit_after_auth: done")


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="strongroom agent", description="Run the Strongroom agent (Vault Agent configs)"
    )
    parser.add_argument("-config", "--config", action="append", default=[])
    parser.add_argument("-log-level", "--log-level", dest="log_level", default="")
    parser.add_argument("-log-format", "--log-format", dest="log_format", default="")
    parser.add_argument("-exit-after-auth", "--exit-after-auth", action="store_true")
    return parser.parse_args(list(argv))


def run_agent(argv: Sequence[str], env: Mapping[str, str], err: TextIO) -> int:
    if argv and argv[0] == "generate-config":
        from .generate import generate_config

        return generate_config(argv[1:], env, sys.stdout, err)
    try:
        args = _parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not args.config and not env.get("VAULT_CONFIG"):
        err.write("a configuration is required: -config=FILE (or VAULT_CONFIG)\n")
        return 1

    def load() -> AgentConfig:
        if args.config:
            return load_agent_config(*args.config)
        # the injector's way: base64-encoded JSON in the environment, no file needed
        try:
            text = base64.b64decode(env["VAULT_CONFIG"], validate=True).decode()
        except ValueError:
            raise AgentConfigError("$VAULT_CONFIG:1: not base64-encoded JSON") from None
        return parse_agent_config(text, "json", "$VAULT_CONFIG")

    try:
        config = load()
    except AgentConfigError as exc:
        err.write(f"error loading configuration: {exc}\n")
        return 1
    fixed_level = args.log_level or env.get("VAULT_LOG_LEVEL", "")
    level = fixed_level or config.log_level
    fmt = args.log_format or env.get("VAULT_LOG_FORMAT", "") or config.log_format
    _setup_logging(level.lower(), fmt, err)
    for warning in config.warnings:
        log.warning("%s", warning)
    if args.exit_after_auth:
        from dataclasses import replace

        config = replace(config, exit_after_auth=True)

    async def go() -> int:
        return await Agent(config, env, load, fixed_level).run()

    try:
        return asyncio.run(go())
    except (AuthError, FatalTemplateError) as exc:
        err.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``strongroom agent``."""
    return run_agent(sys.argv[1:] if argv is None else argv, os.environ, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
