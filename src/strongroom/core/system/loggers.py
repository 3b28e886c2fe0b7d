"""sys/loggers[/:name]: read and change log levels at run time (Vault's level names).

A write changes the level of our ``strongroom.*`` loggers (all, or one by its name without
the prefix, e.g. ``core`` or ``http``); a DELETE puts back the level the server started with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from strongroom.core.system._context import SysContext
from strongroom.errors import InvalidRequest
from strongroom.framework import Endpoint
from strongroom.logical import Operation, Request, Response

__all__ = ["LOG_LEVELS", "TABLE"]

_PREFIX = "strongroom."
# Vault's level names (trace is debug here)
LOG_LEVELS = {
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
    level = LOG_LEVELS.get(raw.strip().lower())
    if level is None:
        raise InvalidRequest(f"invalid level provided: unknown log level: {raw[:20]}")
    return level


async def _read_all(ctx: SysContext, request: Request, args: LoggerArgs) -> Response:
    return Response(
        data={n: _NAMES.get(lg.getEffectiveLevel(), "info") for n, lg in _ours().items()}
    )


async def _write_all(ctx: SysContext, request: Request, args: LoggerArgs) -> None:
    level = _level(args.level)
    for logger in _ours().values():
        logger.setLevel(level)


async def _reset_all(ctx: SysContext, request: Request, args: LoggerArgs) -> None:
    for logger in _ours().values():
        logger.setLevel(logging.NOTSET)  # back to the root level set at start


def _one(args: LoggerArgs) -> logging.Logger:
    logger = _ours().get(args.name)
    if logger is None:
        raise InvalidRequest(f'logger "{args.name[:60]}" not found')
    return logger


async def _read_one(ctx: SysContext, request: Request, args: LoggerArgs) -> Response:
    logger = _one(args)
    return Response(data={args.name: _NAMES.get(logger.getEffectiveLevel(), "info")})


async def _write_one(ctx: SysContext, request: Request, args: LoggerArgs) -> None:
    _one(args).setLevel(_level(args.level))


async def _reset_one(ctx: SysContext, request: Request, args: LoggerArgs) -> None:
    _one(args).setLevel(logging.NOTSET)


_op = Operation


TABLE: list[Endpoint[SysContext]] = [
    Endpoint(
        r"loggers",
        {_op.READ: _read_all, _op.UPDATE: _write_all, _op.DELETE: _reset_all},
        LoggerArgs,
        synopsis="Log levels of every logger",
    ),
    Endpoint(
        r"loggers/(?P<name>.+)",
        {_op.READ: _read_one, _op.UPDATE: _write_one, _op.DELETE: _reset_one},
        LoggerArgs,
        synopsis="The log level of one logger",
    ),
]
