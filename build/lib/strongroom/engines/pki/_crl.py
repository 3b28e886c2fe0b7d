"""Building and keeping CRLs: one full and one delta CRL per issuer.

Numbers come from one counter per issuer (``crls/state``), taken under a lock, so two
concurrent rebuilds never sign two different CRLs with the same number. A delta CRL lists
the revocations made since the last full CRL and names that CRL's number in its Delta CRL
Indicator. Signing a CRL with many entries is slow, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki._crypto import PrivateKey, sign_padding, signature_hash
from strongroom.engines.pki._store import IssuerRecord, PKIStore
from strongroom.errors import InvalidRequest
from strongroom.framework import get_json, parse_duration, put_json

__all__ = ["CRL_DEFAULTS", "CRLBuilder", "crl_config"]

_BUILD_LOCK = "crls/build"
_INLINE_LIMIT = 64  # CRLs with more entries are built and signed in a worker thread

CRL_DEFAULTS: dict[str, Any] = {
    "expiry": "72h",
    "disable": False,
    "ocsp_disable": False,
    "ocsp_expiry": "12h",
    "auto_rebuild": False,
    "auto_rebuild_grace_period": "12h",
    "enable_delta": False,
    "delta_rebuild_interval": "15m",
    "cross_cluster_revocation": False,
    "unified_crl": False,
    "unified_crl_on_existing_paths": False,
    "max_crl_entries": 100000,
}


async def crl_config(store: PKIStore) -> dict[str, Any]:
    config = dict(CRL_DEFAULTS)
    config.update(await store.config("crl"))
    return config


def seconds(config: dict[str, Any], name: str) -> int:
    return int(parse_duration(config[name], name))


@dataclass(frozen=True, slots=True)
class _Entry:
    serial: int
    when: float


def _sign_crl(
    issuer_cert: x509.Certificate,
    key: PrivateKey,
    entries: list[_Entry],
    number: int,
    now: datetime.datetime,
    next_update: datetime.datetime,
    delta_of: int | None,
    use_pss: bool,
) -> bytes:
    # The revoked list goes to the builder's constructor: add_revoked_certificate() copies
    # the list each time, which is quadratic (40,000 entries: 8 s; this way 100,000: <2 s).
    revoked = [
        x509.RevokedCertificateBuilder()
        .serial_number(entry.serial)
        .revocation_date(datetime.datetime.fromtimestamp(int(entry.when), datetime.UTC))
        .build()
        for entry in entries
    ]
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=revoked)
        .issuer_name(issuer_cert.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    except x509.ExtensionNotFound:
        pass
    if delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    crl = builder.sign(
        key,
        signature_hash(key),  # type: ignore[arg-type]
        rsa_padding=sign_padding(key, use_pss),  # type: ignore[arg-type]
    )
    return crl.public_bytes(serialization.Encoding.DER)


class CRLBuilder:
    """Rebuilds and serves the CRLs of one mount."""

    def __init__(self, store: PKIStore) -> None:
        self.store = store
        # rebuild tickets handed out and covered, per kind ("full", "delta"): see rebuild()
        self._requested = {"full": 0, "delta": 0}
        self._built = {"full": 0, "delta": 0}

    async def _revoked_by_issuer(self) -> dict[str, list[_Entry]]:
        """Every revocation, by issuer, from the store's index buckets (a few hundred reads
        however many revocations there are). Called under _BUILD_LOCK."""
        out: dict[str, list[_Entry]] = {}
        for key, (issuer_id, when) in (await self.store.revocation_index()).items():
            out.setdefault(issuer_id, []).append(_Entry(int(key.replace("-", ""), 16), when))
        return out

    async def warm(self) -> None:
        """At mount start: build the revocation index if this mount's revocations predate
        it, so that no rebuild has to."""
        async with self.store.locks.hold(_BUILD_LOCK):
            await self.store.revocation_index()

    async def rebuild(
        self, *, delta_only: bool = False, force_full: bool = True, coalesce: bool = False
    ) -> list[str]:
        """Rebuild every signing issuer's full CRL (and delta CRL when enabled).

        With ``coalesce`` (after a revocation was stored) the call may return without
        building when a rebuild of the same kind that *started* after this call already
        finished: it read storage after the revocation was written, so it lists it. A
        burst of revocations then costs a couple of rebuilds, not one each.
        """
        kind = "delta" if delta_only else "full"
        self._requested[kind] += 1
        ticket = self._requested[kind]
        # One rebuild at a time, reading the revocations inside the lock: a CRL with a
        # higher number never lists fewer revocations than one with a lower number.
        async with self.store.locks.hold(_BUILD_LOCK):
            if coalesce and self._built[kind] >= ticket:
                return []
            # every request so far came after its revocation was stored: this rebuild,
            # reading storage from here on, lists them all
            covered = dict(self._requested)
            config = await crl_config(self.store)
            revoked = await self._revoked_by_issuer()
            for issuer in await self.store.issuers():
                if not issuer.key_id or "crl-signing" not in issuer.usage:
                    continue
                entries = revoked.get(issuer.id, [])
                if not delta_only and force_full:
                    await self._build(issuer, entries, config, delta=False)
                if config["enable_delta"]:
                    await self._build(issuer, entries, config, delta=True)
            self._built[kind] = max(self._built[kind], covered[kind])
            if kind == "full":  # a full rebuild also rebuilt the delta CRLs
                self._built["delta"] = max(self._built["delta"], covered["delta"])
        return []

    async def _build(
        self,
        issuer: IssuerRecord,
        records: list[_Entry],
        config: dict[str, Any],
        *,
        delta: bool,
    ) -> bytes:
        key_record = await self.store.key(issuer.key_id)
        if key_record is None:
            raise InvalidRequest(f"the key of issuer {issuer.id} is missing")
        key = self.store.private_key(key_record)
        issuer_cert = self.store.cert(issuer.certificate)
        now_ts = self.store.system.now()
        now = datetime.datetime.fromtimestamp(int(now_ts), datetime.UTC)
        state_key = f"crls/state-{issuer.id}"
        # the caller holds _BUILD_LOCK: the number is read, bumped and stored under it
        state = await get_json(self.store.storage, state_key)

        numbers = state or {"number": 0, "full": 0, "full_time": 0}
        numbers["number"] += 1
        number = numbers["number"]
        if delta:
            base_time = float(numbers.get("full_time", 0))
            entries = [r for r in records if r.when >= base_time]
            delta_of: int | None = int(numbers.get("full", 0)) or number
            next_update = now + datetime.timedelta(
                seconds=seconds(config, "delta_rebuild_interval") + seconds(config, "expiry")
            )
        else:
            entries = [] if config["disable"] else records
            delta_of = None
            next_update = now + datetime.timedelta(seconds=seconds(config, "expiry"))
            numbers["full"] = number
            numbers["full_time"] = now_ts
        use_pss = issuer.revocation_signature_algorithm.endswith("PSS")
        sign_args = (issuer_cert, key, entries, number, now, next_update, delta_of, use_pss)
        if len(entries) > 64:
            der = await asyncio.to_thread(_sign_crl, *sign_args)
        else:
            der = _sign_crl(*sign_args)
        await self.store.storage.put(f"crls/{issuer.id}{'-delta' if delta else ''}", der)
        await put_json(self.store.storage, state_key, numbers)
        return der

    async def crl(self, issuer: IssuerRecord, *, delta: bool) -> bytes | None:
        """The issuer's last CRL (built now if there is none yet)."""
        name = f"crls/{issuer.id}{'-delta' if delta else ''}"
        der = await self.store.storage.get(name)
        if der is not None:
            return der
        config = await crl_config(self.store)
        if (delta and not config["enable_delta"]) or not issuer.key_id:
            return None
        async with self.store.locks.hold(_BUILD_LOCK):
            der = await self.store.storage.get(name)
            if der is not None:
                return der
            revoked = await self._revoked_by_issuer()
            return await self._build(issuer, revoked.get(issuer.id, []), config, delta=delta)

    async def next_update(self, issuer: IssuerRecord) -> datetime.datetime | None:
        der = await self.store.storage.get(f"crls/{issuer.id}")
        if der is None:
            return None
        return x509.load_der_x509_crl(der).next_update_utc
