"""Declarative path tables for backends (secrets engines, auth methods, sys)."""

from strongroom.framework._backend import FrameworkBackend, SecretType, glob_match
from strongroom.framework._background import BackgroundJob
from strongroom.framework._cidrs import remote_in
from strongroom.framework._memo import memo_by_object, remember
from strongroom.framework._nonces import nonce_bytes
from strongroom.framework._path import ArgsBuilder, Endpoint, ExistenceCheck, Handler, NoArgs, Path
from strongroom.framework._storage import KEEP, KeyLocks, Swap, get_json, list_all, put_json, swap
from strongroom.framework._times import format_time, format_time_ns
from strongroom.framework._totp import (
    ParsedUrl,
    TotpKey,
    UsedSteps,
    b32_secret,
    check_params,
    decode_b32,
    parse_otpauth_url,
    qr_png,
)
from strongroom.framework._types import (
    Duration,
    parse_bool,
    parse_duration,
    parse_int,
    parse_str,
    parse_str_list,
    parse_str_map,
)

__all__ = [
    "KEEP",
    "ArgsBuilder",
    "BackgroundJob",
    "Duration",
    "Endpoint",
    "ExistenceCheck",
    "FrameworkBackend",
    "Handler",
    "KeyLocks",
    "NoArgs",
    "ParsedUrl",
    "Path",
    "SecretType",
    "Swap",
    "TotpKey",
    "UsedSteps",
    "b32_secret",
    "check_params",
    "decode_b32",
    "format_time",
    "format_time_ns",
    "get_json",
    "glob_match",
    "list_all",
    "memo_by_object",
    "nonce_bytes",
    "parse_bool",
    "parse_duration",
    "parse_int",
    "parse_otpauth_url",
    "parse_str",
    "parse_str_list",
    "parse_str_map",
    "put_json",
    "qr_png",
    "remember",
    "remote_in",
    "swap",
]
