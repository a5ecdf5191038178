"""An etcd snapshot on the first control plane before every `kubeadm upgrade apply`, judged from
the lab's history; a full disk halts the run before kubeadm runs."""

from __future__ import annotations

from typing import Any

from kubehop.lab.history import check_history
from tests.integration.upgrade.conftest import TODAY
from tests.integration.upgrade.test_fault import broken_scenario

CP = "oldversion1"
SNAPSHOTS = "/var/lib/kubehop/etcd-snapshots"


def runs(events: list[dict[str, Any]], node: str) -> list[tuple[int, str, int]]:
    """(seq, command line without `sudo -n`, exit code) of the commands run on `node`."""
    out = []
    for e in events:
        if e["type"] == "command" and e["node"] == node:
            argv = e["argv"][2:] if e["argv"][:2] == ["sudo", "-n"] else e["argv"]
            out.append((e["seq"], " ".join(argv), e["exit_code"]))
    return out


def test_each_hop_saves_a_snapshot_before_kubeadm_upgrade_apply(upgrade_lab, tmp_path):
    up = upgrade_lab("oldversion")
    copies = tmp_path / "etcd-backups"
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY,
                      "--etcd-snapshot-dir", str(copies))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = up.lt.events()
    assert check_history(events, max_unavailable=1) == []
    commands = runs(events, CP)
    for hop in ("v1.29.15", "v1.30.14"):
        kept = [seq for seq, line, code in commands if code == 0 and line ==
                f"mv /var/lib/etcd/kubehop-snapshot.db.part {SNAPSHOTS}/etcd-before-{hop}.db"]
        applied = [seq for seq, line, code in commands
                   if line.endswith(f"kubeadm upgrade apply -y {hop}")]
        assert kept, f"no snapshot kept before {hop}"
        assert applied, f"no kubeadm upgrade apply {hop}"
        assert max(kept) < min(applied)
        assert (copies / f"{CP}-etcd-before-{hop}.db").stat().st_size > 20480
    # Both stay on the node, under the documented path.
    listing = up.lt.wait(up.lab.agents.run(CP, f"ls {SNAPSHOTS}", root=True))
    assert listing.stdout.split() == ["etcd-before-v1.29.15.db", "etcd-before-v1.30.14.db"]


def test_a_full_disk_halts_before_kubeadm_runs_and_resumes_once_freed(upgrade_lab, tmp_path):
    fault = f"\nfaults:\n  - {{kind: disk-full, node: {CP}}}\n"
    up = upgrade_lab(broken_scenario(tmp_path, fault))
    # `check` blocks on it first (test_etcd_disk_check.py); ignored, the step itself halts.
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY,
                      "--ignore-finding", "node.disk-etcd-snapshot")
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"kubehop: halted: step 1.29/{CP}/etcd-snapshot on node {CP} "
                           f"failed: not enough free space on node {CP} for the etcd "
                           f"snapshot: 4.0 MiB free in /var/lib/etcd")
    events = up.lt.events()
    assert not [line for _, line, _ in runs(events, CP) if "kubeadm upgrade apply" in line]
    assert not [e for e in events if e["type"] == "node" and not e["schedulable"]]
    # Space freed: the resume takes the snapshot and goes on.
    up.lt.call(lambda: up.lab.agents.cluster.faults.discard(("disk-full", CP)))
    again = up.kubehop("apply", "--yes")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert check_history(up.lt.events(), max_unavailable=1) == []


def test_a_failed_kubeadm_apply_reports_the_backups_and_the_snapshot(upgrade_lab, tmp_path):
    fault = ("\nfaults:\n  - {kind: static-pod-never-ready, node: oldversion1, "
             "component: kube-apiserver}\n")
    up = upgrade_lab(broken_scenario(tmp_path, fault))
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    notes = [line for line in done.stderr.splitlines() if line.startswith("  note: ")]
    assert notes[:3] == [
        f"  note: kubeadm's backups on node {CP}: /etc/kubernetes/tmp/kubeadm-backup-manifests-"
        f"<date>-<time> (static pod manifests) and /etc/kubernetes/tmp/kubeadm-backup-etcd-"
        f"<date>-<time> (this member's etcd data); list them with `sudo ls -d "
        f"/etc/kubernetes/tmp/kubeadm-backup-*` on {CP}",
        f"  note: etcd snapshot taken before the hop to v1.29.15: "
        f"{CP}:{SNAPSHOTS}/etcd-before-v1.29.15.db",
        f"  note: kubeadm rolled the manifests on {CP} back: the control plane runs its version "
        f"from before v1.29.15; fix the cause kubeadm names above, then resume (kubeadm "
        f"upgrade is idempotent)"]
