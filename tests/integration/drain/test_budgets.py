"""PDB-blocked drains: retried the moment the budget allows, explained while waiting, bounded
by --timeout (the node then stays cordoned and is named)."""

from __future__ import annotations

import pytest

from kubehop.core.drain.explain import DrainEvent
from kubehop.core.drain.rules import DrainError, DrainOptions
from kubehop.lab.history import check_history
from kubehop.shell.drain.node import Drainer
from kubehop.shell.kube.client import KubeClient
from tests.integration.drain.conftest import (
    by_kind,
    kubehop_drain,
    node_schedulable,
    pods_on,
    removed,
    scenario,
    start_labs,
)

SCALE = 0.05  # a pod starts in 0.25 s and stops in 0.1 s: kubectl would retry after 5 s
FRONTEND = """\
  - {kind: Deployment, namespace: web, name: frontend, replicas: 3,
     requests: {cpu: 100m, memory: 64Mi}, pdb: {maxUnavailable: 1}}
"""


def frontend_on(lab, node: str) -> list[str]:
    return sorted(k for k in pods_on(lab, node) if k.startswith("web/frontend-"))


async def test_blocked_drain_finishes_as_soon_as_the_replacement_is_ready(stack, tmp_path):
    path = scenario(tmp_path, "budget", FRONTEND, workers=2)
    (lab,) = await start_labs(stack, path, tmp_path, 1, scale=SCALE)
    node = next(n for n in ("w1", "w2") if len(frontend_on(lab, n)) == 2)
    before = pods_on(lab, node)
    evicted_at: dict[str, float] = {}
    closed: list[bool] = []

    def on_event(event) -> None:
        if event.kind == "evicted":
            evicted_at[event.pod] = lab.clock.now()
        if event.kind == "blocked" and not closed:  # the watches must survive a broken stream
            closed.append(True)
            lab.store.close_watches()

    start = lab.clock.now()
    result, events = await kubehop_drain(lab, node, "--ignore-daemonsets", "--timeout=30s",
                                         on_event=on_event)
    assert not isinstance(result, Exception), result
    assert sorted(result.evicted) == frontend_on_before(before)
    blocked = by_kind(events, "blocked")
    assert blocked, "one eviction had to wait for the PDB"
    assert blocked[0].pdb == "web/frontend"
    assert blocked[0].message.startswith("pdb web/frontend: 2 of 3 replicas must stay Ready")

    history = lab.history.since(0)
    ready = [e["t"] for e in history if e["type"] == "pod" and e["event"] == "ready"
             and e["name"].startswith("frontend-") and e["t"] > start]
    assert ready, "a replacement became Ready"
    last = max(evicted_at.values())
    # The second eviction follows the first replacement's readiness at once: the pod then needs
    # podStop (2 lab s) to go; kubectl would have slept 5 s (100 lab s here) between tries.
    assert last - min(ready) < 2 + 4, (ready, evicted_at)
    assert set(removed(lab, before).values()) == {"eviction"}
    assert check_history(history) == []
    refused = [e for e in history if e["type"] == "eviction-refused"]
    assert refused
    assert {e["pdb"] for e in refused} == {"web/frontend"}


def frontend_on_before(before: dict[str, str]) -> list[str]:
    return sorted(k for k in before if k.startswith("web/frontend-"))


async def test_timeout_names_the_cordoned_node_the_pdb_and_the_pending_replacement(
        stack, tmp_path):
    workloads = """\
  - {kind: Deployment, namespace: web, name: frontend, replicas: 2, node: w1,
     requests: {cpu: "1500m", memory: 64Mi}, pdb: {maxUnavailable: 1}}
"""
    path = scenario(tmp_path, "stuck", workloads, workers=2, cpu={"w2": "1"})
    (lab,) = await start_labs(stack, path, tmp_path, 1, scale=0.01)
    before = pods_on(lab, "w1")
    result, _ = await kubehop_drain(lab, "w1", "--ignore-daemonsets", "--timeout=3s")
    assert isinstance(result, DrainError)
    assert result.left_cordoned
    assert not node_schedulable(lab, "w1")
    text = str(result)
    assert text.startswith("drain of node w1 timed out after 3s with 1 pod left: web/frontend-")
    assert "pdb web/frontend: 1 of 2 replicas must stay Ready (1 Ready now); 1 replacement is " \
           "Pending: 0/3 nodes are available: " in text
    assert "Insufficient cpu" in text
    assert "node w1 left cordoned (`kubehop uncordon w1`" in text
    assert len(result.pending) == 1
    assert len(removed(lab, before)) == 1
    assert check_history(lab.history.since(0)) == []


async def test_waiting_lines_repeat_while_a_pod_is_blocked(stack, tmp_path):
    workloads = """\
  - {kind: Deployment, namespace: web, name: solo, replicas: 1, node: w1,
     pdb: {minAvailable: 1}}
"""
    path = scenario(tmp_path, "solo", workloads, workers=2)
    (lab,) = await start_labs(stack, path, tmp_path, 1)
    events: list[DrainEvent] = []
    async with await KubeClient.connect(str(lab.kubeconfig_path)) as client:
        drainer = Drainer(client, DrainOptions(ignore_daemonsets=True, timeout=1.2,
                                               progress_interval=0.3), events.append)
        with pytest.raises(DrainError, match=r"timed out after 1\.2s"):
            await drainer.drain("w1")
    waiting = by_kind(events, "waiting")
    assert len(waiting) >= 2
    assert {(w.pdb, len(w.pods)) for w in waiting} == {("web/solo", 1)}
    assert waiting[0].pods[0].startswith("web/solo-")
    assert waiting[0].message.startswith("pdb web/solo: 1 of 1 replica must stay Ready")
