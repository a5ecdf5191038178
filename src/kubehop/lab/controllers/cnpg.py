"""A CloudNativePG-like operator: instance pods, role labels, PDBs, switchover and failover.

For each `clusters.postgresql.cnpg.io` object: instance pods `<name>-1 … <name>-N` (serials
never reused; an instance whose pod was deleted gets its pod back under the same name, as with
a kept PVC), created one at a time once the others are Ready; the primary labelled
`cnpg.io/instanceRole=primary` (and the legacy `role`), the others `replica`; the PDBs of
`kubehop.lab.controllers.cnpg_specs.desired_pdbs`.
When the primary's node is cordoned or drain-tainted,
`decide_switchover` picks a replica and, `timing.switchover` lab seconds later, it becomes the
primary (status.currentPrimary and labels move, so the primary PDB follows). A primary pod
that is deleted fails over to a Ready replica the same way.
"""

from __future__ import annotations

import contextlib
from typing import Any

from kubehop.lab.api.status import AlreadyExists, NotFoundStatus, StatusError
from kubehop.lab.api.watches import Change
from kubehop.lab.controllers import cnpg_specs as logic
from kubehop.lab.controllers.disruption_arithmetic import is_pod_ready
from kubehop.lab.controllers.evictions import PodDeleter
from kubehop.lab.controllers.pods import pod_from_template
from kubehop.lab.controllers.runtime import Controller, Key, Obj, Runtime, key_of
from kubehop.lab.controllers.workloads import pod_state, write_status

CLUSTERS = "clusters.postgresql.cnpg.io"
PDB = "poddisruptionbudgets.policy"
DEFAULT_IMAGE = "ghcr.io/cloudnative-pg/postgresql:16.2"
HEALTHY = "Cluster in healthy state"


def serial(cluster: str, pod_name: str) -> int | None:
    prefix, _, number = pod_name.rpartition("-")
    return int(number) if prefix == cluster and number.isdigit() else None


def instance_template(cluster: Obj) -> Obj:
    """The pod template of an instance (image, resources, scheduling, stopDelay)."""
    spec = cluster.get("spec") or {}
    name = cluster["metadata"]["name"]
    affinity = spec.get("affinity") or {}
    pod_spec: Obj = {
        "containers": [{"name": "postgres", "image": spec.get("imageName") or DEFAULT_IMAGE,
                        "resources": spec.get("resources") or {},
                        "ports": [{"name": "postgresql", "containerPort": 5432,
                                   "protocol": "TCP"}]}],
        "terminationGracePeriodSeconds": int(spec.get("stopDelay", 1800)),
    }
    if affinity.get("enablePodAntiAffinity", True):
        term = {"labelSelector": {"matchExpressions": [
            {"key": logic.CLUSTER_LABEL, "operator": "In", "values": [name]}]},
            "topologyKey": affinity.get("topologyKey") or "kubernetes.io/hostname"}
        if affinity.get("podAntiAffinityType") == "required":
            anti = {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
        else:
            anti = {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}]}
        pod_spec["affinity"] = {"podAntiAffinity": anti}
    if affinity.get("nodeSelector"):
        pod_spec["nodeSelector"] = dict(affinity["nodeSelector"])
    if affinity.get("tolerations"):
        pod_spec["tolerations"] = list(affinity["tolerations"])
    return {"metadata": {"labels": {logic.CLUSTER_LABEL: name, logic.POD_ROLE_LABEL: "instance"}},
            "spec": pod_spec}


class CnpgOperator(Controller):
    """Cluster keys; pods and nodes mark the clusters they concern."""

    resources = (CLUSTERS, "pods", "nodes")

    def __init__(self, rt: Runtime, deleter: PodDeleter) -> None:
        super().__init__(rt)
        self.deleter = deleter
        self.pending: dict[Key, str] = {}  # cluster → instance being promoted

    def resync(self) -> None:
        for c in self.store.iter(CLUSTERS):
            self.mark(key_of(c))

    def on_change(self, change: Change) -> None:
        obj = change.object
        if change.resource == CLUSTERS:
            if change.type != "DELETED":
                self.mark(key_of(obj))
            return
        if change.resource == "nodes":
            old_spec = (change.old or {}).get("spec") or {}
            new_spec = obj.get("spec") or {}
            if change.type == "MODIFIED" and (old_spec.get("unschedulable"), old_spec.get(
                    "taints")) == (new_spec.get("unschedulable"), new_spec.get("taints")):
                return
            for pod in self.store.by_index("pods", "spec.nodeName", obj["metadata"]["name"]):
                if (name := (pod["metadata"].get("labels") or {}).get(logic.CLUSTER_LABEL)):
                    self.mark((pod["metadata"]["namespace"], name))
            return
        new = None if change.type == "DELETED" else obj
        if change.type == "MODIFIED" and pod_state(change.old) == pod_state(new):
            return
        name = (obj["metadata"].get("labels") or {}).get(logic.CLUSTER_LABEL)
        if name:
            self.mark((obj["metadata"].get("namespace", ""), name))

    def sync(self, key: Key) -> None:
        cluster = self.store.peek(CLUSTERS, *key)
        if cluster is None or cluster["metadata"].get("deletionTimestamp"):
            return
        uid = cluster["metadata"]["uid"]
        every = {p["metadata"]["name"]: p for p in self.rt.owned("pods", uid)
                 if serial(key[1], p["metadata"]["name"]) is not None}
        status = dict(cluster.get("status") or {})
        names = sorted(set(status.get("instanceNames") or ()) | set(every),
                       key=lambda n: serial(key[1], n) or 0)
        latest = max([int(status.get("latestGeneratedNode", 0)),
                      *(serial(key[1], n) or 0 for n in names)], default=0)
        instances = int((cluster.get("spec") or {}).get("instances", 1))
        live = {n: p for n, p in every.items() if not p["metadata"].get("deletionTimestamp")}
        current = status.get("currentPrimary") or (names[0] if names else None)

        # Scale down: the newest replica goes first.
        while len(names) > instances:
            victim = next((n for n in reversed(names) if n != current), None)
            if victim is None:
                break
            names.remove(victim)
            if victim in live:
                self._delete(live.pop(victim))
        # An instance whose pod is gone gets it back (same name: its PVC is kept); a new
        # instance joins only when every other one is Ready.
        all_ready = all(n in live and is_pod_ready(live[n]) for n in names)
        for n in names:
            if n not in every:
                self._create(cluster, n, "primary" if n == current else "replica")
        if len(names) < instances and all_ready:
            latest += 1
            names.append(f"{key[1]}-{latest}")
            current = current or names[0]
            self._create(cluster, names[-1], "primary" if names[-1] == current else "replica")
        status.update(currentPrimary=current, latestGeneratedNode=latest, instanceNames=names)
        status.setdefault("targetPrimary", current)
        self._primary(key, cluster, status, live)
        self._labels(live, status.get("currentPrimary"))
        self._pdbs(cluster)
        ready = sorted(n for n, p in live.items() if is_pod_ready(p))
        status.update(instances=len(live), readyInstances=len(ready),
                      instancesStatus={"healthy": ready,
                                       "failed": sorted(n for n in names if n not in ready)})
        if status.get("targetPrimary") != status.get("currentPrimary"):
            status.setdefault("phase", "Switchover in progress")
        else:
            status["phase"] = HEALTHY if len(ready) == instances else \
                "Waiting for the instances to become active"
        write_status(self.rt, CLUSTERS, cluster, status)

    # --- primary ----------------------------------------------------------------------------

    def _primary(self, key: Key, cluster: Obj, status: Obj, live: dict[str, Obj]) -> None:
        current, target = status.get("currentPrimary"), status.get("targetPrimary")
        if target != current:
            if key not in self.pending and target:  # a promotion we lost track of
                self._schedule_promotion(key, target)
            return
        now = self.rt.clock.timestamp()
        if current and current not in live:  # the primary pod is gone or going: failover
            replica = next((n for n in sorted(live) if is_pod_ready(live[n])), None)
            if replica is None:
                return
            status.update(targetPrimary=replica, phase="Failing over",
                          phaseReason=f"Failing over from {current} to {replica}",
                          targetPrimaryTimestamp=now)
            self._schedule_promotion(key, replica)
            return
        probe = dict(cluster, status=status)
        nodes = [n for p in live.values() if (n := self.store.peek(
            "nodes", "", (p.get("spec") or {}).get("nodeName") or ""))]
        decision = logic.decide_switchover(probe, list(live.values()), nodes)
        if decision.target is None:
            return
        status.update(targetPrimary=decision.target, phase="Switchover in progress",
                      phaseReason=decision.reason, targetPrimaryTimestamp=now)
        self._schedule_promotion(key, decision.target)

    def _schedule_promotion(self, key: Key, target: str) -> None:
        self.pending[key] = target
        self.rt.after(self.rt.timing.switchover, lambda: self._promote(key, target))

    def _promote(self, key: Key, target: str | None) -> None:
        """The target has been promoted: it is the current primary now (or the switch is off)."""
        self.pending.pop(key, None)
        cluster = self.store.peek(CLUSTERS, *key)
        if cluster is None or not target:
            return
        pod = self.store.peek("pods", key[0], target)
        ok = pod is not None and is_pod_ready(pod) and not pod["metadata"].get("deletionTimestamp")
        now = self.rt.clock.timestamp()

        def update(c: Obj) -> None:
            st = c.setdefault("status", {})
            if st.get("targetPrimary") != target:
                return
            if ok:
                st.update(currentPrimary=target, currentPrimaryTimestamp=now, phase=HEALTHY)
            else:
                st["targetPrimary"] = st.get("currentPrimary")
            st.pop("phaseReason", None)

        try:
            self.store.mutate(CLUSTERS, *key, update)
        except NotFoundStatus:
            return
        self.mark(key)

    # --- pods and PDBs ----------------------------------------------------------------------

    def _create(self, cluster: Obj, name: str, role: str) -> None:
        labels = {logic.INSTANCE_ROLE_LABEL: role, "role": role, "cnpg.io/instanceName": name}
        pod = pod_from_template(instance_template(cluster), cluster["metadata"]["namespace"],
                                name, cluster, created=self.rt.clock.timestamp(), labels=labels)
        pod["spec"]["hostname"] = name
        with contextlib.suppress(AlreadyExists):  # its old pod is still terminating
            self.store.create("pods", pod)

    def _delete(self, pod: Obj) -> None:
        with contextlib.suppress(StatusError):
            self.deleter.delete_pod(*key_of(pod), by="controller")

    def _labels(self, live: dict[str, Obj], primary: str | None) -> None:
        for name, pod in live.items():
            role = logic.PRIMARY if name == primary else logic.REPLICA
            labels = pod["metadata"].get("labels") or {}
            if labels.get(logic.INSTANCE_ROLE_LABEL) == role and labels.get("role") == role:
                continue

            def update(p: Obj, role: str = role) -> None:
                p["metadata"].setdefault("labels", {}).update(
                    {logic.INSTANCE_ROLE_LABEL: role, "role": role})

            self.store.mutate("pods", *key_of(pod), update)

    def _pdbs(self, cluster: Obj) -> None:
        wanted = {p["metadata"]["name"]: p for p in logic.desired_pdbs(cluster)}
        have = {p["metadata"]["name"]: p for p in self.rt.owned(PDB, cluster["metadata"]["uid"])}
        ns = cluster["metadata"]["namespace"]
        for name, pdb in wanted.items():
            old = have.get(name)
            if old is None:
                pdb["metadata"]["creationTimestamp"] = self.rt.clock.timestamp()
                pdb["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0,
                                 "desiredHealthy": 0, "expectedPods": 0}
                with contextlib.suppress(AlreadyExists):
                    self.store.create(PDB, pdb)
            elif old.get("spec") != pdb["spec"]:
                spec: Any = pdb["spec"]
                self.store.mutate(PDB, ns, name, lambda p, spec=spec: p.update(spec=spec))
        for name in have.keys() - wanted.keys():
            self.store.delete(PDB, ns, name)
