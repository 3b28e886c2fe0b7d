"""How an HA standby follows the active (core/cluster.py drives it through Core's
``invalidate``/``invalidate_all``): for each batch of changed storage keys, drop exactly
what they made stale — the ciphertext cache entries, one token's cache entry per token
write, the policy/ACL caches, identity, the API settings, and only the mounts whose entry
changed in a changed mount table. A keyring that no longer opens with this node's root key
(another cluster's snapshot restored with force on the active) seals the node cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strongroom.core.mounts import AUTH_TABLE_KEY, MOUNT_TABLE_KEY, MountTable, mount_changes
from strongroom.core.router import Route
from strongroom.core.snapshots import FOREIGN_RESTORE
from strongroom.core.system.cors import CORS_KEY
from strongroom.core.system.header_config import AUDITED_HEADERS_KEY, UI_HEADERS_KEY
from strongroom.core.system.keys import ROTATE_CONFIG_KEY
from strongroom.errors import CryptoError, InternalError, InvalidRequest, Standby

if TYPE_CHECKING:
    from strongroom.core.core import Core, _Unsealed

__all__ = ["FOREIGN_RESTORE", "invalidate", "invalidate_all", "keyring_still_opens"]

log = logging.getLogger("strongroom.core")

AUDIT_TABLE_KEY = "core/audit"
CLUSTER_KEY = "core/cluster"
KEYRING_KEY = "core/keyring"
TOKEN_SALT_KEY = "core/token-salt"  # noqa: S105 (a storage key, not a secret)


async def invalidate_all(core: Core) -> None:
    """The store changed past what the feed can tell (a gap): reload everything, unless
    the keyring no longer opens with our root key (then seal)."""
    if core._physical_cache is not None:
        core._physical_cache.invalidate_all()
    if await keyring_still_opens(core):
        await core.become_standby()  # drops the whole ciphertext cache and reloads


async def keyring_still_opens(core: Core) -> bool:
    """Re-read the keyring after the active changed it (a rotation, or a snapshot
    restored underneath us). If our root key no longer opens it (another cluster's
    snapshot, restored with force), seal at once, cleanly, and say why in sys/health:
    this node must be unsealed with the keys of the cluster the snapshot came from."""
    try:
        await core.barrier.reload_keyring()
        return True
    except (CryptoError, InvalidRequest, InternalError):
        pass
    core.seal_reason = FOREIGN_RESTORE
    log.warning("the stored keyring no longer opens with this node's root key: sealing")
    # sealed from now on for every request; the seal itself runs in a task of its own:
    # we are inside the cluster's feed follower, which sealing cancels
    core._sealing = True
    task = asyncio.get_running_loop().create_task(_seal_after_restore(core))
    core._background.add(task)
    task.add_done_callback(core._background.discard)
    return False


async def _seal_after_restore(core: Core) -> None:
    try:
        await core.seal()
        await core.seal_manager.load()  # the restored store's seal configuration
    except Exception as exc:  # sealed below whatever failed: never half-serving
        log.error("sealing after a foreign restore: %s", type(exc).__name__)
        core.seal_manager.seal()
    finally:
        core._sealing = False


async def invalidate(core: Core, keys: Sequence[str]) -> None:
    """A standby drops what the active changed: the ciphertext cache first, then what
    was derived from those keys."""
    cache = core._physical_cache
    if cache is not None:
        for key in keys:
            cache.invalidate(key)
    state = core._state
    if state is None or state.active:
        return
    mount_tables = keyring = policies = identity = api_config = audit = False
    token_keys: list[str] = []
    by_mount: dict[str, list[str]] = {}
    for key in keys:
        if key in (MOUNT_TABLE_KEY, AUTH_TABLE_KEY):
            mount_tables = True
        elif key == AUDIT_TABLE_KEY:
            audit = True
        elif key == KEYRING_KEY:
            keyring = True
        elif key in (
            CORS_KEY,
            AUDITED_HEADERS_KEY,
            ROTATE_CONFIG_KEY,
            UI_HEADERS_KEY,
        ) or key.startswith("sys/quotas/"):
            api_config = True  # CORS, audited headers, rate-limit and lease-count quotas
        elif key.startswith("sys/token/"):
            token_keys.append(key[len("sys/token/") :])
        elif key.startswith("sys/policy/"):
            policies = True
        elif key.startswith("sys/identity/"):
            identity = True
        elif key.startswith(("logical/", "auth/")):
            _, mount_uuid, rest = [*key.split("/", 2), "", ""][:3]
            by_mount.setdefault(mount_uuid, []).append(rest)
    if keyring or CLUSTER_KEY in keys or TOKEN_SALT_KEY in keys:
        # a rotation, or a snapshot restored on the active (it rewrites every key)
        if not await keyring_still_opens(core):
            return
        if CLUSTER_KEY in keys or TOKEN_SALT_KEY in keys:  # only ever by a restore
            await core.become_standby()  # reload everything, as the active did
            return
    if api_config:
        await core._load_api_config()
    if audit:  # a device enabled or disabled on the active: open or close ours
        await core.audit.reload()
    if mount_tables:  # a mount enabled, disabled, moved or tuned
        await reload_mounts(core, state)
    if token_keys:  # only those tokens' entries (memos are per entry object: no clear)
        state.tokens.forget_keys(token_keys)
    if policies:
        state.policies.invalidate()
    if identity:
        await state.identity.load()
    for mount_uuid, relative in by_mount.items():
        entry = state.by_uuid.get(mount_uuid)
        route = core.router.get(entry.full_path) if entry is not None else None
        hook = getattr(route.backend, "invalidate", None) if route is not None else None
        if hook is not None:
            for key in relative:
                hook(key)


async def reload_mounts(core: Core, state: _Unsealed) -> None:
    """A standby applies a changed mount table: only the mounts that changed are
    unmounted, rebuilt, moved or retuned; the others keep their backend."""
    async with core._lock:
        if core._state is not state:
            return  # sealed or switched meanwhile: that reloaded everything
        core._switching = True  # requests wait until the routes are whole again
        try:
            mounts = await MountTable.load(core.barrier, MOUNT_TABLE_KEY, is_auth=False)
            auth = await MountTable.load(core.barrier, AUTH_TABLE_KEY, is_auth=True)
            if mounts is None or auth is None:
                raise Standby("the mount tables are gone")
            for old_table, new_table in ((state.mounts, mounts), (state.auth_mounts, auth)):
                changes = mount_changes(old_table, new_table)
                for entry in (*changes.removed, *(old for old, _ in changes.rebuilt)):
                    state.by_uuid.pop(entry.uuid, None)
                    route = core.router.unmount(entry.full_path)
                    if route is not None:
                        await route.backend.cleanup()
                for old, new in changes.updated:
                    route = core.router.unmount(old.full_path)
                    if route is not None:
                        core.router.mount(
                            Route(entry=new, backend=route.backend, storage=route.storage)
                        )
                    state.by_uuid[new.uuid] = new
                for entry in (*(new for _, new in changes.rebuilt), *changes.added):
                    await core._activate(entry, initialize=False)
            state.mounts, state.auth_mounts = mounts, auth
        finally:
            core._switching = False
