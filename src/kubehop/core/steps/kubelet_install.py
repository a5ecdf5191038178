"""kubelet-install: unhold, install and hold the kubelet at the step's version (kubectl came
with kubeadm: `kubeadm_install`)."""

from __future__ import annotations

from kubehop.core import node_commands as nc
from kubehop.core.steps.base import (
    Estimate,
    Problem,
    SimNode,
    Simulation,
    install_commands,
    install_texts,
)
from kubehop.model.plan import Command, ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.KUBELET_INSTALL
# (kubectl: plans made before it moved to kubeadm-install installed it here)
EXPECT_KEYS = frozenset({ExpectKey.KUBELET_PACKAGE, ExpectKey.KUBECTL, ExpectKey.APT_PINS})
LOCAL = True


def commands(family: nc.Packaging, version: KubeVersion,
             pinned: tuple[tuple[str, str], ...]) -> tuple[Command, ...]:
    return install_commands(family, version, ("kubelet",), pinned)


def texts(family: nc.Packaging, pv: str, pinned: tuple[tuple[str, str], ...]
          ) -> tuple[str, dict[ExpectKey, ExpectValue]]:
    """(description, expect) of installing package version glob `pv`."""
    return install_texts(family, "kubelet", pv, {ExpectKey.KUBELET_PACKAGE: pv}, pinned)


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    names = ("kubelet", "kubectl") if ExpectKey.KUBECTL in (step.expect or {}) else ("kubelet",)
    return sim.install(n, hop, names)


def cost(step: Step, est: Estimate) -> float:
    return est.costs.package_install
