"""CRL paths: ``crl``, ``crl/pem``, ``crl/delta[/pem]``, ``issuer/:ref/crl[/delta][/der|pem]``,
``config/crl``, ``crl/rotate``, ``crl/rotate-delta``."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki._crl import CRL_DEFAULTS, CRLBuilder, crl_config
from strongroom.engines.pki._store import PKIStore
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import NoArgs, Path, parse_bool, parse_duration, parse_int
from strongroom.logical import Operation, Request, Response

__all__ = ["CRLPaths"]

PKIX_CRL = "application/pkix-crl"
PEM_FILE = "application/x-pem-file"
_DURATIONS = ("expiry", "ocsp_expiry", "auto_rebuild_grace_period", "delta_rebuild_interval")


@dataclass(frozen=True, slots=True)
class FetchArgs:
    ref: str = "default"
    delta: str = ""
    encoding: str = ""


@dataclass(frozen=True, slots=True)
class CRLConfigArgs:
    expiry: str = ""
    disable: bool = False
    ocsp_disable: bool = False
    ocsp_expiry: str = ""
    auto_rebuild: bool = False
    auto_rebuild_grace_period: str = ""
    enable_delta: bool = False
    delta_rebuild_interval: str = ""
    cross_cluster_revocation: bool = False
    unified_crl: bool = False
    unified_crl_on_existing_paths: bool = False
    max_crl_entries: int = 100000


class CRLPaths:
    def __init__(self, store: PKIStore, builder: CRLBuilder) -> None:
        self.store = store
        self.builder = builder

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"crl(?P<delta>/delta)?(?:/(?P<encoding>pem))?",
                args=FetchArgs,
                operations={Operation.READ: self.fetch_default},
                synopsis="The default issuer's CRL (DER; PEM at /pem)",
            ),
            Path(
                pattern=r"issuer/(?P<ref>[^/]+)/crl(?P<delta>/delta)?(?:/(?P<encoding>der|pem))?",
                args=FetchArgs,
                operations={Operation.READ: self.fetch_issuer},
                synopsis="An issuer's CRL (JSON; DER or PEM at /der, /pem)",
            ),
            Path(
                pattern=r"crl/rotate",
                args=NoArgs,
                operations={Operation.READ: self.rotate, Operation.UPDATE: self.rotate},
                synopsis="Rebuild the CRLs now",
            ),
            Path(
                pattern=r"crl/rotate-delta",
                args=NoArgs,
                operations={Operation.READ: self.rotate_delta, Operation.UPDATE: self.rotate_delta},
                synopsis="Rebuild the delta CRLs now",
            ),
            Path(
                pattern=r"config/crl",
                args=CRLConfigArgs,
                operations={Operation.READ: self.read_config, Operation.UPDATE: self.write_config},
                synopsis="CRL and OCSP settings",
            ),
        ]

    async def der_for(self, ref: str, delta: bool) -> bytes | None:
        issuer = await self.store.resolve_issuer(ref)
        return await self.builder.crl(issuer, delta=delta)

    async def fetch_default(self, request: Request, args: FetchArgs) -> Response:
        der = await self.der_for("default", bool(args.delta))
        if der is None:
            raise NotFound("delta CRLs are not enabled")
        if args.encoding == "pem":
            return Response(raw_body=_pem(der).encode(), content_type=PEM_FILE)
        return Response(raw_body=der, content_type=PKIX_CRL)

    async def fetch_issuer(self, request: Request, args: FetchArgs) -> Response:
        der = await self.der_for(args.ref, bool(args.delta))
        if der is None:
            raise NotFound("delta CRLs are not enabled")
        if args.encoding == "der":
            return Response(raw_body=der, content_type=PKIX_CRL)
        if args.encoding == "pem":
            return Response(raw_body=_pem(der).encode(), content_type=PEM_FILE)
        return Response(data={"crl": _pem(der).strip()})

    async def rotate(self, request: Request, args: NoArgs) -> Response:
        warnings = await self.builder.rebuild()
        return Response(data={"success": True}, warnings=warnings)

    async def rotate_delta(self, request: Request, args: NoArgs) -> Response:
        config = await crl_config(self.store)
        if not config["enable_delta"]:
            return Response(
                data={"success": True}, warnings=["delta CRLs are disabled (config/crl)"]
            )
        warnings = await self.builder.rebuild(delta_only=True)
        return Response(data={"success": True}, warnings=warnings)

    async def read_config(self, request: Request, args: CRLConfigArgs) -> Response:
        return Response(data=await crl_config(self.store))

    async def write_config(self, request: Request, args: CRLConfigArgs) -> Response:
        async with self.store.locks.hold("config/crl"):
            config = await crl_config(self.store)
            for name, default in CRL_DEFAULTS.items():
                if name not in request.data:
                    continue
                value = request.data[name]
                if name in _DURATIONS:
                    parse_duration(value, name)
                    config[name] = value if isinstance(value, str) else f"{int(value)}s"
                elif isinstance(default, bool):
                    config[name] = parse_bool(value, name)
                else:
                    config[name] = parse_int(value, name)
            if config["unified_crl"] or config["cross_cluster_revocation"]:
                raise InvalidRequest(
                    "unified CRLs and cross-cluster revocation need Vault Enterprise"
                )
            await self.store.put_config("crl", config)
        await self.builder.rebuild()
        return Response(data=config)


def _pem(der: bytes) -> str:
    return x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM).decode()
