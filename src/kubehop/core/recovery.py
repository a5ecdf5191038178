"""Rollback guidance for a halt report: what to do when a control-plane step failed.

kubeadm keeps backups under /etc/kubernetes/tmp while it upgrades a control plane and rolls
its manifests back itself when a component does not come up ("couldn't upgrade control plane.
kubeadm has tried to recover everything into the earlier state", kubernetes/kubernetes
cmd/kubeadm/app/phases/upgrade/staticpods.go). The upstream guide, "Recovering from a failure
state" (kubernetes/website content/en/docs/tasks/administer-cluster/kubeadm/
kubeadm-upgrade.md): `kubeadm upgrade` is idempotent, run it again; `kubeadm upgrade apply
--force` at the running version recovers a bad state; if the automatic rollback did not work,
restore kubeadm-backup-manifests-<date>-<time> into /etc/kubernetes/manifests and, after an
etcd upgrade failure, kubeadm-backup-etcd-<date>-<time> into /var/lib/etcd. The etcd snapshot
kubehop took before the hop is the last resort ("Restoring an etcd cluster", kubernetes/website
content/en/docs/tasks/administer-cluster/configure-upgrade-etcd.md: `etcdutl snapshot
restore`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from kubehop.model.plan import ExpectKey, Plan, Step, StepKind

BACKUP_DIR = "/etc/kubernetes/tmp"
ROLLED_BACK = "kubeadm has tried to recover everything into the earlier state"
_CONTROL_PLANE_KINDS = (StepKind.KUBEADM_APPLY, StepKind.KUBEADM_NODE)


def _snapshot(plan: Plan, step: Step, done: Collection[str]) -> str | None:
    """`node:path` of the etcd snapshot taken for the failed step's hop, if it was."""
    for s in plan.steps:
        if s.kind is StepKind.ETCD_SNAPSHOT and s.hop == step.hop and s.id in done:
            return f"{s.node}:{s.expect.get(ExpectKey.ETCD_SNAPSHOT)}"
    return None


def rollback_guidance(plan: Plan, failed: Sequence[tuple[str, str]],
                      done: Collection[str]) -> list[str]:
    """Notes for the halt report: for each failed (step id, output tail) that is a control
    plane's `kubeadm upgrade apply|node`, where the backups are and the documented recovery."""
    notes: list[str] = []
    by_id = {s.id: s for s in plan.steps}
    for step_id, output in failed:
        step = by_id.get(step_id)
        if step is None or step.kind not in _CONTROL_PLANE_KINDS or step.node is None:
            continue
        if step.kind is StepKind.KUBEADM_NODE and not any(
                k in step.expect for k in (ExpectKey.KUBE_APISERVER, ExpectKey.KUBE_SCHEDULER)):
            continue  # a worker's `upgrade node` changes no static pod
        node, hop = step.node, step.hop
        notes.append(f"kubeadm's backups on node {node}: {BACKUP_DIR}/kubeadm-backup-manifests-"
                     f"<date>-<time> (static pod manifests) and {BACKUP_DIR}/kubeadm-backup-"
                     f"etcd-<date>-<time> (this member's etcd data); list them with `sudo ls -d "
                     f"{BACKUP_DIR}/kubeadm-backup-*` on {node}")
        snapshot = _snapshot(plan, step, done)
        if snapshot:
            notes.append(f"etcd snapshot taken before the hop to {hop}: {snapshot}")
        if ROLLED_BACK in output:
            notes.append(f"kubeadm rolled the manifests on {node} back: the control plane runs "
                         f"its version from before {hop}; fix the cause kubeadm names above, "
                         f"then resume (kubeadm upgrade is idempotent)")
            continue
        again = (f"`sudo kubeadm upgrade apply -y {hop}`" if step.kind is StepKind.KUBEADM_APPLY
                 else "`sudo kubeadm upgrade node`")
        notes += [
            f"recovery (kubeadm did not say it rolled back; the upstream guide, \"Recovering "
            f"from a failure state\"): on {node}",
            "  1. check the static pods: `sudo crictl ps -a --name 'kube-|etcd'` and "
            "`kubectl -n kube-system get pods -o wide`;",
            f"  2. run kubeadm again, it is idempotent: resume kubehop (it runs {again} again); "
            f"a bad state at the running version: `sudo kubeadm upgrade apply --force "
            f"<the version the cluster runs>`;",
            f"  3. if the control plane stays broken, restore the manifests: `sudo cp "
            f"{BACKUP_DIR}/kubeadm-backup-manifests-<date>-<time>/*.yaml "
            f"/etc/kubernetes/manifests/` (and, after an etcd failure, the member data: "
            f"{BACKUP_DIR}/kubeadm-backup-etcd-<date>-<time>/etcd into /var/lib/etcd with etcd "
            f"stopped);",
            "  4. last resort: restore the etcd snapshot with `etcdutl snapshot restore SNAPSHOT "
            "--data-dir /var/lib/etcd-restored` and point etcd's data hostPath at it "
            "(kubernetes.io: Operating etcd clusters for Kubernetes, \"Restoring an etcd "
            "cluster\")" + (f"; the snapshot is {snapshot}" if snapshot else ""),
        ]
    return notes
