"""Request helpers shared by the transit path families: names, base64 fields, batches.

Batch rules (Vault's): ``batch_input`` is a list of objects; when it is present the single-item
fields are ignored and the answer is ``batch_results``, one entry per input in order, each
echoing the input's ``reference``. A bad item gets an ``error`` entry and does not stop the
others. For encrypt, decrypt and rewrap any failed item makes the whole answer 400 (its body
still carries every result), unless some items succeeded and the caller set
``partial_failure_response_code``; sign, verify and HMAC batches always answer 200.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.engines.transit._crypto import b64decode
from strongroom.errors import InvalidRequest
from strongroom.logical import Response

__all__ = [
    "NAME",
    "BatchItem",
    "batch_items",
    "batch_response",
    "item_int",
    "item_str",
    "optional_b64",
]

# Vault's GenericNameRegex: word characters, with - . @ allowed inside
NAME = r"\w(?:[\w\-.@]*\w)?"

BatchItem = Mapping[str, Any]


def batch_items(raw: Any) -> Sequence[BatchItem] | None:
    """The decoded ``batch_input`` (None when absent)."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidRequest("failed to parse batch input: source data must be an array or slice")
    if not raw:
        raise InvalidRequest("missing batch input to process")
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidRequest(f"failed to parse batch input: [{index}] expected a map")
    return raw


def item_str(item: BatchItem, key: str, index: int) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(
            f"failed to parse batch input: '[{index}].{key}' expected type 'string'"
        )
    return value


def item_int(item: BatchItem, key: str, index: int) -> int:
    value = item.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidRequest(f"failed to parse batch input: '[{index}].{key}' expected type 'int'")
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(
            f"failed to parse batch input: '[{index}].{key}' expected type 'int'"
        ) from None


def optional_b64(value: str, what: str) -> bytes:
    return b64decode(value, what) if value else b""


def batch_response(
    results: list[dict[str, Any]],
    *,
    failures: int,
    partial_failure_code: int | None,
    warnings: list[str] | None = None,
) -> Response:
    """``batch_results`` with Vault's status rule for encrypt, decrypt and rewrap."""
    response = Response(data={"batch_results": results}, warnings=list(warnings or []))
    if failures:
        status = 400
        if partial_failure_code is not None and failures < len(results):
            if 1 <= partial_failure_code <= 599:
                status = partial_failure_code
            else:
                response.warnings.append(
                    "invalid HTTP response code override from partial_failure_response_code, "
                    "reverting to 400"
                )
        response.status = status
    return response
