"""``tidy``, ``tidy-status``, ``tidy-cancel`` and ``config/auto-tidy``: removing expired
certificates, revocation entries and issuers, in a background task (one at a time)."""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any

from strongroom.engines.pki._crl import CRLBuilder
from strongroom.engines.pki._crypto import load_cert
from strongroom.engines.pki._store import PKIStore
from strongroom.errors import InvalidRequest
from strongroom.framework import (
    Duration,
    NoArgs,
    Path,
    format_time,
    get_json,
    parse_bool,
    parse_duration,
    put_json,
)
from strongroom.logical import Operation, Request, Response

__all__ = ["Tidier", "TidyPaths"]

log = logging.getLogger("strongroom.engines.pki")

_DEFAULTS: dict[str, Any] = {
    "tidy_cert_store": False,
    "tidy_revoked_certs": False,
    "tidy_revoked_cert_issuer_associations": False,
    "tidy_expired_issuers": False,
    "tidy_move_legacy_ca_bundle": False,
    "tidy_acme": False,
    "safety_buffer": 259200,
    "issuer_safety_buffer": 31536000,
    "acme_account_safety_buffer": 2592000,
    "pause_duration": "0s",
}
_AUTO_DEFAULTS: dict[str, Any] = {"enabled": False, "interval_duration": 43200, **_DEFAULTS}


@dataclass(frozen=True, slots=True)
class TidyArgs:
    tidy_cert_store: bool = False
    tidy_revoked_certs: bool = False
    tidy_revoked_cert_issuer_associations: bool = False
    tidy_expired_issuers: bool = False
    tidy_move_legacy_ca_bundle: bool = False
    tidy_acme: bool = False
    safety_buffer: Duration = Duration(259200)
    issuer_safety_buffer: Duration = Duration(31536000)
    acme_account_safety_buffer: Duration = Duration(2592000)
    pause_duration: str = "0s"


def _pause_seconds(text: str) -> float:
    """``pause_duration`` allows sub-second values (``"100ms"``)."""
    text = text.strip()
    if text.endswith("ms") and text[:-2].isdigit():
        return int(text[:-2]) / 1000
    return float(parse_duration(text, "pause_duration"))


class Tidier:
    """Runs tidy passes and remembers the last one's status."""

    def __init__(self, store: PKIStore, crls: CRLBuilder) -> None:
        self.store = store
        self.crls = crls
        self.task: asyncio.Task[None] | None = None
        self.cancel_requested = False
        self.status: dict[str, Any] = {"state": "Inactive"}

    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, params: dict[str, Any]) -> None:
        if self.running():
            raise InvalidRequest("tidy operation already in progress")
        self.cancel_requested = False
        self.status = {
            **params,
            "state": "Running",
            "error": None,
            "time_started": format_time(time.time()),
            "time_finished": None,
            "message": "Tidying certificate store",
            "cert_store_deleted_count": 0,
            "revoked_cert_deleted_count": 0,
            "missing_issuer_cert_count": 0,
            "current_cert_store_count": None,
            "current_revoked_cert_count": None,
            "acme_orders_deleted_count": 0,
            "acme_account_deleted_count": 0,
        }
        self.task = asyncio.get_running_loop().create_task(self._run(params))

    async def _run(self, params: dict[str, Any]) -> None:
        try:
            await self._tidy(params)
        except asyncio.CancelledError:
            self.status.update(state="Cancelled", time_finished=format_time(time.time()))
            raise
        except Exception as exc:
            log.warning("pki: tidy failed: %s", type(exc).__name__)
            self.status.update(
                state="Error", error=type(exc).__name__, time_finished=format_time(time.time())
            )
            return
        state = "Cancelled" if self.cancel_requested else "Finished"
        self.status.update(state=state, time_finished=format_time(time.time()), message=state)

    async def _step(self, pause: float) -> bool:
        """Between items: pause, and tell whether a cancel was asked for."""
        if pause:
            await asyncio.sleep(pause)
        return self.cancel_requested

    async def _tidy(self, params: dict[str, Any]) -> None:
        now = self.store.system.now()
        buffer = int(params["safety_buffer"])
        pause = _pause_seconds(str(params["pause_duration"]))
        revoked_changed = False
        if params["tidy_cert_store"]:
            for serial in await self.store.cert_serials():
                if await self._step(pause):
                    return
                der = await self.store.cert_der(serial)
                if der is None:
                    continue
                if load_cert(der).not_valid_after_utc.timestamp() + buffer < now:
                    await self.store.delete_cert(serial)
                    self.status["cert_store_deleted_count"] += 1
        if params["tidy_revoked_certs"] or params["tidy_revoked_cert_issuer_associations"]:
            self.status["message"] = "Tidying revoked certificates"
            for serial in await self.store.revoked_serials():
                if await self._step(pause):
                    return
                record = await self.store.revoked(serial)
                if record is None:
                    continue
                cert = load_cert(record.certificate)
                if params["tidy_revoked_certs"] and (
                    cert.not_valid_after_utc.timestamp() + buffer < now
                ):
                    await self.store.delete_revoked(serial)
                    await self.store.delete_cert(serial)
                    self.status["revoked_cert_deleted_count"] += 1
                    revoked_changed = True
                elif await self.store.issuer(record.issuer_id) is None:
                    self.status["missing_issuer_cert_count"] += 1
        if params["tidy_expired_issuers"]:
            self.status["message"] = "Tidying expired issuers"
            default = await self.store.default_issuer_id()
            issuer_buffer = int(params["issuer_safety_buffer"])
            for issuer in await self.store.issuers():
                if issuer.id == default:
                    continue
                end = self.store.cert(issuer.certificate).not_valid_after_utc.timestamp()
                if end + issuer_buffer < now:
                    await self.store.delete_issuer(issuer.id)
        if params["tidy_acme"]:
            self.status["message"] = "Tidying ACME orders and accounts"
            if await self._tidy_acme(int(params["acme_account_safety_buffer"]), now, pause):
                return
        if revoked_changed:
            await self.crls.rebuild()
        self.status["current_cert_store_count"] = len(await self.store.cert_serials())
        self.status["current_revoked_cert_count"] = len(await self.store.revoked_serials())

    async def _tidy_acme(self, buffer: int, now: float, pause: float) -> bool:
        """Remove ACME orders (and their authorizations) expired longer than ``buffer``
        ago, then accounts left with no orders that are older than ``buffer``. Returns
        True when cancelled. Locks as the ACME paths do (``acme/<kind>/<id>``)."""
        storage = self.store.storage
        locks = self.store.locks
        for order_id in await storage.list("acme/orders/"):
            if await self._step(pause):
                return True
            order = await get_json(storage, f"acme/orders/{order_id}")
            if not isinstance(order, dict) or _epoch(order.get("expires", "")) + buffer >= now:
                continue
            async with locks.hold(f"acme/orders/{order_id}"):
                for authz_id in order.get("authorizations", []):
                    await storage.delete(f"acme/authz/{authz_id}")
                await storage.delete(f"acme/orders/{order_id}")
            account_id = str(order.get("account", ""))
            async with locks.hold(f"acme/accounts/{account_id}"):
                account = await get_json(storage, f"acme/accounts/{account_id}")
                if isinstance(account, dict) and order_id in account.get("orders", []):
                    account["orders"].remove(order_id)
                    await put_json(storage, f"acme/accounts/{account_id}", account)
            self.status["acme_orders_deleted_count"] += 1
        for account_id in await storage.list("acme/accounts/"):
            if await self._step(pause):
                return True
            async with locks.hold(f"acme/accounts/{account_id}"):
                account = await get_json(storage, f"acme/accounts/{account_id}")
                if not isinstance(account, dict) or account.get("orders"):
                    continue
                if _epoch(account.get("created", "")) + buffer >= now:
                    continue
                await storage.delete(f"acme/accounts/{account_id}")
                await storage.delete(f"acme/thumbprints/{account.get('thumbprint', '')}")
            self.status["acme_account_deleted_count"] += 1
        return False


def _epoch(text: str) -> float:
    """An RFC 3339 UTC time (``2026-01-02T03:04:05Z``) as seconds; 0 if unreadable."""
    try:
        parsed = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return 0.0
    return parsed.replace(tzinfo=datetime.UTC).timestamp()


class TidyPaths:
    def __init__(self, store: PKIStore, tidier: Tidier) -> None:
        self.store = store
        self.tidier = tidier

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"tidy",
                args=TidyArgs,
                operations={Operation.UPDATE: self.tidy},
                synopsis="Remove expired certificates, revocations and issuers",
            ),
            Path(
                pattern=r"tidy-status",
                args=NoArgs,
                operations={Operation.READ: self.status},
                synopsis="The status of the last tidy",
            ),
            Path(
                pattern=r"tidy-cancel",
                args=NoArgs,
                operations={Operation.UPDATE: self.cancel},
                synopsis="Cancel a running tidy",
            ),
            Path(
                pattern=r"config/auto-tidy",
                args=NoArgs,
                operations={
                    Operation.READ: self.read_auto,
                    Operation.UPDATE: self.write_auto,
                },
                synopsis="Periodic tidy",
            ),
        ]

    async def tidy(self, request: Request, args: TidyArgs) -> Response:
        _pause_seconds(args.pause_duration)
        params = {name: getattr(args, name) for name in _DEFAULTS}
        if not any(v for k, v in params.items() if k.startswith("tidy_")):
            raise InvalidRequest("at least one tidy operation must be enabled")
        self.tidier.start(params)
        return Response(
            status=202,
            warnings=[
                "Tidy operation successfully started. Any information from the operation "
                "will be printed to the server's logs."
            ],
        )

    async def status(self, request: Request, args: NoArgs) -> Response:
        return Response(data=dict(self.tidier.status))

    async def cancel(self, request: Request, args: NoArgs) -> Response:
        if not self.tidier.running():
            raise InvalidRequest("no tidy operation is running")
        self.tidier.cancel_requested = True
        self.tidier.status["state"] = "Cancelling"
        return Response(data=dict(self.tidier.status))

    async def read_auto(self, request: Request, args: NoArgs) -> Response:
        return Response(data=await auto_tidy_config(self.store))

    async def write_auto(self, request: Request, args: NoArgs) -> Response:
        async with self.store.locks.hold("config/auto-tidy"):
            config = await auto_tidy_config(self.store)
            for name, default in _AUTO_DEFAULTS.items():
                if name not in request.data:
                    continue
                value = request.data[name]
                if isinstance(default, bool):
                    config[name] = parse_bool(value, name)
                elif name == "pause_duration":
                    _pause_seconds(str(value))
                    config[name] = str(value)
                else:
                    config[name] = int(parse_duration(value, name))
            for name in request.data:
                if name not in _AUTO_DEFAULTS:
                    raise InvalidRequest(f"unknown field: {name}")
            await self.store.put_config("auto-tidy", config)
        return Response(data=config)


async def auto_tidy_config(store: PKIStore) -> dict[str, Any]:
    config = dict(_AUTO_DEFAULTS)
    config.update(await store.config("auto-tidy"))
    return config
