"""cert ``certs/`` (LIST) and ``certs/<name>`` (create, read, update, delete), and ``config``.

A ``certs/<name>`` entry holds ``certificate`` (PEM: CA certificates to chain to, or a
non-CA certificate to pin), the ``allowed_*`` name constraints, ``display_name`` and the
token_* fields. Features we do not implement are refused with a 400 rather than ignored, so
no one believes a check is made that is not: ``required_extensions``,
``allowed_metadata_extensions``, ``ocsp_enabled``.

``config``: ``disable_binding`` (renewal need not present the login certificate; default false),
``enable_identity_alias_metadata`` and ``ocsp_cache_size`` (stored, for compatibility).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._common import given, storage_of
from strongroom.auth._tokenfields import TOKEN_FIELD_NAMES, TokenFieldArgs, TokenParams
from strongroom.auth.cert._verify import parse_pem_certificates
from strongroom.errors import InvalidRequest
from strongroom.framework import NoArgs, Path, get_json, put_json
from strongroom.logical import Operation, Request, Response, Storage

__all__ = [
    "CERT_PREFIX",
    "CertArgs",
    "CertConfig",
    "CertPaths",
    "CertRole",
    "load_cert_role",
    "load_config",
]

CERT_PREFIX = "cert/"
CONFIG_KEY = "config"
_NAME = re.compile(r"[\w.@\-]+")
_CONSTRAINTS = (
    "allowed_names",
    "allowed_common_names",
    "allowed_dns_sans",
    "allowed_email_sans",
    "allowed_uri_sans",
    "allowed_organizational_units",
)


@dataclass(frozen=True, slots=True)
class CertRole:
    certificate: str = ""
    display_name: str = ""
    allowed_names: tuple[str, ...] = ()
    allowed_common_names: tuple[str, ...] = ()
    allowed_dns_sans: tuple[str, ...] = ()
    allowed_email_sans: tuple[str, ...] = ()
    allowed_uri_sans: tuple[str, ...] = ()
    allowed_organizational_units: tuple[str, ...] = ()
    token: TokenParams = field(default_factory=TokenParams)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "certificate": self.certificate,
            "display_name": self.display_name,
        }
        for name in _CONSTRAINTS:
            record[name] = list(getattr(self, name))
        record["token"] = self.token.to_record()
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CertRole:
        return cls(
            certificate=str(record.get("certificate", "")),
            display_name=str(record.get("display_name", "")),
            token=TokenParams.from_record(record.get("token")),
            **{name: tuple(record.get(name, ())) for name in _CONSTRAINTS},
        )

    def describe(self) -> dict[str, Any]:
        record = self.to_record()
        del record["token"]
        return {**record, **self.token.describe()}

    def constraints(self) -> dict[str, tuple[str, ...]]:
        return {name: getattr(self, name) for name in _CONSTRAINTS}


async def load_cert_role(storage: Storage, name: str) -> CertRole | None:
    record = await get_json(storage, CERT_PREFIX + name)
    return None if record is None else CertRole.from_record(record)


@dataclass(frozen=True, slots=True)
class CertArgs(TokenFieldArgs):
    name: str
    certificate: str | None = None
    display_name: str | None = None
    allowed_names: list[str] | None = None
    allowed_common_names: list[str] | None = None
    allowed_dns_sans: list[str] | None = None
    allowed_email_sans: list[str] | None = None
    allowed_uri_sans: list[str] | None = None
    allowed_organizational_units: list[str] | None = None
    required_extensions: list[str] | None = None
    allowed_metadata_extensions: list[str] | None = None
    ocsp_enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class CertConfig:
    disable_binding: bool = False
    enable_identity_alias_metadata: bool = False
    ocsp_cache_size: int = 100


@dataclass(frozen=True, slots=True)
class ConfigArgs:
    disable_binding: bool | None = None
    enable_identity_alias_metadata: bool | None = None
    ocsp_cache_size: int | None = None


async def load_config(storage: Storage) -> CertConfig:
    record = await get_json(storage, CONFIG_KEY)
    return CertConfig(**record) if record else CertConfig()


def cert_name(raw: str) -> str:
    name = raw.lower()
    if _NAME.fullmatch(name) is None or set(name) == {"."}:
        raise InvalidRequest("name: letters, digits, '_', '-', '.' and '@' only")
    return name


class CertPaths:
    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"certs/?",
                args=NoArgs,
                operations={Operation.LIST: self.list_certs},
                synopsis="List the trusted certificates of this mount.",
            ),
            Path(
                pattern=r"certs/(?P<name>[^/]+)",
                args=CertArgs,
                operations={
                    Operation.CREATE: self.write,
                    Operation.UPDATE: self.write,
                    Operation.READ: self.read,
                    Operation.DELETE: self.delete,
                },
                existence_check=self.exists,
                synopsis="Manage a trusted CA or pinned certificate and its token settings.",
                description=__doc__ or "",
            ),
            Path(
                pattern=r"config",
                args=ConfigArgs,
                operations={Operation.READ: self.read_config, Operation.UPDATE: self.write_config},
                synopsis="Configure the cert method.",
            ),
        ]

    async def list_certs(self, request: Request, args: NoArgs) -> Response | None:
        keys = [k for k in await storage_of(request).list(CERT_PREFIX) if not k.endswith("/")]
        return Response(data={"keys": keys}) if keys else None

    async def exists(self, request: Request, args: CertArgs) -> bool:
        return await load_cert_role(storage_of(request), cert_name(args.name)) is not None

    async def read(self, request: Request, args: CertArgs) -> Response | None:
        role = await load_cert_role(storage_of(request), cert_name(args.name))
        return None if role is None else Response(data=role.describe())

    async def delete(self, request: Request, args: CertArgs) -> None:
        await storage_of(request).delete(CERT_PREFIX + cert_name(args.name))

    async def write(self, request: Request, args: CertArgs) -> None:
        name = cert_name(args.name)
        if args.required_extensions:
            raise InvalidRequest("required_extensions is not supported by this server")
        if args.allowed_metadata_extensions:
            raise InvalidRequest("allowed_metadata_extensions is not supported by this server")
        if args.ocsp_enabled:
            raise InvalidRequest("OCSP is not supported by this server; use crls/")
        storage = storage_of(request)
        role = await load_cert_role(storage, name) or CertRole()
        changes = given(
            args,
            exclude=(
                "name",
                "required_extensions",
                "allowed_metadata_extensions",
                "ocsp_enabled",
                *TOKEN_FIELD_NAMES,
            ),
        )
        for key in _CONSTRAINTS:
            if key in changes:
                changes[key] = tuple(changes[key])
        role = dataclasses.replace(role, **changes, token=role.token.updated(args))
        if not role.certificate:
            raise InvalidRequest("missing certificate")
        parse_pem_certificates(role.certificate)
        await put_json(storage, CERT_PREFIX + name, role.to_record())

    async def read_config(self, request: Request, args: ConfigArgs) -> Response:
        return Response(data=dataclasses.asdict(await load_config(storage_of(request))))

    async def write_config(self, request: Request, args: ConfigArgs) -> None:
        storage = storage_of(request)
        config = dataclasses.replace(await load_config(storage), **given(args))
        await put_json(storage, CONFIG_KEY, dataclasses.asdict(config))
