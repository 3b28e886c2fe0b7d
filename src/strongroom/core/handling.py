"""The request road: sealed? → route → token → ACL → audit(request) → backend → token
minting → audit(response).

Every request that http/ accepts arrives here as a :class:`~strongroom.logical.Request`
with the full path (``secret/data/foo``). The path is checked once, here, and the very same
string is what the ACL evaluates and the router resolves, so no encoding trick can make the
two see different keys.
"""

from __future__ import annotations

import re
from dataclasses import replace

from strongroom.audit import AuditAuth, MountInfo, Trail
from strongroom.core import mfa
from strongroom.core.cluster import Cluster, decode_index, encode_index, must_go_to_active
from strongroom.core.core import Core
from strongroom.core.mounts import login_token_type
from strongroom.core.quotas import QuotaRefused
from strongroom.core.router import Route
from strongroom.core.system.seal import SEAL_OPERATIONS, SealOp
from strongroom.core.token_backend import token_auth_block
from strongroom.core.tokens import TokenEntry
from strongroom.core.wrapping import envelope_of, parse_wrap_ttl, wrap_response
from strongroom.errors import (
    Fenced,
    IndexNotApplied,
    InvalidPath,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    Sealed,
)
from strongroom.framework import format_time, glob_match, memo_by_object, remember, remote_in
from strongroom.logical import Auth, Operation, Request, Response, TokenInfo

__all__ = [
    "AUDITED_SEAL_OPERATIONS",
    "audit_auth",
    "handle",
    "validate_path",
]

_MAX_PATH = 4096
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_DISPLAY_CLEAN = re.compile(r"[^a-zA-Z0-9\-_.@]")
# Paths that passed validate_path. Process-wide on purpose: validate_path is a pure function
# of the string, so a hit means exactly what a fresh check would; the table holds request
# paths (which audit logs record in the clear, never secret values) and no core's state, so
# several cores in one process cannot learn anything from each other through it. Bounded.
_VALID_PATHS: dict[str, None] = {}
_VALID_PATHS_LIMIT = 8192


def validate_path(path: str) -> str:
    """Reject paths the ACL and storage could read differently.

    A single trailing slash is meaningful (LIST); empty inner segments, ``.`` and ``..``
    segments and control characters are refused before any ACL check.
    """
    if path in _VALID_PATHS:
        return path
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
    remember(_VALID_PATHS, path, None, _VALID_PATHS_LIMIT)
    return path


def _opaque_tail(core: Core, request: Request) -> bool:
    """Whether a path refused by :func:`validate_path` is a GET of an opaque value.

    An OCSP GET request is base64 in the path (RFC 6960 A.1), which may hold ``//``, and a
    ``%2F`` arrives decoded. Empty segments are let through only in the tail under one of
    the owning backend's ``opaque_paths`` globs; the mount and the glob's prefix must pass
    :func:`validate_path`, and ``.``/``..`` segments and control characters are refused
    everywhere, so the ACL and the backend read the same path.
    """
    path = request.path
    if (
        request.operation is not Operation.READ
        or "//" not in path
        or len(path) > _MAX_PATH
        or _BAD_CHARS.search(path)
    ):
        return False
    found = core.router.match(path)
    if found is None:
        return False
    route, relative = found
    for glob in route.backend.opaque_paths:
        prefix = glob.removesuffix("*")
        if not prefix.endswith("/") or not relative.startswith(prefix):
            continue
        tail = relative[len(prefix) :]
        head = path[: len(path) - len(tail)]
        try:
            validate_path(head)
        except InvalidPath:
            return False
        return tail.strip("/") != "" and all(s not in (".", "..") for s in tail.split("/"))
    return False


async def handle(core: Core, request: Request) -> Response | None:
    try:
        path = validate_path(request.path)
    except InvalidPath:
        if not _opaque_tail(core, request):
            raise
        path = request.path
    seal_op = SEAL_OPERATIONS.get(path)
    if seal_op is not None:
        if core.audit.enabled and path in AUDITED_SEAL_OPERATIONS:
            return await _audited_seal_operation(core, request, seal_op)
        return await seal_op(core, request)
    cluster = core.cluster
    if cluster is not None and core.switching:
        await core.settled()  # an HA node switching roles (or rebuilding routes): wait
    if core.sealed:
        if cluster is not None and await cluster.can_forward():
            # a worker restarted after a crash (sealed until the next unseal) passes
            # requests to the active sibling rather than failing them
            return await cluster.send_to_active(request)
        raise Sealed()
    if cluster is None:
        return await _quota_road(core, request, path)
    if not cluster.active:
        if await _must_go_to_active(core, cluster, request, path):
            return await cluster.send_to_active(request)
        try:
            return await _quota_road(core, request, path)
        except (_UseOnActive, Fenced):
            # a use-counted token, or a locally served request that turned out to need a
            # write (a transit key due for rotation or created on first use): the standby's
            # fenced storage refused it before anything was written; the active runs it
            return await cluster.send_to_active(request)
    response = await _quota_road(core, request, path)
    if request.operation not in _READS and cluster.active:
        # Vault's consistency header: a client that sends it back to a standby is served
        # once that standby has applied this write
        if response is None:
            response = Response()
        response.headers["X-Vault-Index"] = encode_index(await cluster.feed.current_index())
    return response


_READS = frozenset({Operation.READ, Operation.LIST, Operation.HELP})


async def _quota_road(core: Core, request: Request, path: str) -> Response | None:
    quotas = core.quotas
    if not quotas.active:  # the only cost of quotas while none is configured
        return await _audited_road(core, request, path)
    try:
        headers = quotas.admit(request, path)  # rate limits by IP: no await, no allocation
        if headers is None:  # role, entity or lease-count quotas: the general road
            return await quotas.guard(
                request,
                path,
                lease_count=core.lease_count_under,
                entity_of=core.quota_identity,
                proceed=lambda: _audited_road(core, request, path),
                role_of=core.quota_role,
            )
    except QuotaRefused as exc:
        # Vault audits quota refusals only when enable_rate_limit_audit_logging is set
        if quotas.config.enable_rate_limit_audit_logging and core.audit.enabled:
            await Trail(core.audit, request).failed(exc)
        raise
    response = await _audited_road(core, request, path)
    if headers and response is not None:
        response.wire_headers += headers
    return response


async def _audited_road(core: Core, request: Request, path: str) -> Response | None:
    if not core.audit.enabled:  # the only cost of auditing while no device is enabled
        return await _road(core, request, path, None)
    trail = Trail(core.audit, request)
    try:
        response = await _road(core, request, path, trail)
    except _UseOnActive:
        raise  # nothing recorded yet: the active audits the request it is sent
    except Exception as exc:
        await trail.failed(exc)
        raise
    await trail.succeeded(response)
    return response


async def _road(core: Core, request: Request, path: str, trail: Trail | None) -> Response | None:
    state = core.state
    found = core.router.match(path)
    route: Route | None = found[0] if found else None
    relative = found[1] if found else ""
    if trail is not None and route is not None:
        trail.mount = _mount_info(core, route)
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
            if path == "sys/wrapping/unwrap" and request.client_token:
                # Vault: a spent or unknown wrapping token is a bad request, not a refusal
                raise InvalidRequest("wrapping token is not valid or does not exist")
            raise PermissionDenied()
        if trail is not None:
            trail.auth = audit_auth(core, entry)
        _check_token_binding(core, entry, request)
        if core.activity.enabled():  # client counts: one set lookup (a standby relays)
            noted = core.activity.note(
                entry.entity_id,
                entry.policies,
                entry.path,
                core.mount_of_path,
                relay=not state.active,
            )
            if noted is not None:
                await noted
        acl = await core.acl_for(entry)
        if route is not None:
            backend_request = _backend_request(core, route, relative, request, entry)
            if operation is Operation.UPDATE:
                exists = await route.backend.exists(backend_request)
                if exists is False:
                    operation = Operation.CREATE
                    backend_request = _backend_request(
                        core, route, relative, request, entry, operation
                    )
                    if trail is not None:
                        trail.operation = operation
        result = acl.check(operation, path, request.data, wrap_ttl=_wrap_ttl(request, path))
        if not result.allowed:
            raise PermissionDenied()
        if not result.sudo and route is not None and glob_match(route.backend.root_paths, relative):
            raise PermissionDenied()
    if route is None:
        raise NotFound(f"no handler for route {path!r}. route entry not found.")
    if backend_request is None:
        backend_request = _backend_request(core, route, relative, request, entry)
    if entry is not None and entry.num_uses > 0:
        cluster = core.cluster
        if cluster is not None and not cluster.active:
            # use counts are spent on the active alone, which audits the request: this
            # standby records nothing for it
            raise _UseOnActive()
    if trail is not None:
        # Recorded before the backend runs and before a limited-use token is spent: if no
        # audit device can record it, the request is refused here and has no effect.
        await trail.record_request()
    last_use = None
    if entry is not None and entry.num_uses > 0:
        last_use = await state.tokens.use(entry)
    try:
        response = await route.backend.handle(backend_request)
        if response is not None:
            response.mount_type = route.entry.type
            if response.auth is not None and not response.auth.client_token:
                # login MFA (core/mfa.py): may answer an MFA requirement and mint nothing
                gated = await mfa.gate(core, route, relative, request, response.auth)
                if gated.pending is not None:
                    return gated.pending
                assert gated.route is not None and gated.auth is not None
                response.auth, minted = await _mint_login_token(
                    core, gated.route, gated.relative, gated.auth
                )
                if trail is not None:
                    trail.login = audit_auth(core, minted)
            if response.secret is not None and response.secret.leased and not response.lease_id:
                lease_id, ttl = await state.leases.register(
                    path=path,
                    mount_uuid=route.entry.uuid,
                    token_hash=entry.lease_owner if entry is not None else "",
                    secret=response.secret,
                )
                owner = entry.lease_owner if entry is not None else ""
                if owner and not await state.tokens.still_live(owner):
                    # the token's revocation started meanwhile and may have listed its
                    # leases before this one was stored: revoke it here, hand out nothing
                    await state.leases.revoke_quietly(lease_id)
                    raise PermissionDenied()
                response.lease_id = lease_id
                response.secret = replace(response.secret, ttl=ttl)
            wrap_ttl = _wrap_ttl(request, path)
            if wrap_ttl and response.wrap_info is None and path != "sys/wrapping/unwrap":
                response = await _wrap(core, response, request, path, wrap_ttl)
        return response
    finally:
        if last_use is not None:
            await state.tokens.revoke_tree(last_use)


class _UseOnActive(Exception):
    """A standby met a token with a use count: the request must run on the active."""


async def _must_go_to_active(core: Core, cluster: Cluster, request: Request, path: str) -> bool:
    """On an HA standby: whatever must run on the active (every write, login, token
    creation, lease work, any read of a mount that may write on read) goes there, and is
    audited there only; the rest is served here once every committed change is applied,
    and audited here, into this process's own chain (failing closed as on the active)."""
    if path == "sys/seal":
        return False  # sealing seals the node asked (and, for workers, its siblings)
    # What must go to the active by its operation and (known) mount goes there at once:
    # sending a request to the active is right even on stale tables (it serves everything),
    # so only serving here needs the standby to be up to date first. A path no mount
    # matches yet may be a mount this standby has not applied: decided once caught up.
    found = core.router.match(path)
    if found and must_go_to_active(request.operation, found[0].entry.type, found[1]):
        return True
    # first: every committed change applied (a new mount must be routed, a revoked token
    # or a tightened policy refused), then decide from the up-to-date tables
    await cluster.ensure_fresh()
    if core.switching:
        await core.settled()
    found = core.router.match(path)
    mount_type = found[0].entry.type if found else None
    relative = found[1] if found else ""
    if must_go_to_active(request.operation, mount_type, relative):
        return True
    wanted = request.headers.get("x-vault-index")
    index = decode_index(wanted) if wanted else None
    if index is not None and not await cluster.wait_for_index(index, _INDEX_WAIT):
        if request.headers.get("x-vault-inconsistent", "") == "forward-active-node":
            return True
        raise IndexNotApplied("this standby has not caught up with the requested index yet")
    return False


_INDEX_WAIT = 1.0  # how long a standby waits for an X-Vault-Index before answering 412


# Per-object memos (a token's identity and TokenInfo, a mount's audit settings) live on
# the Core (``core.memos``): they hold token entries, so they go with the core that looked
# them up and are dropped when it seals or a standby invalidates its token cache.
_MEMO_LIMIT = 4096


def _wrap_ttl(request: Request, path: str) -> int | None:
    raw = request.headers.get("x-vault-wrap-ttl")
    if raw:
        return parse_wrap_ttl(raw)
    return None


async def _wrap(core: Core, response: Response, request: Request, path: str, ttl: int) -> Response:
    """Replace a response by a single-use wrapping token holding it (cubbyhole-backed)."""
    cubbyhole = core.router.get("cubbyhole/")
    if cubbyhole is None:
        raise InvalidRequest("response wrapping needs the cubbyhole mount")
    body = envelope_of(response, request.id)
    result = await wrap_response(core.tokens, cubbyhole.storage, body, ttl=ttl, creation_path=path)
    wrapped = Response(mount_type=response.mount_type)
    accessor = response.auth.accessor if response.auth is not None else ""
    if not accessor and response.data:
        # Vault names what a wrapped AppRole secret ID can be tracked and revoked by
        secret_id_accessor = response.data.get("secret_id_accessor")
        accessor = secret_id_accessor if isinstance(secret_id_accessor, str) else ""
    wrapped.wrap_info = result.wrap_info(path, ttl, accessor)
    return wrapped


def _check_token_binding(core: Core, entry: TokenEntry, request: Request) -> None:
    """A disabled entity's tokens, and tokens used outside their bound CIDRs, are refused."""
    if entry.entity_id and core.identity.is_disabled(entry.entity_id):
        raise PermissionDenied()
    cidrs = entry.internal.get("bound_cidrs")
    if cidrs and not remote_in(cidrs, request.connection.remote_addr):
        raise PermissionDenied()


def audit_auth(core: Core, entry: TokenEntry) -> AuditAuth:
    """The identity an audit entry records for a token (never the token itself)."""
    return memo_by_object(core.memos.auth, entry, _audit_auth, _MEMO_LIMIT)


def _audit_auth(entry: TokenEntry) -> AuditAuth:
    return AuditAuth(
        accessor=entry.accessor,
        display_name=entry.display_name,
        policies=entry.policies,
        token_policies=entry.policies,
        metadata=entry.meta,
        entity_id=entry.entity_id,
        token_type=entry.type,
        token_ttl=entry.creation_ttl,
        token_issue_time=format_time(entry.creation_time),
        remaining_uses=max(entry.num_uses, 0),
    )


def _token_info(core: Core, entry: TokenEntry) -> TokenInfo:
    """What a backend learns about the caller's token (memoised per entry)."""
    return memo_by_object(core.memos.info, entry, TokenEntry.info, _MEMO_LIMIT)


def _mount_info(core: Core, route: Route) -> MountInfo:
    return memo_by_object(core.memos.mount, route, _build_mount_info, _MEMO_LIMIT)


def _build_mount_info(route: Route) -> MountInfo:
    entry = route.entry
    config = entry.config
    return MountInfo(
        mount_point=route.mount_point,
        mount_type=entry.type,
        mount_accessor=entry.accessor,
        mount_class="auth" if entry.is_auth else "secret",
        non_hmac_request_keys=frozenset(config.audit_non_hmac_request_keys),
        non_hmac_response_keys=frozenset(config.audit_non_hmac_response_keys),
    )


# Seal operations Vault leaves out of the audit log that we record when devices are
# available (unsealed): a root-token generation or a rekey is exactly what an audit log is
# for. Their key shares and encoded tokens are strings in data, so they are HMAC'd.
AUDITED_SEAL_OPERATIONS = frozenset(
    {
        "sys/generate-root/attempt",
        "sys/generate-root/update",
        "sys/rekey/init",
        "sys/rekey/update",
        "sys/rekey/verify",
    }
)


async def _audited_seal_operation(core: Core, request: Request, seal_op: SealOp) -> Response | None:
    trail = Trail(core.audit, request)
    route = core.router.get("sys/")
    if route is not None:
        trail.mount = _mount_info(core, route)
    if request.client_token and not core.sealed:
        # identity only, for the entry: these operations authorise by key shares
        entry = await core.tokens.lookup(request.client_token)
        if entry is not None:
            trail.auth = audit_auth(core, entry)
    try:
        await trail.record_request()
        response = await seal_op(core, request)
    except Exception as exc:
        await trail.failed(exc)
        raise
    await trail.succeeded(response)
    return response


def _backend_request(
    core: Core,
    route: Route,
    relative: str,
    request: Request,
    entry: TokenEntry | None,
    operation: Operation | None = None,
) -> Request:
    mount_point = route.mount_point
    # Only the token store and sys see the caller's token ID; other backends never do. On
    # identity's unauthenticated paths the bearer is no Vault token but an OIDC access token
    # for the provider's userinfo endpoint.
    sees_token = mount_point in ("auth/token/", "sys/") or (
        entry is None and mount_point == "identity/"
    )
    # Built field by field: dataclasses.replace() costs ~20 us per call on the hot path.
    return Request(
        operation=request.operation if operation is None else operation,
        path=relative,
        data=request.data,
        storage=route.storage,
        id=request.id,
        mount_point=mount_point,
        mount_accessor=route.entry.accessor,
        mount_type=route.entry.type,
        client_token=request.client_token if sees_token else "",
        token=_token_info(core, entry) if entry is not None else None,
        query=request.query,
        headers=request.headers,
        connection=request.connection,
        unauthenticated=entry is None,
    )


async def _mint_login_token(
    core: Core, route: Route, relative: str, auth: Auth
) -> tuple[Auth, TokenEntry]:
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
    entity_id = auth.entity_id
    if auth.alias_name:
        # One identity per (auth mount, alias): created on first login, reused after.
        groups = tuple(str(g) for g in auth.internal_data.get("groups", ()) or ())
        entity = await core.identity.login_entity(
            route.entry.accessor, route.entry.type, auth.alias_name, auth.metadata, groups
        )
        entity_id = entity.id
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
        entity_id=entity_id,
        internal=dict(auth.internal_data),
        token_type=login_token_type(route.entry, auth.token_type),
    )
    block = token_auth_block(token, entry, core.clock.now())
    identity_policies = core.identity.policies_for(entity_id) if entity_id else ()
    if identity_policies:
        # Vault's login answer: the token's own policies, the entity's (and its groups'),
        # and both together in "policies"
        block = replace(
            block,
            identity_policies=tuple(identity_policies),
            policies=tuple(sorted({*block.policies, *identity_policies})),
        )
    return block, entry
