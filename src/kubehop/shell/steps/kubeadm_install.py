"""kubeadm-install: release the holds of kubeadm and kubectl, install the hop's patch, hold
them again (`node_commands` puts the holds back when the install fails).

Its `expect`: the installed `kubeadm` and `kubectl` builds (any build of the planned patch:
`1.29.15-*`) and, on a node pinning with apt preferences, `aptPins`: the Kubernetes stanzas of
the pin file the step rewrites (`FILE: kubelet=version 1.29.*@1000`). `aptPins` is read here
for `kubelet-install` too. All from the node's package facts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kubehop.core.apt_preferences import pins_summary
from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.shell.steps.base import ExpectReader, Live, StepContext
from kubehop.shell.steps.facts import any_build, installed_build

KIND = StepKind.KUBEADM_INSTALL


async def execute(run: StepContext, step: Step) -> str:
    await run.commands.run_step(step)
    return ""


def package_build(key: str) -> Callable[[Live, ExpectValue], Awaitable[object]]:
    """A reader of the installed build of the package `key` names."""
    async def read(live: Live, want: ExpectValue) -> object:
        if live.step.node is None:
            return None
        facts = await live.packages()
        return facts if isinstance(facts, str) else installed_build(facts, key)
    return read


async def _apt_pins(live: Live, want: ExpectValue) -> object:
    """The Kubernetes stanzas of the pin file `want` names (`FILE: …`)."""
    if live.step.node is None:
        return None
    facts = await live.packages()
    if isinstance(facts, str):
        return facts
    return pins_summary(str(want).partition(": ")[0], facts.pins)


READS = (ExpectReader(ExpectKey.KUBEADM, "packages", package_build("kubeadm"), any_build),
         ExpectReader(ExpectKey.KUBECTL, "packages", package_build("kubectl"), any_build),
         ExpectReader(ExpectKey.APT_PINS, "packages", _apt_pins))
