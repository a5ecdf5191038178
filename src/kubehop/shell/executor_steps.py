"""Doing one step: its node commands over the transport, or its API action, then its checks.

Node steps run their commands in order and stop at the first non-zero exit. API steps cordon,
drain (through the drain library: Eviction API, PodDisruptionBudgets honoured), uncordon, or
wait (CloudNativePG switchover, node Ready). Afterwards the step's `expect` must hold (waited
for up to `verify_timeout`) and its health gate must open (`gate_timeout`), else it failed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubehop.core.drain import DrainError, DrainOptions
from kubehop.core.drain_explain import CNPG_CLUSTER_LABEL, DrainEvent
from kubehop.model.plan import Command, Step, StepKind
from kubehop.shell.executor_cluster import Cluster
from kubehop.shell.expect import ExpectChecker, Mismatch, describe
from kubehop.shell.gates import HealthGates, gate_of
from kubehop.shell.kube.errors import ApiError
from kubehop.shell.transports import CommandResult, Transport, TransportError
from kubehop.shell.transports.errors import short_command
from kubehop.shell.transports.errors import tail as one_line_tail

OUTPUT_TAIL = 2000
# Another package manager holds the lock (unattended-upgrades, or the command of a kubehop that
# was killed still running on the node): wait and run the command again.
_LOCKED = re.compile(r"Could not get lock|Unable to acquire the dpkg frontend lock|"
                     r"Existing lock /var/run/yum\.pid|Waiting for process with pid")
# An install interrupted half-way (a killed command): dpkg must finish configuring first.
_INTERRUPTED = re.compile(r"dpkg was interrupted, you must manually run '(?:sudo )?dpkg "
                          r"--configure -a'")
_CONFIGURE = Command(("dpkg", "--configure", "-a"))


@dataclass(frozen=True, slots=True)
class ExecutorOptions:
    """How the executor runs a plan; timeouts in seconds."""

    parallel: int = 256
    """Steps running at once (a wave's nodes go in parallel up to this)."""
    command_timeout: float = 900.0
    """One node command (kubeadm upgrade apply pulls images: minutes)."""
    verify_timeout: float = 300.0
    """For a step's `expect` to hold after it ran (a kubelet reports its version late)."""
    ready_timeout: float = 600.0
    """For a node to be Ready at its new kubelet version after the restart."""
    drain_timeout: float = 1800.0
    """For one drain (PodDisruptionBudgets may make it wait); 0: forever."""
    switchover_timeout: float = 600.0
    """For CloudNativePG to move a primary off a cordoned node."""
    lock_wait: float = 600.0
    """For another process's package manager lock on a node (unattended-upgrades)."""
    gate_timeout: float = 600.0
    """For the health gate after a step."""


class StepFailed(Exception):
    """A step did not do what it should; `output` is the tail of what its command printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.output = output


def _tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


class StepRunner:
    """Performs steps against one cluster and its nodes."""

    def __init__(self, cluster: Cluster, transport: Transport, checker: ExpectChecker,
                 gates: HealthGates, options: ExecutorOptions,
                 on_drain: Callable[[Step, DrainEvent], None] | None = None,
                 on_wait: Callable[[Step, str], None] | None = None) -> None:
        self.cluster = cluster
        self.transport = transport
        self.checker = checker
        self.gates = gates
        self.options = options
        self.on_drain = on_drain
        self.on_wait = on_wait

    def _waiting(self, step: Step, message: str) -> None:
        if self.on_wait is not None:
            self.on_wait(step, message)

    async def perform(self, step: Step) -> None:
        """Do `step` and check what must hold after it; StepFailed says why not."""
        try:
            if step.commands:
                await self._commands(step)
            else:
                await self._api(step)
        except ApiError as e:
            raise StepFailed(f"the API refused: {e}") from None
        missing = await self.checker.wait(step, self.options.verify_timeout)
        if missing:
            raise StepFailed(f"it ran, but afterwards {describe(missing)} "
                             f"(waited {self.options.verify_timeout:g} s)")
        gate = gate_of(step)
        if gate is not None:
            problems = await self.gates.wait(step, self.options.gate_timeout,
                                             lambda p: self._waiting(step, "; ".join(p)))
            if problems:
                raise StepFailed(f"health gate \"{gate}\" still closed after "
                                 f"{self.options.gate_timeout:g} s: {'; '.join(problems)}")

    async def _commands(self, step: Step) -> None:
        node = step.node
        if node is None:
            raise StepFailed("a step with commands names no node (plan bug)")
        outputs: list[str] = []
        for command in step.commands:
            deadline = time.monotonic() + self.options.lock_wait
            delay, configured = 1.0, False
            while True:
                result = await self._run(node, command, outputs)
                if result.ok:
                    break
                text = result.stderr + result.stdout
                if _INTERRUPTED.search(text) and not configured:
                    configured = True  # finish the interrupted install, then try again
                    await self._run(node, _CONFIGURE, outputs)
                    continue
                if _LOCKED.search(text) and time.monotonic() + delay < deadline:
                    self._waiting(step, f"waiting for the package manager lock on {node}")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 15.0)
                    continue
                brief = one_line_tail(result.stderr) or one_line_tail(result.stdout) or \
                    "no output"
                raise StepFailed(f"`{short_command(command.line)}` exited with "
                                 f"{result.exit_code}: {brief}", _tail("\n".join(outputs)))

    async def _run(self, node: str, command: Command, outputs: list[str]) -> CommandResult:
        self.checker.facts.invalidate(node)
        try:
            result = await self.transport.run(node, command.argv, sudo=command.sudo,
                                              stdin=command.stdin,
                                              timeout=self.options.command_timeout)
        except TransportError as e:
            raise StepFailed(str(e), _tail("\n".join(outputs))) from None
        finally:
            self.checker.facts.invalidate(node)
        outputs.append(f"$ {command.line}\n{result.stdout}{result.stderr}".rstrip())
        return result

    async def _api(self, step: Step) -> None:
        node = step.node
        kind = step.kind
        if kind is StepKind.GATE:
            return
        if node is None:
            raise StepFailed(f"a {kind} step names no node (plan bug)")
        if kind in (StepKind.CORDON, StepKind.UNCORDON):
            await self.cluster.set_schedulable(node, kind is StepKind.UNCORDON)
        elif kind is StepKind.DRAIN:
            await self._drain(step, node)
        elif kind is StepKind.SWITCHOVER:
            await self._switchover(step, node)
        elif kind is StepKind.WAIT_READY:
            missing = await self._wait(step, self.options.ready_timeout)
            if missing:
                view = await self.cluster.node(node)
                why = f" ({view.ready_message})" if view is not None and view.ready_message \
                    else ""
                raise StepFailed(
                    f"node {node} did not become Ready at {step.expect.get('kubelet', '?')} "
                    f"within {self.options.ready_timeout:g} s after its kubelet restart: "
                    f"{describe(missing)}{why}; check the kubelet on it "
                    f"(journalctl -u kubelet)")
        else:
            raise StepFailed(f"this kubehop does not know how to run a {kind} step without "
                             "commands")

    async def _wait(self, step: Step, timeout: float) -> list[Mismatch]:
        return await self.checker.wait(
            step, timeout, on_wait=lambda m: self._waiting(step, f"waiting: {describe(m)}"))

    async def _switchover(self, step: Step, node: str) -> None:
        """Move the databases' instances off the node, primary last: CloudNativePG promotes a
        replica on another node when this one is cordoned, but when every replica shares the
        node (a previous drain pushed them here) there is none to promote until the replicas
        move. The drain library evicts the replicas (their PodDisruptionBudget permitting) and
        evicts the primary only once the operator has switched over."""
        missing = await self.checker.mismatches(step)
        for db in _database_list(step):
            if not missing:
                break
            name = db.partition("/")[2]
            options = DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True,
                                   pod_selector=f"{CNPG_CLUSTER_LABEL}={name}",
                                   timeout=self.options.switchover_timeout,
                                   switchover_timeout=self.options.switchover_timeout)
            try:
                await self.cluster.drain(node, options, self._forward(step))
            except DrainError as e:
                raise StepFailed(f"switchover of {db}: {e}") from None
            missing = await self.checker.mismatches(step)
        missing = await self._wait(step, self.options.switchover_timeout)
        if missing:
            raise StepFailed(
                f"CloudNativePG did not move the primary of {_databases(step)} off node "
                f"{node} within {self.options.switchover_timeout:g} s ({describe(missing)}); "
                f"check the operator (kubectl get clusters.postgresql.cnpg.io -A)")

    def _forward(self, step: Step) -> Callable[[DrainEvent], None]:
        def forward(event: DrainEvent) -> None:
            if self.on_drain is not None:
                self.on_drain(step, event)
        return forward

    async def _drain(self, step: Step, node: str) -> None:
        p = step.params
        options = DrainOptions(ignore_daemonsets=bool(p.get("ignoreDaemonsets", True)),
                               delete_emptydir_data=bool(p.get("deleteEmptydirData", False)),
                               force=bool(p.get("force", False)),
                               timeout=self.options.drain_timeout,
                               switchover_timeout=self.options.switchover_timeout)
        try:
            await self.cluster.drain(node, options, self._forward(step))
        except DrainError as e:
            raise StepFailed(str(e)) from None


def _database_list(step: Step) -> tuple[str, ...]:
    value = step.params.get("databases", ())
    return (value,) if isinstance(value, str) else tuple(map(str, value))  # type: ignore[arg-type]


def _databases(step: Step) -> str:
    return ", ".join(_database_list(step))
