"""Tamper-evident audit: broker (fan-out, fail closed), salted HMAC, Vault's entry format,
hash chain with signed checkpoints, devices (file, socket, syslog), alerts and search.

The pipeline for one entry on one device: format (:mod:`.entry`) → HMAC (:mod:`.hashing`)
→ chain (:mod:`.chain`) → write (:mod:`.devices`). :mod:`.chain` and :mod:`.search` are pure
and are what ``strongroom audit verify`` and ``strongroom audit search`` run, offline.
"""

from __future__ import annotations

from strongroom.audit.broker import (
    AUDIT_REQUEST_FAILED,
    AUDIT_RESPONSE_FAILED,
    AuditBroker,
    Ticket,
    Trail,
    error_text,
)
from strongroom.audit.chain import (
    GENESIS_HASH,
    Chain,
    ChainState,
    CheckpointPolicy,
    Finding,
    Signer,
    TailInfo,
    Verifier,
    VerifyReport,
    load_public_key,
)
from strongroom.audit.entry import AuditAuth, AuditEvent, FormatOptions, MountInfo, format_entry
from strongroom.audit.hashing import HMAC_PREFIX, Salt, hash_data
from strongroom.audit.search import SearchQuery, parse_bound, search

__all__ = [
    "AUDIT_REQUEST_FAILED",
    "AUDIT_RESPONSE_FAILED",
    "GENESIS_HASH",
    "HMAC_PREFIX",
    "AuditAuth",
    "AuditBroker",
    "AuditEvent",
    "Chain",
    "ChainState",
    "CheckpointPolicy",
    "Finding",
    "FormatOptions",
    "MountInfo",
    "Salt",
    "SearchQuery",
    "Signer",
    "TailInfo",
    "Ticket",
    "Trail",
    "Verifier",
    "VerifyReport",
    "error_text",
    "format_entry",
    "hash_data",
    "load_public_key",
    "parse_bound",
    "search",
]
