"""ACME orders (RFC 8555 §7.4-7.6): ``acme/new-order``, ``acme/order/:id`` (and
``/finalize``, ``/cert``), ``acme/authorization/:id``, ``acme/challenge/:id/:type`` and
``acme/revoke-cert``. Challenges are validated in background tasks; issuance follows the
directory's role (or sign-verbatim) with the order's identifiers as the only names."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import secrets
import uuid
from typing import Any

from cryptography import x509

from strongroom.engines.pki._acme_challenges import check_dns01, check_http01, check_tls_alpn01
from strongroom.engines.pki._acme_context import AcmeContext, Authed, Directory, rfc3339
from strongroom.engines.pki._acme_protocol import AcmeProblem, b64url, b64url_decode
from strongroom.engines.pki._build import Template
from strongroom.engines.pki._crypto import (
    cert_der,
    cert_pem,
    common_name_of,
    format_serial,
    key_type_of,
)
from strongroom.engines.pki._role import RoleArgs, check_names, valid_hostname
from strongroom.engines.pki._store import IssuerRecord
from strongroom.engines.pki.acme_accounts import AcmeArgs, acme_path
from strongroom.engines.pki.revoke import Revoker
from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

__all__ = ["AcmeOrderPaths"]

log = logging.getLogger("strongroom.engines.pki")

ORDER_LIFETIME = 24 * 3600
_ATTEMPTS = 3
_RETRY_DELAY = 0.5
_VERBATIM = RoleArgs(name="", allow_any_name=True, key_type="any", allow_ip_sans=True)


class AcmeOrderPaths:
    def __init__(
        self, ctx: AcmeContext, revoker: Revoker, *, http01_port: int, tls_alpn01_port: int
    ) -> None:
        self.ctx = ctx
        self.revoker = revoker
        self.http01_port = http01_port
        self.tls_alpn01_port = tls_alpn01_port
        self.tasks: set[asyncio.Task[None]] = set()

    def paths(self) -> list[Path]:
        ctx = self.ctx
        return [
            acme_path(ctx, "new-order", {Operation.UPDATE: self.new_order}, "Create an order"),
            acme_path(ctx, r"order/(?P<id>[^/]+)", {Operation.UPDATE: self.order}, "An order"),
            acme_path(
                ctx,
                r"order/(?P<id>[^/]+)/finalize",
                {Operation.UPDATE: self.finalize},
                "Finalize an order with a CSR",
            ),
            acme_path(
                ctx,
                r"order/(?P<id>[^/]+)/cert",
                {Operation.UPDATE: self.certificate},
                "Download an order's certificate chain",
            ),
            acme_path(
                ctx,
                r"authorization/(?P<id>[^/]+)",
                {Operation.UPDATE: self.authorization},
                "An authorization",
            ),
            acme_path(
                ctx,
                r"challenge/(?P<id>[^/]+)/(?P<challenge_type>[^/]+)",
                {Operation.UPDATE: self.challenge},
                "Respond to a challenge",
            ),
            acme_path(ctx, "revoke-cert", {Operation.UPDATE: self.revoke}, "Revoke a certificate"),
        ]

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass

    # -- bodies ---------------------------------------------------------------------------

    def _order_body(self, d: Directory, order: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": order["status"],
            "expires": order["expires"],
            "identifiers": order["identifiers"],
            "authorizations": [d.url(f"authorization/{a}") for a in order["authorizations"]],
            "finalize": d.url(f"order/{order['id']}/finalize"),
        }
        if order.get("serial"):
            body["certificate"] = d.url(f"order/{order['id']}/cert")
        if order.get("error"):
            body["error"] = order["error"]
        return body

    def _challenge_body(
        self, d: Directory, authz: dict[str, Any], c: dict[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": c["type"],
            "url": d.url(f"challenge/{authz['id']}/{c['type']}"),
            "status": c["status"],
            "token": c["token"],
        }
        if c.get("validated"):
            body["validated"] = c["validated"]
        if c.get("error"):
            body["error"] = c["error"]
        return body

    def _authz_body(self, d: Directory, authz: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "identifier": authz["identifier"],
            "status": authz["status"],
            "expires": authz["expires"],
            "challenges": [self._challenge_body(d, authz, c) for c in authz["challenges"]],
        }
        if authz.get("wildcard"):
            body["wildcard"] = True
        return body

    # -- orders ---------------------------------------------------------------------------

    async def new_order(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        ctx = self.ctx
        authed = await ctx.authenticate(request, d)
        account = authed.account
        assert account is not None
        payload = authed.payload or {}
        if payload.get("notBefore") or payload.get("notAfter"):
            raise AcmeProblem("malformed", "notBefore and notAfter are not supported")
        identifiers = payload.get("identifiers")
        if not isinstance(identifiers, list) or not identifiers:
            raise AcmeProblem("malformed", "an order needs a non-empty identifiers list")
        clean: list[dict[str, str]] = []
        for item in identifiers:
            if not isinstance(item, dict) or not isinstance(item.get("value"), str):
                raise AcmeProblem("malformed", "each identifier needs a type and a value")
            kind, value = item.get("type"), item["value"]
            if kind == "dns":
                value = value.lower().rstrip(".")
                if not valid_hostname(value[2:] if value.startswith("*.") else value):
                    raise AcmeProblem("rejectedIdentifier", f"{value} is not a valid DNS name")
            elif kind == "ip":
                try:
                    value = str(ipaddress.ip_address(value))
                except ValueError:
                    raise AcmeProblem(
                        "rejectedIdentifier", f"{value} is not an IP address"
                    ) from None
            else:
                raise AcmeProblem(
                    "unsupportedIdentifier", f"identifier type {kind!r} is not supported"
                )
            entry = {"type": kind, "value": value}
            if entry not in clean:
                clean.append(entry)
        role = d.role or _VERBATIM
        dns = [i["value"] for i in clean if i["type"] == "dns"]
        refused = check_names(role, dns)
        if refused is not None:
            raise AcmeProblem("rejectedIdentifier", f"{refused} is not allowed by the role")
        if any(i["type"] == "ip" for i in clean) and not role.allow_ip_sans:
            raise AcmeProblem("rejectedIdentifier", "IP identifiers are not allowed by the role")
        now = ctx.store.system.now()
        expires = rfc3339(now + ORDER_LIFETIME)
        authz_ids = []
        for identifier in clean:
            value = identifier["value"]
            wildcard = value.startswith("*.")
            if wildcard:
                kinds: tuple[str, ...] = ("dns-01",)  # only DNS can prove a whole zone
            elif identifier["type"] == "dns":
                kinds = ("http-01", "tls-alpn-01", "dns-01")
            else:
                kinds = ("http-01", "tls-alpn-01")
            authz = {
                "id": str(uuid.uuid4()),
                "account": account["id"],
                "identifier": {"type": identifier["type"], "value": value.removeprefix("*.")},
                "wildcard": wildcard,
                "status": "pending",
                "expires": expires,
                "challenges": [
                    {"type": t, "token": b64url(secrets.token_bytes(32)), "status": "pending"}
                    for t in kinds
                ],
            }
            await ctx.put("authz", authz)
            authz_ids.append(authz["id"])
        order = {
            "id": str(uuid.uuid4()),
            "account": account["id"],
            "status": "pending",
            "expires": expires,
            "identifiers": clean,
            "authorizations": authz_ids,
            "directory": d.prefix,
        }
        await ctx.put("orders", order)
        async with ctx.lock("accounts", account["id"]):
            current = await ctx.account(account["id"])
            if current is not None:
                current.setdefault("orders", []).append(order["id"])
                await ctx.put("accounts", current)
        url = d.url(f"order/{order['id']}")
        return ctx.reply(d, 201, self._order_body(d, order), location=url)

    async def _refresh(self, order: dict[str, Any]) -> dict[str, Any]:
        """pending → ready once every authorization is valid (→ invalid if one failed)."""
        if order["status"] != "pending":
            return order
        statuses = []
        for authz_id in order["authorizations"]:
            authz = await self.ctx.get("authz", authz_id)
            statuses.append(authz["status"] if authz else "invalid")
        if any(s in ("invalid", "deactivated", "revoked") for s in statuses):
            order["status"] = "invalid"
        elif all(s == "valid" for s in statuses):
            order["status"] = "ready"
        else:
            return order
        await self.ctx.put("orders", order)
        return order

    async def _owned_order(self, authed: Authed, order_id: str) -> dict[str, Any]:
        async with self.ctx.lock("orders", order_id):
            order = self.ctx.owned(await self.ctx.get("orders", order_id), authed, "order")
            return await self._refresh(order)

    async def order(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        authed = await self.ctx.authenticate(request, d)
        order = await self._owned_order(authed, args.id)
        return self.ctx.reply(d, 200, self._order_body(d, order))

    async def finalize(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        ctx = self.ctx
        authed = await ctx.authenticate(request, d)
        payload = authed.payload or {}
        try:
            csr = x509.load_der_x509_csr(b64url_decode(str(payload.get("csr", ""))))
            valid = csr.is_signature_valid
        except (ValueError, AcmeProblem):
            raise AcmeProblem("badCSR", "the CSR could not be parsed") from None
        if not valid:
            raise AcmeProblem("badCSR", "the CSR's signature is invalid")
        async with ctx.lock("orders", args.id):
            order = ctx.owned(await ctx.get("orders", args.id), authed, "order")
            order = await self._refresh(order)
            if order["status"] != "ready":
                raise AcmeProblem(
                    "orderNotReady", f"the order is {order['status']}, not ready", 403
                )
            order["status"] = "processing"
            await ctx.put("orders", order)
            try:
                serial = await self._issue(d, order, csr)
            except AcmeProblem:
                order["status"] = "ready"  # a bad CSR may be fixed and sent again
                await ctx.put("orders", order)
                raise
            order["status"] = "valid"
            order["serial"] = serial
            await ctx.put("orders", order)
        await ctx.put("certs", {"account": order["account"]}, serial.replace(":", "-"))
        return ctx.reply(d, 200, self._order_body(d, order), location=d.url(f"order/{order['id']}"))

    async def _issue(
        self, d: Directory, order: dict[str, Any], csr: x509.CertificateSigningRequest
    ) -> str:
        store = self.ctx.store
        wanted_dns = sorted(i["value"] for i in order["identifiers"] if i["type"] == "dns")
        wanted_ip = sorted(i["value"] for i in order["identifiers"] if i["type"] == "ip")
        try:
            sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            csr_dns = [n.lower() for n in sans.get_values_for_type(x509.DNSName)]
            csr_ip = [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
        except x509.ExtensionNotFound:
            csr_dns, csr_ip = [], []
        cn = common_name_of(csr.subject)
        if cn and cn.lower() not in csr_dns and cn not in csr_ip:
            (csr_ip if _is_ip(cn) else csr_dns).append(cn.lower())
        if sorted(set(csr_dns)) != wanted_dns or sorted(set(csr_ip)) != wanted_ip:
            raise AcmeProblem("badCSR", "the CSR's names do not match the order's identifiers")
        public_key = csr.public_key()
        try:
            key_type = key_type_of(public_key)
        except InvalidRequest:
            raise AcmeProblem("badCSR", "unsupported key type in the CSR") from None
        role = d.role or _VERBATIM
        if key_type == "rsa" and getattr(public_key, "key_size", 0) < 2048:
            raise AcmeProblem("badCSR", "RSA keys < 2048 bits are unsafe and not supported")
        if role.key_type not in ("any", key_type):
            raise AcmeProblem("badCSR", f"the role requires {role.key_type} keys")
        issuer = await store.resolve_issuer(d.issuer_ref or role.issuer_ref or "default")
        issuer = _truncating(issuer)
        warnings: list[str] = []
        max_ttl = int(d.config["max_ttl"]) or store.system.max_lease_ttl()
        ttl = min(role.ttl or store.system.default_lease_ttl(), max_ttl)
        start, end = self.ctx.issuing.validity(
            ttl=ttl,
            not_after="",
            role_ttl=0,
            role_max_ttl=min(role.max_ttl or max_ttl, max_ttl),
            not_before_duration=role.not_before_duration,
            issuer=issuer,
            warnings=warnings,
        )
        ekus = ["ServerAuth"]
        if d.config["allow_role_ext_key_usage"] and d.role is not None:
            ekus = [
                n
                for f, n in ((role.server_flag, "ServerAuth"), (role.client_flag, "ClientAuth"))
                if f
            ]
            ekus += [e for e in role.ext_key_usage if e not in ekus]
        common_name = cn if cn else (wanted_dns[0] if wanted_dns else "")
        template = Template(
            common_name=common_name if not _is_ip(common_name) else "",
            dns_names=wanted_dns,
            ip_addresses=wanted_ip,
            ou=list(role.ou),
            organization=list(role.organization),
            country=list(role.country),
            locality=list(role.locality),
            province=list(role.province),
            street_address=list(role.street_address),
            postal_code=list(role.postal_code),
            not_before=start,
            not_after=end,
            key_usage=list(role.key_usage),
            ext_key_usage=ekus,
            policy_identifiers=list(role.policy_identifiers),
            signature_bits=role.signature_bits,
            use_pss=role.use_pss,
        )
        signing_key = await self.ctx.issuing.issuer_key(issuer)
        signed = await self.ctx.issuing.sign(template, public_key, issuer, signing_key)  # type: ignore[arg-type]
        return signed.serial

    async def certificate(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        authed = await self.ctx.authenticate(request, d)
        order = await self._owned_order(authed, args.id)
        if order["status"] != "valid" or not order.get("serial"):
            raise AcmeProblem("orderNotReady", "the order has no certificate yet", 403)
        store = self.ctx.store
        der = await store.cert_der(order["serial"])
        if der is None:
            raise AcmeProblem("malformed", "the certificate is no longer stored", 404)
        cert = x509.load_der_x509_certificate(der)
        chain = [cert_pem(cert)]
        revoker_issuer = await self.revoker.issuer_of(cert)
        if revoker_issuer is not None:
            chain.extend(await store.chain(revoker_issuer))
        body = ("\n".join(chain) + "\n").encode()
        return self.ctx.reply(d, 200, raw=body, content_type="application/pem-certificate-chain")

    # -- authorizations and challenges -----------------------------------------------------

    async def authorization(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        ctx = self.ctx
        authed = await ctx.authenticate(request, d)
        async with ctx.lock("authz", args.id):
            authz = ctx.owned(await ctx.get("authz", args.id), authed, "authorization")
            payload = authed.payload or {}
            if payload.get("status") == "deactivated":
                authz["status"] = "deactivated"
                await ctx.put("authz", authz)
            elif payload:
                raise AcmeProblem("malformed", "an authorization can only be deactivated")
        return ctx.reply(d, 200, self._authz_body(d, authz))

    async def challenge(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        ctx = self.ctx
        authed = await ctx.authenticate(request, d)
        assert authed.account is not None
        async with ctx.lock("authz", args.id):
            authz = ctx.owned(await ctx.get("authz", args.id), authed, "authorization")
            found = [c for c in authz["challenges"] if c["type"] == args.challenge_type]
            if not found:
                raise AcmeProblem("malformed", f"no {args.challenge_type} challenge here", 404)
            challenge = found[0]
            if (
                authed.payload is not None
                and challenge["status"] == "pending"
                and authz["status"] == "pending"
            ):
                challenge["status"] = "processing"
                await ctx.put("authz", authz)
                key_authorization = f"{challenge['token']}.{authed.account['thumbprint']}"
                resolver = str(d.config.get("dns_resolver", ""))
                task = asyncio.get_running_loop().create_task(
                    self._validate(args.id, challenge["type"], key_authorization, resolver)
                )
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        return ctx.reply(
            d,
            200,
            self._challenge_body(d, authz, challenge),
            links=(f'<{d.url(f"authorization/{args.id}")}>;rel="up"',),
        )

    async def _validate(
        self, authz_id: str, kind: str, key_authorization: str, resolver: str
    ) -> None:
        ctx = self.ctx
        authz = await ctx.get("authz", authz_id)
        if authz is None:
            return
        identifier = authz["identifier"]
        value, is_ip = identifier["value"], identifier["type"] == "ip"
        error: str | None = "not attempted"
        for attempt in range(_ATTEMPTS):
            if attempt:
                await asyncio.sleep(_RETRY_DELAY * attempt)
            if kind == "dns-01":
                error = await check_dns01(value, key_authorization, resolver)
            elif kind == "http-01":
                error = await check_http01(
                    value, key_authorization.split(".")[0], key_authorization, self.http01_port
                )
            else:
                error = await check_tls_alpn01(
                    value, is_ip, key_authorization, self.tls_alpn01_port
                )
            if error is None:
                break
        async with ctx.lock("authz", authz_id):
            authz = await ctx.get("authz", authz_id)
            if authz is None:
                return
            for challenge in authz["challenges"]:
                if challenge["type"] != kind:
                    continue
                if error is None:
                    challenge["status"] = "valid"
                    challenge["validated"] = rfc3339(ctx.store.system.now())
                else:
                    challenge["status"] = "invalid"
                    challenge["error"] = {
                        "type": "urn:ietf:params:acme:error:"
                        + {"tls-alpn-01": "tls", "dns-01": "dns"}.get(kind, "incorrectResponse"),
                        "detail": error,
                        "status": 400,
                    }
            authz["status"] = "valid" if error is None else "invalid"
            await ctx.put("authz", authz)
        if error is not None:
            log.info("pki: ACME %s challenge failed: %s", kind, error)

    # -- revocation ----------------------------------------------------------------------

    async def revoke(self, request: Request, args: AcmeArgs, d: Directory) -> Response:
        ctx = self.ctx
        authed = await ctx.authenticate(request, d, jwk_ok=True)
        payload = authed.payload or {}
        reason = payload.get("reason", 0)
        if not isinstance(reason, int) or reason not in (0, 1, 3, 4, 5, 9):
            raise AcmeProblem("badRevocationReason", "unsupported revocation reason")
        try:
            cert = x509.load_der_x509_certificate(
                b64url_decode(str(payload.get("certificate", "")))
            )
        except ValueError:
            raise AcmeProblem("malformed", "the certificate could not be parsed") from None
        serial = format_serial(cert.serial_number)
        stored = await ctx.store.cert_der(serial)
        if stored is None or stored != cert_der(cert):
            raise AcmeProblem("malformed", "this server did not issue the certificate", 404)
        if authed.account is not None:
            owner = await ctx.get("certs", serial.replace(":", "-"))
            if owner is None or owner.get("account") != authed.account["id"]:
                raise AcmeProblem("unauthorized", "the account did not order this certificate", 403)
        elif authed.key.public_key != cert.public_key():
            raise AcmeProblem("unauthorized", "the JWS is not signed by the certificate's key", 403)
        if await ctx.store.revoked(serial) is not None:
            raise AcmeProblem("alreadyRevoked", "the certificate is already revoked")
        await self.revoker.revoke(serial, cert)
        return ctx.reply(d, 200)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _truncating(issuer: IssuerRecord) -> IssuerRecord:
    """ACME leaves never outlive their issuer: truncate rather than refuse."""
    if issuer.leaf_not_after_behavior == "err":
        return dataclasses.replace(issuer, leaf_not_after_behavior="truncate")
    return issuer
