"""`kubehop upgrade --to 1.30 --yes` over SSH on the lab, judged from the lab's history: every
component at the target, the safety invariants intact, no node left cordoned, the CloudNativePG
primary switched over before its node was drained, the lock released."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from kubehop.lab.history import check_history
from kubehop.shell.executor.lock import holder_identity, micro_time, this_process
from tests.integration.upgrade.conftest import TODAY, Upgrade, assert_all_at

TARGET = "v1.30.14"


def assert_upgraded(up: Upgrade, max_unavailable: int = 1) -> list[dict[str, Any]]:
    """The end state every completed upgrade must reach, judged from the lab."""
    events = up.lt.events()
    assert check_history(events, max_unavailable=max_unavailable) == []
    assert_all_at(up, events, TARGET)
    return events


def assert_primary_switched_over_before_its_node_drained(events: list[dict[str, Any]],
                                                         node: str) -> None:
    """Every database pod on `node` left through an eviction while it was a replica (covered
    by `pg`, not by `pg-primary`), and no eviction ever hit the primary's budget."""
    evicted = [e for e in events if e["type"] == "pod" and e["namespace"] == "db"
               and e["event"] == "deleted" and e["node"] == node]
    assert evicted, f"no database pod left {node}"
    assert all(e["by"] == "eviction" and e["pdb"] == "db/pg" for e in evicted), evicted
    assert not [e for e in events if e["type"] == "eviction-refused"
                and e["pdb"] == "db/pg-primary"]
    primary_gone = min(e["seq"] for e in evicted if e["name"] == "pg-1")
    drained = [e for e in events if e["type"] == "kubelet-restart" and e["node"] == node]
    assert drained
    assert all(e["seq"] > primary_gone for e in drained)


def test_oldversion_from_128_to_130_over_ssh(upgrade_lab):
    up = upgrade_lab("oldversion")
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "finished:" in done.stdout
    events = assert_upgraded(up)
    assert_primary_switched_over_before_its_node_drained(events, "oldversion2")
    commands = [e for e in events if e["type"] == "command"]
    assert any("kubeadm upgrade apply -y v1.30.14" in " ".join(e["argv"]) for e in commands)
    status = up.kubehop("status", "-o", "json")
    doc = json.loads(status.stdout)
    assert doc["status"] == "succeeded"
    assert doc["done"] == doc["total"] == len(doc["steps"])
    # Applying the same plan again is a no-op, which also clears the lock of a run killed
    # between its last step and releasing it (the holder: a process gone from this machine).
    me = this_process()
    gone = dataclasses.replace(me, pid=4_000_000, start=1)
    holder = holder_identity(doc["run"]["id"], process=gone)
    up.lt.call(lambda: up.lab.store.create("leases.coordination.k8s.io", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "kubehop-upgrade", "namespace": "kube-system"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30,
                 "acquireTime": micro_time(time.time()), "renewTime": micro_time(time.time())}}))
    again = up.kubehop("apply", str(up.plan_file()), "--yes")
    assert again.returncode == 0
    assert "already applied" in again.stdout
    assert up.lt.call(lambda: up.lab.store.peek(
        "leases.coordination.k8s.io", "kube-system", "kubehop-upgrade")) is None


@pytest.mark.slow
def test_ha_three_control_planes_one_at_a_time(upgrade_lab):
    up = upgrade_lab("ha")
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY,
                      "--max-unavailable", "2", timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = assert_upgraded(up, max_unavailable=2)
    assert_primary_switched_over_before_its_node_drained(events, "legacy-1")
    # kubeadm upgrade apply on the first control plane only, `upgrade node` on the others.
    # (Run over SSH under `sudo -n`, or by systemd-run, which the lab records as it is.)
    runs = [(e["node"], e["argv"][2:] if e["argv"][:2] == ["sudo", "-n"] else e["argv"])
            for e in events if e["type"] == "command"]
    kubeadm = [(n, argv[2]) for n, argv in runs if argv[:2] == ["kubeadm", "upgrade"]]
    assert {n for n, verb in kubeadm if verb == "apply"} == {"cp-1"}
    assert {n for n, verb in kubeadm if verb == "node"} >= {"cp-2", "cp-3"}
