"""The TOTP factory: the path table of one mount."""

from __future__ import annotations

from strongroom.engines.totp.code import CodePaths
from strongroom.engines.totp.keys import KeysPaths
from strongroom.framework import FrameworkBackend
from strongroom.logical import Backend, BackendConfig, BackendKind

__all__ = ["TotpBackend", "factory"]


class TotpBackend(FrameworkBackend):
    def __init__(self, config: BackendConfig) -> None:
        super().__init__(
            kind=BackendKind.SECRET,
            paths=[*CodePaths(config.system).paths(), *KeysPaths().paths()],
            help=_HELP,
        )


async def factory(config: BackendConfig) -> Backend:
    """Build a TOTP backend for a mount (``config.system.now()`` is the clock codes use)."""
    return TotpBackend(config)


_HELP = """\
The TOTP secrets engine generates time-based one-time codes (RFC 6238) for keys it creates,
or validates codes for keys it imports. Paths: keys/, code/."""
