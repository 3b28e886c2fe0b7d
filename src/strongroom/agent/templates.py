"""The template runner: fetches what templates need, renders them, writes files, runs
commands, and keeps every secret fresh.

One pass renders every template against the secrets fetched so far; a secret not fetched yet
renders as nil and marks the template incomplete, so the runner fetches what is missing and
renders again (consul-template's way: the dependencies of a template are whatever it asked for,
including ones that depend on other secrets' values). A file is written only when its template
rendered completely and its content changed, through a temporary file and a rename; so a server
that is down or a secret that cannot be read never puts stale or empty content over a good
file. Commands run once per pass, however many of their templates changed.

Freshness (Vault Agent's rules): a renewable lease is renewed at ``lease_renewal_threshold``
(2/3) of its duration and fetched anew once renewals stop extending it (its max TTL is near);
a non-renewable secret with a duration is fetched again at 85 % of it; anything else (KV v2) is
fetched again every ``static_secret_render_interval``. A new auth token refetches everything,
since the leases of a revoked token are gone with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from ._client import ServerError, ServerUnavailable, VaultClient
from .config import EnvTemplateConfig, TemplateConfig, TemplateSettings, Wait
from .sink import atomic_write
from .template import Dependency, SecretValue, TemplateExecError

__all__ = ["FatalTemplateError", "TemplateRunner"]

log = logging.getLogger("strongroom.agent.template")

_MAX_PASSES = 32
_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S
)  # nested dependencies deeper than this are a template bug


class FatalTemplateError(Exception):
    """``exit_on_retry_failure``: a template could not be rendered after every retry."""


@dataclass
class _Fetched:
    value: Any  # a SecretValue (its repr hides the data) or a list of key names
    fingerprint: str = field(repr=False)  # the data as JSON: secret
    due: float
    lease_id: str = ""
    base_ttl: int = 0
    renew: bool = False
    failures: int = 0


@dataclass
class _Output:
    config: TemplateConfig
    content: str | None = field(default=None, repr=False)  # the destination's (secret) text
    wait: Wait | None = None
    # a render held back by ``wait``: its text, when the first change of the burst was
    # seen, and when it is to be written
    pending: str | None = field(default=None, repr=False)
    pending_since: float = 0.0
    pending_due: float = 0.0


@dataclass
class TemplateRunner:
    templates: tuple[TemplateConfig, ...]
    env_templates: tuple[EnvTemplateConfig, ...]
    settings: TemplateSettings
    client: VaultClient
    token: Callable[[], str]
    invalidate: Callable[[], None]
    num_retries: int = 12
    on_env: Callable[[dict[str, str]], Awaitable[None]] | None = None
    retry_base: float = 0.25
    cache: dict[Dependency, _Fetched] = field(default_factory=dict)
    renders: int = 0
    env: dict[str, str] | None = None
    once: bool = False  # exit_after_auth: render once, at once (no wait)

    def __post_init__(self) -> None:
        self.outputs = [
            _Output(config, wait=None if self.once else (config.wait or self.settings.wait))
            for config in self.templates
        ]
        for output in self.outputs:
            try:
                with open(output.config.destination, encoding="utf-8") as handle:
                    output.content = handle.read()
            except (OSError, UnicodeDecodeError):
                output.content = None
        self._wake = asyncio.Event()
        self._gate = asyncio.Semaphore(self.settings.max_connections_per_host)
        self.rendered_once = asyncio.Event()

    def __repr__(self) -> str:
        return f"TemplateRunner({len(self.templates)} templates)"

    # -- the resolver the templates see -----------------------------------------------

    def resolve(self, dependency: Dependency) -> Any:
        fetched = self.cache.get(dependency)
        return None if fetched is None else fetched.value

    def token_changed(self) -> None:
        """A new token: everything is fetched again (a revoked token took its leases)."""
        now = time.monotonic()
        for fetched in self.cache.values():
            fetched.due = now
            fetched.renew = False
        self._wake.set()

    # -- fetching -------------------------------------------------------------------------

    async def _fetch_once(self, dependency: Dependency) -> _Fetched:
        token = self.token()
        if dependency.kind == "secrets":
            answer = await self.client.request(
                "GET", dependency.path, token=token, params={"list": "true"}
            )
            keys = (answer.get("data") or {}).get("keys") or []
            value: Any = [str(k) for k in keys]
            return _Fetched(value, json.dumps(value), self._static_due())
        if dependency.kind == "pkiCert":
            return self._certificate(
                await self.client.request(
                    "PUT", dependency.path, token=token, body=dict(dependency.data)
                )
            )
        if dependency.data:
            answer = await self.client.request(
                "PUT", dependency.path, token=token, body=dict(dependency.data)
            )
        else:
            answer = await self.client.request("GET", dependency.path, token=token)
        secret = SecretValue(answer)
        fingerprint = json.dumps([secret.Data, secret.LeaseID], sort_keys=True, default=str)
        ttl = int(secret.LeaseDuration or 0)
        now = time.monotonic()
        if secret.LeaseID and secret.Renewable and ttl > 0:
            due = now + ttl * self.settings.lease_renewal_threshold
            return _Fetched(secret, fingerprint, due, secret.LeaseID, ttl, renew=True)
        if ttl > 0:
            return _Fetched(secret, fingerprint, now + min(ttl * 0.85, 31 * 86400.0))
        return _Fetched(secret, fingerprint, self._static_due())

    def _certificate(self, answer: dict[str, Any]) -> _Fetched:
        """consul-template's ``pkiCert``: ``.Data.Cert``, ``.Data.Key``, ``.Data.CA``,
        ``.Data.CAChain``; a new certificate is issued at 85 % of this one's validity."""
        data = answer.get("data") or {}
        chain = data.get("ca_chain") or []
        fields = {
            "Cert": str(data.get("certificate", "")),
            "Key": str(data.get("private_key", "")),
            "CA": str(data.get("issuing_ca", "")),
            "CAChain": [str(c) for c in chain] if isinstance(chain, list) else [],
        }
        secret = SecretValue({**answer, "data": fields})
        left = float(data.get("expiration") or 0) - time.time()
        due = time.monotonic() + (left * 0.85 if left > 0 else 60.0)
        return _Fetched(secret, json.dumps(fields["Cert"]), due)

    def _reuse_certificate(self, dependency: Dependency, output: _Output) -> bool:
        """consul-template's ``pkiCert`` at start: a certificate still valid in the file the
        template wrote is used again instead of issuing a new one."""
        text = output.content or ""
        certificates: list[str] = []
        keys: list[str] = []
        for block in _PEM_BLOCK.finditer(text):
            if block.group(1) == "CERTIFICATE":
                certificates.append(block.group(0))
            elif block.group(1).endswith("PRIVATE KEY"):
                keys.append(block.group(0))
        if not certificates or not keys:
            return False
        try:
            certificate = x509.load_pem_x509_certificate(certificates[0].encode())
        except ValueError:
            return False
        left = certificate.not_valid_after_utc.timestamp() - time.time()
        if left <= 0:
            return False
        fields = {
            "Cert": certificates[0] + "\n",
            "Key": keys[0] + "\n",
            "CA": (certificates[1] + "\n") if len(certificates) > 1 else "",
            "CAChain": [c + "\n" for c in certificates[1:]],
        }
        secret = SecretValue({"data": fields})
        self.cache[dependency] = _Fetched(
            secret, json.dumps(fields["Cert"]), time.monotonic() + left * 0.85
        )
        log.info("reusing the certificate in %s until it nears its end", output.config.destination)
        return True

    def _static_due(self) -> float:
        return time.monotonic() + self.settings.static_secret_render_interval

    async def _fetch(self, dependency: Dependency) -> _Fetched:
        """One attempt; the callers retry with backoff (a slow secret must not hold up the
        templates whose secrets did arrive)."""
        try:
            return await self._fetch_once(dependency)
        except ServerError as exc:
            if exc.status == 403:
                self.invalidate()  # perhaps our token was revoked
            raise

    async def _bounded_fetch(self, dependency: Dependency) -> _Fetched:
        async with self._gate:  # a thousand waiters in httpx's pool cost more than this
            return await self._fetch(dependency)

    async def _renew(self, dependency: Dependency, fetched: _Fetched) -> _Fetched:
        try:
            answer = await self.client.request(
                "PUT",
                "sys/leases/renew",
                token=self.token(),
                body={"lease_id": fetched.lease_id, "increment": fetched.base_ttl},
            )
        except (ServerError, ServerUnavailable) as exc:
            log.info("renewing the lease of %s failed (%s): fetching it anew", dependency.path, exc)
            return await self._fetch(dependency)
        ttl = int(answer.get("lease_duration") or 0)
        now = time.monotonic()
        if ttl < fetched.base_ttl:
            # the lease hit its max TTL: fetch a new secret well before this one ends
            fetched.due = now + ttl * self.settings.lease_renewal_threshold
            fetched.renew = False
        else:
            fetched.due = now + ttl * self.settings.lease_renewal_threshold
        return fetched

    # -- rendering -------------------------------------------------------------------------

    def _render_all(
        self,
    ) -> tuple[dict[int, str], dict[str, str] | None, set[Dependency], bool]:
        """Render everything once: complete file contents by template index, the env
        (None unless every env template is complete), the dependencies missing, and whether
        some template failed (its error is logged; it is not written)."""
        missing: set[Dependency] = set()
        files: dict[int, str] = {}
        failed = False
        for index, output in enumerate(self.outputs):
            try:
                result = output.config.template.render(
                    self, error_on_missing_key=output.config.error_on_missing_key
                )
            except TemplateExecError as exc:
                log.error("%s", exc)
                failed = True
                continue
            self.renders += 1
            if result.complete:
                files[index] = result.text
            else:
                for dependency in result.dependencies:
                    if dependency in self.cache:
                        continue
                    if dependency.kind == "pkiCert" and self._reuse_certificate(dependency, output):
                        continue
                    missing.add(dependency)
        env: dict[str, str] | None = {}
        for env_template in self.env_templates:
            try:
                result = env_template.template.render(
                    self, error_on_missing_key=env_template.error_on_missing_key
                )
            except TemplateExecError as exc:
                log.error("%s", exc)
                failed = True
                env = None
                continue
            if result.complete and env is not None:
                env[env_template.name] = result.text
            else:
                env = None
                missing.update(d for d in result.dependencies if d not in self.cache)
        return files, env, missing, failed

    async def render_pass(self) -> str:
        """Fetch until every template is complete (or something cannot be fetched), then
        write what changed and run commands. Returns "complete", "fetch_failed" (retry soon)
        or "template_failed" (wait for the secrets to change)."""
        for _ in range(_MAX_PASSES):
            files, env, missing, failed = self._render_all()
            if not missing:
                break
            results = await asyncio.gather(
                *(self._bounded_fetch(dep) for dep in missing), return_exceptions=True
            )
            fetch_failed = False
            for dependency, result in zip(missing, results, strict=True):
                if isinstance(result, BaseException):
                    if not isinstance(result, ServerError | ServerUnavailable):
                        raise result
                    fetch_failed = True
                    log.warning("template dependency %s: %s", dependency.path, result)
                else:
                    self.cache[dependency] = result
            if fetch_failed:
                # write what is complete; the rest waits for the next attempt
                files, env, _, _ = self._render_all()
                await self._write(files)
                return "fetch_failed"
        else:
            log.error("templates kept asking for new secrets: giving up this pass")
            return "template_failed"
        await self._write(files)
        if env is not None and env != self.env:
            self.env = env
            if self.on_env is not None:
                await self.on_env(env)
        if failed or len(files) != len(self.outputs) or env is None:
            return "template_failed"
        self.rendered_once.set()
        return "complete"

    async def _write(self, files: dict[int, str]) -> None:
        """Write what changed; a template with a ``wait`` is held back (consul-template's
        quiescence): written once its text has stayed the same for ``min``, and at most
        ``max`` after the first change of the burst."""
        now = time.monotonic()
        changed: list[tuple[int, str]] = []
        for index, text in files.items():
            output = self.outputs[index]
            if text == output.content:
                output.pending = None  # changed back before it was written
                continue
            if output.wait is None:
                changed.append((index, text))
                continue
            if output.pending is None:
                output.pending_since = now
                output.pending_due = now + output.wait.min
            elif text != output.pending:  # one more change: the quiet period starts again
                output.pending_due = min(
                    now + output.wait.min, output.pending_since + output.wait.max
                )
            output.pending = text
        changed.extend(self._due_pending(now))
        await self._commit(changed)

    def _due_pending(self, now: float) -> list[tuple[int, str]]:
        due: list[tuple[int, str]] = []
        for index, output in enumerate(self.outputs):
            if output.pending is not None and output.pending_due <= now:
                due.append((index, output.pending))
                output.pending = None
        return due

    async def _flush_pending(self) -> None:
        await self._commit(self._due_pending(time.monotonic()))

    async def _commit(self, changed: list[tuple[int, str]]) -> None:
        if not changed:
            return
        # each write ends with an fsync: run them on threads, several at once
        gate = asyncio.Semaphore(8)

        async def write(index: int, text: str) -> bool:
            config = self.outputs[index].config
            async with gate:
                try:
                    await asyncio.to_thread(self._write_file, config, text)
                except OSError as exc:
                    log.error("writing %s failed: %s", config.destination, exc.strerror)
                    return False
            self.outputs[index].content = text
            log.info("rendered %s", config.destination)
            return True

        written = await asyncio.gather(*(write(index, text) for index, text in changed))
        commands: list[TemplateConfig] = []
        for (index, _), ok in zip(changed, written, strict=True):
            config = self.outputs[index].config
            if ok and config.command and all(c.command != config.command for c in commands):
                commands.append(config)
        for config in commands:
            await self._run_command(config)

    @staticmethod
    def _write_file(config: TemplateConfig, text: str) -> None:
        destination = config.destination
        mode = config.perms
        exists = os.path.exists(destination)
        if mode is None:
            mode = os.stat(destination).st_mode & 0o7777 if exists else 0o644
        if config.backup and exists:
            shutil.copy2(destination, destination + ".bak")
        if not config.create_dest_dirs and not os.path.isdir(os.path.dirname(destination)):
            raise FileNotFoundError(2, "the destination directory does not exist")
        atomic_write(destination, text.encode(), mode, create_dirs=config.create_dest_dirs)

    async def _run_command(self, config: TemplateConfig) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                *config.command, stdin=asyncio.subprocess.DEVNULL
            )
        except OSError as exc:
            log.error("command for %s could not start: %s", config.destination, exc.strerror)
            return
        try:
            code = await asyncio.wait_for(process.wait(), timeout=config.command_timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.error(
                "command for %s timed out after %ss", config.destination, config.command_timeout
            )
            return
        if code != 0:
            log.error("command for %s exited with %d", config.destination, code)

    # -- the loop ---------------------------------------------------------------------------

    async def _refresh_due(self) -> bool:
        """Renew or refetch what is due; True if some value changed."""
        now = time.monotonic()
        due = [(dep, f) for dep, f in self.cache.items() if f.due <= now]
        changed = False
        for dependency, fetched in due:
            try:
                fresh = (
                    await self._renew(dependency, fetched)
                    if fetched.renew
                    else await self._fetch(dependency)
                )
            except (ServerError, ServerUnavailable) as exc:
                # keep the old value (and the good file); try again later
                fetched.failures += 1
                delay = min(self.retry_base * 2.0**fetched.failures, 60.0)
                log.error(
                    "refreshing %s failed: %s; retrying in %.2fs", dependency.path, exc, delay
                )
                fetched.due = time.monotonic() + delay
                continue
            if fresh.fingerprint != fetched.fingerprint:
                changed = True
            self.cache[dependency] = fresh
        return changed

    async def run(self) -> None:
        failures = 0
        while True:
            state = await self.render_pass()
            if state == "complete":
                failures = 0
            else:
                failures += 1
                if self.settings.exit_on_retry_failure and (
                    state == "template_failed" or failures > self.num_retries
                ):
                    raise FatalTemplateError("templates could not be rendered")
                if failures > self.num_retries:
                    failures = 0  # Vault: after the last retry, start counting again
            while True:
                retry_soon = state == "fetch_failed"
                wait = self._next_wait(retry_soon, failures)
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                except TimeoutError:
                    pass
                await self._flush_pending()
                # secrets that are due are refreshed even while another template waits
                # for its first fetch
                changed = await self._refresh_due()
                if retry_soon or changed:
                    break

    def _next_wait(self, retry_soon: bool, failures: int) -> float:
        soonest: float = min((f.due for f in self.cache.values()), default=time.monotonic() + 3600)
        for output in self.outputs:
            if output.pending is not None:
                soonest = min(soonest, output.pending_due)
        wait = max(float(soonest) - time.monotonic(), 0.0)
        if retry_soon:
            wait = min(wait, self.retry_base * 2.0 ** min(failures, 10), 60.0)
        return wait
