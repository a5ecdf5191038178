"""One SSH endpoint per simulated node: asyncssh servers on loopback, public-key auth only.

Per lab: one host key per node and one client key (kept in `<state-dir>/ssh/`, reused across
restarts), a `known_hosts` with a `[127.0.0.1]:PORT` line per node, and the inventory YAML that
`--ssh-inventory` reads. Every exec request runs through the node's shell interpreter with the
channel's stdin, stdout, stderr and exit status; interactive shells are refused.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import yaml

# (node, command line, stdin, write stdout, write stderr) → exit status
Runner = Callable[[str, str, "ChannelStdin", Callable[[str], None], Callable[[str], None]],
                  Awaitable[int]]


@dataclass(frozen=True, slots=True)
class KeyFiles:
    client_key: Path
    host_keys: dict[str, Path]


def ensure_keys(ssh_dir: Path, nodes: list[str]) -> KeyFiles:
    """Generate the client key and one ed25519 host key per node, unless they exist."""
    ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)

    def make(path: Path) -> Path:
        if not path.exists():
            key = asyncssh.generate_private_key("ssh-ed25519", comment=path.name)
            key.write_private_key(str(path))
            key.write_public_key(str(path) + ".pub")
        os.chmod(path, 0o600)
        return path

    return KeyFiles(make(ssh_dir / "id_ed25519"),
                    {n: make(ssh_dir / f"host_{n}_ed25519") for n in nodes})


class ChannelStdin:
    """A command's standard input: read from the SSH channel (until EOF) when a command asks."""

    def __init__(self, stream: asyncssh.SSHReader | None) -> None:
        self._stream = stream
        self._done = stream is None

    async def read(self) -> str:
        if self._done or self._stream is None:
            return ""
        self._done = True
        try:
            return await self._stream.read()
        except (asyncssh.Error, OSError, BrokenPipeError):
            return ""


class _Server(asyncssh.SSHServer):
    def __init__(self, user: str, client_key: asyncssh.SSHKey) -> None:
        self._user = user
        self._client = client_key.public_data

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._user and key.public_data == self._client


class NodeSSH:
    """The SSH servers of all nodes."""

    def __init__(self, keys: KeyFiles, user: str, runner: Runner, host: str = "127.0.0.1") -> None:
        self.keys = keys
        self.user = user
        self.runner = runner
        self.host = host
        self.ports: dict[str, int] = {}
        self._servers: list[asyncssh.SSHAcceptor] = []

    async def start(self, nodes: list[str], ports: dict[str, int] | None = None) -> None:
        client = asyncssh.read_private_key(str(self.keys.client_key))
        for node in nodes:
            acceptor = await asyncssh.create_server(
                lambda: _Server(self.user, client), self.host, (ports or {}).get(node, 0),
                server_host_keys=[str(self.keys.host_keys[node])],
                process_factory=self._handler(node), encoding="utf-8",
                allow_scp=False, agent_forwarding=False, x11_forwarding=False,
                keepalive_interval=0, login_timeout=30)
            self._servers.append(acceptor)
            self.ports[node] = acceptor.sockets[0].getsockname()[1]

    def _handler(self, node: str) -> Callable[[asyncssh.SSHServerProcess], Awaitable[None]]:
        async def handle(process: asyncssh.SSHServerProcess) -> None:
            def safe(write: Callable[[str], object]) -> Callable[[str], None]:
                def w(text: str) -> None:
                    # the client went away: the command runs on, as under nohup
                    with contextlib.suppress(asyncssh.Error, OSError):
                        write(text)
                return w

            if process.command is None:
                process.stderr.write("This lab node runs commands only: ssh NODE 'COMMAND'\n")
                process.exit(1)
                return
            status = await self.runner(node, process.command, ChannelStdin(process.stdin),
                                       safe(process.stdout.write), safe(process.stderr.write))
            with contextlib.suppress(asyncssh.Error, OSError):
                process.exit(status)

        return handle

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        self._servers = []

    def write_known_hosts(self, path: Path) -> None:
        lines = []
        for node, port in sorted(self.ports.items()):
            key = asyncssh.read_private_key(str(self.keys.host_keys[node]))
            public = key.export_public_key("openssh").decode().split()
            lines.append(f"[{self.host}]:{port} {public[0]} {public[1]}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def write_inventory(self, path: Path, known_hosts: Path, sudo: bool) -> None:
        doc = {
            "apiVersion": "kubehop.dev/v1",
            "kind": "SSHInventory",
            "knownHosts": str(known_hosts),
            "nodes": {node: {"host": self.host, "port": port, "user": self.user,
                             "identityFile": str(self.keys.client_key), "sudo": sudo}
                      for node, port in sorted(self.ports.items())},
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
