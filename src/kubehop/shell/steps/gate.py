"""gate: a barrier closing a wave; it runs nothing and expects nothing (the executor records
it as succeeded once every step before it is done)."""

from __future__ import annotations

from kubehop.model.plan import Step, StepKind
from kubehop.shell.steps.base import ExpectReader, StepContext

KIND = StepKind.GATE
READS: tuple[ExpectReader, ...] = ()


async def execute(run: StepContext, step: Step) -> str:
    return ""
