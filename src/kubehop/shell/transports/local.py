"""`LocalTransport`: runs commands on this machine, for single-node clusters (and tests).

An argv runs without a shell; a script string runs under `sh -c`. Every command starts in its
own process group so a timeout stops the command and everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping

from kubehop.shell.transports.base import (
    DEFAULT_TIMEOUT,
    Command,
    CommandResult,
    Transport,
    render_command,
)
from kubehop.shell.transports.errors import CommandTimeout, HostUnreachable, short_command

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL after a timeout


class LocalTransport(Transport):
    """Runs every node's commands here; `nodes` (if given) limits which names it answers for."""

    def __init__(self, *, nodes: frozenset[str] | None = None, sudo: bool = True,
                 env: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
        self.nodes = nodes
        self.sudo = sudo
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self._running: set[asyncio.subprocess.Process] = set()

    def _argv(self, command: Command, sudo: bool) -> list[str]:
        argv = ["sh", "-c", render_command(command)] if isinstance(command, str) \
            else list(command)
        if not argv:
            raise ValueError("empty argv")
        if sudo and self.sudo and os.geteuid() != 0:
            argv = ["sudo", "-n", *argv]
        return argv

    async def run(self, node: str, command: Command, *, sudo: bool = False,
                  timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        if self.nodes is not None and node not in self.nodes:
            raise HostUnreachable(f"node {node} is not this machine (the local transport serves "
                                  f"{', '.join(sorted(self.nodes))}); use an SSH inventory",
                                  node=node)
        line = render_command(command)
        argv = self._argv(command, sudo)
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin is not None
                else asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.env, cwd=self.cwd,
                start_new_session=True)
        except OSError as e:  # no such program: as a shell would report it
            return CommandResult(node, line, 127, "", f"{argv[0]}: {e.strerror}\n",
                                 time.monotonic() - started)
        self._running.add(proc)
        out, err = bytearray(), bytearray()
        io = asyncio.gather(self._feed(proc, stdin), self._drain(proc.stdout, out),
                            self._drain(proc.stderr, err), proc.wait())
        try:
            await asyncio.wait_for(asyncio.shield(io), timeout)
        except TimeoutError:
            await self._stop(proc, io)
            raise CommandTimeout(
                f"`{short_command(line)}` on node {node} did not finish within {timeout:g} s "
                "and was stopped; raise the timeout if it needs longer", node=node,
                stdout=out.decode(errors="replace"), stderr=err.decode(errors="replace")
            ) from None
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            io.cancel()
            raise
        finally:
            self._running.discard(proc)
        return CommandResult(node, line, proc.returncode if proc.returncode is not None else -1,
                             out.decode(errors="replace"), err.decode(errors="replace"),
                             time.monotonic() - started)

    @staticmethod
    async def _feed(proc: asyncio.subprocess.Process, stdin: str | None) -> None:
        if proc.stdin is None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write((stdin or "").encode())
            await proc.stdin.drain()
        proc.stdin.close()

    @staticmethod
    async def _drain(stream: asyncio.StreamReader | None, into: bytearray) -> None:
        while stream is not None and (chunk := await stream.read(65536)):
            into += chunk

    @staticmethod
    async def _stop(proc: asyncio.subprocess.Process, io: asyncio.Future[object]) -> None:
        """Terminate the command's process group, then kill it; keep what it wrote."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                await asyncio.wait_for(asyncio.shield(io), KILL_GRACE)
                return
            except TimeoutError:
                continue
        io.cancel()  # something outside the group still holds the pipes open
        with contextlib.suppress(asyncio.CancelledError):
            await io

    async def close(self) -> None:
        for proc in list(self._running):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
