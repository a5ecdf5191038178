"""A step kind in one place per layer: every `StepKind` has a module of its name in
`kubehop.core.steps` (how it is built and simulated) and in `kubehop.shell.steps` (how it is
executed and how its `expect` is read live); the executor dispatches through the shell's
registry, and every `expect` key a core module declares is read from the live cluster by
exactly one shell module."""

from __future__ import annotations

import importlib

import pytest

from kubehop.core import steps as core_steps
from kubehop.model.cluster import AptPin, NodePackages, OsFamily
from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import MinorVersion
from kubehop.shell import steps as shell_steps
from kubehop.shell.executor.cluster import NodeView, SystemPod
from kubehop.shell.executor.expect import ExpectChecker
from kubehop.shell.executor.fake import FakeCluster
from kubehop.shell.steps.facts import NodeFacts
from kubehop.shell.transports.fake import FakeTransport

NODE = "cp1"
PREF = "/etc/apt/preferences.d/kubernetes"
SNAPSHOT = "/var/lib/kubehop/etcd-snapshots/etcd-v1.29.15.db"


def module_name(kind: StepKind) -> str:
    return kind.value.replace("-", "_")


@pytest.mark.parametrize("kind", list(StepKind), ids=str)
def test_every_kind_has_a_shell_module_the_executor_dispatches_to(kind: StepKind) -> None:
    module = importlib.import_module(f"kubehop.shell.steps.{module_name(kind)}")
    assert module.KIND is kind
    assert shell_steps.module_of(kind) is module
    assert callable(module.execute)


@pytest.mark.parametrize("kind", list(StepKind), ids=str)
def test_every_kind_has_a_core_module_declaring_its_keys(kind: StepKind) -> None:
    core = importlib.import_module(f"kubehop.core.steps.{module_name(kind)}")
    assert core.KIND is kind
    assert core_steps.module_of(kind) is core


def test_the_registry_holds_every_kind_and_nothing_else() -> None:
    assert set(shell_steps.KINDS) == set(StepKind)


def test_each_key_is_read_by_one_module_of_a_kind_that_carries_it() -> None:
    readers: dict[ExpectKey, list[StepKind]] = {}
    for kind, module in shell_steps.KINDS.items():
        for reader in module.READS:
            assert reader.key in core_steps.module_of(kind).EXPECT_KEYS, (kind, reader.key)
            readers.setdefault(reader.key, []).append(kind)
    assert {k: v for k, v in readers.items() if len(v) > 1} == {}
    declared = {k for m in core_steps.REGISTRY.values() for k in m.EXPECT_KEYS}
    assert declared == set(shell_steps.READERS) == set(ExpectKey)


class KnownFacts(NodeFacts):
    """Node facts given, not read over a transport."""

    def __init__(self, transport: FakeTransport, packages: NodePackages) -> None:
        super().__init__(transport)
        self.packages = packages

    async def get(self, node: str, os_image: str) -> NodePackages:
        self.reads += 1
        return self.packages


def world(version: str, *, done: bool) -> tuple[FakeCluster, KnownFacts]:
    """A node `cp1` after (`done`) or before every kind of step towards `version`."""
    minor = version.removeprefix("v").rsplit(".", 1)[0]
    build = f"{version.removeprefix('v')}-1.1"
    cluster = FakeCluster(
        [NodeView(NODE, kubelet=version, ready=done, schedulable=not done)],
        system_pods=[SystemPod(f"{c}-{NODE}", NODE, c, f"registry.k8s.io/{c}:{version}",
                               True, False, "Running", "Node")
                     for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
                               "etcd")])
    cluster.version = version
    if not done:
        cluster.pods[NODE] = ["web/frontend-1"]
        cluster.primaries["db/pg"] = NODE
    transport = FakeTransport()
    transport.on(f"test -s {SNAPSHOT}", exit_code=0 if done else 1)
    pins = (AptPin(PREF, ("kubeadm", "kubelet", "kubectl"), f"version {minor}.*", 1000,
                   ("kubeadm", "kubelet", "kubectl")),)
    packages = NodePackages(OsFamily.DEBIAN, kubeadm=build, kubelet=build, kubectl=build,
                            repo_minor=MinorVersion(*map(int, minor.split("."))), pins=pins)
    return cluster, KnownFacts(transport, packages)


# What a step towards v1.29.15 expects of each key, as the planner writes it.
WANT: dict[str, ExpectValue] = {
    "kubelet": "v1.29.15", "ready": True, "schedulable": False, "evictablePods": 0,
    "primaryNotOnNode": True, "kubernetesVersion": "v1.29.15",
    "kube-apiserver": "v1.29.15", "kube-controller-manager": "v1.29.15",
    "kube-scheduler": "v1.29.15", "etcdSnapshot": SNAPSHOT,
    "repoMinor": "1.29", "kubeadm": "1.29.15-*", "kubectl": "1.29.15-*",
    "kubeletPackage": "1.29.15-*",
    "aptPins": f"{PREF}: kubeadm kubelet kubectl=version 1.29.*@1000",
}
DECLARED = [(kind, key) for kind, module in core_steps.REGISTRY.items()
            for key in sorted(module.EXPECT_KEYS)]


@pytest.mark.parametrize(("kind", "key"), DECLARED, ids=[f"{k}-{key}" for k, key in DECLARED])
async def test_each_declared_expect_key_is_read_live(kind: StepKind, key: str) -> None:
    step = Step(f"1.29/{NODE}/{kind}", kind, NODE, "v1.29.15", expect={key: WANT[key]},
                params={"databases": ("db/pg",)} if kind is StepKind.SWITCHOVER else {})
    after = ExpectChecker(*world("v1.29.15", done=True))
    assert await after.mismatches(step) == []
    before = ExpectChecker(*world("v1.28.9", done=False))
    (missing,) = await before.mismatches(step)
    assert missing.key == key
    assert "cannot check" not in str(missing.got)

