"""Vault's PKI secrets engine (the multi-issuer API of Vault 1.11+).

Modules by path family: ``ca`` (root/generate, rotate, replace, intermediates, imports),
``issuers`` (issuers/, issuer/:ref, keys/, key/:ref, config/issuers, config/keys),
``roles``, ``issue`` (issue/, sign/, sign-verbatim), ``fetch`` (ca, ca_chain, cert/, certs/),
``revoke``, ``crl`` (crl*, config/crl), ``ocsp``, ``tidy`` (tidy, tidy-status, tidy-cancel,
config/auto-tidy), ``config`` (config/urls, config/cluster), and the ACME server:
``acme_accounts`` (directory, new-nonce, new-account, account/, key-change, new-eab, eab/,
config/acme) and ``acme_orders`` (new-order, order/, finalize, cert, authorization/,
challenge/, revoke-cert), over ``_acme_protocol`` (JWS with joserfc, nonces, rate limits,
problem documents), ``_acme_context`` (directories, replies, records) and
``_acme_challenges`` (http-01, tls-alpn-01, dns-01);
over the records (``_store``), certificate building (``_build``), signing and response
shapes (``_issuing``), roles' name rules (``_role``), CRL building (``_crl``) and keys and
encodings (``_crypto``).

Departures from Vault:

- Managed keys (``kms`` types) and Enterprise's unified CRLs / cross-cluster revocation are
  refused or ignored. ``allowed_domains_template`` / ``allowed_uri_sans_template`` fill
  Vault's identity selectors with core's ACL templating (``SystemView.identity_template``);
  a value holding ``/``, ``*``, ``+`` or braces counts as missing, and an entry that cannot
  be filled (e.g. for a token without an entity) allows nothing.
- Issuers that share a key do not share a CRL: every issuer has its own CRL.
- CRL rebuilds are serialised per mount and read the revocations inside that lock, so a
  higher CRL number never lists fewer revocations.
- ACME: dns-01 asks ``config/acme``'s ``dns_resolver`` (an IP address[:port]) or the
  system's resolvers (dnspython); wildcard identifiers get a dns-01 challenge only. http-01
  and tls-alpn-01 are checked on ports 80 / 443 unless the mount's options
  ``acme_http01_port`` / ``acme_tls_alpn01_port`` move them (for tests and unprivileged
  setups). ``config/acme`` also takes ``rate_limit_per_ip`` / ``rate_limit_per_account``
  (requests per second, bursts of twice that; 0 turns a limit off): Vault has no ACME rate
  limits of its own. ``new-nonce`` answers 200 to GET as well as HEAD (a backend cannot tell
  them apart). Nonces live in memory (as Vault's): a restart makes clients retry with a
  fresh one. Accounts belong to the directory they were created in.
- Under HA every PKI request runs on the active node (pki is not among the mount types a
  standby serves itself: reading a CRL may build it), so the in-memory nonces, rate-limit
  buckets and revocation index are the active's; a failover forgets nonces (clients get
  ``badNonce`` and retry) and the new active reads the revocation entries again.
- Tidy status lives in memory (a restart forgets the last run, as Vault's does).
- ``revoke`` rebuilds the CRLs inline (as Vault without ``auto_rebuild``); with
  ``auto_rebuild`` only the delta CRL is rebuilt at once. Revocations arriving together
  share rebuilds: one returns once a rebuild that started after it was stored has finished.
  Besides Vault's ``revoked/<serial>`` entries, each revocation's (issuer, time) goes into one
  of 256 index buckets (``crls/index/<last byte>``) in the same storage transaction, so a
  rebuild reads a few hundred records however many certificates are revoked.
- Under HA every PKI request runs on the active node (pki is not among the mount types a
  standby serves itself: reading a CRL may build it), so the in-memory nonces, rate-limit
  buckets and revocation index are the active's; a failover forgets nonces (clients get
  ``badNonce`` and retry) and the new active reads the revocation entries again.
- Tidy status lives in memory (a restart forgets the last run, as Vault's does).
- ``revoke`` rebuilds the CRLs inline (as Vault without ``auto_rebuild``); with
  ``auto_rebuild`` only the delta CRL is rebuilt at once. Revocation entries never change, so
  each mount keeps (issuer, serial, time) of every entry in memory (~100 bytes each) and a
  rebuild reads only the entries it has not seen (the mount reads them all once, in the
  background, when it starts). Revocations arriving together share rebuilds: one returns
  once a rebuild that started after it was stored has finished.
"""

from __future__ import annotations

from strongroom.engines.pki._backend import PKIBackend, factory

__all__ = ["PKIBackend", "factory"]
