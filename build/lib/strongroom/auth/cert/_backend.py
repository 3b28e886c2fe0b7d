"""The cert factory, ``login`` and the renewal hook.

The client certificate comes from the TLS listener, which already verified it against its
``tls_client_ca_file`` (``Connection.peer_cert_der``; intermediates the client sent, when the
listener can see them, in ``peer_chain_der``). Login ``{name?}`` tries the named
``certs/<name>`` entry, or every entry in name order, and takes the first whose trust
(chain to its CA, or the identical pinned certificate), revocation (the in-memory CRLs) and
``allowed_*`` constraints all pass; then the entry's ``token_bound_cidrs``.

The identity alias name is the certificate's common name (Vault's choice). Token metadata:
``cert_name``, ``common_name``, ``serial_number``, ``subject_key_id``, ``authority_key_id``.
``internal_data`` keeps the SHA-256 fingerprint of the login certificate: renewal must present
the same certificate (unless ``config.disable_binding``), which must still be trusted and
unrevoked, so a stolen token cannot be kept alive from another client and revoking the
certificate stops renewals.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from strongroom.auth._common import storage_of
from strongroom.auth._tokenfields import TokenParams, renewal_secrets
from strongroom.auth.cert._certs import (
    CERT_PREFIX,
    CertPaths,
    CertRole,
    load_cert_role,
    load_config,
)
from strongroom.auth.cert._crls import CRLPaths, CRLSet
from strongroom.auth.cert._verify import (
    common_name,
    constraints_met,
    fingerprint,
    key_id_text,
    parse_pem_certificates,
    trusted_chain,
)
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import FrameworkBackend, Path
from strongroom.logical import (
    Backend,
    BackendConfig,
    BackendKind,
    Operation,
    Request,
    Response,
    Storage,
)

__all__ = ["LoginArgs", "factory"]

_NO_MATCH = "no chain matching all constraints could be found for this login certificate"


@dataclass(frozen=True, slots=True)
class LoginArgs:
    name: str = ""


def _client_certificates(request: Request) -> tuple[x509.Certificate, list[x509.Certificate]]:
    der = request.connection.peer_cert_der
    if not der:
        raise InvalidRequest("client certificate must be supplied")
    try:
        leaf = x509.load_der_x509_certificate(der)
        chain = [
            x509.load_der_x509_certificate(item)
            for item in request.connection.peer_chain_der
            if item != der
        ]
    except ValueError:
        raise InvalidRequest("client certificate could not be parsed") from None
    return leaf, chain


class CertLogin:
    def __init__(self, crls: CRLSet, now: Callable[[], float]) -> None:
        self.crls = crls
        self.now = now

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"login",
                args=LoginArgs,
                operations={Operation.UPDATE: self.login},
                synopsis="Log in with the TLS client certificate.",
                description=__doc__ or "",
            )
        ]

    def _accepts(
        self, role: CertRole, leaf: x509.Certificate, chain: list[x509.Certificate]
    ) -> bool:
        anchors = parse_pem_certificates(role.certificate)
        verified = trusted_chain(anchors, leaf, chain, self.now())
        if verified is None or any(self.crls.revoked(cert) for cert in verified):
            return False
        return constraints_met(leaf, **role.constraints())

    async def _match(
        self, storage: Storage, leaf: x509.Certificate, chain: list[x509.Certificate], name: str
    ) -> tuple[str, CertRole] | None:
        names = [name.lower()] if name else await storage.list(CERT_PREFIX)
        for candidate in names:
            if candidate.endswith("/"):
                continue
            role = await load_cert_role(storage, candidate)
            if role is not None and self._accepts(role, leaf, chain):
                return candidate, role
        return None

    async def login(self, request: Request, args: LoginArgs) -> Response:
        leaf, chain = _client_certificates(request)
        found = await self._match(storage_of(request), leaf, chain, args.name)
        if found is None:
            raise InvalidRequest(_NO_MATCH)
        name, role = found
        role.token.check_remote(request)
        cn = common_name(leaf)
        skid, akid = key_id_text(leaf, "subject"), key_id_text(leaf, "authority")
        return Response(
            auth=role.token.auth(
                alias_name=cn,
                display_name=role.display_name or name,
                metadata={
                    "cert_name": name,
                    "common_name": cn,
                    "serial_number": str(leaf.serial_number),
                    "subject_key_id": skid,
                    "authority_key_id": akid,
                },
                internal_data={
                    "cert_name": name,
                    "fingerprint": fingerprint(leaf),
                    "subject_key_id": skid,
                    "authority_key_id": akid,
                },
            )
        )

    async def renew_check(self, request: Request, internal: Mapping[str, Any]) -> TokenParams:
        storage = storage_of(request)
        name = str(internal.get("cert_name", ""))
        role = await load_cert_role(storage, name)
        if role is None:
            raise InvalidRequest("certificate role no longer exists")
        if (await load_config(storage)).disable_binding:
            return role.token
        leaf, chain = _client_certificates(request)
        # the renewing client must hold the very certificate that logged in ...
        if not hmac.compare_digest(fingerprint(leaf), str(internal.get("fingerprint", ""))):
            raise PermissionDenied(
                "client identity during renewal not matching client identity used during login"
            )
        # ... and it must still be trusted by this entry and not revoked since
        if not self._accepts(role, leaf, chain):
            raise PermissionDenied(_NO_MATCH)
        return role.token


async def factory(config: BackendConfig) -> Backend:
    """Build a cert auth backend for a mount.

    Args:
        config: the mount's configuration; ``initialize()`` (mount creation and every unseal)
            loads the mount's CRLs into memory.

    Returns:
        The backend; ``login`` is reachable without a token.
    """
    crls = CRLSet()
    login = CertLogin(crls, config.system.now)

    async def initialize() -> None:
        await crls.load(config.storage)

    return FrameworkBackend(
        kind=BackendKind.AUTH,
        paths=[*CertPaths().paths(), *CRLPaths(crls).paths(), *login.paths()],
        help=_BACKEND_HELP,
        unauthenticated_paths=("login",),
        initialize=initialize,
        secrets=renewal_secrets(login.renew_check),
    )


_BACKEND_HELP = """\
The cert auth method logs in clients by their TLS client certificate: chained to a trusted CA
or identical to a pinned certificate, not revoked by a configured CRL, and matching the
entry's name constraints."""
