"""The request road: sealed? → route → token → ACL → backend → token minting.

Every request that http/ accepts arrives here as a :class:`~strongroom.logical.Request`
with the full path (``secret/data/foo``). The path is checked once, here, and the very same
string is what the ACL evaluates and the router resolves, so no encoding trick can make the
two see different keys.
"""

from __future__ import annotations

import re
from dataclasses import replace

from strongroom.core.core import Core
from strongroom.core.router import Route
from strongroom.core.system.seal import SEAL_OPERATIONS
from strongroom.core.token_backend import token_auth_block
from strongroom.core.tokens import TokenEntry
from strongroom.errors import InvalidPath, NotFound, PermissionDenied, Sealed
from strongroom.framework import glob_match
from strongroom.logical import Auth, Operation, Request, Response

__all__ = ["handle", "validate_path"]

_MAX_PATH = 4096
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_DISPLAY_CLEAN = re.compile(r"[^a-zA-Z0-9\-_.@]")


def validate_path(path: str) -> str:
    """Reject paths the ACL and storage could read differently.

    A single trailing slash is meaningful (LIST); empty inner segments, ``.`` and ``..``
    segments and control characters are refused before any ACL check.
    """
    if len(path) > _MAX_PATH:
        raise InvalidPath("path too long")
    if _BAD_CHARS.search(path):
        raise InvalidPath("invalid characters in path")
    body = path[:-1] if path.endswith("/") else path
    if body == "":
        raise InvalidPath("missing path")
    for segment in body.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPath("invalid path: empty, '.' or '..' segment")
    return path


async def handle(core: Core, request: Request) -> Response | None:
    path = validate_path(request.path)
    seal_op = SEAL_OPERATIONS.get(path)
    if seal_op is not None:
        return await seal_op(core, request)
    if core.sealed:
        raise Sealed()
    state = core.state
    found = core.router.match(path)
    route: Route | None = found[0] if found else None
    relative = found[1] if found else ""
    unauthenticated = route is not None and glob_match(
        route.backend.unauthenticated_paths, relative
    )
    entry: TokenEntry | None = None
    operation = request.operation
    backend_request: Request | None = None
    if not unauthenticated:
        if request.client_token:
            entry = await state.tokens.lookup(request.client_token)
        if entry is None:
            raise PermissionDenied()
        acl = await state.policies.acl(entry.policies)
        if route is not None:
            backend_request = _backend_request(route, relative, request, entry)
            if operation is Operation.UPDATE:
                exists = await route.backend.exists(backend_request)
                if exists is False:
                    operation = Operation.CREATE
                    backend_request = replace(backend_request, operation=operation)
        result = acl.check(operation, path, request.data)
        if not result.allowed:
            raise PermissionDenied()
        if route is not None and glob_match(route.backend.root_paths, relative) and not result.sudo:
            raise PermissionDenied()
    if route is None:
        raise NotFound(f"no handler for route {path!r}. route entry not found.")
    if backend_request is None:
        backend_request = _backend_request(route, relative, request, entry)
    last_use = await state.tokens.use(entry) if entry is not None and entry.num_uses > 0 else None
    try:
        response = await route.backend.handle(backend_request)
        if response is not None:
            response.mount_type = route.entry.type
            if response.auth is not None and not response.auth.client_token:
                response.auth = await _mint_login_token(core, route, relative, response.auth)
        return response
    finally:
        if last_use is not None:
            await state.tokens.revoke_tree(last_use)


def _backend_request(
    route: Route, relative: str, request: Request, entry: TokenEntry | None
) -> Request:
    mount_point = route.mount_point
    # Only the token store and sys see the caller's token ID; other backends never do.
    sees_token = mount_point in ("auth/token/", "sys/")
    return replace(
        request,
        path=relative,
        storage=route.storage,
        mount_point=mount_point,
        mount_accessor=route.entry.accessor,
        mount_type=route.entry.type,
        client_token=request.client_token if sees_token else "",
        token=entry.info() if entry is not None else None,
        unauthenticated=entry is None,
    )


async def _mint_login_token(core: Core, route: Route, relative: str, auth: Auth) -> Auth:
    """Turn an auth method's answer into a real token (login)."""
    settings = core.settings
    default_ttl = route.entry.config.default_lease_ttl or settings.default_lease_ttl
    max_ttl = route.entry.config.max_lease_ttl or settings.max_lease_ttl
    policies = set(auth.policies) | set(auth.token_policies)
    if not auth.no_default_policy:
        policies.add("default")
    policies.discard("root")  # no auth method can ever mint a root token
    ttl = auth.period or auth.ttl or default_ttl
    if auth.max_ttl:
        max_ttl = min(max_ttl, auth.max_ttl)
    ttl = min(ttl, max_ttl) if not auth.period else ttl
    prefix = route.entry.path.rstrip("/").replace("/", "-")
    name = _DISPLAY_CLEAN.sub("", auth.display_name)
    token, entry = await core.tokens.create(
        policies=tuple(sorted(policies)),
        parent=None,
        meta=dict(auth.metadata),
        display_name=f"{prefix}-{name}" if name else prefix,
        ttl=ttl,
        explicit_max_ttl=auth.explicit_max_ttl,
        max_ttl=0 if auth.period else max_ttl,
        period=auth.period,
        num_uses=auth.num_uses,
        renewable=auth.renewable,
        path=route.mount_point + relative,
        entity_id=auth.entity_id,
        internal=dict(auth.internal_data),
    )
    return token_auth_block(token, entry, core.clock.now())
