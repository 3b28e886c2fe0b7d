"""A separate writer process for the multi-writer tests: one file device, its own chain.

``python -m tests.audit.audit_writer KEY_HEX FILE ENTRIES DIR WRITERS`` opens a file device
on FILE (checkpoint every 7 lines), says it is ready (``DIR/ready.<pid>``) and waits for
``DIR/go`` (so several writers start together), writes ENTRIES request entries (some
longer than PIPE_BUF, 4096 bytes, so a non-atomic append would show up as a torn or
interleaved line) with a barrier half way (every writer waits until all WRITERS wrote
their first half, so their lines certainly interleave) and closes (final checkpoint).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from strongroom.audit import Signer
from strongroom.audit.devices import DeviceConfig, DeviceEnv, FileDevice
from strongroom.clock import SystemClock
from strongroom.framework import format_time


def barrier(directory: str, name: str, writers: int) -> None:
    open(os.path.join(directory, f"{name}.{os.getpid()}"), "w").close()
    deadline = time.monotonic() + 30
    while sum(1 for f in os.listdir(directory) if f.startswith(f"{name}.")) < writers:
        if time.monotonic() > deadline:
            raise SystemExit(f"barrier {name} never filled")
        time.sleep(0.001)


async def main(key_hex: str, path: str, entries: int, directory: str, writers: int) -> None:
    signer = Signer.from_private_bytes(bytes.fromhex(key_hex))
    env = DeviceEnv(clock=SystemClock(), signer=lambda: signer, on_checkpoint=lambda d: None)
    config = DeviceConfig(
        path="file/",
        type="file",
        uuid=f"u-{os.getpid()}",
        salt=b"x" * 32,
        options={"file_path": path, "checkpoint_entries": "7"},
    )
    device = FileDevice(config, env)
    barrier(directory, "ready", writers)
    await device.open(None)
    for i in range(entries):
        if i == entries // 2:
            barrier(directory, "half", writers)
        await device.record(
            {
                "time": format_time(time.time()),
                "type": "request",
                "seq": 0,
                "prev_hash": "",
                "request": {"path": f"secret/data/w{os.getpid()}/{i}"},
                "pad": "p" * (6000 if i % 3 == 0 else 100 + i),
            }
        )
    await device.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])))
