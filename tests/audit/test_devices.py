"""Devices: the file device's safety rules and crash recovery, socket and syslog sinks."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.audit import ChainState, Signer, Verifier
from strongroom.audit.devices import (
    Device,
    DeviceConfig,
    DeviceEnv,
    FileDevice,
    SocketDevice,
    SyslogDevice,
    build_device,
)
from strongroom.clock import FakeClock
from strongroom.errors import InvalidRequest
from tests.audit.conftest import Run

Make = Callable[..., Any]


@pytest.fixture
def env(signer: Signer) -> DeviceEnv:
    return DeviceEnv(clock=FakeClock(), signer=lambda: signer, on_checkpoint=lambda d: None)


def config(kind: str = "file", **options: str) -> DeviceConfig:
    return DeviceConfig(path=f"{kind}/", type=kind, uuid="u-1", salt=b"x" * 32, options=options)


def entry(i: int = 0) -> dict[str, Any]:
    return {"time": "2026-01-01T00:00:00Z", "type": "request", "seq": 0, "prev_hash": "", "n": i}


def verify(signer: Signer, *paths: Path) -> Any:
    verifier = Verifier({signer.key_id: signer.public_key})
    for path in paths:
        with open(path, "rb") as handle:
            verifier.feed(str(path), handle)
    return verifier.finish()


# ----- file: what it refuses --------------------------------------------------------
@pytest.mark.parametrize("mode", ["0700", "0755", "0644 ", "0777", "1600", "4600", "0601x"])
def test_modes_that_could_execute_or_exceed_0666_are_refused(
    env: DeviceEnv, tmp_path: Path, mode: str
) -> None:
    if mode == "0644 ":
        FileDevice(config(file_path=str(tmp_path / "a.log"), mode=mode), env)
        return
    with pytest.raises(InvalidRequest, match="mode"):
        FileDevice(config(file_path=str(tmp_path / "a.log"), mode=mode), env)


def test_the_mode_is_applied_whatever_the_umask(run: Run, env: DeviceEnv, tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        device = FileDevice(config(file_path=str(tmp_path / "a.log"), mode="0640"), env)
        run(device.open(None))
        run(device.close())
        default = FileDevice(config(file_path=str(tmp_path / "b.log")), env)
        run(default.open(None))
        run(default.close())
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.log").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "b.log").stat().st_mode) == 0o600


def test_a_symlink_is_never_followed(run: Run, env: DeviceEnv, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("")
    (tmp_path / "link.log").symlink_to(target)
    device = FileDevice(config(file_path=str(tmp_path / "link.log")), env)
    with pytest.raises(InvalidRequest, match="symbolic link"):
        run(device.open(None))
    assert target.read_text() == ""


def test_relative_paths_need_an_audit_directory(env: DeviceEnv) -> None:
    with pytest.raises(InvalidRequest, match="absolute"):
        FileDevice(config(file_path="audit.log"), env)


@pytest.mark.parametrize("raw", ["/etc/audit.log", "../escape.log", "sub/../../escape.log"])
def test_paths_outside_the_audit_directory_are_refused(
    env: DeviceEnv, tmp_path: Path, raw: str
) -> None:
    base = tmp_path / "audit"
    base.mkdir()
    with pytest.raises(InvalidRequest, match="audit_directory"):
        FileDevice(config(file_path=raw), env, audit_directory=str(base))


def test_a_symlink_escaping_the_audit_directory_is_refused(env: DeviceEnv, tmp_path: Path) -> None:
    base = tmp_path / "audit"
    base.mkdir()
    (base / "out.log").symlink_to(tmp_path / "elsewhere.log")
    with pytest.raises(InvalidRequest, match="audit_directory"):
        FileDevice(config(file_path="out.log"), env, audit_directory=str(base))


def test_relative_paths_land_inside_the_audit_directory(
    run: Run, env: DeviceEnv, tmp_path: Path
) -> None:
    base = tmp_path / "audit"
    (base / "sub").mkdir(parents=True)
    device = FileDevice(config(file_path="sub/a.log"), env, audit_directory=str(base))
    assert device.file_path == str((base / "sub" / "a.log").resolve())
    run(device.open(None))
    run(device.close())
    assert (base / "sub" / "a.log").exists()


@pytest.mark.parametrize(
    "content", [b"root:x:0:0::/root:/bin/bash\n", b"#!/bin/sh\necho hi\n", b"{}\n"]
)
def test_an_existing_file_that_is_not_an_audit_log_is_never_appended_to(
    run: Run, env: DeviceEnv, tmp_path: Path, content: bytes
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(content)
    device = FileDevice(config(file_path=str(victim)), env)
    with pytest.raises(InvalidRequest, match="not a Strongroom audit log"):
        run(device.open(None))
    assert victim.read_bytes() == content


def test_special_files_are_refused(run: Run, env: DeviceEnv, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InvalidRequest, match="regular file"):  # and never a hang
        run(FileDevice(config(file_path=str(fifo)), env).open(None))
    with pytest.raises(InvalidRequest, match="regular file"):
        run(FileDevice(config(file_path="/dev/null"), env).open(None))


@pytest.mark.parametrize("prefix", ["{", "a\nb", "#!/bin/sh ", "x\x00"])
def test_dangerous_prefixes_are_refused(env: DeviceEnv, tmp_path: Path, prefix: str) -> None:
    with pytest.raises(InvalidRequest, match="prefix"):
        FileDevice(config(file_path=str(tmp_path / "a.log"), prefix=prefix), env)


def test_unknown_options_and_formats_are_refused(env: DeviceEnv, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="unknown audit device options: colour"):
        FileDevice(config(file_path=str(tmp_path / "a"), colour="red"), env)
    with pytest.raises(InvalidRequest, match="json"):
        FileDevice(config(file_path=str(tmp_path / "a"), format="jsonx"), env)
    with pytest.raises(InvalidRequest, match="unknown audit device type"):
        build_device(config("tape"), env)


# ----- file: writing, chaining, recovering -------------------------------------------
def test_lines_chain_checkpoint_and_verify(
    run: Run, env: DeviceEnv, signer: Signer, tmp_path: Path
) -> None:
    path = tmp_path / "a.log"
    device = FileDevice(config(file_path=str(path), checkpoint_entries="4", prefix="sr: "), env)
    run(device.open(None))
    for i in range(10):
        run(device.record(entry(i)))
    run(device.close())
    lines = path.read_bytes().splitlines()
    assert all(line.startswith(b"sr: {") for line in lines)
    kinds = [orjson.loads(line[4:])["type"] for line in lines]
    assert kinds[0] == "link" and kinds[-1] == "checkpoint" and kinds.count("checkpoint") == 3
    assert verify(signer, path).ok


def test_a_new_device_on_an_existing_log_starts_a_chain_of_its_own(
    run: Run, env: DeviceEnv, signer: Signer, tmp_path: Path
) -> None:
    path = tmp_path / "a.log"
    first = FileDevice(config(file_path=str(path)), env)
    run(first.open(None))
    run(first.record(entry()))
    run(first.close())
    second = FileDevice(config(file_path=str(path)), env)
    run(second.open(None))
    run(second.record(entry()))
    run(second.close())
    assert verify(signer, path).ok
    chains = {orjson.loads(line)["chain"] for line in path.read_bytes().splitlines()}
    assert len(chains) == 2


def test_a_short_write_is_cut_off_again(
    run: Run, env: DeviceEnv, signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.log"
    device = FileDevice(config(file_path=str(path)), env)
    run(device.open(None))
    run(device.record(entry(1)))
    size = path.stat().st_size
    real_write = os.write

    def half(fd: int, data: bytes) -> int:
        return real_write(fd, bytes(data)[: len(data) // 2])

    monkeypatch.setattr(os, "write", half)
    with pytest.raises(OSError):
        run(device.record(entry(2)))
    monkeypatch.setattr(os, "write", real_write)
    assert path.stat().st_size == size
    run(device.record(entry(3)))
    run(device.close())
    assert verify(signer, path).ok
    assert device.counters["failures"] == 1


def test_an_unclean_stop_is_recovered_from_the_file_tail(
    run: Run, env: DeviceEnv, signer: Signer, tmp_path: Path
) -> None:
    path = tmp_path / "a.log"
    device = FileDevice(config(file_path=str(path)), env)
    run(device.open(None))
    saved = device.snapshot()  # what the barrier holds: the state after the link
    for i in range(5):
        run(device.record(entry(i)))
    run(device._close_sink())  # a crash: no final checkpoint, state not saved
    again = FileDevice(config(file_path=str(path)), env)
    run(again.open(saved))
    run(again.record(entry(9)))
    run(again.close())
    report = verify(signer, path)
    assert report.ok, report.finding
    assert report.warnings and "recovered" in report.warnings[0]
    kinds = [orjson.loads(line)["type"] for line in path.read_bytes().splitlines()]
    assert kinds[:8] == ["link", *["request"] * 5, "checkpoint", "link"]


def test_a_truncated_file_is_not_papered_over(
    run: Run, env: DeviceEnv, signer: Signer, tmp_path: Path
) -> None:
    path = tmp_path / "a.log"
    device = FileDevice(config(file_path=str(path), checkpoint_entries="3"), env)
    run(device.open(None))
    for i in range(7):
        run(device.record(entry(i)))
    run(device.close())
    saved = device.chain.state.copy() if device.chain else ChainState()
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]))
    again = FileDevice(config(file_path=str(path)), env)
    run(again.open(saved))
    run(again.close())
    report = verify(signer, path)
    assert report.finding is not None and report.finding.line == 5


def test_stdout(run: Run, env: DeviceEnv, capfd: pytest.CaptureFixture[str]) -> None:
    device = FileDevice(config(file_path="stdout"), env)
    run(device.open(None))
    run(device.record(entry()))
    run(device.close())
    out = capfd.readouterr().out.splitlines()
    assert [orjson.loads(line)["type"] for line in out] == ["link", "request", "checkpoint"]


# ----- socket ------------------------------------------------------------------------
def test_socket_device_over_tcp(run: Run, env: DeviceEnv, signer: Signer, tmp_path: Path) -> None:
    received: list[bytes] = []

    async def scenario() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                received.append(line)
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        device = SocketDevice(config("socket", address=f"127.0.0.1:{port}"), env)
        await device.open(None)
        for i in range(3):
            await device.record(entry(i))
        await device.close()
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()

    run(scenario())
    (tmp_path / "got.log").write_bytes(b"".join(received))
    assert [orjson.loads(x)["type"] for x in received] == [
        "link",
        *["request"] * 3,
        "checkpoint",
    ]
    assert verify(signer, tmp_path / "got.log").ok


def test_socket_device_unreachable_and_bad_addresses(run: Run, env: DeviceEnv) -> None:
    with pytest.raises(InvalidRequest, match="address"):
        SocketDevice(config("socket", address="nowhere"), env)
    with pytest.raises(InvalidRequest, match="socket_type"):
        SocketDevice(config("socket", address="h:1", socket_type="sctp"), env)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    device = SocketDevice(config("socket", address=f"127.0.0.1:{port}"), env)
    with pytest.raises(OSError):
        run(device.open(None))


def test_socket_device_over_udp(run: Run, env: DeviceEnv) -> None:
    async def scenario() -> list[bytes]:
        got: list[bytes] = []
        loop = asyncio.get_running_loop()

        class Sink(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                got.append(data)

        transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        device = SocketDevice(config("socket", address=f"127.0.0.1:{port}", socket_type="udp"), env)
        await device.open(None)
        await device.record(entry())
        await device.close()
        await asyncio.sleep(0.05)
        transport.close()
        return got

    got = run(scenario())
    assert [orjson.loads(x)["type"] for x in got] == ["link", "request", "checkpoint"]


# ----- syslog ------------------------------------------------------------------------
def test_syslog_device_writes_tagged_datagrams(
    run: Run, env: DeviceEnv, signer: Signer, tmp_path: Path
) -> None:
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as daemon:
        daemon.bind(str(path))
        device = SyslogDevice(
            config("syslog", facility="local3", tag="strongroom"), env, socket_path=str(path)
        )
        run(device.open(None))
        run(device.record(entry()))
        run(device.close())
        daemon.settimeout(1)
        messages = [daemon.recv(65536) for _ in range(3)]
    assert all(m.startswith(b"<158>") and b" strongroom[" in m for m in messages)  # 19*8+6
    stored = tmp_path / "stored.log"
    stored.write_bytes(b"".join(m + b"\n" for m in messages))
    assert verify(signer, stored).ok  # the daemon's framing is outside the hash


def test_syslog_options_are_checked(env: DeviceEnv) -> None:
    with pytest.raises(InvalidRequest, match="facility"):
        SyslogDevice(config("syslog", facility="LOCAL9"), env)
    with pytest.raises(InvalidRequest, match="tag"):
        SyslogDevice(config("syslog", tag="bad tag\n"), env)


def test_devices_hide_their_salt(env: DeviceEnv, tmp_path: Path) -> None:
    device: Device = FileDevice(config(file_path=str(tmp_path / "a")), env)
    assert "xxxx" not in repr(device) and "xxxx" not in repr(device.config)
