"""`check` finds a control plane without room for the etcd snapshot before anything runs, and
`plan` refuses: a lab with the `disk-full` fault, kubehop over SSH as a user would run it."""

from __future__ import annotations

import json

from tests.integration.upgrade.conftest import TODAY
from tests.integration.upgrade.test_fault import broken_scenario

CP = "oldversion1"


def test_a_full_disk_on_the_control_plane_blocks_check_and_plan(upgrade_lab, tmp_path):
    up = upgrade_lab(broken_scenario(tmp_path, f"\nfaults:\n  - {{kind: disk-full, node: {CP}}}\n"))
    check = up.kubehop("check", "--to", "1.29", "-o", "json", "--today", TODAY)
    assert check.returncode == 1, check.stdout[-2000:] + check.stderr[-2000:]
    [f] = [f for f in json.loads(check.stdout)["findings"] if f["id"] == "node.disk-etcd-snapshot"]
    assert (f["severity"], f["subject"]) == ("blocking", f"node/{CP}")
    assert f["message"].startswith(f"node {CP} has 4.0 MiB free in /var/lib/etcd, about ")
    assert "the upgrade to v1.29.15 would halt at that step before kubeadm runs" in f["message"]
    assert f["fix"].startswith("free at least ")

    plan = up.kubehop("plan", "--to", "1.29", "--today", TODAY)
    assert plan.returncode == 1, plan.stdout[-2000:] + plan.stderr[-2000:]
    assert plan.stdout == ""
    last = plan.stderr.strip().splitlines()[-1]
    assert last.startswith(f"kubehop: refusing to plan: blocking finding node.disk-etcd-snapshot "
                           f"on node/{CP}: node {CP} has 4.0 MiB free in /var/lib/etcd")
    assert last.endswith("or pass --ignore-finding node.disk-etcd-snapshot")
    # Nothing ran but reads: no cordon, no snapshot, no package or kubeadm change.
    events = up.lt.events()
    assert not [e for e in events if e["type"] == "node" and not e["schedulable"]]
    lines = [" ".join(e["argv"]) for e in events if e["type"] == "command"]
    assert not [x for x in lines if "snapshot save" in x or "kubeadm upgrade" in x
                or "apt-get install" in x or "apt-mark unhold" in x]
