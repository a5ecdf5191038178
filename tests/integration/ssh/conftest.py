"""A real OpenSSH server (Debian's sshd) on 127.0.0.1, started and always stopped per test."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = shutil.which("ssh-keygen")


@dataclass(frozen=True)
class OpenSSHServer:
    port: int
    user: str
    client_key: Path
    host_public_key: str  # "ssh-ed25519 AAAA…"
    known_hosts: Path  # with this server's key
    inventory: Path  # node "real" → this server
    log: Path


def _keygen(path: Path) -> None:
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                   check=True)


def sshd_keys(d: Path) -> Path:
    """Directory `d` (mode 0700) with an sshd host key, a client key that may log in
    (authorized_keys), and sshd's privilege separation directory when root."""
    d.mkdir(mode=0o700)
    _keygen(d / "host_ed25519")
    _keygen(d / "client_ed25519")
    (d / "authorized_keys").write_text((d / "client_ed25519.pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def openssh(tmp_path) -> Iterator[OpenSSHServer]:
    if not SSHD.exists() or SSH_KEYGEN is None:
        pytest.skip("needs OpenSSH's sshd and ssh-keygen (Debian openssh-server; `make test` "
                    "installs it)")
    d = sshd_keys(tmp_path / "sshd")
    user, port = getpass.getuser(), _free_port()
    config = d / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_ed25519'}",
        f"PidFile {d / 'sshd.pid'}", f"AuthorizedKeysFile {d / 'authorized_keys'}",
        "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        "StrictModes no", f"AllowUsers {user}", "MaxSessions 10", "LogLevel VERBOSE", ""]))
    host_public = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
    known = d / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_public}\n")
    inventory = d / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({
        "apiVersion": "kubehop.dev/v1", "kind": "SSHInventory", "knownHosts": str(known),
        "nodes": {"real": {"host": "127.0.0.1", "port": port, "user": user,
                           "identityFile": str(d / "client_ed25519"), "sudo": True}}}))
    log = d / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config), "-o", "UsePAM=no"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        if not _wait_listening(port, proc, time.monotonic() + 10):
            pytest.skip(f"sshd did not start: {log.read_text().strip()[-300:]}")
        yield OpenSSHServer(port, user, d / "client_ed25519", host_public, known, inventory, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)  # sshd and the per-connection children it forked
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=5)
