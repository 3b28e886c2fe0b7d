"""Vault's SSH secrets engine: a signing CA for OpenSSH certificates, and one-time passwords.

Modules by path family: ``config`` (config/ca, public_key, config/zeroaddress), ``roles``
(roles/), ``sign`` (sign/, issue/), ``otp`` (creds/, verify, lookup); over the records
(``_records``) and the key material (``_keys``). Certificates are built with
``cryptography``'s ``SSHCertificateBuilder``.

Departures from Vault:

- **RSA CA signatures**: a role's ``algorithm_signer`` picks ``rsa-sha2-256`` (also what
  ``default`` means, as in Vault) or ``rsa-sha2-512``; the SHA-1 ``ssh-rsa`` is refused with
  400 (Vault still accepts it when named; OpenSSH 8.8+ refuses such certificates).
  ``cryptography``'s builder signs with rsa-sha2-512 only, so ``_keys.resign_rsa_certificate``
  replaces the signature field for rsa-sha2-256. Ignored for ed25519/ECDSA CAs.
- **Templates** (``allowed_users_template`` and the like) take Vault's identity selectors
  (``{{identity.entity.id}}``, ``.name``, ``.metadata.<key>``, ``.aliases.<accessor>.name``,
  ``identity.groups.names.<name>.id``...), filled by core's ACL policy templating through
  ``SystemView.identity_template``; as in ACL templating, a value holding ``/``, ``*``, ``+``
  or braces counts as missing, and an entry that cannot be filled allows nothing. A role
  naming a non-identity selector is refused when written.
- **Dynamic-key roles** (removed from Vault in 1.13) are refused; ``keys/`` is absent.
- **Multiple issuers** (OpenBao's ``issuers/``) are not offered: one CA key per mount, and
  ``config/ca`` refuses to overwrite it, as Vault.
- ``sign/`` and ``issue/`` answer without a lease (the certificate carries its validity).
- An issued OTP is stored as its SHA-256 only.
"""

from __future__ import annotations

from strongroom.engines.ssh._backend import SSHBackend, factory

__all__ = ["SSHBackend", "factory"]
