"""Health gates: what must be healthy after a step before the next one may start.

- after a control-plane change (`kubeadm upgrade apply`, `kubeadm upgrade node` on a control
  plane, restoring a hand-edited manifest): every apiserver is ready — `/readyz` answers `ok`
  at its address, or, where that address refuses or times out from here (an advertise address
  behind a load balancer, bastion or VPN), its mirror pod is Ready and `/readyz` through the
  kubeconfig's server answers `ok` (`KubeCluster.apiserver_problems`);
  the node's control-plane mirror pods run the new image and are Ready, the node's other
  kube-system pods are Ready, and so are the kube-system pods of Deployments (CoreDNS, which
  kubeadm rolls) on Ready nodes. DaemonSet pods elsewhere are not waited for: kubeadm rolls
  kube-proxy one node at a time, which takes an hour on 1,000 nodes and does not make this
  control plane less healthy; each node's own pods are checked after its kubelet restart;
- after a node's kubelet came back (`wait-ready`): the kube-system pods on that node are Ready
  (kube-proxy, the CNI agent), so the next node does not go down before this one serves.

Each gate is a list of problems (empty: healthy), waited for with a timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from kubehop.core.steps.base import STATIC_POD_KEYS
from kubehop.model.plan import Step, StepKind
from kubehop.shell.executor.cluster import Cluster, SystemPod
from kubehop.shell.kube.errors import ApiError

_SHOWN = 5


def control_plane_change(step: Step) -> bool:
    """Whether `step` restarts control-plane static pods."""
    return step.kind in (StepKind.KUBEADM_APPLY, StepKind.REMEDIATE_DRIFT) or (
        step.kind is StepKind.KUBEADM_NODE and bool(step.expect.keys() & STATIC_POD_KEYS))


def gate_of(step: Step) -> str | None:
    """The name of the gate after `step` (None: none)."""
    if control_plane_change(step):
        return "control plane healthy"
    if step.kind is StepKind.WAIT_READY:
        return "node's kube-system pods Ready"
    return None


def _unready(pods: list[SystemPod], ready_nodes: set[str], node: str | None) -> list[str]:
    """Not-Ready kube-system pods on `node`, and (with `ready_nodes`) those of Deployments on
    Ready nodes; mirror and DaemonSet pods elsewhere are left out."""
    out = []
    for p in pods:
        if p.deleting or p.phase in ("Succeeded", "Failed") or p.node is None or p.ready:
            continue
        elsewhere = p.node in ready_nodes and p.owner not in ("DaemonSet", "Node", None)
        if p.node == node or elsewhere:
            out.append(f"{p.name} on {p.node}")
    return sorted(out)


def _listed(what: str, items: list[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f"{what}: {', '.join(items[:_SHOWN])}{more}"


class HealthGates:
    """Evaluates and waits for the gate after each step."""

    def __init__(self, cluster: Cluster, *, monotonic: Callable[[], float] = time.monotonic
                 ) -> None:
        self.cluster = cluster
        self._monotonic = monotonic

    async def problems(self, step: Step) -> list[str]:
        """What is not healthy yet after `step` (empty: the gate is open)."""
        if gate_of(step) is None:
            return []
        pods = await self.cluster.system_pods()
        out: list[str] = []
        if control_plane_change(step):
            try:
                out += await self.cluster.apiserver_problems()
            except ApiError as e:
                out.append(f"apiservers: {e}")
            for component in sorted(step.expect.keys() & STATIC_POD_KEYS):
                pod = next((p for p in pods if p.node == step.node and p.component == component
                            and not p.deleting), None)
                if pod is None:
                    out.append(f"{component} mirror pod on {step.node} is missing")
                elif not pod.ready:
                    out.append(f"{component} on {step.node} is not Ready")
            ready = {n.name for n in await self.cluster.nodes() if n.ready}
            unready = _unready(pods, ready, step.node)
        else:
            unready = _unready(pods, set(), step.node)
        if unready:
            out.append(_listed("kube-system pods not Ready", unready))
        return out

    async def wait(self, step: Step, timeout: float,
                   on_wait: Callable[[list[str]], None] | None = None) -> list[str]:
        """Wait for the gate after `step`; the problems left after `timeout` (empty: open)."""
        deadline = self._monotonic() + timeout
        delay = 0.05
        while True:
            problems = await self.problems(step)
            if not problems or self._monotonic() >= deadline:
                return problems
            if on_wait is not None:
                on_wait(problems)
            pause = min(delay, max(0.0, deadline - self._monotonic()))
            if any(p.startswith("apiserver") for p in problems):
                await asyncio.sleep(pause)
            else:
                await self.cluster.changed(pause)
            delay = min(delay * 1.5, 2.0)
