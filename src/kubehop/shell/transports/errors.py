"""Transport failures, mapped once at the boundary to one-line messages.

OperationError (kubehop.model.errors)
├── TransportError            the command could not be run (or finished) on a node; `.node`
│   ├── HostUnreachable       no TCP connection (refused, no route, DNS, connect timeout)
│   ├── AuthenticationFailed  the SSH server refused every key offered
│   ├── HostKeyUnknown        the node's host key is not in known_hosts (and accept-new is off)
│   ├── HostKeyChanged        the host key differs from the one recorded: always refused
│   ├── ConnectionLost        the connection dropped while a command ran (outcome unknown)
│   └── CommandTimeout        the command ran longer than its timeout and was stopped
└── CommandFailed             the command ran and exited non-zero (`CommandResult.check()`)

Messages name the node and what to do; they never hold stdin (it may carry secrets) and cut
remote output to a short tail.
"""

from __future__ import annotations

import re
from typing import Protocol

from kubehop.model.errors import OperationError

TAIL = 300  # characters of remote output kept in a message
COMMAND_CHARS = 120  # characters of a command line kept in a message
# Flags whose values are credentials (kubeadm join tokens, certificate keys).
_SECRET_FLAGS = re.compile(
    r"(--(?:token|certificate-key|discovery-token|password|secret)[\w-]*)(=|\s+)('[^']*'|\S+)")


def tail(text: str, limit: int = TAIL) -> str:
    """The last `limit` characters of `text` on one line (lines joined with ' | ')."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    flat = " | ".join(lines)
    return flat if len(flat) <= limit else "…" + flat[-(limit - 1):]


def short_command(line: str, limit: int = COMMAND_CHARS) -> str:
    """A command line fit for a message: credentials masked, cut to `limit` characters."""
    masked = _SECRET_FLAGS.sub(lambda m: f"{m.group(1)}{m.group(2)}***", line)
    flat = " ".join(masked.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class TransportError(OperationError):
    """A command could not be run, or its outcome is unknown, on `node`."""

    def __init__(self, message: str, *, node: str) -> None:
        super().__init__(message)
        self.node = node


class HostUnreachable(TransportError):
    """No connection to the node's SSH server."""


class AuthenticationFailed(TransportError):
    """The node's SSH server refused the credentials."""


class HostKeyUnknown(TransportError):
    """The node's host key is not recorded in known_hosts."""


class HostKeyChanged(TransportError):
    """The node's host key differs from the recorded one (possible man-in-the-middle)."""


class ConnectionLost(TransportError):
    """The connection dropped while a command ran: it may or may not have completed."""


class CommandTimeout(TransportError):
    """A command ran past its timeout and was stopped; partial output is kept."""

    def __init__(self, message: str, *, node: str, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message, node=node)
        self.stdout = stdout
        self.stderr = stderr


class CommandOutcome(Protocol):
    """What `CommandFailed` keeps of a finished command (`transports.base.CommandResult` is
    one): described here so that this module need not import `base`, which imports it."""

    @property
    def node(self) -> str: ...
    @property
    def command(self) -> str: ...
    @property
    def exit_code(self) -> int: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...


class CommandFailed(OperationError):
    """A command exited non-zero; `.result` holds its full output."""

    def __init__(self, message: str, *, result: CommandOutcome) -> None:
        super().__init__(message)
        self.result = result
