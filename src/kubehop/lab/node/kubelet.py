"""The kubelet of a simulated node: static pods that follow their manifests, and the service.

Static pods: whenever a manifest under /etc/kubernetes/manifests changes (kubeadm, `sed -i`,
`tee`, anything), the kubelet stops the pod and starts the new one `staticPodRestart` lab
seconds later; meanwhile the mirror pod `kube-system/<component>-<node>` is unready and, for
kube-apiserver, the node's API endpoint refuses connections and afterwards expires watches
from before the restart (`kubehop.lab.api.faults`, told through `NodeFleet.notify`). A manifest
that does not decode leaves the component down. Mirror pods are updated in place (real
kubelets recreate them).

Fault `static-pod-never-ready` (`NodeFleet.static_pod_never_ready`): once the component's manifest
differs from the one on disk when the lab started (kubeadm wrote a new one), its new container
exits right after each start. The mirror pod shows the new image, Ready False and the container
in CrashLoopBackOff with a growing restartCount (back-off 10 s doubling to 5 min, lab time); the
component does not run (no API endpoint for kube-apiserver), so kubeadm's wait times out. Going
back to the original manifest (kubeadm's rollback) brings the component back.

The service: `systemctl restart kubelet` runs the *installed* kubelet package. The node is
NotReady for `kubeletRestart` lab seconds, then Ready with `nodeInfo.kubeletVersion` of the new
binary. Installing the package alone changes nothing. A kubelet whose minor is newer than the
configuration kubeadm last wrote (`kubeadm upgrade node` skipped) still starts: the lab records
the configured version as a `component` event `kubelet-config`, so the history shows the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from kubehop.lab.api.status import NotFoundStatus
from kubehop.lab.api.store import Store
from kubehop.lab.clock import LabClock
from kubehop.lab.fixtures import objects as o
from kubehop.lab.node import manifests as mf
from kubehop.lab.node.config import NodeSetup, NodeTiming, kube_version_of
from kubehop.lab.node.fs import FsError, NodeFS
from kubehop.lab.node.packages import PackageDB
from kubehop.model.versions import parse_image_ref

Obj = dict


class KubeletFleet(Protocol):
    """What a kubelet uses of the fleet (`kubehop.lab.node.cluster.NodeFleet`)."""

    faults: set[tuple[str, str]]

    def spawn(self, coro: Coroutine[Any, Any, Any], *, forever: bool = False
              ) -> asyncio.Task[Any]: ...

    def notify(self, node: str) -> None: ...

    def static_pod_never_ready(self, node: str, component: str) -> bool: ...


class KubeletHost(Protocol):
    """What a kubelet uses of its node (`kubehop.lab.node.host.LabNode`)."""

    setup: NodeSetup
    fs: NodeFS
    db: PackageDB
    store: Store
    clock: LabClock
    timing: NodeTiming

    @property
    def cluster(self) -> KubeletFleet: ...

    @property
    def name(self) -> str: ...

    def record(self, type: str, **fields: Any) -> None: ...

    def component(self, component: str, version: str | None, running: bool = True) -> None: ...

    async def sleep(self, lab_seconds: float) -> None: ...


def image_tag(image: str | None) -> str | None:
    if not image:
        return None
    try:
        return parse_image_ref(image).tag
    except Exception:  # a hand-broken image reference: no version to report
        return None


BACKOFF_FIRST = 10.0  # lab seconds: the kubelet's crash loop back-off, doubling
BACKOFF_MAX = 300.0


@dataclass
class RunningPod:
    image: str | None
    hash: str
    running: bool


class StaticPods:
    """The static pods of one node, following the manifest directory."""

    def __init__(self, host: KubeletHost) -> None:
        self.host = host
        self.running: dict[str, RunningPod] = {}
        self._pending: dict[str, tuple[str, asyncio.Task]] = {}
        self._changed = asyncio.Event()
        self.original: dict[str, str] = {}  # component → manifest hash when the lab started
        self._crashing: dict[str, asyncio.Task] = {}  # component → its crash loop

    def _manifests(self) -> dict[str, str]:
        fs = self.host.fs
        out = {}
        try:
            names = fs.listdir(mf.MANIFEST_DIR)
        except FsError:
            return out
        for name in names:
            if name.endswith((".yaml", ".yml", ".json")) and not name.startswith("."):
                path = f"{mf.MANIFEST_DIR}/{name}"
                if fs.is_file(path):
                    text = fs.read(path)
                    doc = mf.parse_manifest(text)
                    comp = ((doc or {}).get("metadata") or {}).get("name") or name.rsplit(".", 1)[0]
                    out[str(comp)] = text
        return out

    def adopt(self) -> None:
        """At start: the pods of the manifests on disk are running; mirror pods agree."""
        for comp, text in self._manifests().items():
            image = mf.manifest_image(text)
            self.original[comp] = mf.manifest_hash(text)
            self.running[comp] = RunningPod(image, mf.manifest_hash(text), image is not None)
            self._mirror(comp, ready=image is not None)

    def never_ready(self, comp: str, h: str) -> bool:
        """Whether the pod of `comp`'s manifest with hash `h` keeps crashing (the fault)."""
        return (self.host.cluster.static_pod_never_ready(self.host.name, comp)
                and h != self.original.get(comp))

    def on_file(self, path: str) -> None:
        if path.startswith(mf.MANIFEST_DIR + "/") or path == mf.MANIFEST_DIR:
            self.sync()

    def sync(self) -> None:
        """Start a restart for every manifest that differs from what runs."""
        if not self.host.db.state.kubelet_active:
            return
        files = self._manifests()
        for comp, text in files.items():
            h = mf.manifest_hash(text)
            pending = self._pending.get(comp)
            if pending and pending[0] == h:
                continue
            current = self.running.get(comp)
            if not pending and current and current.hash == h:
                image = mf.manifest_image(text)
                if image and not current.running and comp not in self._crashing \
                        and self.never_ready(comp, h):
                    self._crash(comp, image)  # the kubelet came back: the pod crashes again
                continue
            if pending:
                pending[1].cancel()
            self._calm(comp)
            self._stop_pod(comp)
            task = self.host.cluster.spawn(self._restart(comp, text, h))
            self._pending[comp] = (h, task)
        for comp in [c for c in self.running if c not in files and c not in self._pending]:
            self._calm(comp)
            pod = self.running.pop(comp)
            self.host.component(comp, image_tag(pod.image), running=False)
            with contextlib.suppress(NotFoundStatus):
                self.host.store.delete("pods", "kube-system", f"{comp}-{self.host.name}")
            self._fire(comp)

    def _fire(self, comp: str) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        if comp == "kube-apiserver":
            self.host.cluster.notify(self.host.name)

    def _stop_pod(self, comp: str) -> None:
        """The kubelet kills the running pod as soon as it sees the manifest change."""
        old = self.running.get(comp)
        if old is not None and old.running:
            self.running[comp] = RunningPod(old.image, old.hash, False)
            self.host.component(comp, image_tag(old.image), running=False)
            self._mirror(comp, ready=False)
            self._fire(comp)

    async def _restart(self, comp: str, text: str, h: str) -> None:
        old = self.running.get(comp)
        try:
            await self.host.sleep(self.host.timing.static_pod_restart)
            image = mf.manifest_image(text)
            if image is not None and self.never_ready(comp, h):
                # The component stays down: what runs (and /version) is still the old image.
                self.running[comp] = RunningPod(old.image if old else None, h, False)
                self._crash(comp, image)
                self._fire(comp)
                return
            self.running[comp] = RunningPod(image or (old.image if old else None), h,
                                            image is not None)
            if image is not None:
                self._mirror(comp, ready=True)
                self.host.component(comp, image_tag(image), running=True)
            self._fire(comp)
        finally:
            if self._pending.get(comp, ("", None))[0] == h:
                self._pending.pop(comp, None)

    def _crash(self, comp: str, image: str) -> None:
        """Start `comp`'s crash loop (fault `static-pod-never-ready`)."""
        self._calm(comp)
        self._crashing[comp] = self.host.cluster.spawn(self._crash_loop(comp, image),
                                                       forever=True)

    def _calm(self, comp: str) -> None:
        """Stop `comp`'s crash loop, if any (its manifest changed, or the kubelet stopped)."""
        task = self._crashing.pop(comp, None)
        if task is not None:
            task.cancel()

    def stop_crash_loops(self) -> None:
        for comp in list(self._crashing):
            self._calm(comp)

    async def _crash_loop(self, comp: str, image: str) -> None:
        """The container exits right after each start; the kubelet restarts it after a
        back-off that doubles up to 5 minutes (restartCount counts the restarts)."""
        restarts, backoff = 0, BACKOFF_FIRST
        while True:
            self._mirror(comp, ready=False, image=image, crash=(restarts, backoff))
            await self.host.sleep(backoff)
            restarts += 1
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def wait_for(self, comp: str, h: str, timeout_lab: float) -> bool:
        """Until `comp` runs the manifest with hash `h` (kubeadm's wait for the mirror pod)."""
        deadline = self.host.clock.now() + timeout_lab
        while True:
            pod = self.running.get(comp)
            if pod and pod.hash == h and pod.running:
                return True
            left = deadline - self.host.clock.now()
            if left <= 0:
                return False
            if not await self.host.clock.wait(self._changed, left):
                return False

    def _mirror(self, comp: str, *, ready: bool, image: str | None = None,
                crash: tuple[int, float] | None = None) -> None:
        """Bring the mirror pod in the store in line with what runs; `image` when the pod runs
        another image than `running` says, `crash` (restarts, back-off) for a crash loop."""
        host = self.host
        pod = self.running[comp]
        name = f"{comp}-{host.name}"
        image = image or pod.image or f"registry.k8s.io/{comp}"
        now = host.clock.timestamp()
        mirror = hashlib.md5(f"{pod.hash}{host.name}".encode()).hexdigest()  # an identity

        def update(obj: Obj) -> None:
            meta = obj["metadata"]
            meta.setdefault("annotations", {}).update({
                "kubernetes.io/config.hash": mirror, "kubernetes.io/config.mirror": mirror,
                "kubernetes.io/config.seen": now.replace("Z", ".000000000Z"),
                "kubernetes.io/config.source": "file"})
            c = obj["spec"]["containers"][0]
            c["image"] = image
            st = obj.setdefault("status", {})
            st["phase"] = "Running"
            st["containerStatuses"] = [o.container_status(c, ready=ready, started_at=now)
                                       if crash is None else _crashed(c, name, mirror, now, *crash)]
            for cond in st.get("conditions", []):
                if cond["type"] in ("Ready", "ContainersReady") and \
                        cond["status"] != ("True" if ready else "False"):
                    cond["status"] = "True" if ready else "False"
                    cond["lastTransitionTime"] = now

        try:
            host.store.mutate("pods", "kube-system", name, update)
        except NotFoundStatus:
            node = host.store.peek("nodes", "", host.name)
            new = o.pod("kube-system", name, node_name=host.name,
                        containers=[o.container(comp, image, command=[comp],
                                                requests={"cpu": "100m"})],
                        labels={"component": comp, "tier": "control-plane"},
                        annotations={"kubernetes.io/config.source": "file"},
                        owner=node, host_network=True, host_ip=host.setup.internal_ip,
                        priority_class="system-node-critical", created=now,
                        tolerations=[{"operator": "Exists", "effect": "NoExecute"}])
            update(new)
            host.store.create("pods", new)


def _crashed(c: Obj, pod: str, uid: str, now: str, restarts: int, backoff: float) -> Obj:
    """The status of a container that exited with an error and waits to be restarted (`uid`:
    the static pod's, its config hash)."""
    cid = "containerd://" + hashlib.sha256(f"{pod}{restarts}".encode()).hexdigest()
    return {
        "name": c["name"], "image": c["image"], "imageID": "", "containerID": cid,
        "ready": False, "started": False, "restartCount": restarts,
        "state": {"waiting": {
            "reason": "CrashLoopBackOff",
            "message": f"back-off {backoff:g}s restarting failed container={c['name']} "
                       f"pod={pod}_kube-system({uid})"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now,
                                     "finishedAt": now, "containerID": cid}},
    }


class KubeletService:
    """The kubelet service of one node."""

    def __init__(self, host: KubeletHost) -> None:
        self.host = host
        self.static = StaticPods(host)
        self._task: asyncio.Task | None = None

    @property
    def active(self) -> bool:
        return self.host.db.state.kubelet_active

    @property
    def version(self) -> str | None:
        return self.host.db.state.kubelet_running

    def evictable_pods(self) -> list[str]:
        """Pods on the node that a drain would evict: not DaemonSet-owned, not mirror pods."""
        out = []
        for pod in self.host.store.by_index("pods", "spec.nodeName", self.host.name):
            meta = pod["metadata"]
            if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
                continue
            if any(r.get("kind") == "DaemonSet" for r in meta.get("ownerReferences") or ()):
                continue
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                continue
            out.append(f"{meta['namespace']}/{meta['name']}")
        return sorted(out)

    def restart(self) -> None:
        """`systemctl restart kubelet`: run the installed binary; Ready after kubeletRestart."""
        host = self.host
        new = kube_version_of(host.db.version("kubelet")) or self.version
        host.record("kubelet-restart", node=host.name, evictable_pods=self.evictable_pods(),
                    **{"from": self.version, "to": new})
        host.component("kubelet", self.version, running=False)
        host.db.state.kubelet_active = True
        host.db.save()
        self._set_ready(False)
        if self._task is not None:
            self._task.cancel()
        self._task = host.cluster.spawn(self._come_up(new))

    async def _come_up(self, version: str | None) -> None:
        await self.host.sleep(self.host.timing.kubelet_restart)
        self.host.db.state.kubelet_running = version
        self.host.db.save()
        # Fault `node-never-ready` (after kubelet-restart): the kubelet runs, the node stays
        # NotReady — what a broken kubelet configuration or CNI looks like after an upgrade.
        broken = ("node-never-ready", self.host.name) in self.host.cluster.faults
        self._set_ready(not broken, version)
        self.host.component("kubelet", version, running=True)
        self.static.sync()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.static.stop_crash_loops()  # nothing restarts crashed containers any more
        if self.active:
            self.host.db.state.kubelet_active = False
            self.host.db.save()
            self.host.component("kubelet", self.version, running=False)
            self._set_ready(None)

    def _set_ready(self, ready: bool | None, version: str | None = None) -> None:
        now = self.host.clock.timestamp()

        def update(node: Obj) -> None:
            st = node.setdefault("status", {})
            st["conditions"] = o.node_conditions(ready, now)
            if version:
                st.setdefault("nodeInfo", {})["kubeletVersion"] = version
                st["nodeInfo"]["kubeProxyVersion"] = version

        with contextlib.suppress(NotFoundStatus):
            self.host.store.mutate("nodes", "", self.host.name, update)
