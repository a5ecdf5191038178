"""remediate-drift: restore a control-plane static pod manifest edited by hand to kubeadm's
version (the plan's commands rewrite the image in /etc/kubernetes/manifests).

Its `expect`: the restored components' image tags on the node (read in `kubeadm_apply`).
"""

from __future__ import annotations

from kubehop.model.plan import Step, StepKind
from kubehop.shell.steps.base import ExpectReader, StepContext

KIND = StepKind.REMEDIATE_DRIFT
READS: tuple[ExpectReader, ...] = ()


async def execute(run: StepContext, step: Step) -> str:
    await run.commands.run_step(step)
    return ""
