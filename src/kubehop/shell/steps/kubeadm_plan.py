"""kubeadm-plan: `kubeadm upgrade plan vX`, a gate on kubeadm's own health and version checks.

Run with the CreateJob retry (`kubeadm_runner`); it changes nothing, so it expects nothing and
runs again on resume.
"""

from __future__ import annotations

from kubehop.model.plan import Step, StepKind
from kubehop.shell.steps.base import ExpectReader, StepContext

KIND = StepKind.KUBEADM_PLAN
READS: tuple[ExpectReader, ...] = ()


async def execute(run: StepContext, step: Step) -> str:
    await run.commands.run_step(step)
    return ""
