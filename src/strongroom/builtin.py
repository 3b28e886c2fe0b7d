"""The registry of built-in backends: the only module that imports every engine."""

from __future__ import annotations

from strongroom.engines import cubbyhole, kv
from strongroom.logical import BackendFactory

__all__ = ["FACTORIES"]

FACTORIES: dict[str, BackendFactory] = {
    "kv": kv.factory,
    "cubbyhole": cubbyhole.factory,
}
