"""kubeadm-node: `kubeadm upgrade node`, run detached (`kubeadm_runner`).

On a control plane it upgrades the node's static pods (its `expect`: their image tags, read
in `kubeadm_apply`); on a worker it rewrites the kubelet configuration and expects nothing
observable (it simply runs again on resume).
"""

from __future__ import annotations

from kubehop.model.plan import Step, StepKind
from kubehop.shell.steps.base import ExpectReader, StepContext

KIND = StepKind.KUBEADM_NODE
READS: tuple[ExpectReader, ...] = ()


async def execute(run: StepContext, step: Step) -> str:
    await run.commands.run_step(step)
    return ""
