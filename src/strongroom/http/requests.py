"""HTTP → :class:`~strongroom.logical.Request`: method mapping, token headers, body limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from strongroom.errors import InvalidRequest, RequestTooLarge, UnsupportedOperation
from strongroom.logical import Operation

__all__ = [
    "BODY_COMPLETE",
    "HttpLimits",
    "check_json_shape",
    "looks_like_form",
    "operation_for",
    "parse_form",
    "read_body",
    "split_query",
]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_request_size: int = 32 * 1024 * 1024
    max_json_depth: int = 300
    max_string_length: int = 1024 * 1024
    max_container_entries: int = 100_000
    body_timeout: float = 30.0
    # Vault's max_request_duration: past it a request is cancelled and answers 503; 0: none
    max_request_duration: float = 90.0


def operation_for(method: str, query: dict[str, str]) -> Operation:
    if method == "GET":
        if query.get("list", "").lower() in ("true", "1"):
            return Operation.LIST
        if query.get("help", "").lower() in ("1", "true"):
            return Operation.HELP
        return Operation.READ
    if method in ("POST", "PUT"):
        return Operation.UPDATE
    if method == "DELETE":
        return Operation.DELETE
    if method == "LIST":
        return Operation.LIST
    if method == "PATCH":
        return Operation.PATCH
    if method == "HEAD":
        return Operation.READ
    raise UnsupportedOperation()


def split_query(raw: bytes) -> dict[str, str]:
    if not raw:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("query string is not valid UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


# A scope key our listener sets once a request's whole body has been received, before the
# app runs: reading it then cannot stall, so no timeout needs arming.
BODY_COMPLETE = "strongroom.body_complete"


async def read_body(
    receive: Receive, declared: int | None, limits: HttpLimits, *, complete: bool = False
) -> bytes:
    """The request body, within ``limits``. ``complete``: the server already holds all of
    it (see BODY_COMPLETE), so reading it cannot stall and needs no timeout."""
    if declared is not None and declared > limits.max_request_size:
        raise RequestTooLarge("http: request body too large")
    if complete or declared == 0:
        # Nothing to wait for: the server hands over the body at once, so skip the timeout
        # machinery on the hot path (reads have no body; most writes arrive in one piece).
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("client disconnected")
        body: bytes = message.get("body", b"")
        if len(body) > limits.max_request_size:
            raise RequestTooLarge("http: request body too large")
        if not message.get("more_body", False):
            return body
        return await _read_rest(receive, [body], len(body), limits)
    return await _read_rest(receive, [], 0, limits)


async def _read_rest(receive: Receive, chunks: list[bytes], size: int, limits: HttpLimits) -> bytes:
    more = True
    try:
        async with asyncio.timeout(limits.body_timeout):
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise InvalidRequest("client disconnected")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limits.max_request_size:
                    raise RequestTooLarge("http: request body too large")
                if chunk:
                    chunks.append(chunk)
                more = message.get("more_body", False)
    except TimeoutError:
        raise InvalidRequest("timed out reading the request body") from None
    return b"".join(chunks)


def parse_json_object(body: bytes, limits: HttpLimits) -> dict[str, Any]:
    """Parse a request body: a JSON object (or nothing). Never echoes the body in errors."""
    if not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("failed to parse JSON input: malformed JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequest("failed to parse JSON input: the body must be a JSON object")
    check_json_shape(value, limits)
    return value


def looks_like_form(body: bytes, media_type: bytes) -> bool:
    """Vault's ``isForm``: declared form-urlencoded and not starting like JSON (``curl -d``
    declares every body a form, JSON included)."""
    if media_type != b"application/x-www-form-urlencoded":
        return False
    head = body.lstrip(b" \t\r\n")[:1]
    return head not in (b"{", b"[")


def parse_form(body: bytes, limits: HttpLimits) -> dict[str, Any]:
    """A form-urlencoded body (an OIDC provider's ``form_post``) as string fields; a field
    sent several times is joined with commas, as in Vault."""
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=limits.max_container_entries,
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("failed to parse form input") from None
    fields: dict[str, list[str]] = {}
    for key, value in pairs:
        fields.setdefault(key, []).append(value)
    data: dict[str, Any] = {key: ",".join(values) for key, values in fields.items()}
    check_json_shape(data, limits)
    return data


def check_json_shape(value: Any, limits: HttpLimits) -> None:
    """Iteratively bound depth, string length and container sizes (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limits.max_json_depth:
            raise InvalidRequest("JSON input exceeds the maximum nesting depth")
        if isinstance(item, dict):
            if len(item) > limits.max_container_entries:
                raise InvalidRequest("JSON object has too many entries")
            for key, sub in item.items():
                if len(key) > limits.max_string_length:
                    raise InvalidRequest("JSON string exceeds the maximum length")
                if isinstance(sub, dict | list):
                    stack.append((sub, depth + 1))
                else:
                    _check_scalar(sub, limits)
        elif isinstance(item, list):
            if len(item) > limits.max_container_entries:
                raise InvalidRequest("JSON array has too many elements")
            for sub in item:
                if isinstance(sub, dict | list):
                    stack.append((sub, depth + 1))
                else:
                    _check_scalar(sub, limits)


_MAX_NUMBER = float(2**63)


def _check_scalar(value: Any, limits: HttpLimits) -> None:
    if isinstance(value, str):
        if len(value) > limits.max_string_length:
            raise InvalidRequest("JSON string exceeds the maximum length")
    elif isinstance(value, float) and not -_MAX_NUMBER < value < _MAX_NUMBER:
        # orjson turns integers past 64 bits into floats; refuse them rather than round
        raise InvalidRequest("JSON number out of range")
