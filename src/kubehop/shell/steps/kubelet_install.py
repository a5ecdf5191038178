"""kubelet-install: release the kubelet's hold, install the hop's patch, hold it again.

Its `expect`: `kubeletPackage`, the installed build (any build of the planned patch), and on
a node pinning with apt preferences `aptPins` (read in `kubeadm_install`; so is `kubectl`,
which plans made before kubectl moved to kubeadm-install expect here).
"""

from __future__ import annotations

from kubehop.model.plan import ExpectKey, Step, StepKind
from kubehop.shell.steps.base import ExpectReader, StepContext
from kubehop.shell.steps.facts import any_build
from kubehop.shell.steps.kubeadm_install import package_build

KIND = StepKind.KUBELET_INSTALL


async def execute(run: StepContext, step: Step) -> str:
    await run.commands.run_step(step)
    return ""


READS = (ExpectReader(ExpectKey.KUBELET_PACKAGE, "packages", package_build("kubeletPackage"),
                      any_build),)
