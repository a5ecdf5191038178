"""Node transports: run a command on a node (SSH, this machine, or a recording fake).

    from kubehop.shell.transports import CommandResult, Transport
    from kubehop.shell.transports.ssh import SSHTransport   # imports asyncssh (0.5 s): lazily

This package imports neither asyncssh nor `ssh.py`, so importing it stays cheap.
"""

from kubehop.shell.transports.base import Command, CommandResult, Transport, render_command
from kubehop.shell.transports.errors import (
    AuthenticationFailed,
    CommandFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
    TransportError,
)

__all__ = [
    "AuthenticationFailed",
    "Command",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "ConnectionLost",
    "HostKeyChanged",
    "HostKeyUnknown",
    "HostUnreachable",
    "Transport",
    "TransportError",
    "render_command",
]
