"""kubernetes ``config``: how service-account JWTs are checked.

Two ways, usable together:

- ``kubernetes_host`` (+ ``kubernetes_ca_cert``, ``token_reviewer_jwt``): each login is
  confirmed by the cluster's TokenReview API, which knows whether the token (and the service
  account) still exists. Vault's only way, and the one that notices deleted accounts.
- ``pem_keys`` (+ ``issuer``, ``disable_iss_validation``): the JWT's signature and validity
  times are checked locally against the service-account signing keys.

Vault requires ``kubernetes_host``; here either it or ``pem_keys`` must be set, so a cluster
whose API the server cannot reach can still be trusted through its signing keys (tokens are
then valid until they expire, even if the account is deleted: a documented trade-off).

``token_reviewer_jwt`` is write-only: reads say only whether one is set. When Strongroom runs
in a pod and ``disable_local_ca_jwt`` is false, the pod's own CA and token
(``/var/run/secrets/kubernetes.io/serviceaccount/``) stand in for missing
``kubernetes_ca_cert``/``token_reviewer_jwt``, as in Vault.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._common import storage_of
from strongroom.auth._http import tls_context
from strongroom.auth._jose import load_pem_keys
from strongroom.errors import InvalidRequest
from strongroom.framework import Path, get_json, put_json
from strongroom.logical import Operation, Request, Response, Storage

__all__ = ["CONFIG_KEY", "ConfigArgs", "ConfigPaths", "K8sConfig", "load_config"]

CONFIG_KEY = "config"
DEFAULT_ISSUER = "kubernetes/serviceaccount"


@dataclass(frozen=True, slots=True)
class K8sConfig:
    kubernetes_host: str = ""
    kubernetes_ca_cert: str = ""
    token_reviewer_jwt: str = field(default="", repr=False)
    pem_keys: tuple[str, ...] = ()
    issuer: str = ""
    disable_iss_validation: bool = True
    disable_local_ca_jwt: bool = False

    def to_record(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["pem_keys"] = list(self.pem_keys)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> K8sConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in record.items() if k in known}
        values["pem_keys"] = tuple(values.get("pem_keys", ()))
        return cls(**values)

    def describe(self) -> dict[str, Any]:
        record = self.to_record()
        del record["token_reviewer_jwt"]
        record["token_reviewer_jwt_set"] = bool(self.token_reviewer_jwt)
        return record


async def load_config(storage: Storage) -> K8sConfig | None:
    record = await get_json(storage, CONFIG_KEY)
    return None if record is None else K8sConfig.from_record(record)


@dataclass(frozen=True, slots=True)
class ConfigArgs:
    kubernetes_host: str = ""
    kubernetes_ca_cert: str = ""
    token_reviewer_jwt: str = field(default="", repr=False)
    pem_keys: list[str] = field(default_factory=list)
    issuer: str = ""
    disable_iss_validation: bool = True
    disable_local_ca_jwt: bool = False


def _host_url(host: str) -> str:
    """A host, host:port or URL as the base URL of the API server (https by default)."""
    host = host.strip().rstrip("/")
    if not host:
        return ""
    if "://" not in host:
        host = "https://" + host
    if not host.startswith(("https://", "http://")):
        raise InvalidRequest("kubernetes_host: expected a host, host:port or http(s) URL")
    return host


class ConfigPaths:
    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"config",
                args=ConfigArgs,
                operations={Operation.READ: self.read, Operation.UPDATE: self.write},
                synopsis="Configure how service-account tokens are verified.",
                description=__doc__ or "",
            )
        ]

    async def read(self, request: Request, args: ConfigArgs) -> Response | None:
        config = await load_config(storage_of(request))
        return None if config is None else Response(data=config.describe())

    async def write(self, request: Request, args: ConfigArgs) -> None:
        host = _host_url(args.kubernetes_host)
        if not host and not args.pem_keys:
            raise InvalidRequest("one of kubernetes_host or pem_keys must be set")
        load_pem_keys(args.pem_keys, "pem_keys")  # refuse what would not parse at login
        if args.kubernetes_ca_cert:
            tls_context(args.kubernetes_ca_cert, "kubernetes_ca_cert")
        config = K8sConfig(
            kubernetes_host=host,
            kubernetes_ca_cert=args.kubernetes_ca_cert,
            token_reviewer_jwt=args.token_reviewer_jwt.strip(),
            pem_keys=tuple(args.pem_keys),
            issuer=args.issuer,
            disable_iss_validation=args.disable_iss_validation,
            disable_local_ca_jwt=args.disable_local_ca_jwt,
        )
        await put_json(storage_of(request), CONFIG_KEY, config.to_record())
