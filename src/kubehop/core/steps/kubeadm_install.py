"""kubeadm-install: unhold, install and hold kubeadm and kubectl at the hop's patch.

kubectl goes with kubeadm, before any drain (kubernetes/website#57275), so it stays within one
minor of the apiservers as kubeadm moves them."""

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

KIND = StepKind.KUBEADM_INSTALL
EXPECT_KEYS = frozenset({ExpectKey.KUBEADM, ExpectKey.KUBECTL, ExpectKey.APT_PINS})
LOCAL = True
PACKAGES = ("kubeadm", "kubectl")


def commands(family: nc.Packaging, version: KubeVersion,
             pinned: tuple[tuple[str, str], ...]) -> tuple[Command, ...]:
    return install_commands(family, version, PACKAGES, pinned)


def texts(family: nc.Packaging, pv: str, pinned: tuple[tuple[str, str], ...]
          ) -> tuple[str, dict[ExpectKey, ExpectValue]]:
    """(description, expect) of installing package version glob `pv`."""
    return install_texts(family, "kubeadm and kubectl", pv,
                         {ExpectKey.KUBEADM: pv, ExpectKey.KUBECTL: pv}, pinned)


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    # kubectl rides along when the step says so (plans since kubernetes/website#57275).
    names = PACKAGES if ExpectKey.KUBECTL in (step.expect or {}) else ("kubeadm",)
    problems = sim.install(n, hop, names)
    n.kubeadm = hop
    return problems + sim.check_node(n)


def cost(step: Step, est: Estimate) -> float:
    return est.costs.package_install
