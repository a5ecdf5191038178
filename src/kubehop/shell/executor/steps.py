"""Doing one step: its kind's module executes it, then its checks must pass.

The step kind modules (`kubehop.shell.steps`) run node commands over the transport or act
through the API (cordon, drain, switchover, uncordon, wait for Ready). Afterwards the step's
`expect` must hold (waited for up to `verify_timeout`) and its health gate must open
(`gate_timeout`), else it failed.
"""

from __future__ import annotations

from collections.abc import Callable

from kubehop.core.drain.explain import DrainEvent
from kubehop.model.plan import Step
from kubehop.shell.executor.cluster import Cluster
from kubehop.shell.executor.expect import ExpectChecker
from kubehop.shell.executor.gates import HealthGates, gate_of
from kubehop.shell.kube.errors import ApiError
from kubehop.shell.steps import module_of
from kubehop.shell.steps.base import ExecutorOptions, Mismatch, StepFailed, describe
from kubehop.shell.steps.facts import installed_note
from kubehop.shell.steps.node_commands import NodeCommands
from kubehop.shell.transports import Transport


class StepRunner:
    """Performs steps against one cluster and its nodes (a `shell.steps.base.StepContext`)."""

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
        self.commands = NodeCommands(transport, checker.facts, options, self.waiting)

    def waiting(self, step: Step, message: str) -> None:
        if self.on_wait is not None:
            self.on_wait(step, message)

    async def wait(self, step: Step, timeout: float) -> list[Mismatch]:
        return await self.checker.wait(
            step, timeout, on_wait=lambda m: self.waiting(step, f"waiting: {describe(m)}"))

    def forward(self, step: Step) -> Callable[[DrainEvent], None]:
        def forward(event: DrainEvent) -> None:
            if self.on_drain is not None:
                self.on_drain(step, event)
        return forward

    async def perform(self, step: Step) -> str:
        """Do `step` and check what must hold after it; StepFailed says why not. Returns a
        note for the journal (the package builds a package step installed), or ""."""
        try:
            note = await module_of(step.kind).execute(self, step)
        except ApiError as e:
            raise StepFailed(f"the API refused: {e}") from None
        missing = await self.wait(step, self.options.verify_timeout)
        if missing:
            raise StepFailed(f"it ran, but afterwards {describe(missing)} "
                             f"(waited {self.options.verify_timeout:g} s)")
        gate = gate_of(step)
        if gate is not None:
            problems = await self.gates.wait(step, self.options.gate_timeout,
                                             lambda p: self.waiting(step, "; ".join(p)))
            if problems:
                raise StepFailed(f"health gate \"{gate}\" still closed after "
                                 f"{self.options.gate_timeout:g} s: {'; '.join(problems)}")
        return note or await installed_note(self.checker.facts, step)
