"""sys/loggers[/:name]: read and change log levels at run time (Vault's level names).

A write changes the level of our ``strongroom.*`` loggers (all, or one by its name without
the prefix, e.g. ``core`` or ``http``); a DELETE puts back the level the server started with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest
from strongroom.framework import Path
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

__all__ = ["logger_paths"]

_PREFIX = "strongroom."
_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}


@dataclass(frozen=True, slots=True)
class LoggerArgs:
    name: str = ""
    level: str = ""


def _ours() -> dict[str, logging.Logger]:
    """Our loggers by short name (the ``strongroom.`` prefix dropped)."""
    manager = logging.Logger.manager
    out: dict[str, logging.Logger] = {}
    for full, logger in list(manager.loggerDict.items()):
        if full.startswith(_PREFIX) and isinstance(logger, logging.Logger):
            out[full[len(_PREFIX) :]] = logger
    return out


def _level(raw: str) -> int:
    level = _LEVELS.get(raw.strip().lower())
    if level is None:
        raise InvalidRequest(f"invalid level provided: unknown log level: {raw[:20]}")
    return level


def logger_paths(core: Core) -> list[Path]:
    async def read_all(request: Request, args: LoggerArgs) -> Response:
        return Response(
            data={n: _NAMES.get(lg.getEffectiveLevel(), "info") for n, lg in _ours().items()}
        )

    async def write_all(request: Request, args: LoggerArgs) -> None:
        level = _level(args.level)
        for logger in _ours().values():
            logger.setLevel(level)

    async def reset_all(request: Request, args: LoggerArgs) -> None:
        for logger in _ours().values():
            logger.setLevel(logging.NOTSET)  # back to the root level set at start

    def one(args: LoggerArgs) -> logging.Logger:
        logger = _ours().get(args.name)
        if logger is None:
            raise InvalidRequest(f'logger "{args.name[:60]}" not found')
        return logger

    async def read_one(request: Request, args: LoggerArgs) -> Response:
        logger = one(args)
        return Response(data={args.name: _NAMES.get(logger.getEffectiveLevel(), "info")})

    async def write_one(request: Request, args: LoggerArgs) -> None:
        one(args).setLevel(_level(args.level))

    async def reset_one(request: Request, args: LoggerArgs) -> None:
        one(args).setLevel(logging.NOTSET)

    op = Operation
    return [
        Path(
            r"loggers",
            {op.READ: read_all, op.UPDATE: write_all, op.DELETE: reset_all},
            LoggerArgs,
            synopsis="Log levels of every logger",
        ),
        Path(
            r"loggers/(?P<name>.+)",
            {op.READ: read_one, op.UPDATE: write_one, op.DELETE: reset_one},
            LoggerArgs,
            synopsis="The log level of one logger",
        ),
    ]
