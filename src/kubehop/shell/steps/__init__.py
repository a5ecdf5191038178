"""Step kinds as the executor runs them: one module per `StepKind`, named after it.

Each module (`base` says what it has) tells how its steps are executed and how their `expect`
keys are read live; the core's `kubehop.core.steps` has a module of the same name saying how
the step is built and simulated. The executor dispatches through `KINDS`, the expectation
checker through `READERS`. Shared helpers: `node_commands` (a step's command list, package
manager locks and holds), `kubeadm_runner` (detached `kubeadm upgrade`), `facts` (a node's
package facts).
"""

from __future__ import annotations

from collections.abc import Mapping

from kubehop.model.plan import ExpectKey, StepKind
from kubehop.shell.steps import (
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
from kubehop.shell.steps.base import ExpectReader, StepModule

_MODULES: tuple[StepModule, ...] = (
    remediate_drift, repo_switch, kubeadm_install, kubeadm_plan, etcd_snapshot, kubeadm_apply,
    kubeadm_node, cordon, switchover, drain, kubelet_install, kubelet_restart, wait_ready,
    uncordon, gate)

KINDS: Mapping[StepKind, StepModule] = {m.KIND: m for m in _MODULES}
"""StepKind → the module that executes it."""

READERS: Mapping[ExpectKey, ExpectReader] = {r.key: r for m in _MODULES for r in m.READS}
"""`expect` key → how it is read live (each key read by exactly one module)."""


def module_of(kind: StepKind) -> StepModule:
    """The module that executes steps of `kind`."""
    return KINDS[kind]


__all__ = ["KINDS", "READERS", "module_of"]
