"""Vault's PKI secrets engine (the multi-issuer API of Vault 1.11+).

Modules by path family: ``ca`` (root/generate, rotate, replace, intermediates, imports),
``issuers`` (issuers/, issuer/:ref, keys/, key/:ref, config/issuers, config/keys),
``roles``, ``issue`` (issue/, sign/, sign-verbatim), ``fetch`` (ca, ca_chain, cert/, certs/),
``revoke``, ``crl`` (crl*, config/crl), ``ocsp``, ``tidy`` (tidy, tidy-status, tidy-cancel,
config/auto-tidy), ``config`` (config/urls, config/cluster);
over the records (``_store``), certificate building (``_build``), signing and response
shapes (``_issuing``), roles' name rules (``_role``), CRL building (``_crl``) and keys and
encodings (``_crypto``).

Departures from Vault:

- Managed keys (``kms`` types), Enterprise's unified CRLs / cross-cluster revocation and
  identity templating in ``allowed_domains`` / ``allowed_uri_sans`` are refused or ignored.
- Issuers that share a key do not share a CRL: every issuer has its own CRL.
- CRL rebuilds are serialised per mount and read the revocations inside that lock, so a
  higher CRL number never lists fewer revocations.
- Tidy status lives in memory (a restart forgets the last run, as Vault's does).
- ``revoke`` rebuilds the CRLs inline (as Vault without ``auto_rebuild``), reading every
  revocation entry; with ``auto_rebuild`` only the delta CRL is rebuilt at once.
"""

from __future__ import annotations

from strongroom.engines.pki._backend import PKIBackend, factory

__all__ = ["PKIBackend", "factory"]
