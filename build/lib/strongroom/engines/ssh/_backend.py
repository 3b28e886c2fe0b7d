"""The SSH factory: the path table of one mount."""

from __future__ import annotations

from strongroom.engines.ssh.config import CAStore, ConfigPaths
from strongroom.engines.ssh.otp import OtpPaths
from strongroom.engines.ssh.roles import RolesPaths
from strongroom.engines.ssh.sign import SignPaths
from strongroom.framework import FrameworkBackend
from strongroom.logical import Backend, BackendConfig, BackendKind

__all__ = ["SSHBackend", "factory"]


class SSHBackend(FrameworkBackend):
    def __init__(self, config: BackendConfig) -> None:
        ca = CAStore()
        otp = OtpPaths()
        super().__init__(
            kind=BackendKind.SECRET,
            paths=[
                *SignPaths(ca, config.system).paths(),
                *otp.paths(),
                *RolesPaths().paths(),
                *ConfigPaths(ca).paths(),
            ],
            help=_HELP,
            unauthenticated_paths=("verify", "public_key"),
            secrets=otp.secret_types(),
        )


async def factory(config: BackendConfig) -> Backend:
    """Build an SSH backend for a mount (``config.system`` supplies the clock and TTLs)."""
    return SSHBackend(config)


_HELP = """\
The SSH secrets engine signs SSH public keys with its CA key (sign/, issue/) so that hosts
trusting the CA accept them, and hands out one-time passwords that vault-ssh-helper verifies
(creds/, verify). Paths: config/ca, public_key, config/zeroaddress, roles/, sign/, issue/,
creds/, verify, lookup."""
