"""keys/: generate or import a key, read its parameters, list and delete keys."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

from strongroom.engines.totp._store import (
    KEY_PREFIX,
    USED_PREFIX,
    load_key,
    save_key,
    storage_of,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import (
    Duration,
    NoArgs,
    Path,
    TotpKey,
    decode_b32,
    parse_otpauth_url,
    qr_png,
)
from strongroom.logical import Operation, Request, Response

__all__ = ["KeysPaths"]

NAME = r"(?P<name>\w(?:[\w.@-]*\w)?)"


@dataclass(frozen=True, slots=True)
class KeyArgs:
    name: str
    generate: bool = False
    exported: bool = True
    key_size: int = 20
    url: str = ""
    key: str = ""
    issuer: str = ""
    account_name: str = ""
    period: Duration = Duration(30)
    algorithm: str = "SHA1"
    digits: int = 6
    skew: int = 1
    qr_size: int = 200


@dataclass(frozen=True, slots=True)
class NameArgs:
    name: str


def _build_key(args: KeyArgs) -> TotpKey:
    """The key a create request describes, with Vault's checks and messages."""
    if args.qr_size < 0:
        raise InvalidRequest("the qr_size value must be greater than or equal to zero")
    params: dict[str, Any] = {
        "issuer": args.issuer,
        "account_name": args.account_name,
        "period": int(args.period),
        "algorithm": args.algorithm.upper(),
        "digits": args.digits,
        "skew": args.skew,
    }
    if args.generate:
        if args.key or args.url:
            raise InvalidRequest("a key should not be passed if generate is true")
        if not args.account_name:
            raise InvalidRequest("the account_name value is required for generated keys")
        if not args.issuer:
            raise InvalidRequest("the issuer value is required for generated keys")
        return TotpKey.generate(args.key_size, **params)
    if args.url:
        parsed = parse_otpauth_url(args.url)
        # what the URL sets wins over the fields
        for name in ("issuer", "account_name", "period", "algorithm", "digits"):
            value = getattr(parsed, name)
            if value is not None:
                params[name] = value
        return TotpKey(key=parsed.key, **params)
    if not args.key:
        raise InvalidRequest("the key value is required")
    return TotpKey(key=decode_b32(args.key), **params)


class KeysPaths:
    def paths(self) -> list[Path]:
        return [
            Path(
                pattern=r"keys/?",
                operations={Operation.LIST: self.list_keys},
                synopsis="List the TOTP keys",
                description="LIST returns the names of the keys, never their values.",
            ),
            Path(
                pattern=r"keys/" + NAME,
                args=KeyArgs,
                operations={
                    Operation.UPDATE: self.write,
                    Operation.READ: self.read,
                    Operation.DELETE: self.delete,
                },
                synopsis="Create, read or delete a TOTP key",
                description=(
                    "POST generates a key (generate=true; returns the otpauth URL and a QR "
                    "code PNG when exported) or imports one from an otpauth url or a base32 "
                    "key. GET returns its parameters, never the key."
                ),
            ),
        ]

    async def list_keys(self, request: Request, args: NoArgs) -> Response | None:
        names = await storage_of(request).list(KEY_PREFIX)
        return Response(data={"keys": names}) if names else None

    async def read(self, request: Request, args: KeyArgs) -> Response | None:
        key = await load_key(storage_of(request), args.name)
        if key is None:
            return None
        return Response(
            data={
                "account_name": key.account_name,
                "algorithm": key.algorithm,
                "digits": key.digits,
                "issuer": key.issuer,
                "period": key.period,
            }
        )

    async def write(self, request: Request, args: KeyArgs) -> Response | None:
        key = _build_key(args)
        storage = storage_of(request)
        await save_key(storage, args.name, key)
        # a replaced key starts with a clean replay record
        await storage.delete(USED_PREFIX + args.name)
        if not (args.generate and args.exported):
            return None
        url = key.url()
        data: dict[str, Any] = {"url": url}
        if args.qr_size > 0:
            image = await asyncio.to_thread(qr_png, url, args.qr_size)
            data["barcode"] = base64.b64encode(image).decode("ascii")
        return Response(data=data)

    async def delete(self, request: Request, args: KeyArgs) -> Response | None:
        storage = storage_of(request)
        await storage.delete(KEY_PREFIX + args.name)
        await storage.delete(USED_PREFIX + args.name)
        return None
