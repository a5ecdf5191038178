"""Pods as the API server stores them when a controller creates one from a template.

The API server's defaulting (restart policy, DNS policy, service account, scheduler name,
priority) and admission (DefaultTolerationSeconds adds the 300 s not-ready/unreachable
tolerations) are applied here, so controller-made pods look like real ones.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from kubehop.lab.controllers.disruption_arithmetic import is_pod_ready

Obj = dict[str, Any]

# apimachinery rand.String / SafeEncodeString alphabet (no vowels, no look-alikes).
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
DEFAULT_TOLERATION_SECONDS = 300
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


def random_suffix(rand: random.Random, n: int = 5) -> str:
    """A generateName suffix as the API server makes it."""
    return "".join(rand.choice(ALPHANUMS) for _ in range(n))


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """controller.ComputeHash: FNV-32a of the template, SafeEncodeString of its decimal form."""
    raw = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        raw += str(collision_count).encode()
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in str(fnv32a(raw)))


def owner_ref(owner: Obj) -> Obj:
    """The controller ownerReference pointing at `owner`."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owner_label(obj: Obj) -> str | None:
    """`Kind/name` of the object's controller (the history's `owner` field)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return None


def _default_container(c: Obj) -> Obj:
    c = dict(c)
    c.setdefault("resources", {})
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = c.get("image", "")
    c.setdefault("imagePullPolicy", "Always" if image.endswith(":latest") else "IfNotPresent")
    return c


def _qos(containers: list[Obj]) -> str:
    if any((c.get("resources") or {}).get("requests") for c in containers):
        return "Burstable"
    return "BestEffort"


def _priority(spec: Obj) -> int:
    return {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}.get(
        spec.get("priorityClassName") or "", 0
    )


def pod_from_template(
    template: Obj,
    namespace: str,
    name: str,
    owner: Obj | None,
    *,
    created: str,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    generate_name: str | None = None,
    node_affinity: str | None = None,
    tolerations: list[Obj] | None = None,
) -> Obj:
    """A new Pending pod from a PodTemplateSpec, defaulted as the API server would.

    `node_affinity` pins it to one node the way the DaemonSet controller does (a required
    `metadata.name` field term); `tolerations` are added to the template's.
    """
    tmeta = template.get("metadata") or {}
    spec = copy.deepcopy(template.get("spec") or {})
    spec["containers"] = [_default_container(c) for c in spec.get("containers") or []]
    if spec.get("initContainers"):
        spec["initContainers"] = [_default_container(c) for c in spec["initContainers"]]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", _priority(spec))
    tols = list(spec.get("tolerations") or []) + list(tolerations or [])
    for taint in (NOT_READY_TAINT, UNREACHABLE_TAINT):  # DefaultTolerationSeconds admission
        if not any(t.get("key") in (taint, None, "") and t.get("effect") in (None, "", "NoExecute")
                   and (t.get("key") or t.get("operator") == "Exists") for t in tols):
            tols.append({"key": taint, "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    spec["tolerations"] = tols
    if node_affinity:
        spec["affinity"] = dict(spec.get("affinity") or {}, nodeAffinity={
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
                "matchFields": [{"key": "metadata.name", "operator": "In",
                                 "values": [node_affinity]}]}]}})
    meta: Obj = {"name": name, "namespace": namespace}
    if generate_name:
        meta["generateName"] = generate_name
    meta["creationTimestamp"] = created
    all_labels = dict(tmeta.get("labels") or {}, **(labels or {}))
    if all_labels:
        meta["labels"] = all_labels
    all_annotations = dict(tmeta.get("annotations") or {}, **(annotations or {}))
    if all_annotations:
        meta["annotations"] = all_annotations
    if owner is not None:
        meta["ownerReferences"] = [owner_ref(owner)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": _qos(spec["containers"])},
    }


def is_active(pod: Obj) -> bool:
    """controller.IsPodActive: not terminal and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def is_available(pod: Obj) -> bool:
    """Ready (minReadySeconds 0) and not being deleted."""
    return is_pod_ready(pod) and not pod["metadata"].get("deletionTimestamp")


def deletion_rank(pod: Obj) -> tuple[int, int, int, int, str]:
    """controller.ActivePods ordering: the pods to delete first sort first (unassigned, then
    Pending, then not ready, then more restarts, then the newest)."""
    status = pod.get("status") or {}
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", ""), 0)
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    created = pod["metadata"].get("creationTimestamp", "")
    return (
        0 if not (pod.get("spec") or {}).get("nodeName") else 1,
        phase_rank,
        1 if is_pod_ready(pod) else 0,
        -restarts,
        "".join(chr(0x10FFFF - ord(c)) for c in created),
    )


REVISION_LABEL = "controller-revision-hash"


class Revisions:
    """Pod template → revision label of each StatefulSet/DaemonSet.

    Seeded from the pods that exist when an owner is first seen (they run its current
    template, whatever hash their creator used, or none); a later template change gets a new
    label, and pods still on an older one are outdated.
    """

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, str]] = {}  # uid → (template fingerprint, label)
        self._initial: dict[str, str] = {}  # uid → label of the pods found without one

    def current(self, owner: Obj, pods: list[Obj], prefix: str = "", seed: str = "") -> str:
        uid = owner["metadata"]["uid"]
        fingerprint = template_hash((owner.get("spec") or {}).get("template") or {})
        known = self._known.get(uid)
        if known is not None and known[0] == fingerprint:
            return known[1]
        label = prefix + fingerprint
        if known is None:
            seen: dict[str, int] = {}
            for p in pods:
                value = (p["metadata"].get("labels") or {}).get(REVISION_LABEL)
                if value:
                    seen[value] = seen.get(value, 0) + 1
            if seed and (seed in seen or not seen):
                label = seed
            elif seen:
                label = max(sorted(seen), key=lambda v: seen[v])
            self._initial[uid] = label
        self._known[uid] = (fingerprint, label)
        return label

    def outdated(self, owner: Obj, pod: Obj, revision: str) -> bool:
        """The pod runs another template revision than `revision`."""
        label = (pod["metadata"].get("labels") or {}).get(REVISION_LABEL)
        return (label or self._initial.get(owner["metadata"]["uid"], revision)) != revision

    def forget(self, uid: str) -> None:
        self._known.pop(uid, None)
        self._initial.pop(uid, None)
