"""The ``file`` audit device: one JSON line per entry, appended to a file (or stdout).

Options (Vault's): ``file_path`` (required; ``stdout`` and ``discard`` are keywords; ``path``
is its legacy alias) and ``mode`` (octal string, default ``"0600"``; ``"0000"`` leaves an
existing file's mode alone), plus the common ones.

Writes are one ``os.write`` per line on a descriptor opened ``O_APPEND``: no user-space
buffer can hold a line back or write it twice, and a line costs one system call into the
page cache, the same "write and flush, no fsync" Vault does per entry. Durability is
bought at checkpoints instead: before the chain state is persisted behind the barrier the
file is fsynced in a worker thread, so the event loop never waits on the disk. A short
write (disk full) is cut back off with ``ftruncate`` so no torn line stays in the file.

Security decisions (an audit ``file_path`` is chosen through the API, so it must not become
a way to write files the operator did not mean to):

- the file is opened ``O_RDWR|O_APPEND|O_CREAT|O_NOFOLLOW|O_CLOEXEC`` (a symlink at the
  final component is refused; reading is for the checks below and tail recovery) and must
  be a regular file;
- ``mode`` may have no execute bit and nothing above ``0666``;
- an existing non-empty file is appended to, or has its mode changed, only if its first
  line is a Strongroom audit entry (so an API call can neither append to ``/etc/passwd`` or
  a script nor loosen the mode of ``/etc/shadow``);
- with ``audit_directory`` set in the server configuration, the path (relative paths are
  taken inside it) must resolve, symlinks followed, inside that directory, and the file
  actually opened is checked again through ``/proc/self/fd``. Without it, any absolute path
  is allowed, symlinks at the final component are not followed, and intermediate
  directories are trusted: set ``audit_directory`` in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import stat
import time
from collections.abc import Collection, Iterator
from typing import ClassVar

import orjson

from strongroom.audit.adopt import Adopted, DeadWatch, adopt_dead_chains
from strongroom.audit.chain import ENTRY_TYPES, Chain, ChainState, StampedLine, json_start
from strongroom.audit.devices._base import Device, DeviceConfig, DeviceEnv, host_of, writer_id
from strongroom.errors import InvalidRequest

__all__ = ["FileDevice", "check_mode", "resolve_file_path"]

log = logging.getLogger("strongroom.audit")

_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_FIRST_LINE_LIMIT = 1 << 20
_RECOVERY_LIMIT = 256 << 20
_SPECIAL = ("stdout", "discard")
_SETTLE_TRIES = 20
_SETTLE_PAUSE = 0.002  # seconds (in a worker thread: the event loop never waits)


def check_mode(text: str) -> int:
    """The ``mode`` option: octal, no execute bit, nothing above 0666."""
    try:
        mode = int(text.strip() or "0600", 8)
    except ValueError:
        raise InvalidRequest("mode: expected an octal number such as 0600") from None
    if mode & 0o111:
        raise InvalidRequest("mode: an audit file may not be executable")
    if mode > 0o666:
        raise InvalidRequest("mode: only permission bits up to 0666 are allowed")
    return mode


def resolve_file_path(raw: str, audit_directory: str) -> str:
    """The absolute path an audit file may be written at (see the module docstring)."""
    if not raw or "\x00" in raw:
        raise InvalidRequest("file_path is required")
    if raw in _SPECIAL:
        return raw
    if audit_directory:
        base = os.path.realpath(audit_directory)
        candidate = raw if os.path.isabs(raw) else os.path.join(base, raw)
        resolved = os.path.realpath(candidate)
        if resolved == base or os.path.commonpath([resolved, base]) != base:
            raise InvalidRequest("file_path must be inside the server's audit_directory")
        return resolved
    if not os.path.isabs(raw):
        raise InvalidRequest("file_path must be an absolute path")
    return os.path.normpath(raw)


def _is_audit_line(line: bytes) -> bool:
    start = json_start(line, None)
    if start < 0:
        return False
    try:
        entry = orjson.loads(line[start:])
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(entry, dict)
        and entry.get("type") in ENTRY_TYPES
        and isinstance(entry.get("seq"), int)
        and isinstance(entry.get("prev_hash"), str)
    )


def _lines_from(fd: int, offset: int, size: int) -> Iterator[tuple[bytes, bool]]:
    """(line, complete) from ``offset`` to ``size``."""
    rest = b""
    position = offset
    while position < size:
        chunk = os.pread(fd, min(1 << 20, size - position), position)
        if not chunk:
            break
        position += len(chunk)
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            yield line, True
    if rest:
        yield rest, False


def _last_line(fd: int, size: int) -> bytes | None:
    """The last complete line of a file (reading backwards at most 1 MiB)."""
    start = max(0, size - _FIRST_LINE_LIMIT)
    tail = os.pread(fd, size - start, start)
    if not tail.endswith(b"\n"):
        return None
    body = tail[:-1]
    cut = body.rfind(b"\n")
    if cut < 0 and start > 0:
        return None
    return body[cut + 1 :]


def _settled_size(fd: int, size: int) -> int:
    """The file's size once no other writer is mid-line. Another process appending to the
    same file (several writers) may be inside its one ``write`` of a line longer than a
    page, whose size the kernel grows page by page: a line that does not end yet is given
    a moment to end before it is taken for a torn line (a crash's leftover)."""
    for _ in range(_SETTLE_TRIES):
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        time.sleep(_SETTLE_PAUSE)
        size = os.fstat(fd).st_size
    return size


class FileDevice(Device):
    kind = "file"
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"file_path", "path", "mode"})
    SYNC_WRITES: ClassVar[bool] = True

    def __init__(self, config: DeviceConfig, env: DeviceEnv, *, audit_directory: str = "") -> None:
        super().__init__(config, env)
        options = config.options
        raw_path = options.get("file_path") or options.get("path") or ""
        self.file_path = resolve_file_path(raw_path, audit_directory)
        self.mode = check_mode(options.get("mode", "0600"))
        self._audit_directory = os.path.realpath(audit_directory) if audit_directory else ""
        self._fd: int | None = None
        self._size = 0
        self._end = 0  # the file offset just after our last line
        self._torn = False
        self._dead_watch = DeadWatch()

    # ----- opening ---------------------------------------------------------------------
    async def _open_sink(
        self, state: ChainState | None, *, recover: bool
    ) -> tuple[ChainState, str, int]:
        if self.file_path == "stdout":
            self._fd = 1
            return (state or ChainState()), ("restart" if state else "new-stream"), 0
        if self.file_path == "discard":
            return (state or ChainState()), "discard", 0
        return await asyncio.to_thread(self._open_file, state, recover)

    def _open_file(self, state: ChainState | None, recover: bool) -> tuple[ChainState, str, int]:
        create_mode = self.mode or 0o600
        try:
            fd = os.open(self.file_path, _FLAGS, create_mode)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InvalidRequest(
                    "file_path is a symbolic link: refusing to follow it"
                ) from None
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise InvalidRequest("file_path is not a regular file")
            self._check_opened(fd)
            size = _settled_size(fd, info.st_size)
            self._torn = False
            if size > 0:
                # before anything changes (its mode included): is it an audit log at all?
                self._check_first_line(fd)
                self._torn = os.pread(fd, 1, size - 1) != b"\n"
            if self.mode:
                os.fchmod(fd, self.mode)
            elif info.st_mode & 0o111:
                raise InvalidRequest("the existing audit file is executable")
            file_id = f"{info.st_dev}:{info.st_ino}"
            if state is not None and state.file_id and state.file_id != file_id and size:
                # the saved head was written to another file (another node's, or the log
                # was replaced): its offset means nothing here, so no tail is recovered
                log.warning(
                    "audit device %s: the chain state was recorded for another file; "
                    "its unrecorded tail (if any) is not recovered",
                    self.path,
                )
                result = (state, "restart", 0)
            else:
                result = self._continue_chain(fd, size, state, recover)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._size = size
        self._end = size
        result[0].offset = size
        result[0].file_id = file_id
        return result

    def _check_opened(self, fd: int) -> None:
        """The file actually opened must lie inside the audit directory (no path races)."""
        if not self._audit_directory:
            return
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return  # no /proc: the realpath check made at enable stands
        base = self._audit_directory
        if os.path.commonpath([real, base]) != base:
            raise InvalidRequest("file_path must be inside the server's audit_directory")

    def _check_first_line(self, fd: int) -> None:
        """Refuse to append to a non-empty file that is not a Strongroom audit log."""
        head = os.pread(fd, _FIRST_LINE_LIMIT, 0)
        line = head.split(b"\n", 1)[0]
        if not _is_audit_line(line):
            raise InvalidRequest(
                "file_path exists and is not a Strongroom audit log: refusing to append to it"
            )

    def _continue_chain(
        self, fd: int, size: int, state: ChainState | None, recover: bool
    ) -> tuple[ChainState, str, int]:
        if size == 0:
            return (state or ChainState()), "new-file", 0
        if state is None:
            # A new device on an existing audit log (another writer's, or an older one's):
            # a chain of its own, with its own chain id, next to the chains already there.
            return ChainState(), "append", 0
        if not recover:
            return state, "reopen", 0
        if size < state.offset:
            log.warning(
                "audit device %s: the file is shorter than the chain state recorded "
                "(truncated or replaced); verify will report the break",
                self.path,
            )
            return state, "restart", 0
        if size - state.offset > _RECOVERY_LIMIT:
            log.warning("audit device %s: too much unrecorded tail to recover", self.path)
            return state, "restart", 0
        read = unsigned = 0  # lines read back; of them, those no checkpoint covers
        for line, complete in _lines_from(fd, state.offset, size):
            start = json_start(line, None)
            if not complete or start < 0 or not _is_audit_line(line):
                log.warning("audit device %s: unreadable line in the file tail", self.path)
                break
            entry = orjson.loads(line[start:])
            if entry.get("chain", "") != state.chain_id:
                continue  # another writer's line in a shared file
            if entry["seq"] != state.seq + 1 or entry["prev_hash"] != state.last_hash:
                log.warning("audit device %s: the file tail does not continue the chain", self.path)
                break
            line_digest = hashlib.sha256(line[start:]).digest()
            state.seq += 1
            state.last_hash = line_digest.hex()
            if entry["type"] == "checkpoint":
                state.pending = []
                state.range_start = state.seq + 1
                unsigned = 0
            else:
                state.pending.append(line_digest)
                unsigned += 1
            read += 1
        if unsigned:
            log.warning(
                "audit device %s: recovered %d unsigned line(s) written after the last "
                "checkpoint (the chain's former writer stopped uncleanly); a checkpoint "
                "marks them as recovered",
                self.path,
                unsigned,
            )
        elif read:
            # a clean hand-over: the former writer (a demoted active, whose storage writes
            # are fenced) signed its last lines with a final checkpoint but could not save
            # its head; the chain continues from that checkpoint
            log.info(
                "audit device %s: continuing the chain after %d line(s) its former writer "
                "wrote and signed after its last saved head",
                self.path,
                read,
            )
        return state, "restart", unsigned

    # ----- dead writers ------------------------------------------------------------------
    async def adopt_dead(self, owned: Collection[str]) -> list[Adopted]:
        """Close the unsigned tails of this host's dead writers' chains in this file
        (audit/adopt.py); ``owned``: chain ids with a saved head (the active's)."""
        fd = self._fd
        if fd is None or fd == 1 or self.file_path in ("stdout", "discard") or not self.is_open:
            return []
        me = writer_id()
        watch = self._dead_watch
        # everything up to here is seen by this pass: the watch follows what comes after
        await asyncio.to_thread(watch.look, fd, host_of(f"{me}/0"), me)
        adopted = await asyncio.to_thread(
            adopt_dead_chains,
            fd,
            prefix=self.common.prefix,
            host=host_of(f"{me}/0"),
            me=me,
            owned=frozenset(owned),
            checkpoint=lambda chain, lines: self._checkpoint_entry(chain, recovered=lines),
            settle=_settled_size,
        )
        watch.passed(host_of(f"{me}/0"), me)
        return adopted

    async def dead_writer_seen(self) -> bool:
        """Whether a writer of this file died since the last adoption pass (cheap: reads
        only the bytes appended since the last look)."""
        fd = self._fd
        if fd is None or fd == 1 or self.file_path in ("stdout", "discard") or not self.is_open:
            return False
        me = writer_id()
        return await asyncio.to_thread(self._dead_watch.look, fd, host_of(f"{me}/0"), me)

    # ----- writing ---------------------------------------------------------------------
    async def _write(self, data: bytes) -> int:
        return self._write_now(data)

    def _write_now(self, data: bytes) -> int:
        fd = self._fd
        if self.file_path == "discard":
            return len(data)
        if fd is None:
            raise OSError(errno.EBADF, "audit file is not open")
        if fd == 1:
            view = memoryview(data)
            while view:
                view = view[os.write(1, view) :]
            return len(data)
        if self._torn:
            data = b"\n" + data  # end a torn line left by a crash, so ours stands alone
        written = os.write(fd, data)
        if written != len(data):
            # Disk full mid-line: cut the partial line off again so the file stays whole,
            # but only while it is still the file's end (another writer may share it).
            with contextlib.suppress(OSError):
                end = os.lseek(fd, 0, os.SEEK_CUR)
                if os.fstat(fd).st_size == end:
                    os.ftruncate(fd, end - written)
                else:
                    self._torn = True  # the next line starts with a newline instead
            raise OSError(errno.ENOSPC, "short write to the audit file")
        self._size += written
        # O_APPEND moved our offset to the end of this very line, whoever else appends
        self._end = os.lseek(fd, 0, os.SEEK_CUR)
        self._torn = False
        return written

    def _commit(self, chain: Chain, line: StampedLine, written: int) -> None:
        super()._commit(chain, line, written)
        if self._fd is not None and self._fd != 1:
            chain.state.offset = self._end

    async def _close_sink(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and fd != 1:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(os.fsync, fd)
            os.close(fd)

    async def sync(self) -> None:
        fd = self._fd
        if fd is None or fd == 1:
            return
        copy = os.dup(fd)  # our own descriptor: a reopen may close the device's meanwhile
        try:
            await asyncio.to_thread(os.fsync, copy)
        finally:
            os.close(copy)
