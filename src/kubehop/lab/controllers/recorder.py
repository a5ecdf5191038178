"""Writes the lab history (DESIGN "Lab history (v1)") from the store's changes.

The first events describe the world as it is when recording starts (every component, node,
pod and PDB), so a reader can replay from an empty world; after that each change that matters
to the history becomes one event, in resourceVersion order. A pod is `deleted` when its deletion
is accepted (deletionTimestamp set, or removed at once), since from then on its PDB no longer
counts it, however long it terminates. Who deleted it is not in the object: `PodDeleter` tells
the recorder (`deleted_by`) first; a pod deleted without a word went by a plain DELETE.
"""

from __future__ import annotations

from typing import Any

from kubehop.lab.api.store import Store
from kubehop.lab.api.watches import Change
from kubehop.lab.clock import LabClock
from kubehop.lab.controllers.disruption_arithmetic import is_pod_ready
from kubehop.lab.controllers.pdbindex import SelectorIndex
from kubehop.lab.controllers.pods import owner_label
from kubehop.lab.history import History

Obj = dict[str, Any]
CONTROL_PLANE = frozenset({"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"})
ROLE_PREFIX = "node-role.kubernetes.io/"
CNI_DAEMONSETS = frozenset({"calico-node", "cilium", "kube-flannel-ds", "weave-net", "flannel"})
PDB = "poddisruptionbudgets.policy"
_GONE = "\0deleted"  # node slot of a pod whose deletion was recorded


def image_tag(image: str) -> str | None:
    """`registry.k8s.io/kube-apiserver:v1.29.15` → `v1.29.15`."""
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    return last.rsplit(":", 1)[1] if ":" in last else None


def node_ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def node_roles(node: Obj) -> list[str]:
    labels = node["metadata"].get("labels") or {}
    return sorted(k[len(ROLE_PREFIX):] for k in labels if k.startswith(ROLE_PREFIX))


def mirror_component(pod: Obj) -> str | None:
    """The control-plane component a kube-system static (mirror) pod runs, if it is one."""
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    if meta.get("namespace") != "kube-system" or labels.get("tier") != "control-plane":
        return None
    comp = labels.get("component")
    return comp if comp in CONTROL_PLANE else None


def _first_image(template_or_pod: Obj) -> str:
    containers = (template_or_pod.get("spec") or {}).get("containers") or [{}]
    return containers[0].get("image", "")


class HistoryRecorder:
    """Turns store changes into history events; `attach()` records the initial state first."""

    def __init__(self, store: Store, clock: LabClock, history: History) -> None:
        self.store = store
        self.clock = clock
        self.history = history
        self._nodes: dict[str, tuple[bool, bool, tuple[str, ...]]] = {}
        self._components: dict[tuple[str | None, str], tuple[str, bool]] = {}
        self._pods: dict[str, tuple[str | None, bool]] = {}  # uid → (node, ready)
        self._pdbs: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        self._selectors = SelectorIndex()
        self._by: dict[str, str] = {}
        self._unsubscribe: Any = None

    # --- inputs other parts call ------------------------------------------------------------

    def deleted_by(self, uid: str, by: str) -> None:
        """Remember who asked for a pod's deletion (the first reason wins)."""
        self._by.setdefault(uid, by)

    def eviction_refused(self, namespace: str, name: str, code: int, pdb: str | None) -> None:
        self.history.record("eviction-refused", self.clock.now(), namespace=namespace,
                            name=name, code=code, pdb=pdb)

    def covering_pdb(self, pod: Obj) -> str | None:
        """`ns/name` of the (first) PDB whose selector matches the pod, or None."""
        meta = pod["metadata"]
        ns = meta.get("namespace", "")
        found = self._selectors.matching(ns, meta.get("labels"))
        return f"{ns}/{found[0]}" if found else None

    # --- lifecycle --------------------------------------------------------------------------

    def attach(self) -> None:
        """Record the current world, then follow the store."""
        for pdb in self.store.iter(PDB):
            self._pdb_selector(pdb)
        for node in self.store.list("nodes").items:
            self._node(node)
        for res in ("deployments.apps", "daemonsets.apps"):
            for obj in self.store.list(res, "kube-system").items:
                self._addon(res, obj)
        for pod in self.store.list("pods").items:
            self._pod(None, pod)
        for pdb in self.store.list(PDB).items:
            self._pdb(pdb)
        self._unsubscribe = self.store.subscribe(self._on_change)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_change(self, change: Change) -> None:
        obj, res = change.object, change.resource
        if res == "pods":
            self._pod(change.old, None if change.type == "DELETED" else obj)
        elif res == "nodes":
            if change.type == "DELETED":
                self._nodes.pop(obj["metadata"]["name"], None)
            else:
                self._node(obj)
        elif res == PDB:
            if change.type == "DELETED":
                self._selectors.remove(obj["metadata"]["namespace"], obj["metadata"]["name"])
                self._pdbs.pop((obj["metadata"]["namespace"], obj["metadata"]["name"]), None)
            else:
                self._pdb_selector(obj)
                self._pdb(obj)
        elif res in ("deployments.apps", "daemonsets.apps") and change.type != "DELETED" \
                and obj["metadata"].get("namespace") == "kube-system":
            self._addon(res, obj)

    # --- events -----------------------------------------------------------------------------

    def _component(self, node: str | None, comp: str, version: str | None, running: bool) -> None:
        if version is None:
            return
        key = (node, comp)
        if self._components.get(key) == (version, running):
            return
        self._components[key] = (version, running)
        self.history.record("component", self.clock.now(), node=node, component=comp,
                            version=version, running=running)

    def _node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        ready = node_ready(node)
        state = (ready, not (node.get("spec") or {}).get("unschedulable"),
                 tuple(node_roles(node)))
        if self._nodes.get(name) != state:
            self._nodes[name] = state
            self.history.record("node", self.clock.now(), node=name, ready=state[0],
                                schedulable=state[1], roles=list(state[2]))
        info = (node.get("status") or {}).get("nodeInfo") or {}
        self._component(name, "kubelet", info.get("kubeletVersion") or None, ready)
        self._component(name, "kube-proxy", info.get("kubeProxyVersion") or None, ready)

    def _addon(self, resource: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        template = (obj.get("spec") or {}).get("template") or {}
        if resource == "deployments.apps" and name == "coredns":
            self._component(None, "coredns", image_tag(_first_image(template)), True)
        elif resource == "daemonsets.apps" and name in CNI_DAEMONSETS:
            self._component(None, "cni", image_tag(_first_image(template)), True)

    def _pod_event(
        self, pod: Obj, node: str | None, event: str, by: str | None = None, pdb: Any = False
    ) -> None:
        meta = pod["metadata"]
        fields: dict[str, Any] = {
            "namespace": meta.get("namespace", ""), "name": meta["name"], "uid": meta["uid"],
            "node": node, "owner": owner_label(pod), "event": event,
            "pdb": self.covering_pdb(pod) if pdb is False else pdb,
        }
        if by is not None:
            fields["by"] = by
        self.history.record("pod", self.clock.now(), **fields)

    def _pod(self, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        uid = pod["metadata"]["uid"]
        node = (pod.get("spec") or {}).get("nodeName") or None
        if (comp := mirror_component(pod)) and node:
            running = new is not None and is_pod_ready(new)
            self._component(node, comp, image_tag(_first_image(pod)), running)
        before = self._pods.get(uid)
        if new is None or new["metadata"].get("deletionTimestamp"):
            # Deleted when the deletion is accepted: from then on the pod is terminating and
            # no longer counts for its PDB, whenever the kubelet finally removes it.
            if before is None or before[0] != _GONE:
                if before is None and new is not None:
                    self._pod_event(pod, node, "created")
                self._pod_event(pod, node, "deleted", self._by.pop(uid, "delete"))
            if new is None:
                self._pods.pop(uid, None)
                self._by.pop(uid, None)
            else:
                self._pods[uid] = (_GONE, False)
            return
        ready = is_pod_ready(new)
        events = []
        if before is None:
            events.append("created")
        elif before[0] is None and node is not None:
            events.append("scheduled")
        if ready != (before[1] if before else False):
            events.append("ready" if ready else "unready")
        if events:
            pdb = self.covering_pdb(new)
            for event in events:
                self._pod_event(new, node, event, pdb=pdb)
        self._pods[uid] = (node, ready)

    def _pdb_selector(self, pdb: Obj) -> None:
        meta = pdb["metadata"]
        self._selectors.set(meta["namespace"], meta["name"], (pdb.get("spec") or {}).get(
            "selector"))

    def _pdb(self, pdb: Obj) -> None:
        meta = pdb["metadata"]
        s = pdb.get("status") or {}
        state = (s.get("expectedPods", 0), s.get("desiredHealthy", 0), s.get("currentHealthy", 0),
                 s.get("disruptionsAllowed", 0))
        key = (meta["namespace"], meta["name"])
        if self._pdbs.get(key) == state:
            return
        self._pdbs[key] = state
        self.history.record("pdb", self.clock.now(), namespace=key[0], name=key[1],
                            expected=state[0], desired_healthy=state[1],
                            current_healthy=state[2], disruptions_allowed=state[3])
