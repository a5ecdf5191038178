"""Running `kubeadm upgrade` on a node so that nothing on kubehop's side can cut it short.

`kubeadm upgrade apply` waits up to 5 minutes for each static pod and rolls the manifests back
itself when one does not come up (kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/
staticpods.go); killed half-way it skips that rollback. So `apply` and `upgrade node` run as a
transient systemd unit, detached from the SSH session, their output in the journal:

    systemd-run --unit=kubehop-kubeadm --remain-after-exit -- kubeadm upgrade apply -y v1.29.15

kubehop follows the unit with short commands (`systemctl show` for its state and invocation,
`journalctl -o cat _SYSTEMD_INVOCATION_ID=…` for this run's output), so a dropped SSH
connection costs a retry, not the upgrade; a kubehop started again finds the unit still running
and follows it instead of starting a second kubeadm. After `timeout` (30 min by default)
kubehop stops waiting but leaves kubeadm running. Every command is an argv (sudo needs
`systemd-run`, `systemctl` and `journalctl`, no shell). A node without systemd runs kubeadm
attached, as any other command.

`kubeadm upgrade plan` and `apply` are run again, at most `CREATE_JOB_RETRIES` times, when they
fail only on the `[ERROR CreateJob]` preflight health check: it fails intermittently
(kubernetes/kubeadm#3282; kubespray retries it), and always on a drained single-node cluster
(kubernetes/kubeadm#3050).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from kubehop.model.plan import Command
from kubehop.shell.transports import CommandResult, CommandTimeout, Transport, TransportError

UNIT = "kubehop-kubeadm"
CREATE_JOB_RETRIES = 2
RETRYING = "running it again"  # progress reporters show such a message at once
POLL_TIMEOUT = 60.0  # seconds for one `systemctl show` or `journalctl`
POLL_MIN, POLL_MAX = 0.2, 5.0  # seconds between polls: short while the output grows
_PROPERTIES = ("ActiveState", "SubState", "Result", "ExecMainStatus", "InvocationID")
_ERROR = re.compile(r"\[ERROR ([A-Za-z0-9]+)\]")
# systemd's substates of a service whose process still runs or is being started/stopped
# (systemd/systemd src/basic/unit-def.c service_state_table).
_RUNNING = frozenset({"condition", "start-pre", "start", "start-post", "running", "reload",
                      "stop", "stop-watchdog", "stop-sigterm", "stop-sigkill", "stop-post",
                      "final-watchdog", "final-sigterm", "final-sigkill", "auto-restart"})


def _verb(argv: Sequence[str]) -> str | None:
    """`plan`, `apply` or `node` for a `kubeadm upgrade …` argv (None otherwise)."""
    if len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] == "kubeadm" and argv[1] == "upgrade":
        return argv[2]
    return None


def detaches(argv: Sequence[str]) -> bool:
    """Whether `argv` is a kubeadm run that changes the control plane (run detached)."""
    return _verb(argv) in ("apply", "node")


def handles(argv: Sequence[str]) -> bool:
    """Whether `KubeadmRunner` runs `argv` (detached and/or with the CreateJob retry)."""
    return _verb(argv) in ("plan", "apply", "node")


def create_job_only(output: str) -> bool:
    """Whether kubeadm's only preflight error in `output` is `[ERROR CreateJob]`."""
    return set(_ERROR.findall(output)) == {"CreateJob"}


@dataclass(frozen=True, slots=True)
class UnitState:
    """The transient unit as `systemctl show` describes it."""

    active: str
    sub: str
    result: str
    status: int
    invocation: str = ""  # this run's InvocationID (empty when the unit is not loaded)

    @property
    def running(self) -> bool:
        return self.sub in _RUNNING or self.active in ("activating", "deactivating", "reloading")

    @property
    def finished(self) -> bool:
        """Its process ended and the unit is still loaded (`--remain-after-exit`, or failed)."""
        return not self.running and self.sub in ("exited", "failed")

    @property
    def exit_code(self) -> int:
        return self.status if self.status or self.result == "success" else 1


def parse_state(text: str) -> UnitState | None:
    """`systemctl show --property=…` output; None when it names no SubState (no systemd)."""
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if "SubState" not in values:
        return None
    status = values.get("ExecMainStatus", "0")
    return UnitState(values.get("ActiveState", ""), values["SubState"], values.get("Result", ""),
                     int(status) if status.isdigit() else 0, values.get("InvocationID", ""))


SHOW = ("systemctl", "show", f"--property={','.join(_PROPERTIES)}", f"{UNIT}.service")


def start_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """Start `argv` as the transient unit (output to the journal, the services' default)."""
    return ("systemd-run", f"--unit={UNIT}", "--remain-after-exit",
            f"--description=kubehop: {shlex.join(argv)}", "--", *argv)


def journal_argv(invocation: str) -> tuple[str, ...]:
    """This invocation's output, messages only."""
    return ("journalctl", "--no-pager", "--quiet", "--output=cat",
            f"_SYSTEMD_INVOCATION_ID={invocation}")


def last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


class KubeadmRunner:
    """Runs `kubeadm upgrade plan|apply|node` on nodes (see the module docstring)."""

    def __init__(self, transport: Transport, *, timeout: float = 1800.0,
                 command_timeout: float = 900.0, detached: bool = True,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.transport = transport
        self.timeout = timeout
        self.command_timeout = command_timeout
        self.detached = detached
        self._sleep = sleep
        self._monotonic = monotonic

    async def run(self, node: str, command: Command,
                  on_wait: Callable[[str], None] | None = None) -> CommandResult:
        """Run `command` on `node`; its result (detached: the journal's output as stdout). Raises
        `TransportError` when it could not be started or followed."""
        def say(message: str) -> None:
            if on_wait is not None:
                on_wait(message)

        tries = 1 + (CREATE_JOB_RETRIES if _verb(command.argv) in ("plan", "apply") else 0)
        earlier: list[str] = []
        for attempt in range(1, tries + 1):
            result = await self._once(node, command, say)
            output = result.stdout + result.stderr
            if result.ok or not create_job_only(output):
                break
            if attempt == tries:
                note = (f"kubehop ran it {tries} times: kubeadm's CreateJob health check failed "
                        "each time (intermittent upstream: kubernetes/kubeadm#3282; always on a "
                        "drained single-node cluster: kubernetes/kubeadm#3050)")
                result = CommandResult(result.node, result.command, result.exit_code,
                                       "\n".join([*earlier, result.stdout]),
                                       f"{result.stderr.rstrip()}\n{note}\n", result.duration)
                break
            earlier.append(output.rstrip())
            say(f"`{command.line}` on {node} failed only kubeadm's CreateJob health check "
                f"(intermittent upstream: kubernetes/kubeadm#3282): {RETRYING} "
                f"({attempt + 1} of {tries})")
        return result

    async def _once(self, node: str, command: Command,
                    say: Callable[[str], None]) -> CommandResult:
        if not (self.detached and detaches(command.argv)):
            return await self.transport.run(node, command.argv, sudo=command.sudo,
                                            stdin=command.stdin, timeout=self.command_timeout)
        began = self._monotonic()
        state = parse_state((await self.transport.run(node, SHOW, sudo=command.sudo,
                                                      timeout=POLL_TIMEOUT)).stdout)
        if state is None:
            say(f"no systemd on {node}: kubeadm runs attached to the SSH session")
            return await self.transport.run(node, command.argv, sudo=command.sudo,
                                            stdin=command.stdin, timeout=self.timeout)
        if state.running:
            say(f"a kubeadm started earlier still runs on {node} (unit {UNIT}): following it "
                "instead of starting another")
        else:
            if state.finished:  # an earlier run's unit: unload it (its process has ended)
                verb = "reset-failed" if state.active == "failed" else "stop"
                await self.transport.run(node, ("systemctl", verb, f"{UNIT}.service"),
                                         sudo=command.sudo, timeout=POLL_TIMEOUT)
            try:
                started = await self.transport.run(node, start_argv(command.argv),
                                                   sudo=command.sudo, timeout=POLL_TIMEOUT)
            except TransportError as e:  # the outcome is unknown: the unit will tell
                say(f"starting kubeadm on {node}: {e}; checking whether it started")
            else:
                if not started.ok:
                    return started
        return await self._follow(node, command, say, began)

    async def _follow(self, node: str, command: Command, say: Callable[[str], None],
                      began: float) -> CommandResult:
        deadline = began + self.timeout
        log, delay, seen = "", POLL_MIN, False
        while True:
            try:
                answer = await self.transport.run(node, SHOW, sudo=command.sudo,
                                                  timeout=POLL_TIMEOUT)
                state = parse_state(answer.stdout)
                text = log
                if state is not None and state.invocation:
                    text = (await self.transport.run(node, journal_argv(state.invocation),
                                                     sudo=command.sudo,
                                                     timeout=POLL_TIMEOUT)).stdout
            except TransportError as e:
                if self._monotonic() >= deadline:
                    raise
                say(f"lost contact with {node} ({e}); kubeadm keeps running there: "
                    "trying again")
                await self._sleep(POLL_MAX)
                continue
            if state is None:
                raise TransportError(f"cannot read the state of unit {UNIT} on node {node}: "
                                     f"{last_line(answer.stderr) or 'no output'}", node=node)
            if text != log:
                log, delay = text, POLL_MIN
                if line := last_line(text):
                    say(f"kubeadm on {node}: {line}")
            if state.finished:
                return CommandResult(node, command.line, state.exit_code, log, "",
                                     self._monotonic() - began)
            if state.running:
                seen = True
            elif seen or self._monotonic() - began > POLL_TIMEOUT:
                raise TransportError(
                    f"unit {UNIT} running `{command.line}` on node {node} is gone (the node "
                    f"restarted, or someone stopped it); see `journalctl -u {UNIT}` there",
                    node=node)
            if self._monotonic() >= deadline:
                raise CommandTimeout(
                    f"`{command.line}` still runs on node {node} after {self.timeout:g} s; "
                    f"kubehop left it running (killing kubeadm skips its rollback): follow it "
                    f"with `journalctl -fu {UNIT}` there, then run kubehop again to resume",
                    node=node, stdout=log)
            await self._sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)
