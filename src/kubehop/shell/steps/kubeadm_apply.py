"""kubeadm-apply: `kubeadm upgrade apply -y vX` on the first control plane.

Run detached from the SSH session (`kubeadm_runner`): kubeadm rolls its static pods back itself
when one does not come up, and must not be killed half-way. Its `expect`: kubeadm-config's
`kubernetesVersion` and the node's control-plane static pods at the new version. The static
pod keys are read here for every kind that carries them (`kubeadm-node`, `remediate-drift`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kubehop.core.steps.base import STATIC_POD_KEYS
from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.shell.steps.base import ExpectReader, Live, StepContext

KIND = StepKind.KUBEADM_APPLY
# The image tag of the node's mirror pod of each component kubehop versions.


async def execute(run: StepContext, step: Step) -> str:
    await run.commands.run_step(step)
    return ""


def _static_pod(component: str) -> Callable[[Live, ExpectValue], Awaitable[object]]:
    async def read(live: Live, want: ExpectValue) -> object:
        """The image tag of `component`'s running mirror pod on the node (None: none)."""
        pod = next((p for p in await live.cluster.system_pods()
                    if p.node == live.step.node and p.component == component
                    and not p.deleting), None)
        return pod.tag if pod is not None else None
    return read


async def _kubernetes_version(live: Live, want: ExpectValue) -> object:
    """kubeadm-config's ClusterConfiguration.kubernetesVersion."""
    return await live.cluster.kubernetes_version()


READS = (ExpectReader(ExpectKey.KUBERNETES_VERSION, "cluster", _kubernetes_version),
         *(ExpectReader(c, "static-pods", _static_pod(c)) for c in sorted(STATIC_POD_KEYS)))
