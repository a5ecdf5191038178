"""Rollback guidance for a failed control-plane step (core.recovery)."""

from __future__ import annotations

from kubehop.core.planner.make import plan_upgrade
from kubehop.core.recovery import rollback_guidance
from kubehop.model.plan import PlanOptions
from tests.unit.core.plan_strategies import oldversion_state, release_data

PLAN = plan_upgrade(oldversion_state(), "1.30", release_data(), PlanOptions())
APPLY = "1.30/oldversion1/kubeadm-apply"
SNAPSHOT = "1.30/oldversion1/etcd-snapshot"


def test_without_a_rollback_the_documented_recovery_steps_follow():
    notes = rollback_guidance(PLAN, [(APPLY, "kubeadm killed")], done={SNAPSHOT})
    assert notes[1] == ("etcd snapshot taken before the hop to v1.30.14: oldversion1:"
                        "/var/lib/kubehop/etcd-snapshots/etcd-before-v1.30.14.db")
    assert notes[2].startswith("recovery (kubeadm did not say it rolled back; the upstream "
                               "guide, \"Recovering from a failure state\"): on oldversion1")
    assert "resume kubehop (it runs `sudo kubeadm upgrade apply -y v1.30.14` again)" in notes[4]
    assert notes[5].startswith("  3. if the control plane stays broken, restore the manifests: "
                               "`sudo cp /etc/kubernetes/tmp/kubeadm-backup-manifests-")
    assert notes[6].endswith("; the snapshot is oldversion1:/var/lib/kubehop/etcd-snapshots/"
                             "etcd-before-v1.30.14.db")


def test_no_snapshot_is_named_before_it_was_taken_and_workers_get_no_guidance():
    notes = rollback_guidance(PLAN, [(APPLY, "")], done=set())
    assert not any("etcd snapshot taken" in n for n in notes)
    assert rollback_guidance(PLAN, [("1.30/oldversion2/kubeadm-node", ""),
                                    ("1.30/oldversion2/drain", "")], done=set()) == []
