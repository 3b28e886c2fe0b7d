"""sys/storage/snapshot and Vault's sys/storage/raft/snapshot(-force): save and restore.

``GET`` answers the snapshot file itself (``application/octet-stream``); ``POST`` (or
``PUT``) takes one as the raw request body (http/ hands these paths' bodies over untouched,
base64 in ``http_raw_body``) and answers 204. Restoring another cluster's snapshot needs
``sys/storage/raft/snapshot-force`` or ``?force=true`` on ``sys/storage/snapshot``. As in
Vault these paths are not sudo-protected: the ACL must grant ``read`` (save) or ``update``
(restore) on them. See :mod:`strongroom.core.snapshots`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from strongroom.core.snapshots import restore_snapshot, save_snapshot
from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response

__all__ = ["TABLE"]


@dataclass(frozen=True, slots=True)
class SnapshotArgs:
    http_raw_body: str = ""
    force: bool = False  # ?force=true on sys/storage/snapshot


def _body(args: SnapshotArgs) -> bytes:
    if not args.http_raw_body:
        raise InvalidRequest("the request body must be a snapshot file")
    try:
        return base64.b64decode(args.http_raw_body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("the request body must be a snapshot file") from None


async def _save(ctx: SysContext, request: Request, args: SnapshotArgs) -> Response:
    data = await save_snapshot(ctx.core)
    return Response(raw_body=data, status=200, content_type="application/octet-stream")


async def _restore(ctx: SysContext, request: Request, args: SnapshotArgs) -> None:
    await restore_snapshot(ctx.core, _body(args), force=args.force)


async def _restore_force(ctx: SysContext, request: Request, args: SnapshotArgs) -> None:
    await restore_snapshot(ctx.core, _body(args), force=True)


_read, _update, _create = Operation.READ, Operation.UPDATE, Operation.CREATE


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"storage/snapshot",
        {_read: _save, _update: _restore, _create: _restore},
        SnapshotArgs,
        synopsis="Save (GET) or restore (POST) a snapshot of all storage",
    ),
    Endpoint(
        r"storage/raft/snapshot",
        {_read: _save, _update: _restore, _create: _restore},
        SnapshotArgs,
        synopsis="Vault's raft snapshot path: save (GET) or restore (POST)",
    ),
    Endpoint(
        r"storage/raft/snapshot-force",
        {_update: _restore_force, _create: _restore_force},
        SnapshotArgs,
        synopsis="Restore a snapshot, even one from another cluster",
    ),
]
