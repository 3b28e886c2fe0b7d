"""The ``strongroom`` command-line client: Vault's CLI over Strongroom's HTTP API.

It never imports the server's modules (core, http, engines, storage, barrier); the only
exception is ``strongroom server``, which hands its arguments to ``strongroom.server.run``.
"""

from __future__ import annotations

from .main import main, run

__all__ = ["main", "run"]
