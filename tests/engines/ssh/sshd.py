"""A real OpenSSH ``sshd`` on a free loopback port, trusting a given user CA.

Started as root (tests run as root here and in CI) with its own config, host key, pid file
and a dedicated test user; ``sshd -D -e`` keeps it in the foreground with its log on stderr.
Fails loudly when OpenSSH's server is not installed (``.ci/run`` installs openssh-server).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.serverproc import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
TEST_USER = "strongroom-ssh"

CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_ed25519
PidFile {dir}/sshd.pid
TrustedUserCAKeys {dir}/user_ca.pub
AuthorizedKeysFile none
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin no
AllowUsers {user}
LogLevel VERBOSE
"""


def ensure_test_user() -> str:
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/tmp",
                "--shell",
                "/bin/sh",
                TEST_USER,
            ],
            check=True,
        )
    # "*": no password, but not a locked account ("!"), which sshd would refuse
    subprocess.run(["usermod", "-p", "*", TEST_USER], check=True)
    return TEST_USER


@dataclass
class Sshd:
    dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ssh(self, key: Path, cert: Path, user: str, command: str = "echo strongroom-ok"):
        return subprocess.run(
            [
                "ssh",
                "-F",
                "/dev/null",
                "-i",
                str(key),
                "-o",
                f"CertificateFile={cert}",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=10",
                "-p",
                str(self.port),
                f"{user}@127.0.0.1",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_sshd(workdir: Path, user_ca_public_key: str) -> Sshd:
    if not os.path.exists(SSHD):
        raise RuntimeError("sshd not found: install Debian's openssh-server (see .ci/run)")
    if os.geteuid() != 0:
        raise RuntimeError("the sshd test starts sshd as root")
    user = ensure_test_user()
    workdir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / "host_ed25519")],
        check=True,
    )
    (workdir / "user_ca.pub").write_text(user_ca_public_key)
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(CONFIG.format(port=port, dir=workdir, user=user))
    subprocess.run([SSHD, "-t", "-f", str(config)], check=True)
    log_path = workdir / "sshd.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited:\n{log_path.read_text()}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return Sshd(workdir, port, proc, log_path)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"sshd did not start:\n{log_path.read_text()}")
