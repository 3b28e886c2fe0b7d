"""sign/, verify/ and hmac/: signatures and MACs with named keys.

``sign/<name>(/<hash_algorithm>)`` signs base64 ``input`` with an ed25519, ECDSA or RSA key:
ECDSA and RSA hash the input first (``hash_algorithm``, default sha2-256) unless
``prehashed``; RSA uses PSS (``salt_length``: ``auto``, ``hash`` or a number) or PKCS#1 v1.5
(``signature_algorithm``); ECDSA signatures are ASN.1, or JWS ``r || s`` in URL-safe base64
with ``marshaling_algorithm=jws``. ``hmac/<name>(/<algorithm>)`` computes an HMAC with the
version's HMAC key (any key type has one). ``verify/<name>`` checks either a ``signature`` or
an ``hmac``. All three accept ``batch_input``; their batches always answer 200 with per-item
``error`` entries, as Vault's do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.engines.transit._crypto import HASHES, LoadedKey, b64decode
from strongroom.engines.transit._fields import NAME, BatchItem, batch_items
from strongroom.engines.transit._policy import b64
from strongroom.engines.transit._store import KeyStore
from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

__all__ = ["SignPaths", "parse_salt_length"]

_DEFAULT_HASH = "sha2-256"


@dataclass(frozen=True, slots=True)
class SignArgs:
    name: str
    urlalgorithm: str = ""
    input: str | None = None
    context: str = ""
    key_version: int = 0
    hash_algorithm: str = ""
    algorithm: str = ""  # deprecated spelling of hash_algorithm
    prehashed: bool = False
    signature_algorithm: str = ""
    marshaling_algorithm: str = "asn1"
    salt_length: str = "auto"
    batch_input: Any = None


@dataclass(frozen=True, slots=True)
class VerifyArgs:
    name: str
    urlalgorithm: str = ""
    input: str | None = None
    context: str = ""
    signature: str | None = None
    hmac: str | None = None
    hash_algorithm: str = ""
    algorithm: str = ""
    prehashed: bool = False
    signature_algorithm: str = ""
    marshaling_algorithm: str = "asn1"
    salt_length: str = "auto"
    batch_input: Any = None


@dataclass(frozen=True, slots=True)
class HmacArgs:
    name: str
    urlalgorithm: str = ""
    input: str | None = None
    key_version: int = 0
    algorithm: str = _DEFAULT_HASH
    batch_input: Any = None


@dataclass(frozen=True, slots=True)
class _SigOptions:
    hash_name: str
    prehashed: bool
    signature_algorithm: str
    marshaling: str
    salt_length: int


def parse_salt_length(value: str) -> int:
    """Go's convention: 0 is "auto", -1 is "hash", anything else an exact length."""
    lowered = value.strip().lower()
    if lowered == "auto":
        return 0
    if lowered == "hash":
        return -1
    try:
        length = int(lowered)
    except ValueError:
        raise InvalidRequest("salt length neither 'auto', 'hash', nor an int") from None
    if length < -1:
        raise InvalidRequest(f"salt length is invalid: {length}")
    return length


def _options(args: SignArgs | VerifyArgs) -> _SigOptions:
    hash_name = args.urlalgorithm or args.hash_algorithm or args.algorithm or _DEFAULT_HASH
    if hash_name == "none":
        # PKCS#1 v1.5 without a DigestInfo is not offered by our RSA implementation
        raise InvalidRequest("hash_algorithm=none is not supported")
    if hash_name not in HASHES:
        raise InvalidRequest(f'invalid hash algorithm "{hash_name}"')
    if args.marshaling_algorithm not in ("asn1", "jws"):
        raise InvalidRequest(f'invalid marshaling type "{args.marshaling_algorithm}"')
    return _SigOptions(
        hash_name=hash_name,
        prehashed=args.prehashed,
        signature_algorithm=args.signature_algorithm,
        marshaling=args.marshaling_algorithm,
        salt_length=parse_salt_length(args.salt_length),
    )


def _str_field(item: BatchItem, key: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"failed to parse {key} as a string")
    return value


def _input(item: BatchItem, missing: str) -> bytes:
    text = _str_field(item, "input")
    if text is None:
        raise InvalidRequest(missing)
    return b64decode(text, "input")


def _context(item: BatchItem) -> bytes:
    text = _str_field(item, "context")
    if not text:
        return b""
    try:
        return b64decode(text, "context")
    except InvalidRequest:
        raise InvalidRequest("failed to base64-decode context") from None


def _reference(item: BatchItem) -> str:
    value = item.get("reference")
    return value if isinstance(value, str) else ""


class SignPaths:
    def __init__(self, store: KeyStore) -> None:
        self.store = store

    async def _key(self, name: str, message: str) -> LoadedKey:
        key = await self.store.get(name)
        if key is None:
            raise InvalidRequest(message)
        return key

    # ---- sign --------------------------------------------------------------------------------

    async def sign(self, request: Request, args: SignArgs) -> Response:
        """Vault's pathSignWrite."""
        options = _options(args)
        key = await self._key(args.name, "signing key not found")
        if not key.spec.supports_signing:
            raise InvalidRequest(f"key type {key.spec.name} does not support signing")
        items = batch_items(args.batch_input)
        if items is None:
            single = {"input": args.input or "", "context": args.context}
            signature, version, public_key = self._sign_one(key, single, args, options)
            data: dict[str, Any] = {"signature": signature, "key_version": version}
            if public_key is not None:
                data["public_key"] = b64(public_key)
            return Response(data=data)
        results: list[dict[str, Any]] = []
        for item in items:
            try:
                signature, version, public_key = self._sign_one(key, item, args, options)
            except InvalidRequest as exc:
                results.append({"error": str(exc), "key_version": 0, "reference": _reference(item)})
                continue
            result: dict[str, Any] = {
                "signature": signature,
                "key_version": version,
                "reference": _reference(item),
            }
            if public_key is not None:
                result["publickey"] = b64(public_key)
            results.append(result)
        return Response(data={"batch_results": results})

    @staticmethod
    def _sign_one(
        key: LoadedKey, item: BatchItem, args: SignArgs, options: _SigOptions
    ) -> tuple[str, int, bytes | None]:
        return key.sign(
            _input(item, "missing input"),
            version=args.key_version,
            context=_context(item),
            hash_name=options.hash_name,
            prehashed=options.prehashed,
            signature_algorithm=options.signature_algorithm,
            marshaling=options.marshaling,
            salt_length=options.salt_length,
        )

    # ---- verify ------------------------------------------------------------------------------

    async def verify(self, request: Request, args: VerifyArgs) -> Response:
        """Vault's pathVerifyWrite: a signature, or (delegated to HMAC) an hmac."""
        items = batch_items(args.batch_input)
        batch = items is not None
        if items is None:
            single: dict[str, Any] = {"input": args.input or "", "context": args.context}
            if args.signature is not None:
                single["signature"] = args.signature
            if args.hmac is not None:
                single["hmac"] = args.hmac
            items = [single]
        has_sig = [item.get("signature") is not None for item in items]
        has_hmac = [item.get("hmac") is not None for item in items]
        if not batch and has_sig[0] and has_hmac[0]:
            raise InvalidRequest("provide one of 'signature' or 'hmac'")
        if not batch and not has_sig[0] and not has_hmac[0]:
            raise InvalidRequest("neither a 'signature' nor an 'hmac' were given to verify")
        if any(has_sig) and any(has_hmac):
            raise InvalidRequest(
                "elements of batch_input must all provide 'signature' or all provide 'hmac'"
            )
        if not all(s or h for s, h in zip(has_sig, has_hmac, strict=True)):
            if any(has_sig):
                raise InvalidRequest("some elements of batch_input are missing 'signature'")
            if any(has_hmac):
                raise InvalidRequest("some elements of batch_input are missing 'hmac'")
            raise InvalidRequest("no batch_input elements have 'signature' or 'hmac'")
        if any(has_hmac):
            algorithm = args.urlalgorithm or args.algorithm or args.hash_algorithm or _DEFAULT_HASH
            return await self._verify_hmac(args.name, items, algorithm, batch)

        options = _options(args)
        key = await self._key(args.name, "signature verification key not found")
        if not key.spec.supports_signing:
            raise InvalidRequest(f"key type {key.spec.name} does not support verification")
        results: list[dict[str, Any]] = []
        for item in items:
            try:
                signature = _str_field(item, "signature") or ""
                valid = key.verify(
                    _input(item, "missing input"),
                    signature,
                    context=_context(item),
                    hash_name=options.hash_name,
                    prehashed=options.prehashed,
                    signature_algorithm=options.signature_algorithm,
                    marshaling=options.marshaling,
                    salt_length=options.salt_length,
                )
            except InvalidRequest as exc:
                if not batch:
                    raise
                results.append({"valid": False, "error": str(exc), "reference": _reference(item)})
                continue
            results.append({"valid": valid, "reference": _reference(item)})
        if not batch:
            return Response(data={"valid": results[0]["valid"]})
        return Response(data={"batch_results": results})

    async def _verify_hmac(
        self, name: str, items: list[BatchItem] | Any, algorithm: str, batch: bool
    ) -> Response:
        if algorithm not in HASHES:
            raise InvalidRequest(f"unsupported algorithm {algorithm}")
        key = await self._key(name, "encryption key not found")
        results: list[dict[str, Any]] = []
        for item in items:
            try:
                valid = key.hmac_verify(
                    _input(item, "missing input"),
                    _str_field(item, "hmac") or "",
                    algorithm=algorithm,
                )
            except InvalidRequest as exc:
                if not batch:
                    raise
                results.append({"valid": False, "error": str(exc), "reference": _reference(item)})
                continue
            results.append({"valid": valid, "reference": _reference(item)})
        if not batch:
            return Response(data={"valid": results[0]["valid"]})
        return Response(data={"batch_results": results})

    # ---- hmac --------------------------------------------------------------------------------

    async def hmac(self, request: Request, args: HmacArgs) -> Response:
        """Vault's pathHMACWrite."""
        algorithm = args.urlalgorithm or args.algorithm or _DEFAULT_HASH
        if algorithm not in HASHES:
            raise InvalidRequest(f"unsupported algorithm {algorithm}")
        key = await self._key(args.name, "encryption key not found")
        items = batch_items(args.batch_input)
        if items is None:
            if args.input is None:
                raise InvalidRequest("missing input for HMAC")
            mac, _ = key.hmac(
                b64decode(args.input, "input"), version=args.key_version, algorithm=algorithm
            )
            return Response(data={"hmac": mac})
        results: list[dict[str, Any]] = []
        for item in items:
            try:
                mac, _ = key.hmac(
                    _input(item, "missing input for HMAC"),
                    version=args.key_version,
                    algorithm=algorithm,
                )
            except InvalidRequest as exc:
                results.append({"error": str(exc), "reference": _reference(item)})
                continue
            results.append({"hmac": mac, "reference": _reference(item)})
        return Response(data={"batch_results": results})

    def paths(self) -> list[Path]:
        suffix = r"(?:/(?P<urlalgorithm>[^/]+))?"
        return [
            Path(
                pattern=rf"sign/(?P<name>{NAME}){suffix}",
                args=SignArgs,
                operations={Operation.UPDATE: self.sign},
                synopsis="Generate a signature for input data using the named key",
                description=_SIGN_HELP,
            ),
            Path(
                pattern=rf"verify/(?P<name>{NAME}){suffix}",
                args=VerifyArgs,
                operations={Operation.UPDATE: self.verify},
                synopsis="Verify a signature or HMAC for input data created using the named key",
                description=_VERIFY_HELP,
            ),
            Path(
                pattern=rf"hmac/(?P<name>{NAME}){suffix}",
                args=HmacArgs,
                operations={Operation.UPDATE: self.hmac},
                synopsis="Generate an HMAC for input data using the named key",
                description=_HMAC_HELP,
            ),
        ]


_SIGN_HELP = """\
Signs the base64 input with the named key (ed25519, ecdsa-*, rsa-*). Fields: input, context
(derived ed25519), key_version, hash_algorithm (sha1, sha2-*, sha3-*; also in the URL),
prehashed, signature_algorithm (pss, pkcs1v15), salt_length (auto, hash or a number),
marshaling_algorithm (asn1, jws), batch_input. Returns vault:v<N>:<base64 signature>."""

_VERIFY_HELP = """\
Verifies a signature (from sign/) or an HMAC (from hmac/) of the base64 input, with the same
options as sign/ and hmac/. Returns valid: true or false; versions below the key's
min_decryption_version are refused."""

_HMAC_HELP = """\
Computes an HMAC of the base64 input with the named key's HMAC key for the chosen version
(algorithm: sha1, sha2-*, sha3-*; default sha2-256). Returns vault:v<N>:<base64 mac>."""
