"""jwt/oidc ``config``: where keys come from, the expected issuer, algorithms, default role.

Exactly one of ``jwt_validation_pubkeys``, ``jwks_url`` and ``oidc_discovery_url`` must be set.
A write replaces the whole configuration (as in Vault) and is refused unless the key source
works right now: PEM keys must parse, and a JWKS or discovery URL must answer with usable keys
(which seeds the key cache).

``jwt_supported_algs`` may list only asymmetric algorithms (RS/PS/ES 256-512, EdDSA); the
default is all of them, Vault's default for jwt roles.

With ``oidc_discovery_url`` and both ``oidc_client_id`` and ``oidc_client_secret`` (Vault
wants both or neither; the secret is never read back), the mount also runs the OIDC
authorization-code flow of ``_oidc`` for roles of type ``oidc``. ``oidc_response_mode`` is
``query`` (the default) or ``form_post``; ``oidc_response_types`` may only be ``code`` (the
implicit ``id_token`` flow is not supported: it hands the ID token to the browser).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._common import storage_of
from strongroom.auth._http import tls_context
from strongroom.auth._jose import ASYMMETRIC_ALGS
from strongroom.auth.jwt._keys import KeyCache, SourceConfig, load
from strongroom.errors import InvalidRequest
from strongroom.framework import Path, get_json, put_json
from strongroom.logical import Operation, Request, Response, Storage

__all__ = ["CONFIG_KEY", "ConfigArgs", "ConfigPaths", "JWTConfig", "load_config"]

CONFIG_KEY = "config"
RESPONSE_MODES = ("", "query", "form_post")


@dataclass(frozen=True, slots=True)
class JWTConfig:
    source: SourceConfig = field(default_factory=SourceConfig)
    bound_issuer: str = ""
    jwt_supported_algs: tuple[str, ...] = ()
    default_role: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = field(default="", repr=False)
    oidc_response_mode: str = ""
    oidc_response_types: tuple[str, ...] = ()
    namespace_in_state: bool = True

    @property
    def algorithms(self) -> tuple[str, ...]:
        return self.jwt_supported_algs or ASYMMETRIC_ALGS

    @property
    def oidc_algorithms(self) -> tuple[str, ...]:
        """ID tokens of the OIDC flow: RS256 unless configured (Vault's default there)."""
        return self.jwt_supported_algs or ("RS256",)

    @property
    def oidc_flow(self) -> bool:
        """Whether the authorization-code flow is configured (Vault's ``OIDCFlow``)."""
        return bool(
            self.source.oidc_discovery_url and self.oidc_client_id and self.oidc_client_secret
        )

    def to_record(self) -> dict[str, Any]:
        s = self.source
        return {
            "jwt_validation_pubkeys": list(s.jwt_validation_pubkeys),
            "jwks_url": s.jwks_url,
            "jwks_ca_pem": s.jwks_ca_pem,
            "oidc_discovery_url": s.oidc_discovery_url,
            "oidc_discovery_ca_pem": s.oidc_discovery_ca_pem,
            "bound_issuer": self.bound_issuer,
            "jwt_supported_algs": list(self.jwt_supported_algs),
            "default_role": self.default_role,
            "oidc_client_id": self.oidc_client_id,
            "oidc_client_secret": self.oidc_client_secret,
            "oidc_response_mode": self.oidc_response_mode,
            "oidc_response_types": list(self.oidc_response_types),
            "namespace_in_state": self.namespace_in_state,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> JWTConfig:
        return cls(
            source=SourceConfig(
                jwt_validation_pubkeys=tuple(record.get("jwt_validation_pubkeys", ())),
                jwks_url=record.get("jwks_url", ""),
                jwks_ca_pem=record.get("jwks_ca_pem", ""),
                oidc_discovery_url=record.get("oidc_discovery_url", ""),
                oidc_discovery_ca_pem=record.get("oidc_discovery_ca_pem", ""),
            ),
            bound_issuer=record.get("bound_issuer", ""),
            jwt_supported_algs=tuple(record.get("jwt_supported_algs", ())),
            default_role=record.get("default_role", ""),
            oidc_client_id=record.get("oidc_client_id", ""),
            oidc_client_secret=record.get("oidc_client_secret", ""),
            oidc_response_mode=record.get("oidc_response_mode", ""),
            oidc_response_types=tuple(record.get("oidc_response_types", ())),
            namespace_in_state=record.get("namespace_in_state", True),
        )

    def describe(self) -> dict[str, Any]:
        record = self.to_record()
        del record["oidc_client_secret"]  # write-only, like Vault
        record["provider_config"] = {}
        return record


async def load_config(storage: Storage) -> JWTConfig | None:
    record = await get_json(storage, CONFIG_KEY)
    return None if record is None else JWTConfig.from_record(record)


@dataclass(frozen=True, slots=True)
class ConfigArgs:
    oidc_discovery_url: str = ""
    oidc_discovery_ca_pem: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = field(default="", repr=False)
    oidc_response_mode: str = ""
    oidc_response_types: list[str] = field(default_factory=list)
    # Vault Enterprise namespaces do not exist here: stored and shown, no effect
    namespace_in_state: bool = True
    provider_config: dict[str, Any] = field(default_factory=dict)
    jwks_url: str = ""
    jwks_ca_pem: str = ""
    jwt_validation_pubkeys: list[str] = field(default_factory=list)
    bound_issuer: str = ""
    jwt_supported_algs: list[str] = field(default_factory=list)
    default_role: str = ""


class ConfigPaths:
    def __init__(self, cache: KeyCache) -> None:
        self.cache = cache

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"config",
                args=ConfigArgs,
                operations={Operation.READ: self.read, Operation.UPDATE: self.write},
                synopsis="Configure how JWTs are verified.",
                description=__doc__ or "",
            ),
        ]

    async def read(self, request: Request, args: ConfigArgs) -> Response | None:
        config = await load_config(storage_of(request))
        return None if config is None else Response(data=config.describe())

    async def write(self, request: Request, args: ConfigArgs) -> Response | None:
        source = SourceConfig(
            jwt_validation_pubkeys=tuple(args.jwt_validation_pubkeys),
            jwks_url=args.jwks_url.strip(),
            jwks_ca_pem=args.jwks_ca_pem,
            oidc_discovery_url=args.oidc_discovery_url.strip(),
            oidc_discovery_ca_pem=args.oidc_discovery_ca_pem,
        )
        chosen = [bool(source.jwt_validation_pubkeys), bool(source.jwks_url)]
        chosen.append(bool(source.oidc_discovery_url))
        if sum(chosen) != 1:
            raise InvalidRequest(
                "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' "
                "must be set"
            )
        if bool(args.oidc_client_id) != bool(args.oidc_client_secret):
            raise InvalidRequest(
                "both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC"
            )
        if args.oidc_client_id and not source.oidc_discovery_url:
            raise InvalidRequest("'oidc_discovery_url' must be set for OIDC")
        types = tuple(dict.fromkeys(t.strip() for t in args.oidc_response_types if t.strip()))
        if any(t not in ("code", "id_token") for t in types):
            raise InvalidRequest("invalid response_types: 'code' and 'id_token' are allowed")
        if "id_token" in types:
            raise InvalidRequest(
                "the 'id_token' response type (implicit flow) is not supported: use 'code'"
            )
        if args.provider_config:
            raise InvalidRequest(
                "provider_config: provider-specific handling (Azure, Google, …) is not supported"
            )
        if args.oidc_response_mode not in RESPONSE_MODES:
            raise InvalidRequest(f"invalid response_mode: {args.oidc_response_mode!r}")
        urls = ((source.jwks_url, "jwks_url"), (source.oidc_discovery_url, "oidc_discovery_url"))
        for url, name in urls:
            if url and not url.startswith(("https://", "http://")):
                raise InvalidRequest(f"{name}: expected an http(s) URL")
        if source.jwks_ca_pem:
            tls_context(source.jwks_ca_pem, "jwks_ca_pem")
        if source.oidc_discovery_ca_pem:
            tls_context(source.oidc_discovery_ca_pem, "oidc_discovery_ca_pem")
        algs = tuple(dict.fromkeys(args.jwt_supported_algs))
        for alg in algs:
            if alg not in ASYMMETRIC_ALGS:
                raise InvalidRequest(
                    "jwt_supported_algs: only asymmetric algorithms are supported: "
                    + ", ".join(ASYMMETRIC_ALGS)
                )
        keys = await load(source)  # refuses a source that does not work now
        if not keys.keys:
            raise InvalidRequest("no usable signature keys found at the configured source")
        config = JWTConfig(
            source=source,
            bound_issuer=args.bound_issuer,
            jwt_supported_algs=algs,
            default_role=args.default_role.lower(),  # role names are lower case (Vault)
            oidc_client_id=args.oidc_client_id,
            oidc_client_secret=args.oidc_client_secret,
            oidc_response_mode=args.oidc_response_mode,
            oidc_response_types=types,
            namespace_in_state=args.namespace_in_state,
        )
        if config.oidc_flow and not (keys.endpoints.authorization and keys.endpoints.token):
            raise InvalidRequest(
                "oidc_discovery_url: the discovery document lacks authorization_endpoint or "
                "token_endpoint"
            )
        await put_json(storage_of(request), CONFIG_KEY, config.to_record())
        self.cache.put(source, keys)
        return None
