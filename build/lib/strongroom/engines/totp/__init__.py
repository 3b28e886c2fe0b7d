"""Vault's TOTP secrets engine: named RFC 6238 keys that generate and validate codes.

Modules by path family: ``keys`` (keys/, keys/<name>: generate or import, read, list,
delete) and ``code`` (code/<name>: GET generates, POST validates), over the key records
and the replay record (``_store``). The algorithm, otpauth URLs and the QR image are
``strongroom.framework``'s TOTP helpers, shared with login MFA.

Departures from Vault:

- Replay protection is stored (``used/<name>``, behind the barrier), not an in-memory cache:
  a code stays used across restarts and on every node. A successful validation uses up its
  *time step*: any later code of that step is refused with Vault's "code already used"
  message until the step leaves the skew window.
- An import ``url`` must be ``otpauth://totp/…`` (Vault also takes ``hotp`` URLs and then
  treats them as TOTP).
- ``code/<name>`` answers ``{"code": …}`` only, as Vault; OpenBao adds timing fields.
"""

from __future__ import annotations

from strongroom.engines.totp._backend import TotpBackend, factory

__all__ = ["TotpBackend", "factory"]
