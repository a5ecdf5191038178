"""The `Transport` seam: run one command on one node and report what happened.

A command is an argv list (each element quoted with `shlex.join` before it reaches a shell) or a
script string for `&&` chains, which the caller has quoted. `sudo=True` asks for root: the
transport prefixes `sudo -n` (never prompting) when its user is not root and sudo is enabled for
the node. A non-zero exit is a result, not an error; `CommandResult.check()` turns it into one.
Transports raise `TransportError`s (kubehop.shell.transports.errors) when a command could not run.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from kubehop.shell.transports.errors import CommandFailed, short_command, tail

Command = Sequence[str] | str  # argv, or a script the caller quoted
DEFAULT_TIMEOUT = 300.0  # seconds; kubeadm upgrade apply needs minutes, callers may raise it


def render_command(command: Command) -> str:
    """The command line a shell receives: argv joined with `shlex.join`, a script as it is."""
    if isinstance(command, str):
        if not command.strip():
            raise ValueError("empty command")
        return command
    argv = list(command)
    if not argv:
        raise ValueError("empty argv")
    return shlex.join(argv)


def privileged_line(command: Command, *, use_sudo: bool) -> str:
    """The command line, wrapped in `sudo -n` when `use_sudo` (scripts via `sh -c`)."""
    line = render_command(command)
    if not use_sudo:
        return line
    if isinstance(command, str):
        return shlex.join(["sudo", "-n", "sh", "-c", line])
    return "sudo -n " + line


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command did on one node."""

    node: str
    command: str  # the command line as the caller asked for it (without any sudo prefix)
    exit_code: int
    stdout: str
    stderr: str
    duration: float  # seconds, connection set-up excluded

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self) -> CommandResult:
        """This result when the command succeeded; else raise `CommandFailed` naming it."""
        if self.exit_code != 0:
            output = tail(self.stderr) or tail(self.stdout) or "no output"
            raise CommandFailed(
                f"`{short_command(self.command)}` failed on node {self.node} with exit code "
                f"{self.exit_code}: {output}", result=self)
        return self


class Transport(ABC):
    """Runs commands on nodes. Use as an async context manager, or call `close()`."""

    @abstractmethod
    async def run(self, node: str, command: Command, *, sudo: bool = False,
                  timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        """Run `command` on `node` (as root when `sudo`), feeding it `stdin` (else no input);
        raise `CommandTimeout` after `timeout` seconds, other `TransportError`s when it cannot
        run."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and processes; the transport is unusable afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
