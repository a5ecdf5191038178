"""`LabTransport`: a `Transport` that runs commands on the lab's node agents in-process (no SSH),
for executor tests and benchmarks that need node behaviour without 1,000 SSH connections."""

from __future__ import annotations

import time

from kubehop.lab.lab import Lab
from kubehop.shell.transports import Command, CommandResult, Transport, render_command


class LabTransport(Transport):
    """Commands go straight to `lab.agents.run` (as root when `sudo`)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.calls: list[tuple[str, str]] = []

    async def run(self, node: str, command: Command, *, sudo: bool = False,
                  timeout: float = 300.0, stdin: str | None = None) -> CommandResult:
        line = render_command(command)
        self.calls.append((node, line))
        started = time.monotonic()
        assert self.lab.agents is not None
        result = await self.lab.agents.run(node, line, stdin=stdin or "", root=sudo)
        return CommandResult(node, line, result.exit_code, result.stdout, result.stderr,
                             time.monotonic() - started)

    async def close(self) -> None:
        return None
