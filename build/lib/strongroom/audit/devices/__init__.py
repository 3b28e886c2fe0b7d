"""Audit device types: ``file``, ``socket`` and ``syslog`` (Vault's three)."""

from __future__ import annotations

from strongroom.audit.devices._base import (
    COMMON_OPTIONS,
    CommonOptions,
    Device,
    DeviceConfig,
    DeviceEnv,
    DeviceUnavailable,
    parse_common,
)
from strongroom.audit.devices.file import FileDevice
from strongroom.audit.devices.socket import SocketDevice
from strongroom.audit.devices.syslog import SyslogDevice
from strongroom.errors import InvalidRequest

__all__ = [
    "COMMON_OPTIONS",
    "DEVICE_TYPES",
    "CommonOptions",
    "Device",
    "DeviceConfig",
    "DeviceEnv",
    "DeviceUnavailable",
    "FileDevice",
    "SocketDevice",
    "SyslogDevice",
    "build_device",
    "parse_common",
]

DEVICE_TYPES = ("file", "socket", "syslog")


def build_device(config: DeviceConfig, env: DeviceEnv, *, audit_directory: str = "") -> Device:
    """A device for one table row; validates its options.

    Raises:
        InvalidRequest: an unknown type or a bad option.
    """
    if config.type == "file":
        return FileDevice(config, env, audit_directory=audit_directory)
    if config.type == "socket":
        return SocketDevice(config, env)
    if config.type == "syslog":
        return SyslogDevice(config, env)
    raise InvalidRequest(f"unknown audit device type {config.type!r}: use file, socket or syslog")
