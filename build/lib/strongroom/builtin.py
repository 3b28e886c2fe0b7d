"""The registry of built-in backends: the only module that imports every engine."""

from __future__ import annotations

from strongroom.auth import approle, cert, jwt, kubernetes, userpass
from strongroom.engines import cubbyhole, database, kv, pki, ssh, totp, transit
from strongroom.logical import BackendFactory

__all__ = ["FACTORIES"]

FACTORIES: dict[str, BackendFactory] = {
    "kv": kv.factory,
    "generic": kv.factory,  # Vault's old name for KV v1
    "cubbyhole": cubbyhole.factory,
    "database": database.factory,
    "transit": transit.factory,
    "pki": pki.factory,
    "totp": totp.factory,
    "ssh": ssh.factory,
    # auth methods (mounted under auth/ through sys/auth)
    "userpass": userpass.factory,
    "approle": approle.factory,
    "jwt": jwt.factory,
    "oidc": jwt.factory,
    "kubernetes": kubernetes.factory,
    "cert": cert.factory,
}
