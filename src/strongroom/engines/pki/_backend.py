"""The PKI factory: the path table over one mount's store, its unauthenticated paths, the
lease type of ``generate_lease`` certificates, and the CRL auto-rebuild task."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from strongroom.engines.pki._acme_context import AcmeContext
from strongroom.engines.pki._crl import CRLBuilder, crl_config, seconds
from strongroom.engines.pki._crypto import load_cert
from strongroom.engines.pki._issuing import Issuing
from strongroom.engines.pki._store import PKIStore
from strongroom.engines.pki.acme_accounts import AcmeAccountPaths
from strongroom.engines.pki.acme_orders import AcmeOrderPaths
from strongroom.engines.pki.ca import CAPaths
from strongroom.engines.pki.config import ConfigPaths
from strongroom.engines.pki.crl import CRLPaths
from strongroom.engines.pki.crl_sign import CRLSignPaths
from strongroom.engines.pki.fetch import FetchPaths
from strongroom.engines.pki.issue import LEASE_TYPE, IssuePaths
from strongroom.engines.pki.issuers import IssuersPaths
from strongroom.engines.pki.ocsp import OCSPPaths
from strongroom.engines.pki.revoke import RevokePaths, Revoker
from strongroom.engines.pki.roles import RolesPaths
from strongroom.engines.pki.tidy import Tidier, TidyPaths, auto_tidy_config
from strongroom.errors import InvalidRequest
from strongroom.framework import FrameworkBackend, SecretType
from strongroom.logical import Backend, BackendConfig, BackendKind, Request

__all__ = ["UNAUTHENTICATED_PATHS", "PKIBackend", "factory"]

log = logging.getLogger("strongroom.engines.pki")

# Vault's list: CA certificates, CRLs and OCSP are public by design (relying parties
# fetch them without tokens); none of these paths writes anything but OCSP's answer.
UNAUTHENTICATED_PATHS = (
    "cert/*",
    "ca",
    "ca/pem",
    "ca_chain",
    "crl",
    "crl/pem",
    "crl/delta",
    "crl/delta/pem",
    "issuer/+/crl",
    "issuer/+/crl/der",
    "issuer/+/crl/pem",
    "issuer/+/crl/delta",
    "issuer/+/crl/delta/der",
    "issuer/+/crl/delta/pem",
    "issuer/+/pem",
    "issuer/+/der",
    "issuer/+/json",
    "issuers/",
    "ocsp",
    "ocsp/*",
    # ACME: clients authenticate with JWS, not tokens; acme/new-eab is not listed
    *(
        f"{prefix}acme/{rest}"
        for prefix in ("", "roles/+/", "issuer/+/", "issuer/+/roles/+/")
        for rest in (
            "directory",
            "new-nonce",
            "new-account",
            "new-order",
            "revoke-cert",
            "key-change",
            "account/+",
            "account/+/orders",
            "authorization/+",
            "challenge/+/+",
            "order/+",
            "order/+/finalize",
            "order/+/cert",
        )
    ),
)

# how often the background task looks at CRL expiry (auto_rebuild) and delta intervals
CRL_CHECK_INTERVAL = 30.0


class PKIBackend(FrameworkBackend):
    """The PKI engine of one mount."""

    def __init__(self, config: BackendConfig, *, crl_interval: float = CRL_CHECK_INTERVAL):
        self.store = PKIStore(config.storage, config.system)
        self.issuing = Issuing(self.store)
        self.crls = CRLBuilder(self.store)
        self.revoker = Revoker(self.store, self.crls)
        self.tidier = Tidier(self.store, self.crls)
        self._last_auto_tidy = config.system.now()
        self.crl_interval = crl_interval
        self._task: asyncio.Task[None] | None = None
        crl_paths = CRLPaths(self.store, self.crls)
        self.acme = AcmeContext(self.store, self.issuing)
        self.acme_orders = AcmeOrderPaths(
            self.acme,
            self.revoker,
            http01_port=_port(config, "acme_http01_port", 80),
            tls_alpn01_port=_port(config, "acme_tls_alpn01_port", 443),
        )
        paths = [
            *IssuePaths(self.store, self.issuing).paths(),
            *FetchPaths(self.store, crl_paths.der_for).paths(),
            *OCSPPaths(self.store).paths(),
            *crl_paths.paths(),
            *CRLSignPaths(self.store).paths(),
            *RevokePaths(self.revoker).paths(),
            *RolesPaths(self.store).paths(),
            *IssuersPaths(self.store, self.revoker.revoke_issuer).paths(),
            *CAPaths(self.store, self.issuing).paths(),
            *ConfigPaths(self.store).paths(),
            *TidyPaths(self.store, self.tidier).paths(),
            *AcmeAccountPaths(self.acme).paths(),
            *self.acme_orders.paths(),
        ]
        super().__init__(
            kind=BackendKind.SECRET,
            paths=paths,
            help=_HELP,
            unauthenticated_paths=UNAUTHENTICATED_PATHS,
            # GET ocsp/<base64>: the request's base64 may hold "//" (RFC 6960 A.1)
            opaque_paths=("ocsp/*",),
            initialize=self._start,
            cleanup=self._stop,
            secrets={LEASE_TYPE: SecretType(revoke=self._revoke_lease)},
        )

    async def _revoke_lease(self, request: Request) -> None:
        """A ``generate_lease`` certificate's lease ended: revoke the certificate."""
        secret = request.secret
        serial = str(secret.internal_data.get("serial_number", "")) if secret else ""
        if not serial:
            return
        der = await self.store.cert_der(serial)
        if der is None:
            return  # tidied away: nothing left to revoke
        await self.revoker.revoke(serial, load_cert(der))

    async def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._crl_loop())

    async def _stop(self) -> None:
        for task in (self._task, self.tidier.task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None
        await self.acme_orders.stop()

    async def _crl_loop(self) -> None:
        last_delta = 0.0
        try:
            await self.crls.warm()
        except Exception as exc:
            log.warning("pki: reading the revocation entries failed: %s", type(exc).__name__)
        while True:
            await asyncio.sleep(self.crl_interval)
            try:
                config = await crl_config(self.store)
                now = self.store.system.now()
                if config["auto_rebuild"]:
                    grace = seconds(config, "auto_rebuild_grace_period")
                    for issuer in await self.store.issuers():
                        due = await self.crls.next_update(issuer)
                        if due is not None and due.timestamp() - grace <= now:
                            await self.crls.rebuild()
                            break
                if config["enable_delta"]:
                    if now - last_delta >= seconds(config, "delta_rebuild_interval"):
                        await self.crls.rebuild(delta_only=True)
                        last_delta = now
                await self._auto_tidy(now)
            except Exception as exc:
                # the class only: messages could quote stored values
                log.warning("pki: scheduled CRL rebuild failed: %s", type(exc).__name__)

    async def _auto_tidy(self, now: float) -> None:
        config = await auto_tidy_config(self.store)
        if not config["enabled"] or self.tidier.running():
            return
        if now - self._last_auto_tidy < int(config["interval_duration"]):
            return
        self._last_auto_tidy = now
        params = {k: v for k, v in config.items() if k not in ("enabled", "interval_duration")}
        if any(v for k, v in params.items() if k.startswith("tidy_")):
            self.tidier.start(params)


def _port(config: BackendConfig, name: str, default: int) -> int:
    """A challenge port from the mount's options (Vault always uses 80 and 443)."""
    raw = config.options.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise InvalidRequest(f"{name}: expected a TCP port")
    return int(raw)


async def factory(config: BackendConfig) -> Backend:
    """Build a PKI backend for a mount.

    Args:
        config: the mount's configuration; ``storage`` is its barrier-encrypted view and
            ``system`` gives TTL defaults and the clock.

    Returns:
        The backend; ``initialize()`` starts the CRL task, ``cleanup()`` stops it.
    """
    return PKIBackend(config)


_HELP = """\
The PKI secrets engine issues X.509 certificates: root and intermediate CAs with several
issuers and keys per mount, roles that bound what may be issued, CSR signing, revocation
with full and delta CRLs, an OCSP responder and an ACME server."""
