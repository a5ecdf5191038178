"""Running a node step's commands: in order, stopping at the first that fails.

Around each command: another process's package manager lock is waited out (up to
`lock_wait`), an install interrupted half-way is finished (`dpkg --configure -a`), an
`apt-get update` that exited 0 without fetching its source fails, holds a failed step released
are put back, and `kubeadm upgrade plan|apply|node` goes through the `KubeadmRunner`
(detached, CreateJob retry). The node's cached package facts are dropped around each command.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from kubehop.model.plan import Command, Step
from kubehop.shell.executor.journal import tail
from kubehop.shell.steps.base import ExecutorOptions, StepFailed
from kubehop.shell.steps.facts import NodeFacts
from kubehop.shell.steps.kubeadm_runner import KubeadmRunner, handles
from kubehop.shell.transports import CommandResult, Transport, TransportError
from kubehop.shell.transports.errors import short_command
from kubehop.shell.transports.errors import tail as one_line_tail

# Another package manager holds the lock (unattended-upgrades, or the command of a kubehop that
# was killed still running on the node): wait and run the command again. apt-get names the
# holder ("It is held by process 2718 (unattended-upgr)", apt-pkg/contrib/fileutl.cc
# GetLock); `apt-mark` runs dpkg, which names only its pid ("dpkg: error: dpkg frontend lock
# was locked by another process with pid 2718", dpkg src/main/archives.c / lib/dpkg/dbmodify.c)
# and exits 100 with "E: Executing dpkg failed. Are you root?".
_LOCKED = re.compile(r"Could not get lock|Unable to acquire the dpkg frontend lock|"
                     r"dpkg frontend lock (?:was|is) locked by another process|"
                     r"Existing lock /var/run/yum\.pid|Waiting for process with pid")
_HOLDER = re.compile(r"held by process (\d+)(?: \(([^)]*)\))?|"
                     r"locked by another process with pid (\d+)|"
                     r"Waiting for process with pid (\d+)")
# apt-get's own wait for the dpkg lock (apt 1.9.11+: `-o DPkg::Lock::Timeout=SECONDS`, see
# apt-pkg/deb/debsystem.cc); the runner passes what is left of `lock_wait`.
_APT_LOCK_TIMEOUT = "DPkg::Lock::Timeout"
# An `apt-get update` whose Kubernetes source could not be fetched: apt before 2.1.16 (no
# `--error-on=any`, see core.node_commands) says so in warnings and exits 0.
_UPDATE_FAILED = re.compile(r"^(?:W: (?=Failed to fetch|Some index files failed to download)|"
                            r"E: )(.*)$", re.MULTILINE)
# Package steps release a hold for the install and put it back after; when the install
# fails, the hold goes back before the step halts (a package left unheld is upgraded by the
# next routine `apt-get upgrade`).
_RELEASE_TO_HOLD = {("apt-mark", "unhold"): ("apt-mark", "hold"),
                    ("dnf", "versionlock", "delete"): ("dnf", "versionlock", "add")}
# An install interrupted half-way (a killed command): dpkg must finish configuring first.
_INTERRUPTED = re.compile(r"dpkg was interrupted, you must manually run '(?:sudo )?dpkg "
                          r"--configure -a'")
_CONFIGURE = Command(("dpkg", "--configure", "-a"))


class NodeCommands:
    """Runs steps' commands on their nodes (see the module docstring)."""

    def __init__(self, transport: Transport, facts: NodeFacts, options: ExecutorOptions,
                 waiting: Callable[[Step, str], None]) -> None:
        self.transport = transport
        self.facts = facts
        self.options = options
        self.waiting = waiting
        self.kubeadm = KubeadmRunner(transport, timeout=options.kubeadm_timeout,
                                     command_timeout=options.command_timeout,
                                     detached=options.kubeadm_detached)

    async def run_step(self, step: Step) -> None:
        """Run `step`'s commands in order; StepFailed at the first that fails."""
        node = step.node
        if not step.commands:
            raise StepFailed(f"a {step.kind} step names no node (plan bug)" if node is None
                             else f"this kubehop does not know how to run a {step.kind} step "
                                  "without commands")
        if node is None:
            raise StepFailed("a step with commands names no node (plan bug)")
        outputs: list[str] = []
        rehold: list[Command] = []  # holds this step released and has not put back yet
        for command in step.commands:
            try:
                await self.run_checked(step, node, command, outputs)
            except StepFailed as failed:
                if rehold:
                    failed = await self._put_holds_back(step, node, rehold, outputs, failed)
                raise failed from None
            verb = _release_verb(command)
            if verb is not None:  # put back by a later command of the step, or on failure
                rehold.append(Command((*_RELEASE_TO_HOLD[verb], *command.argv[len(verb):])))
            elif rehold:
                rehold = [h for h in rehold if command.argv[:len(h.argv)] != h.argv]

    async def _put_holds_back(self, step: Step, node: str, holds: list[Command],
                              outputs: list[str], failed: StepFailed) -> StepFailed:
        """Hold again what the failed step released; the failure says whether it worked."""
        undone = []
        for hold in holds:
            try:
                await self.run_checked(step, node, hold, outputs, tell=False)
            except StepFailed as e:
                undone.append(f"`{short_command(hold.line)}` failed too ({e.message}): run it "
                              f"on {node} by hand")
        note = "; ".join(undone) if undone else \
            f"the packages' holds were put back ({', '.join(h.line for h in holds)})"
        return StepFailed(f"{failed.message}; {note}", tail("\n".join(outputs)))

    async def run_checked(self, step: Step, node: str, command: Command, outputs: list[str],
                          *, tell: bool = True) -> None:
        """Run one command, waiting out another process's package manager lock (up to
        `lock_wait`, told as `step`'s progress unless not `tell`) and finishing an interrupted
        dpkg run; StepFailed when it fails."""
        deadline = time.monotonic() + self.options.lock_wait
        delay, configured, holder = 1.0, False, ""
        while True:
            result = await self.run(step, node, _with_lock_timeout(command, deadline), outputs)
            text = result.stderr + result.stdout
            if result.ok:
                failed = _update_failure(command, text)
                if failed is None:
                    return
                raise StepFailed(f"`{short_command(command.line)}` could not fetch the "
                                 f"Kubernetes package list: {failed}", tail("\n".join(outputs)))
            if _INTERRUPTED.search(text) and not configured:
                configured = True  # finish the interrupted install, then try again
                await self.run(step, node, _CONFIGURE, outputs)
                continue
            if _LOCKED.search(text):
                holder = await self._holder(node, text) or holder
                if time.monotonic() + delay < deadline:
                    if tell:
                        self.waiting(step, f"waiting for the package manager lock on {node}"
                                           f"{f' (held by {holder})' if holder else ''}")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 15.0)
                    continue
                raise StepFailed(
                    f"the package manager lock on {node} is still held"
                    f"{f' by {holder}' if holder else ''} after "
                    f"{self.options.lock_wait:g} s (lock wait): let it finish (unattended-"
                    f"upgrades: systemctl status unattended-upgrades) or stop it, then run "
                    f"kubehop apply again", tail("\n".join(outputs)))
            brief = one_line_tail(result.stderr) or one_line_tail(result.stdout) or \
                "no output"
            raise StepFailed(f"`{short_command(command.line)}` exited with "
                             f"{result.exit_code}: {brief}", tail("\n".join(outputs)))

    async def _holder(self, node: str, text: str) -> str:
        """`process PID (NAME)` of the lock holder the message names; the name from `ps`
        on the node when the message gives only the pid (dpkg's)."""
        m = _HOLDER.search(text)
        if m is None:
            return ""
        pid = next(g for g in (m.group(1), m.group(3), m.group(4)) if g)
        name = m.group(2) or ""
        if not name:
            try:
                result = await self.transport.run(node, ("ps", "-o", "comm=", "-p", pid),
                                                  sudo=False, timeout=30.0)
                name = result.stdout.strip() if result.ok else ""
            except TransportError:
                name = ""
        return f"process {pid} ({name})" if name else f"process {pid}"

    async def run(self, step: Step, node: str, command: Command,
                  outputs: list[str]) -> CommandResult:
        """Run `command` as it is (kubeadm through its runner), its output kept in `outputs`;
        StepFailed when the transport fails."""
        self.facts.invalidate(node)
        try:
            if handles(command.argv):
                result = await self.kubeadm.run(node, command,
                                                lambda m: self.waiting(step, m))
            else:
                result = await self.transport.run(node, command.argv, sudo=command.sudo,
                                                  stdin=command.stdin,
                                                  timeout=self.options.command_timeout)
        except TransportError as e:
            raise StepFailed(str(e), tail("\n".join(outputs))) from None
        finally:
            self.facts.invalidate(node)
        outputs.append(f"$ {command.line}\n{result.stdout}{result.stderr}".rstrip())
        return result


def _release_verb(command: Command) -> tuple[str, ...] | None:
    """The hold-releasing verb `command` starts with (`apt-mark unhold`), if any."""
    return next((v for v in _RELEASE_TO_HOLD if command.argv[:len(v)] == v), None)


def _with_lock_timeout(command: Command, deadline: float) -> Command:
    """`apt-get` waits for the dpkg lock itself for what is left of the lock wait."""
    argv = command.argv
    if not argv or argv[0] != "apt-get" or any(_APT_LOCK_TIMEOUT in a for a in argv):
        return command
    left = max(0, int(deadline - time.monotonic()))
    return Command((argv[0], "-o", f"{_APT_LOCK_TIMEOUT}={left}", *argv[1:]), command.stdin,
                   command.sudo)


def _update_failure(command: Command, text: str) -> str | None:
    """Why an `apt-get update` that exited 0 did not fetch its source (old apt's warnings)."""
    if "update" not in command.argv[:4] or command.argv[0] != "apt-get":
        return None
    m = _UPDATE_FAILED.search(text)
    return m.group(1).strip()[:300] if m else None
