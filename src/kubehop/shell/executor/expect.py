"""Check a step's `expect` against the live cluster and node (model.plan lists the keys).

Before a step runs, an `expect` that already holds means the step happened (a resumed run, or
someone did it by hand): the executor records it as skipped. After a step ran, the executor
waits for its `expect` (a kubelet reports its new version a few seconds after its restart).

Package keys (`repoMinor`, `kubeadm`, `kubeletPackage`, `kubectl`, `aptPins`: the stanzas of
the node's apt pin file) are read on the node over its transport with one read-only command
(`observe_nodes.facts_command`); the answer is cached until a command runs on that node.
Everything else comes from the API.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kubehop.core.apt_preferences import pins_summary
from kubehop.model.cluster import NodePackages
from kubehop.model.plan import ExpectValue, Step
from kubehop.shell.executor.cluster import Cluster, NodeView
from kubehop.shell.kube.errors import ApiError
from kubehop.shell.observe.nodes import facts_command, os_family, parse_facts
from kubehop.shell.transports import Transport, TransportError

NODE_KEYS = frozenset({"kubelet", "ready", "schedulable"})
PACKAGE_KEYS = frozenset({"repoMinor", "kubeadm", "kubeletPackage", "kubectl", "aptPins"})
STATIC_POD_KEYS = frozenset({"kube-apiserver", "kube-controller-manager", "kube-scheduler",
                             "etcd"})
CLUSTER_KEYS = frozenset({"kubernetesVersion", "evictablePods", "primaryNotOnNode"})
FILE_KEYS = frozenset({"etcdSnapshot"})  # a non-empty file on the node (`test -s`, as root)
KNOWN_KEYS = NODE_KEYS | PACKAGE_KEYS | STATIC_POD_KEYS | CLUSTER_KEYS | FILE_KEYS
FACTS_TIMEOUT = 60.0
PROGRESS_EVERY = 30.0  # seconds: a waiting step tells `on_wait` at least this often


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One expectation that does not hold: `key` wants `want`, the cluster shows `got`."""

    key: str
    want: ExpectValue
    got: object

    def __str__(self) -> str:
        return f"{self.key} is {_show(self.got)}, expected {_show(self.want)}"


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        shown = ", ".join(map(str, value[:5])) + (" …" if len(value) > 5 else "")
        return f"{len(value)} ({shown})"
    return "unknown" if value is None else str(value)


def describe(mismatches: list[Mismatch]) -> str:
    return "; ".join(map(str, mismatches))


class NodeFacts:
    """Package facts per node, read over the transport and cached until `invalidate`."""

    def __init__(self, transport: Transport, timeout: float = FACTS_TIMEOUT) -> None:
        self.transport = transport
        self.timeout = timeout
        self._cache: dict[str, NodePackages] = {}
        self.reads = 0

    def invalidate(self, node: str) -> None:
        self._cache.pop(node, None)

    async def get(self, node: str, os_image: str) -> NodePackages:
        cached = self._cache.get(node)
        if cached is not None:
            return cached
        family = os_family(os_image)
        result = await self.transport.run(node, facts_command(family), timeout=self.timeout)
        self.reads += 1
        facts = parse_facts(family, result.stdout)
        self._cache[node] = facts
        return facts


def _package_value(facts: NodePackages, key: str, want: ExpectValue) -> str | None:
    if key == "repoMinor":
        return str(facts.repo_minor) if facts.repo_minor else None
    if key == "aptPins":  # the Kubernetes stanzas of the pin file the step rewrites
        path = str(want).partition(": ")[0]
        return pins_summary(path, facts.pins)
    return {"kubeadm": facts.kubeadm, "kubeletPackage": facts.kubelet,
            "kubectl": facts.kubectl}[key]


class ExpectChecker:
    """Evaluates `expect` mappings of plan steps (see the module docstring)."""

    def __init__(self, cluster: Cluster, facts: NodeFacts, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.cluster = cluster
        self.facts = facts
        self._monotonic = monotonic

    async def mismatches(self, step: Step, expect: Mapping[str, ExpectValue] | None = None
                         ) -> list[Mismatch]:
        """The expectations of `step` that do not hold now (empty: all hold)."""
        expect = step.expect if expect is None else expect
        out: list[Mismatch] = []
        node: NodeView | None = None
        if step.node is not None and expect.keys() & (NODE_KEYS | PACKAGE_KEYS):
            node = await self.cluster.node(step.node)
        for key in sorted(expect):
            want = expect[key]
            got = await self._value(step, node, key, want)
            if not _matches(key, want, got):
                out.append(Mismatch(key, want, got))
        return out

    async def _value(self, step: Step, node: NodeView | None, key: str,
                     want: ExpectValue) -> object:
        name = step.node
        if key in NODE_KEYS:
            if node is None:
                return None
            return {"kubelet": node.kubelet, "ready": node.ready,
                    "schedulable": node.schedulable}[key]
        if key in PACKAGE_KEYS:
            if name is None:
                return None
            try:
                facts = await self.facts.get(name, node.os_image if node else "")
            except TransportError as e:
                return f"unreadable ({e})"
            return _package_value(facts, key, want)
        if key in STATIC_POD_KEYS:
            pod = next((p for p in await self.cluster.system_pods()
                        if p.node == name and p.component == key and not p.deleting), None)
            return pod.tag if pod is not None else None
        if key in FILE_KEYS:
            if name is None or not isinstance(want, str):
                return None
            try:
                result = await self.facts.transport.run(name, ("test", "-s", want), sudo=True,
                                                        timeout=self.facts.timeout)
            except TransportError as e:
                return f"unreadable ({e})"
            return want if result.ok else None
        if key == "kubernetesVersion":
            return await self.cluster.kubernetes_version()
        if key == "evictablePods":
            return await self.cluster.evictable_pods(name) if name else None
        if key == "primaryNotOnNode":
            databases = step.params.get("databases", ())
            dbs = (databases,) if isinstance(databases, str) else tuple(
                databases) if isinstance(databases, tuple) else ()
            on = await self.cluster.primaries_on(name, dbs) if name else []
            return on if on else True
        return f"an expectation this kubehop cannot check ({key})"

    async def wait(self, step: Step, timeout: float,
                   expect: Mapping[str, ExpectValue] | None = None,
                   on_wait: Callable[[list[Mismatch]], None] | None = None) -> list[Mismatch]:
        """Wait until `step`'s expectations hold; the ones still unmet after `timeout`.

        `on_wait` hears what is still unmet when that changes, and again at least every
        PROGRESS_EVERY seconds while it does not (not on every poll: a few events per step)."""
        deadline = self._monotonic() + timeout
        delay = 0.05
        told: tuple[str, float] | None = None  # what on_wait heard last, and when
        while True:
            try:
                missing = await self.mismatches(step, expect)
            except ApiError as e:  # an apiserver restarting (kubeadm upgrade): not yet
                missing = [Mismatch("api", "reachable", f"unreachable ({e})")]
            now = self._monotonic()
            if not missing or now >= deadline:
                return missing
            if on_wait is not None:
                text = describe(missing)
                if told is None or told[0] != text or now - told[1] >= PROGRESS_EVERY:
                    told = (text, now)
                    on_wait(missing)
            if step.node and missing[0].key in PACKAGE_KEYS:
                self.facts.invalidate(step.node)
            pause = min(delay, max(0.0, deadline - self._monotonic()))
            if missing[0].key in NODE_KEYS | STATIC_POD_KEYS:
                await self.cluster.changed(pause)  # cached: wake on the next change
            else:
                await asyncio.sleep(pause)
            delay = min(delay * 1.5, 2.0)


def _matches(key: str, want: ExpectValue, got: object) -> bool:
    if key == "evictablePods":
        return isinstance(got, list) and len(got) == want
    if key in PACKAGE_KEYS and key not in ("repoMinor", "aptPins") and isinstance(want, str) and \
            isinstance(got, str):
        # Plans name a patch with any build (`1.29.15-*`, as the upstream guide installs it):
        # any build of it holds (`1.29.15-1.1`, `1:1.29.15-150500.1.1`).
        return fnmatch.fnmatchcase(got, want) or fnmatch.fnmatchcase(
            got.partition(":")[2] if ":" in got else got, want)
    return got == want
