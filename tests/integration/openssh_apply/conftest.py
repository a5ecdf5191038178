"""A lab whose nodes are reached through one real OpenSSH server (Debian's sshd).

The lab runs without its own SSH servers (`Lab(..., ssh=False)`). One sshd with a throwaway
config (own host key, authorized_keys and PidFile; run as the test's user, the only login it
allows) listens on one 127.0.0.x address per node, each on a free port; a `Match LocalAddress`
block per address forces every session into `relay.py --node NAME`, which hands the client's
command and stdin over a Unix socket to the relay server on the lab's event loop, which runs
them on that node's agent (`lab.agents.run`, as root when the login user is root, as the lab's
own SSH servers decide; `sudo -n …` lines are the node shell's business). kubehop gets an SSH
inventory naming each node's address and port, and a known_hosts holding the sshd's host key
for each of them (host keys are verified, as always).

Everything started here is stopped at teardown: sshd, its per-connection children and any relay
still running (by pid), the relay server, the lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubehop.lab.lab import Lab
from kubehop.lab.scenarios import load_scenario
from tests.integration.ssh.conftest import SSH_KEYGEN, SSHD, sshd_keys
from tests.integration.upgrade.conftest import SCALE, LabThread, Upgrade

RELAY = Path(__file__).with_name("relay.py")
FIRST_ADDRESS = 11  # nodes at 127.0.0.11, 127.0.0.12, …


@dataclass(frozen=True, slots=True)
class RelayCall:
    """One command a relay handed to a node agent."""

    node: str
    command: str
    root: bool
    local_address: str  # where the SSH client connected (from SSH_CONNECTION)
    exit_code: int


class RelayServer:
    """The Unix socket server on the lab's loop that runs relayed commands on node agents."""

    def __init__(self, lab: Lab, path: str) -> None:
        self.lab = lab
        self.path = path
        self.calls: list[RelayCall] = []
        self.relays: list[Process] = []  # every relay that connected (to stop stragglers)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._handle, path=self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.read())
            pid = int(request["pid"])
            self.relays.append((pid, _start_time(pid)))
            node, line = str(request["node"]), str(request["command"])
            agents = self.lab.agents
            if agents is None or node not in agents.cluster.hosts:
                out, err, code = "", f"relay: no lab node {node}\n", 255
            else:
                result = await agents.run(node, line, stdin=str(request["stdin"]),
                                          root=bool(request["root"]))
                out, err, code = result.stdout, result.stderr, result.exit_code
            words = str(request.get("connection", "")).split()  # client port, local port
            self.calls.append(RelayCall(node, line, bool(request["root"]),
                                        words[2] if len(words) == 4 else "", code))
            reply = {"stdout": out, "stderr": err, "exit_code": code}
            writer.write(json.dumps(reply).encode("utf-8"))
            await writer.drain()
        except (OSError, ValueError, KeyError):
            pass  # the relay went away (its client did): the command's outcome is the lab's
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@dataclass
class OpenSSHLab:
    """A running lab behind a real sshd, and how kubehop reaches it."""

    up: Upgrade  # `up.kubehop(...)` runs the CLI with the inventory below
    relay: RelayServer
    addresses: dict[str, tuple[str, int]]  # node → (127.0.0.x, port)
    user: str
    client_key: Path
    host_public_key: str  # "ssh-ed25519 AAAA…"
    known_hosts: Path
    inventory: Path
    log: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def _tally(self, prefix: str, key: Callable[[str, str], Any]) -> dict[Any, int]:
        """Count log lines starting with `prefix` by `key(line, local address)`, where the
        local address is the one the line's client connection came in on (from the last
        `Connection from A port P on L port Q` line of the client's port P before it)."""
        local: dict[str, str] = {}
        counts: dict[Any, int] = {}
        for line in self.log_text().splitlines():
            if line.startswith("Connection from ") and " on " in line:
                words = line.split()
                local[words[4]] = words[6]
            elif line.startswith(prefix) and " port " in line:
                k = key(line, local.get(line.split(" port ")[-1].split()[0], "?"))
                counts[k] = counts.get(k, 0) + 1
        return counts

    def logins_by_address(self) -> dict[str, int]:
        """Public-key logins sshd accepted, per local address they came in on."""
        return self._tally("Accepted publickey for ", lambda _line, address: address)

    def sessions(self) -> dict[tuple[str, str], int]:
        """Sessions sshd started with a relay as forced command, per (node the relay serves,
        local address the client connected to)."""
        return self._tally("Starting session: forced-command",
                           lambda line, address: ((line.split(" --node ")[1:] or ["?"])[0]
                                                  .split()[0], address))


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _listening(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), 0.2):
        return True
    return False


def _start_time(pid: int) -> str | None:
    """The process's start time (/proc/PID/stat field 22): with the pid, its identity."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


Process = tuple[int, str | None]  # pid, start time


def _descendants(pid: int) -> list[Process]:
    """The processes below `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: list[int] = []
    frontier = {pid}
    while frontier:
        kids = {p for p, pp in parents.items() if pp in frontier}
        out += sorted(kids)
        frontier = kids
    return [(p, _start_time(p)) for p in out]


def _alive(processes: list[Process]) -> list[Process]:
    return [(p, t) for p, t in processes if t is not None and _start_time(p) == t]


def _signal(processes: list[Process], sig: int) -> None:
    """Signal each process that still runs (same pid and start time: never a reused pid)."""
    for pid, _ in _alive(processes):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _relay_socket(tmp_path: Path) -> str:
    path = str(tmp_path / "relay.sock")
    if len(path.encode()) < 100:
        return path
    return f"\0kubehop-relay-{os.getpid()}-{time.monotonic_ns()}"  # abstract: no file


def _sshd_config(d: Path, user: str, socket_path: str,
                 addresses: dict[str, tuple[str, int]]) -> Path:
    lines = [f"ListenAddress {address}:{port}" for address, port in addresses.values()]
    lines += [
        f"HostKey {d / 'host_ed25519'}", f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password", "StrictModes no", f"AllowUsers {user}",
        "MaxSessions 10", "MaxStartups 100", "LogLevel VERBOSE",
        "AllowTcpForwarding no", "X11Forwarding no", "PermitTTY no",
        # Nothing reaches a shell but the relay of the address the client connected to.
        "ForceCommand /bin/false",
    ]
    for node, (address, _port) in addresses.items():
        relay = shlex.join([sys.executable, "-I", "-S", str(RELAY), "--node", node,
                            "--socket", socket_path])
        lines += [f"Match LocalAddress {address}", f"    ForceCommand {relay}"]
    config = d / "sshd_config"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.fixture
def openssh_lab(tmp_path: Path) -> Iterator[Callable[..., OpenSSHLab]]:
    """`openssh_lab(scenario, trust_host_key=True)`: a lab behind a real sshd (one per test)."""
    if not SSHD.exists() or SSH_KEYGEN is None:
        pytest.skip("needs OpenSSH's sshd and ssh-keygen (Debian openssh-server; `make test` "
                    "installs it)")
    started: list[OpenSSHLab] = []
    labs: list[LabThread] = []
    relays: list[tuple[LabThread, RelayServer]] = []

    def start(scenario: str, trust_host_key: bool = True) -> OpenSSHLab:
        if started:
            raise RuntimeError("one lab behind sshd per test")
        lt = LabThread(Lab(load_scenario(scenario), time_scale=SCALE,
                           state_dir=tmp_path / "lab", ssh=False))
        lt.__enter__()
        labs.append(lt)
        relay = RelayServer(lt.lab, _relay_socket(tmp_path))
        lt.wait(relay.start())
        relays.append((lt, relay))

        d = sshd_keys(tmp_path / "sshd")
        user = getpass.getuser()
        nodes = lt.call(lambda: sorted(n["metadata"]["name"] for n in lt.lab.store.iter("nodes")))
        addresses = {}
        for i, node in enumerate(nodes):
            address = f"127.0.0.{FIRST_ADDRESS + i}"
            addresses[node] = (address, _free_port(address))
        config = _sshd_config(d, user, relay.path, addresses)

        host_public = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
        known = d / "known_hosts"
        known.write_text("".join(f"[{a}]:{p} {host_public}\n" for a, p in addresses.values())
                         if trust_host_key else "")
        inventory = d / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({
            "apiVersion": "kubehop.dev/v1", "kind": "SSHInventory", "knownHosts": str(known),
            "defaults": {"user": user, "identityFile": str(d / "client_ed25519"), "sudo": True},
            "nodes": {node: {"host": a, "port": p} for node, (a, p) in addresses.items()}},
            sort_keys=False))

        log = d / "sshd.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config), "-o", "UsePAM=no"],
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        up = Upgrade(lt, tmp_path / "state")
        up.env["KUBEHOP_SSH_INVENTORY"] = str(inventory)
        server = OpenSSHLab(up, relay, addresses, user, d / "client_ed25519", host_public,
                            known, inventory, log, proc)
        started.append(server)
        deadline = time.monotonic() + 10
        pending = set(addresses.values())
        while pending and time.monotonic() < deadline and proc.poll() is None:
            pending = {ap for ap in pending if not _listening(*ap)}
            if pending:
                time.sleep(0.05)
        if pending:
            pytest.skip(f"sshd did not start: {log.read_text().strip()[-300:]}")
        return server

    try:
        yield start
    finally:
        for server in started:
            _stop_sshd(server.proc)
        for lt, relay in relays:
            with contextlib.suppress(Exception):
                lt.wait(relay.stop(), timeout=10)
            _signal(relay.relays, signal.SIGKILL)
        for lt in reversed(labs):
            lt.__exit__(None, None, None)


def _stop_sshd(proc: subprocess.Popen[bytes]) -> None:
    """The listener, then the per-connection children it forked (each in a session of its
    own, so outside the listener's process group), by pid."""
    children = _descendants(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    _signal(children, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    deadline = time.monotonic() + 5
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal(children, signal.SIGKILL)
