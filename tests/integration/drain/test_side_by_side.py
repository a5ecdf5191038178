"""kubehop drain and real kubectl 1.30 drain on twin labs: same pods removed, same refusals.

One node carries a pod for every filter of kubectl's chain: DaemonSet pods (one of a DaemonSet
that no longer exists), controller-managed pods with and without emptyDir, a PDB-guarded
Deployment, bare pods with and without emptyDir, and a finished bare pod; the control-plane node
carries mirror pods. Each flag combination runs kubectl on one lab and kubehop on its twin; the
labs' histories must agree on what was removed and how, and show no invariant broken.
"""

from __future__ import annotations

import pytest

from kubehop.lab.fixtures import objects as o
from kubehop.lab.history import check_history
from tests.integration.drain.conftest import (
    by_kind,
    kubectl,
    kubehop_drain,
    node_schedulable,
    pods_on,
    refusals,
    removed,
    scenario,
    start_labs,
)

pytestmark = pytest.mark.kubectl

WORKLOADS = """\
  - {kind: Deployment, namespace: web, name: frontend, replicas: 2, node: w1,
     pdb: {maxUnavailable: 1}}
  - {kind: Deployment, namespace: web, name: cache, replicas: 2, node: w1, emptyDir: true}
  - {kind: DaemonSet, namespace: monitoring, name: node-exporter}
  - {kind: Pod, namespace: default, name: scratch, node: w1}
  - {kind: Pod, namespace: default, name: scratch-data, node: w1, emptyDir: true}
"""
ALL = ["--ignore-daemonsets", "--delete-emptydir-data", "--force"]


def add_special_pods(lab) -> None:
    """A finished bare pod with emptyDir, and a pod of a DaemonSet that is gone."""
    done = o.pod("default", "done", node_name="w1", phase="Succeeded", ready=False,
                 volumes=[{"name": "tmp", "emptyDir": {}}])
    orphan = o.pod("monitoring", "retired-agent-x7k2p", node_name="w1")
    orphan["metadata"]["ownerReferences"] = [{
        "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "retired-agent",
        "uid": "0b6e7f9a-1111-4c2b-9d3e-000000000001", "controller": True}]
    for pod in (done, orphan):
        lab.store.create("pods", pod)


async def compare(a, b, tmp_path, node: str, flags: list[str]) -> tuple[int, str, object]:
    """Drain `node` with kubectl on lab `a` and kubehop on lab `b`; assert they agree."""
    before_a, before_b = pods_on(a, node), pods_on(b, node)
    assert before_a.keys() == before_b.keys(), "twin labs must hold the same pods"
    code, out = await kubectl(a, tmp_path, "drain", node, *flags, "--timeout=60s")
    result, events = await kubehop_drain(b, node, *flags, "--timeout=60s")
    kubehop_ok = not isinstance(result, Exception)
    assert (code == 0) == kubehop_ok, f"kubectl exit {code}:\n{out}\nkubehop: {result}"
    assert refusals(out) == refusals("" if kubehop_ok else str(result)), out
    assert removed(a, before_a) == removed(b, before_b), out
    plain = "--disable-eviction" in flags
    found = [{(v.invariant, v.message.split(" fell ")[0]) for v in check_history(
        lab.history.since(0), plain_delete_allowed=plain)} for lab in (a, b)]
    # --disable-eviction bypasses PDBs on purpose: then both tools break the same budgets.
    assert found[0] == found[1] if plain else found == [set(), set()]
    if kubehop_ok:
        assert by_kind(events, "drained")
    return code, out, result


async def test_every_filter_and_flag_as_kubectl(stack, tmp_path):
    path = scenario(tmp_path, "filters", WORKLOADS)
    a, b = await start_labs(stack, path, tmp_path, 2)
    for lab in (a, b):
        add_special_pods(lab)
    await a.controllers.settle()
    await b.controllers.settle()
    before = pods_on(b, "w1")

    _, out, err = await compare(a, b, tmp_path, "w1", [])
    assert {why for why, _ in refusals(out)} == {
        "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)",
        'daemonsets.apps "retired-agent" not found',
        "Pods with local storage (use --delete-emptydir-data to override)",
        "Pods that declare no controller (use --force to override)"}
    assert node_schedulable(b, "w1"), "kubehop refuses before cordoning"
    assert "node w1 was left schedulable" in str(err)

    _, out, _ = await compare(a, b, tmp_path, "w1", ["--ignore-daemonsets"])
    assert ("Pods that declare no controller (use --force to override)",
            frozenset({"default/scratch"})) in refusals(out)
    await compare(a, b, tmp_path, "w1", ["--ignore-daemonsets", "--delete-emptydir-data"])
    await compare(a, b, tmp_path, "w1", ["--ignore-daemonsets", "--force"])
    _, out, _ = await compare(a, b, tmp_path, "w1", [*ALL, "--dry-run=client"])
    assert removed(b, before) == {}
    assert node_schedulable(b, "w1"), "a dry run changes nothing"

    await compare(a, b, tmp_path, "w1", [*ALL, "--pod-selector", "app=cache"])
    assert sorted(removed(b, before)) == [k for k in sorted(before) if k.startswith("web/cache")]

    code, out, _ = await compare(a, b, tmp_path, "w1", ALL)
    assert code == 0, out
    gone = removed(b, before)
    assert set(gone.values()) == {"eviction"}
    assert sorted(gone) == sorted(k for k in before if not k.startswith(("kube-system/",
                                                                          "monitoring/node-")))
    assert {"monitoring/retired-agent-x7k2p", "default/done"} <= gone.keys()
    assert not node_schedulable(b, "w1")


async def test_disable_eviction_as_kubectl(stack, tmp_path):
    path = scenario(tmp_path, "deleting", WORKLOADS)
    a, b = await start_labs(stack, path, tmp_path, 2)
    before = pods_on(b, "w1")
    await compare(a, b, tmp_path, "w1", [*ALL, "--disable-eviction", "--grace-period=0"])
    assert set(removed(b, before).values()) == {"delete"}


async def test_mirror_pods_stay_as_with_kubectl(stack, tmp_path):
    """The control plane: static (mirror) pods stay silently, CoreDNS is evicted."""
    path = scenario(tmp_path, "mirrors", WORKLOADS)
    a, b = await start_labs(stack, path, tmp_path, 2)
    before = pods_on(b, "cp1")
    code, out, _ = await compare(a, b, tmp_path, "cp1", ["--ignore-daemonsets"])
    assert code == 0, out
    assert sorted(removed(b, before)) == [k for k in sorted(before)
                                          if k.startswith("kube-system/coredns-")]
    assert "kube-system/kube-apiserver-cp1" in pods_on(b, "cp1")
