"""`SSHTransport`: commands on nodes over SSH (asyncssh), host keys always verified.

    async with SSHTransport(load_inventory(path), addresses={"w1": "192.0.2.21"}) as ssh:
        result = await ssh.run("w1", ["kubeadm", "version", "-o", "short"])

Importing this module imports asyncssh (about 0.5 s): callers import it lazily, only in
commands that talk to nodes.

- Where: the inventory entry, else the address the caller knows (InternalIP), else the node
  name; `~/.ssh/config` fills in what the inventory leaves unset (User, Port, IdentityFile,
  ProxyJump, HostKeyAlias…).
- Host keys: checked against the inventory's `knownHosts` (else `~/.ssh/known_hosts`) — never
  skipped, whatever the SSH config says. An unknown host is refused unless
  `accept_new_host_keys` (OpenSSH's `StrictHostKeyChecking=accept-new`: the key is appended to
  that file); a changed key is always refused.
- One connection per node, reused; at most `max_parallel` commands at once overall and
  `sessions_per_node` per node (OpenSSH's MaxSessions is 10). AES-GCM is offered before
  chacha20-poly1305 (cheaper in asyncssh); a `Ciphers` line in the SSH config is not applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncssh

from kubehop.shell.transports.base import (
    DEFAULT_TIMEOUT,
    Command,
    CommandResult,
    Transport,
    privileged_line,
    render_command,
)
from kubehop.shell.transports.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
    TransportError,
    short_command,
)
from kubehop.shell.transports.inventory import Endpoint, Inventory, JumpHost, load_inventory

CONNECT_TIMEOUT = 20.0  # seconds to open a connection and log in
KEEPALIVE = 30.0  # seconds between keepalives on idle connections
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
# asyncssh's chacha20-poly1305 builds a cipher context per packet; AES-GCM is several times
# cheaper per command, so it goes first (the server still picks among what both support).
_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
            "chacha20-poly1305@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr"]


class _HostKeyCheck(asyncssh.SSHClient):
    """Judges a host key that known_hosts does not trust: unknown host or changed key."""

    def __init__(self, known: asyncssh.SSHKnownHosts, accept_new: bool) -> None:
        self.known = known
        self.accept_new = accept_new
        self.verdict: str | None = None  # unknown | changed | accepted
        self.key: asyncssh.SSHKey | None = None
        self.host_pattern = ""

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.key = key
        self.host_pattern = host if port == 22 else f"[{host}]:{port}"
        trusted, trusted_cas, *_ = self.known.match(host, addr, None if port == 22 else port)
        if trusted or trusted_cas:
            self.verdict = "changed"  # the host is known, with another key
            return False
        self.verdict = "accepted" if self.accept_new else "unknown"
        return self.accept_new


def _exit_code(done: asyncssh.SSHCompletedProcess) -> int:
    """The exit status as a shell reports it (128+N after signal N, 255 when none came)."""
    if done.exit_status is not None and done.exit_status >= 0:
        return done.exit_status
    if done.returncode is not None and done.returncode < 0:
        return 128 - done.returncode
    return 255


class SSHTransport(Transport):
    """Runs commands on nodes over SSH (see the module docstring)."""

    def __init__(self, inventory: Inventory | None = None, *,
                 addresses: Mapping[str, str] | None = None, accept_new_host_keys: bool = False,
                 max_parallel: int = 64, sessions_per_node: int = 8,
                 connect_timeout: float = CONNECT_TIMEOUT,
                 ssh_config: Sequence[str] | None = None) -> None:
        """`addresses`: node → InternalIP for nodes the inventory gives no host;
        `ssh_config`: OpenSSH config files to honour (None: `~/.ssh/config`, []: none)."""
        self.inventory = inventory or Inventory()
        self.addresses: dict[str, str] = dict(addresses or {})
        self.accept_new_host_keys = accept_new_host_keys
        self.connect_timeout = connect_timeout
        self.known_hosts = (self.inventory.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
        self._config: Any = () if ssh_config is None else list(ssh_config)
        self._slots = asyncio.Semaphore(max_parallel)
        self._sessions_per_node = sessions_per_node
        self._sessions: dict[str, asyncio.Semaphore] = {}
        self._conns: dict[str, asyncssh.SSHClientConnection] = {}
        self._jumps: dict[tuple[str, str | None], asyncssh.SSHClientConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._known_hosts_lock = asyncio.Lock()
        self._known_cache: tuple[tuple[int, int] | None, asyncssh.SSHKnownHosts] | None = None
        self._closed = False

    @classmethod
    def from_file(cls, path: str | Path | None, **options: Any) -> SSHTransport:
        """A transport for the inventory at `path` (None: no inventory, everything defaulted)."""
        return cls(load_inventory(path) if path else None, **options)

    def endpoint(self, node: str) -> Endpoint:
        """Where `node` is reached."""
        return self.inventory.endpoint(node, self.addresses.get(node))

    def reach_unlisted(self, addresses: Iterable[tuple[str, str | None]]
                       ) -> list[tuple[str, str]]:
        """Reach each node the inventory gives no host at the address given (its InternalIP);
        returns those (node, address) pairs so the caller says so: an inventory gap must not
        become a silent connection to an address nobody chose."""
        fallbacks: list[tuple[str, str]] = []
        for node, address in addresses:
            if address and not self.inventory.names_host(node):
                fallbacks.append((node, self.addresses.setdefault(node, address)))
        return fallbacks

    # --- connections -------------------------------------------------------------------------

    def _read_known_hosts(self, node: str) -> asyncssh.SSHKnownHosts:
        """known_hosts, parsed once and again only when the file changes (5,000 nodes would
        otherwise parse a 5,000-line file 5,000 times)."""
        try:
            st = self.known_hosts.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        except OSError as e:
            raise TransportError(f"cannot read known_hosts file {self.known_hosts}: "
                                 f"{e.strerror or e}", node=node) from None
        if self._known_cache is not None and self._known_cache[0] == stamp:
            return self._known_cache[1]
        try:
            known = asyncssh.read_known_hosts(str(self.known_hosts)) if stamp is not None \
                else asyncssh.import_known_hosts("")
        except (OSError, ValueError) as e:
            raise TransportError(f"cannot read known_hosts file {self.known_hosts}: {e}",
                                 node=node) from None
        self._known_cache = (stamp, known)
        return known

    async def _remember(self, check: _HostKeyCheck) -> None:
        """Append an accepted new host key to known_hosts, as `accept-new` does."""
        assert check.key is not None
        algorithm, data = check.key.export_public_key("openssh").decode().split()[:2]
        async with self._known_hosts_lock:
            self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self.known_hosts.open("a", encoding="utf-8") as f:
                f.write(f"{check.host_pattern} {algorithm} {data}\n")
            self._known_cache = None

    async def _open(self, what: str, node: str, host: str, port: int | None, user: str | None,
                    identity: Path | None, tunnel: Any) -> asyncssh.SSHClientConnection:
        """Connect and log in to `host`, mapping every failure to one TransportError line."""
        check = _HostKeyCheck(self._read_known_hosts(node), self.accept_new_host_keys)
        where = f"{what} at {user + '@' if user else ''}{host}" + (f":{port}" if port else "")
        try:
            conn = await asyncssh.connect(
                host, port=port or (), username=user or (), known_hosts=check.known,
                client_keys=[str(identity)] if identity else (), config=self._config,
                tunnel=tunnel, connect_timeout=self.connect_timeout,
                keepalive_interval=KEEPALIVE, client_factory=lambda: check,
                encryption_algs=_CIPHERS)
        except asyncssh.HostKeyNotVerifiable as e:
            fingerprint = check.key.get_fingerprint() if check.key else "unknown"
            if check.verdict == "changed":
                raise HostKeyChanged(
                    f"host key of {where} does not match the one recorded in {self.known_hosts}"
                    f" (now {fingerprint}): refusing to connect, it may be a man-in-the-middle; "
                    f"if the node was reinstalled, remove the old key with "
                    f"ssh-keygen -R '{check.host_pattern}' -f {self.known_hosts}",
                    node=node) from None
            if check.verdict == "unknown":
                raise HostKeyUnknown(
                    f"host key of {where} is not in {self.known_hosts}: verify its fingerprint "
                    f"{fingerprint} and add it there (ssh-keyscan), or allow accepting new host "
                    f"keys", node=node) from None
            raise TransportError(f"host key of {where} refused: {e.reason}", node=node) from None
        except asyncssh.PermissionDenied:
            key = f"identity file {identity}" if identity else "the user's SSH keys"
            raise AuthenticationFailed(
                f"cannot log in to {where}: the server refused {key}; check user and "
                f"identityFile in the SSH inventory ({self.inventory.source}) and the node's "
                "authorized_keys", node=node) from None
        except asyncssh.KeyImportError as e:
            raise AuthenticationFailed(f"cannot use identity file {identity} for {what}: {e}",
                                       node=node) from None
        except asyncssh.DisconnectError as e:
            raise TransportError(f"SSH connection to {where} failed: {e.reason}",
                                 node=node) from None
        except (OSError, TimeoutError) as e:
            reason = "connection timed out" if isinstance(e, TimeoutError) else (
                e.strerror or str(e) or type(e).__name__)
            raise HostUnreachable(
                f"cannot reach {where}: {reason}; check the host and port in the SSH inventory "
                f"({self.inventory.source}) and that sshd runs there", node=node) from None
        if check.verdict == "accepted":
            await self._remember(check)
        return conn

    async def _jump(self, node: str, jump: JumpHost,
                    identity: Path | None) -> asyncssh.SSHClientConnection:
        key = (str(jump), str(identity) if identity else None)
        conn = self._jumps.get(key)
        if conn is None or conn.is_closed():
            conn = await self._open(f"jump host {jump} of node {node}", node, jump.host,
                                    jump.port, jump.user, identity, ())
            self._jumps[key] = conn
        return conn

    async def _connection(self, node: str, ep: Endpoint) -> asyncssh.SSHClientConnection:
        async with self._locks.setdefault(node, asyncio.Lock()):
            conn = self._conns.get(node)
            if conn is not None and not conn.is_closed():
                return conn
            tunnel: Any = ()
            if ep.jump_host is not None:
                tunnel = await self._jump(node, ep.jump_host, ep.identity_file)
            conn = await self._open(f"node {node}", node, ep.host, ep.port, ep.user,
                                    ep.identity_file, tunnel)
            self._conns[node] = conn
            return conn

    def _forget_if_closed(self, node: str, conn: asyncssh.SSHClientConnection) -> bool:
        """Drop `conn` from the cache when it is closed (a live one keeps serving others)."""
        if conn.is_closed() and self._conns.get(node) is conn:
            del self._conns[node]
        return conn.is_closed()

    # --- commands ----------------------------------------------------------------------------

    async def run(self, node: str, command: Command, *, sudo: bool = False,
                  timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        if self._closed:
            raise RuntimeError("SSHTransport used after close()")
        ep = self.endpoint(node)
        line = render_command(command)
        async with self._slots:
            conn = await self._connection(node, ep)
            user = conn.get_extra_info("username") or ep.user
            remote = privileged_line(command, use_sudo=sudo and ep.sudo and user != "root")
            async with self._sessions.setdefault(
                    node, asyncio.Semaphore(self._sessions_per_node)):
                started = time.monotonic()
                try:
                    try:
                        process = await self._start(conn, remote, stdin)
                    except (asyncssh.Error, OSError):
                        if not self._forget_if_closed(node, conn):
                            raise
                        # The reused connection went away while idle: the command never
                        # started, so it is safe to connect again and start it once more.
                        conn = await self._connection(node, ep)
                        started = time.monotonic()
                        process = await self._start(conn, remote, stdin)
                except (asyncssh.Error, OSError) as e:
                    raise TransportError(f"cannot start `{short_command(line)}` on node {node}: "
                                         f"{getattr(e, 'reason', '') or e}", node=node) from None
                try:
                    done = await process.wait(timeout=timeout)
                except asyncssh.TimeoutError as e:
                    await self._stop(process)
                    raise CommandTimeout(
                        f"`{short_command(line)}` on node {node} did not finish within "
                        f"{timeout:g} s and was stopped; raise the timeout if it needs longer",
                        node=node, stdout=str(e.stdout or ""), stderr=str(e.stderr or "")
                    ) from None
                except (asyncssh.Error, OSError) as e:
                    self._forget_if_closed(node, conn)
                    raise self._lost(node, line, str(getattr(e, "reason", "") or e)) from None
                if done.exit_status is None and done.exit_signal is None:
                    # The channel closed without an exit status: the connection went away.
                    self._forget_if_closed(node, conn)
                    raise self._lost(node, line, "no exit status received")
        return CommandResult(node, line, _exit_code(done), str(done.stdout or ""),
                             str(done.stderr or ""), time.monotonic() - started)

    @staticmethod
    def _lost(node: str, line: str, reason: str) -> ConnectionLost:
        return ConnectionLost(
            f"connection to node {node} was lost while `{short_command(line)}` ran ({reason}): "
            "it may or may not have completed; check the node before retrying", node=node)

    @staticmethod
    async def _start(conn: asyncssh.SSHClientConnection, remote: str,
                     stdin: str | None) -> asyncssh.SSHClientProcess[str]:
        if stdin:
            return await conn.create_process(remote, input=stdin, encoding="utf-8",
                                             errors="replace")
        return await conn.create_process(remote, stdin=asyncssh.DEVNULL, encoding="utf-8",
                                         errors="replace")

    @staticmethod
    async def _stop(process: asyncssh.SSHClientProcess[str]) -> None:
        """Send the remote command SIGTERM and close its channel. OpenSSH ≥ 7.9 delivers the
        signal to the command's process group, but not in root sessions ("session signalling
        requires privilege separation"): there a silent command outlives its channel."""
        with contextlib.suppress(asyncssh.Error, OSError, ValueError):
            process.send_signal("TERM")
        process.close()
        # sshd confirms the close only once the command exited: do not wait for long.
        with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
            await asyncio.wait_for(process.wait_closed(), 1)

    async def close(self) -> None:
        self._closed = True
        conns = [*self._conns.values(), *self._jumps.values()]
        self._conns.clear()
        self._jumps.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(asyncssh.Error, OSError):
                await conn.wait_closed()

