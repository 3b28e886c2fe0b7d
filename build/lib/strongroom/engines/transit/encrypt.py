"""encrypt/, decrypt/, rewrap/ and datakey/: encryption with named keys.

Each takes one item (``plaintext`` / ``ciphertext`` with ``context``, ``nonce``,
``associated_data``, ``key_version``) or a ``batch_input`` list of such items (see
``_fields`` for the batch status rules). Encrypting to a key that does not exist creates it
when the caller holds ``create`` on the path (Vault's "upsert"; ``config/keys`` can turn it
off): the key is derived when the items carry a context.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from strongroom.engines.transit._crypto import LoadedKey, b64decode
from strongroom.engines.transit._fields import (
    NAME,
    BatchItem,
    batch_items,
    batch_response,
    item_int,
    item_str,
    optional_b64,
)
from strongroom.engines.transit._policy import KeyPolicy, b64, key_type
from strongroom.engines.transit._store import KeyStore, new_version
from strongroom.engines.transit.config import upsert_disabled
from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

__all__ = ["EncryptPaths"]

_CREATED_BEFOREHAND = (
    "Attempted creation of the key during the encrypt operation, but it was created beforehand"
)
_UPSERT_TYPES = (
    "aes128-gcm96",
    "aes256-gcm96",
    "chacha20-poly1305",
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
)


@dataclass(frozen=True, slots=True)
class EncryptArgs:
    name: str
    plaintext: str | None = None
    context: str = ""
    nonce: str = ""
    key_version: int = 0
    associated_data: str = ""
    padding_scheme: str = ""
    type: str = "aes256-gcm96"
    convergent_encryption: bool = False
    batch_input: Any = None
    partial_failure_response_code: int | None = None


@dataclass(frozen=True, slots=True)
class DecryptArgs:
    name: str
    ciphertext: str = ""
    context: str = ""
    nonce: str = ""
    associated_data: str = ""
    padding_scheme: str = ""
    batch_input: Any = None
    partial_failure_response_code: int | None = None


@dataclass(frozen=True, slots=True)
class RewrapArgs:
    name: str
    ciphertext: str = ""
    context: str = ""
    nonce: str = ""
    key_version: int = 0
    associated_data: str = ""
    padding_scheme: str = ""
    batch_input: Any = None
    partial_failure_response_code: int | None = None


@dataclass(frozen=True, slots=True)
class DatakeyArgs:
    kind: str
    name: str
    context: str = ""
    nonce: str = ""
    bits: int = 256
    key_version: int = 0
    padding_scheme: str = ""


@dataclass(frozen=True, slots=True)
class _Item:
    """One decoded request item. Never printed: it holds plaintext."""

    text: str  # plaintext (base64) or ciphertext
    context: bytes
    nonce: bytes
    key_version: int
    associated_data: bytes | None
    padding_scheme: str
    reference: str

    def __repr__(self) -> str:
        return f"_Item(reference={self.reference!r})"

    def is_plain(self) -> bool:
        """No option that changes how the item is sealed."""
        return not (
            self.context
            or self.nonce
            or self.key_version
            or self.associated_data is not None
            or self.padding_scheme
        )


def _single(args: EncryptArgs | DecryptArgs | RewrapArgs, text: str) -> _Item:
    """The request's own fields as one decoded item (no batch)."""
    return _Item(
        text=text,
        context=optional_b64(args.context, "context"),
        nonce=optional_b64(args.nonce, "nonce"),
        key_version=getattr(args, "key_version", 0),
        associated_data=(
            b64decode(args.associated_data, "associated_data") if args.associated_data else None
        ),
        padding_scheme=args.padding_scheme,
        reference="",
    )


def _decode(raw: BatchItem, index: int, text_field: str) -> _Item:
    """Decode one batch item's fields; raises InvalidRequest (an item error)."""
    get = raw.get  # absent fields are the common case: only present ones are parsed
    context = get("context")
    nonce = get("nonce")
    aad = get("associated_data")
    return _Item(
        text=item_str(raw, text_field, index),
        context=optional_b64(item_str(raw, "context", index), "context") if context else b"",
        nonce=optional_b64(item_str(raw, "nonce", index), "nonce") if nonce else b"",
        key_version=item_int(raw, "key_version", index) if get("key_version") else 0,
        associated_data=(
            b64decode(item_str(raw, "associated_data", index), "associated_data") if aad else None
        ),
        padding_scheme=item_str(raw, "padding_scheme", index) if get("padding_scheme") else "",
        reference=item_str(raw, "reference", index) if get("reference") else "",
    )


def _check_options(key: LoadedKey, item: _Item, index: int) -> None:
    if item.associated_data is not None and key.spec.family != "aead":
        raise InvalidRequest(
            f"'[{index}].associated_data' provided for non-AEAD cipher suite {key.spec.name}"
        )
    if item.padding_scheme and key.spec.family != "rsa":
        raise InvalidRequest(
            f"'[{index}].padding_scheme' invalid: unsupported key type {key.spec.name} "
            "for padding scheme"
        )


def _encrypt_item(key: LoadedKey, item: _Item, index: int) -> tuple[str, int]:
    _check_options(key, item, index)
    plaintext = b64decode(item.text, "plaintext")
    return key.encrypt(
        plaintext,
        version=item.key_version,
        context=item.context,
        nonce=item.nonce,
        associated_data=item.associated_data,
        padding_scheme=item.padding_scheme,
    )


def _decrypt_item(key: LoadedKey, item: _Item, index: int) -> tuple[bytes, int]:
    _check_options(key, item, index)
    return key.decrypt(
        item.text,
        context=item.context,
        nonce=item.nonce,
        associated_data=item.associated_data,
        padding_scheme=item.padding_scheme,
    )


def _rewrap_item(key: LoadedKey, item: _Item, index: int) -> tuple[str, int]:
    plaintext, _ = _decrypt_item(key, item, index)
    return key.encrypt(
        plaintext,
        version=item.key_version,
        context=item.context,
        nonce=item.nonce,
        associated_data=item.associated_data,
        padding_scheme=item.padding_scheme,
    )


class EncryptPaths:
    def __init__(self, store: KeyStore) -> None:
        self.store = store

    async def _key(self, name: str) -> LoadedKey:
        key = await self.store.get(name)
        if key is None:
            raise InvalidRequest("encryption key not found")
        return key

    # ---- encrypt -----------------------------------------------------------------------------

    async def encrypt_exists(self, request: Request, args: EncryptArgs) -> bool:
        return await self.store.get(args.name) is not None

    async def encrypt(self, request: Request, args: EncryptArgs) -> Response:
        """Vault's pathEncryptWrite."""
        raw_items = batch_items(args.batch_input)
        warnings: list[str] = []
        if raw_items is None:
            if args.plaintext is None:
                raise InvalidRequest("missing plaintext to encrypt")
            item = _single(args, args.plaintext)
            key = await self._encryption_key(request, args, bool(args.context), warnings)
            seal = key.plain_sealer()
            if seal is not None and item.is_plain():
                plaintext = b64decode(args.plaintext, "plaintext")
                ciphertext, version = seal(plaintext), key.policy.latest_version
            else:
                ciphertext, version = _encrypt_item(key, item, 0)
            return Response(
                data={"ciphertext": ciphertext, "key_version": version}, warnings=warnings
            )
        _require(raw_items, "plaintext", "missing plaintext to encrypt")
        context_set = bool(raw_items[0].get("context"))
        if any(bool(raw.get("context")) != context_set for raw in raw_items):
            raise InvalidRequest(
                "context should be set either in all the request blocks or in none"
            )
        key = await self._encryption_key(request, args, context_set, warnings)
        seal, latest = key.plain_sealer(), key.policy.latest_version
        results: list[dict[str, Any]] = []
        failures = 0
        for index, raw in enumerate(raw_items):
            try:
                plaintext = raw["plaintext"]
                if seal is not None and len(raw) == 1 and isinstance(plaintext, str):
                    # nothing but a plaintext: skip the per-item option handling
                    sealed = seal(b64decode(plaintext, "plaintext"))
                    results.append({"ciphertext": sealed, "key_version": latest, "reference": ""})
                    continue
                item = _decode(raw, index, "plaintext")
                ciphertext, version = _encrypt_item(key, item, index)
            except InvalidRequest as exc:
                failures += 1
                results.append({"error": str(exc), "reference": _ref(raw.get("reference"))})
                continue
            results.append(
                {"ciphertext": ciphertext, "key_version": version, "reference": item.reference}
            )
        return batch_response(
            results,
            failures=failures,
            partial_failure_code=args.partial_failure_response_code,
            warnings=warnings,
        )

    async def _encryption_key(
        self, request: Request, args: EncryptArgs, context_set: bool, warnings: list[str]
    ) -> LoadedKey:
        key = await self.store.get(args.name)
        if request.operation is Operation.CREATE:
            if key is None:
                key = await self._upsert(args, context_set, warnings)
            else:  # another request created it between the existence check and now
                warnings.append(_CREATED_BEFOREHAND)
        if key is None:
            raise InvalidRequest("encryption key not found")
        return key

    async def _upsert(
        self, args: EncryptArgs, context_set: bool, warnings: list[str]
    ) -> LoadedKey | None:
        if args.convergent_encryption and not context_set:
            raise InvalidRequest(
                "convergent encryption requires derivation to be enabled, so context is required"
            )
        if await upsert_disabled(self.store.storage):
            return None
        if args.type.startswith("ecdsa-"):
            raise InvalidRequest(f"key type {args.type} not supported for this operation")
        if args.type not in _UPSERT_TYPES:
            raise InvalidRequest(f"unknown key type {args.type}")
        spec = key_type(args.type)
        if spec.family != "aead" and context_set:
            raise InvalidRequest(
                "key derivation and convergent encryption not supported for keys of type "
                f"{spec.name}"
            )
        async with self.store.locked(args.name) as existing:
            if existing is not None:
                warnings.append(_CREATED_BEFOREHAND)
                return existing
            convergent = args.convergent_encryption
            policy = KeyPolicy(
                name=args.name,
                type=spec.name,
                derived=context_set,
                convergent_encryption=convergent,
                convergent_version=-1 if convergent else 0,
            )
            entry = await new_version(spec, self.store.now_ns(), convergent=convergent)
            return await self.store.save(policy.with_version(1, entry))

    # ---- decrypt -----------------------------------------------------------------------------

    async def decrypt(self, request: Request, args: DecryptArgs) -> Response:
        """Vault's pathDecryptWrite."""
        raw_items = batch_items(args.batch_input)
        if raw_items is None:
            if not args.ciphertext:
                raise InvalidRequest("missing ciphertext to decrypt")
            item = _single(args, args.ciphertext)
            plaintext, _ = _decrypt_item(await self._key(args.name), item, 0)
            return Response(data={"plaintext": b64(plaintext)})
        _require(raw_items, "ciphertext", "missing ciphertext to decrypt")
        key = await self._key(args.name)
        results: list[dict[str, Any]] = []
        failures = 0
        for index, raw in enumerate(raw_items):
            try:
                ciphertext = raw["ciphertext"]
                if len(raw) == 1 and isinstance(ciphertext, str):  # no options to decode
                    plaintext, _ = key.decrypt(ciphertext)
                    results.append({"plaintext": b64(plaintext), "reference": ""})
                    continue
                item = _decode(raw, index, "ciphertext")
                plaintext, _ = _decrypt_item(key, item, index)
            except InvalidRequest as exc:
                failures += 1
                results.append({"error": str(exc), "reference": _ref(raw.get("reference"))})
                continue
            results.append({"plaintext": b64(plaintext), "reference": item.reference})
        return batch_response(
            results, failures=failures, partial_failure_code=args.partial_failure_response_code
        )

    # ---- rewrap ------------------------------------------------------------------------------

    async def rewrap(self, request: Request, args: RewrapArgs) -> Response:
        """Vault's pathRewrapWrite: decrypt, then encrypt with the latest (or given) version."""
        raw_items = batch_items(args.batch_input)
        if raw_items is None:
            if not args.ciphertext:
                raise InvalidRequest("missing ciphertext to decrypt")
            item = _single(args, args.ciphertext)
            ciphertext, version = _rewrap_item(await self._key(args.name), item, 0)
            return Response(data={"ciphertext": ciphertext, "key_version": version})
        _require(raw_items, "ciphertext", "missing ciphertext to rewrap")
        key = await self._key(args.name)
        results: list[dict[str, Any]] = []
        failures = 0
        for index, raw in enumerate(raw_items):
            try:
                item = _decode(raw, index, "ciphertext")
                ciphertext, version = _rewrap_item(key, item, index)
            except InvalidRequest as exc:
                failures += 1
                results.append({"error": str(exc), "reference": _ref(raw.get("reference"))})
                continue
            results.append(
                {"ciphertext": ciphertext, "key_version": version, "reference": item.reference}
            )
        return batch_response(
            results, failures=failures, partial_failure_code=args.partial_failure_response_code
        )

    # ---- datakey -----------------------------------------------------------------------------

    async def datakey(self, request: Request, args: DatakeyArgs) -> Response:
        """Vault's pathDatakeyWrite: a fresh random key, returned encrypted (and maybe plain)."""
        if args.kind not in ("plaintext", "wrapped"):
            raise InvalidRequest("Invalid path, must be 'plaintext' or 'wrapped'")
        if args.bits not in (128, 256, 512):
            raise InvalidRequest("invalid bits value")
        context = optional_b64(args.context, "context")
        nonce = optional_b64(args.nonce, "nonce")
        key = await self._key(args.name)
        if args.padding_scheme and key.spec.family != "rsa":
            raise InvalidRequest(
                f"padding_scheme invalid: unsupported key type {key.spec.name} for padding scheme"
            )
        new_key = secrets.token_bytes(args.bits // 8)
        ciphertext, version = key.encrypt(
            new_key,
            version=args.key_version,
            context=context,
            nonce=nonce,
            padding_scheme=args.padding_scheme,
        )
        data: dict[str, Any] = {"ciphertext": ciphertext, "key_version": version}
        if args.kind == "plaintext":
            data["plaintext"] = b64(new_key)
        return Response(data=data)

    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=rf"encrypt/(?P<name>{NAME})",
                args=EncryptArgs,
                operations={Operation.CREATE: self.encrypt, Operation.UPDATE: self.encrypt},
                existence_check=self.encrypt_exists,
                synopsis="Encrypt a plaintext or a batch of plaintexts using a named key",
                description=_ENCRYPT_HELP,
            ),
            Path(
                pattern=rf"decrypt/(?P<name>{NAME})",
                args=DecryptArgs,
                operations={Operation.UPDATE: self.decrypt},
                synopsis="Decrypt a ciphertext value or a batch of ciphertexts using a named key",
                description=_DECRYPT_HELP,
            ),
            Path(
                pattern=rf"rewrap/(?P<name>{NAME})",
                args=RewrapArgs,
                operations={Operation.UPDATE: self.rewrap},
                synopsis="Rewrap ciphertext with the latest (or a given) version of a named key",
                description=_REWRAP_HELP,
            ),
            Path(
                pattern=rf"datakey/(?P<kind>[^/]+)/(?P<name>{NAME})",
                args=DatakeyArgs,
                operations={Operation.UPDATE: self.datakey},
                synopsis="Generate a data key",
                description=_DATAKEY_HELP,
            ),
        ]


def _ref(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _require(raw_items: Any, field_name: str, message: str) -> None:
    for index, raw in enumerate(raw_items):
        if raw.get(field_name) is None:
            raise InvalidRequest(f"failed to parse batch input: '[{index}].{field_name}' {message}")


_ENCRYPT_HELP = """\
Encrypts the base64-encoded plaintext with the named key, or every item of batch_input.
Returns vault:v<version>:<base64(nonce || ciphertext || tag)>. Fields: plaintext, context
(base64, required for derived keys), associated_data (base64, AEAD key types), key_version,
batch_input, partial_failure_response_code; type and convergent_encryption apply when the key
is created by this request (the caller needs the create capability)."""

_DECRYPT_HELP = """\
Decrypts a ciphertext produced by encrypt/ (or every item of batch_input) and returns the
base64-encoded plaintext. Versions below the key's min_decryption_version are refused; any
tampering, or a wrong context or associated_data, fails with a single authentication error."""

_REWRAP_HELP = """\
Decrypts the ciphertext and encrypts it again with the latest version of the key (or
key_version), without returning the plaintext, so that this may be delegated to untrusted
callers after a rotation."""

_DATAKEY_HELP = """\
Generates a random key of 128, 256 or 512 bits and returns it encrypted with the named key.
datakey/plaintext/<name> also returns the key in base64; datakey/wrapped/<name> does not, so
policies can tell the two apart."""
