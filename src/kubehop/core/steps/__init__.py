"""Step kinds, one module each (`StepKind` value with `-` as `_`): how a step is built, what the
simulator does with it, how long it takes and which `expect` keys it sets. `shell.steps` holds
the parallel modules that execute the steps and read their `expect` live."""

from __future__ import annotations

from collections.abc import Mapping

from kubehop.core.steps import (
    cordon,
    drain,
    etcd_snapshot,
    gate,
    kubeadm_apply,
    kubeadm_install,
    kubeadm_node,
    kubeadm_plan,
    kubelet_install,
    kubelet_restart,
    remediate_drift,
    repo_switch,
    switchover,
    uncordon,
    wait_ready,
)
from kubehop.core.steps.base import StepKindModule
from kubehop.model.plan import StepKind

REGISTRY: Mapping[StepKind, StepKindModule] = {m.KIND: m for m in (  # type: ignore[misc]
    remediate_drift, repo_switch, kubeadm_install, kubeadm_plan, etcd_snapshot, kubeadm_apply,
    kubeadm_node, cordon, switchover, drain, kubelet_install, kubelet_restart, wait_ready,
    uncordon, gate)}


def module_of(kind: StepKind) -> StepKindModule:
    """The module of step kind `kind`."""
    return REGISTRY[kind]
