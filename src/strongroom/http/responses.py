"""logical.Response → Vault's JSON envelope and status code."""

from __future__ import annotations

from typing import Any

import orjson

from strongroom.logical import Operation, Response, auth_json

__all__ = ["auth_json", "encode_errors", "encode_response"]


def encode_errors(messages: list[str]) -> bytes:
    return orjson.dumps({"errors": messages})


def encode_response(
    response: Response | None, operation: Operation, request_id: str
) -> tuple[int, bytes | None]:
    """(status, body); a None body means 204 No Content."""
    if response is None:
        if operation in (Operation.READ, Operation.LIST, Operation.HELP):
            return 404, encode_errors([])
        return 204, None
    if response.raw_body is not None:
        return response.status or 200, response.raw_body
    if not response.envelope:
        return response.status or 200, orjson.dumps(response.data)
    if operation is Operation.LIST and response.status is None:
        keys = (response.data or {}).get("keys")
        if not keys:
            return 404, encode_errors([])
    if (
        response.data is None
        and response.auth is None
        and response.secret is None
        and not response.lease_id
        and not response.warnings
        and response.wrap_info is None
        and response.status is None
    ):
        return 204, None
    secret = response.secret
    body: dict[str, Any] = {
        "request_id": request_id,
        "lease_id": response.lease_id,
        "renewable": secret.renewable if secret else False,
        "lease_duration": secret.ttl if secret else 0,
        "data": response.data,
        "wrap_info": response.wrap_info,
        "warnings": response.warnings or None,
        "auth": auth_json(response.auth) if response.auth is not None else None,
        "mount_type": response.mount_type,
    }
    if response.mount_type == "system" and response.data and not response.data_only:
        # Vault's sys/ responses also carry their data at the top level (legacy clients
        # such as hvac read e.g. ``["keys"]`` or ``["term"]`` there).
        for key, value in response.data.items():
            body.setdefault(key, value)
    return response.status or 200, orjson.dumps(body)
