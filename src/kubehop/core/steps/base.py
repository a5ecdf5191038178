"""What a step kind module offers, and the simulator's model of a node that its `simulate` acts
on (one module per kind in this package, as kubeadm keeps one file per upgrade phase:
kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from kubehop.core import node_commands as nc
from kubehop.core.workloads import WorkloadIndex
from kubehop.model.plan import Command, ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import KubeVersion, MinorVersion

Problem = tuple[str, str]  # (invariant, message)
SKEW = "version skew"
KUBEADM = "kubeadm rules"


@dataclass(slots=True)
class SimNode:
    """A node as the simulator sees it while a plan runs (mutable: one per simulation).

    `packages` maps kubeadm, kubelet and kubectl to the installed version (a build glob once a
    step installed it); `images` the control plane's versioned static pods to their tag."""

    name: str
    control_plane: bool
    family: str
    kubelet: KubeVersion | None
    kube_proxy: KubeVersion | None
    kubeadm: KubeVersion | None
    managed: MinorVersion | None
    repo: MinorVersion | None
    packages: dict[str, str | None]
    images: dict[str, KubeVersion | None] = field(default_factory=dict)
    schedulable: bool = True
    ready: bool = True


class Simulation(Protocol):
    """The simulated cluster a step kind's `simulate` changes (`core.simulate.state.SimState`)."""

    cluster_version: KubeVersion | None
    cordoned: set[str]
    drained: set[str]
    precordoned: set[str]
    primaries: dict[str, str | None]

    def install(self, n: SimNode, hop: KubeVersion, names: tuple[str, ...]) -> list[Problem]:
        """Install packages `names` at `hop` from the node's repository."""
        ...

    def restart_kubelet(self, n: SimNode, hop: KubeVersion) -> list[Problem]:
        """Restart the kubelet at its installed package version."""
        ...

    def kubeadm_policy(self, n: SimNode, hop: KubeVersion) -> list[Problem]:
        """kubeadm's version policy for `upgrade plan/apply` to `hop`."""
        ...

    def kubeadm_node(self, n: SimNode) -> list[Problem]:
        """`kubeadm upgrade node` on `n`."""
        ...

    def apply_cluster_version(self, n: SimNode, hop: KubeVersion) -> list[Problem]:
        """`kubeadm upgrade apply` on `n`: kubeadm-config and this control plane at `hop`."""
        ...

    def check_node(self, n: SimNode) -> list[Problem]:
        """New blocking skew findings about `n`."""
        ...

    def check_global(self) -> list[Problem]:
        """New blocking skew findings anywhere (after a control-plane change)."""
        ...


@dataclass(frozen=True, slots=True)
class StepCosts:
    """Lab seconds per action (the lab's default timing); drains add per-pod costs."""

    pod_start: float = 5
    pod_stop: float = 2
    kubelet_restart: float = 10
    static_pod_restart: float = 20  # per control-plane component kubeadm rewrites
    package_install: float = 8
    api_call: float = 1
    repo_switch: float = 1
    kubeadm_plan: float = 5
    kubeadm_worker: float = 2  # `kubeadm upgrade node` on a worker: kubelet config only
    switchover: float = 10


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a step's duration estimate depends on: the costs, the workloads (drains), and
    which nodes run a control plane."""

    costs: StepCosts
    index: WorkloadIndex
    control_plane: frozenset[str]


class StepKindModule(Protocol):
    """One step kind: the module `core.steps.<kind with _>` (see `core.steps.REGISTRY`)."""

    KIND: StepKind
    EXPECT_KEYS: frozenset[ExpectKey]  # the `expect` keys its steps may set
    LOCAL: bool  # changes only its own (worker) node: runs of such steps may be replayed

    def simulate(self, sim: Simulation, step: Step, n: SimNode,
                 hop: KubeVersion) -> list[Problem]:
        """Change `sim` as the step would; the invariants it breaks."""
        ...

    def cost(self, step: Step, est: Estimate) -> float:
        """How long the step takes, in lab seconds."""
        ...


# --- shared by the step kinds that run commands ----------------------------------------------

# The static pods `kubeadm upgrade` regenerates whose image tag is the Kubernetes version.
VERSIONED_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
STATIC_POD_KEYS = (ExpectKey.KUBE_APISERVER, ExpectKey.KUBE_CONTROLLER_MANAGER,
                   ExpectKey.KUBE_SCHEDULER)
_MINORS: dict[tuple[int, int], MinorVersion] = {}


def shared_minor(minor: MinorVersion) -> MinorVersion:
    """One MinorVersion object per minor (keyed by ints: hashing a version runs Python code)."""
    return _MINORS.setdefault((minor.major, minor.minor), minor)


def minor_of(version: KubeVersion) -> MinorVersion:
    """`version.minor_version`, shared (see `shared_minor`)."""
    minor = _MINORS.get((version.major, version.minor))
    if minor is None:
        minor = _MINORS[(version.major, version.minor)] = version.minor_version
    return minor


def to_commands(cmds: Iterable[nc.NodeCommand]) -> tuple[Command, ...]:
    """`core.node_commands` output as plan commands."""
    return tuple(Command(c.argv, c.stdin, c.sudo) for c in cmds)


@cache
def package_version(version: KubeVersion, family: nc.Packaging | str) -> str:
    """Any build of `version` (`1.29.15-*`): plans never name a build (a rebuild changes it)."""
    return nc.package_glob(version.plain)


@cache
def install_commands(family: nc.Packaging | str, version: KubeVersion,
                     packages: tuple[str, ...], pinned: tuple[tuple[str, str], ...] = ()
                     ) -> tuple[Command, ...]:
    """apt: update the Kubernetes source, unhold, install any build of the patch, hold (a
    node pinning with apt preferences: its pin file rewritten to `pinned` instead); yum:
    lift versionlocks, install past `exclude=`, lock again."""
    pv = package_version(version, family)
    return to_commands(nc.upgrade_packages(family, version.minor_version,
                                           dict.fromkeys(packages, pv), switch_repository=False,
                                           pinned=dict(pinned) or None))


@cache
def pins_expect(family: nc.Packaging, pinned: tuple[tuple[str, str], ...]) -> str:
    """The `aptPins` expectation of an install step on a node pinning with apt preferences."""
    return nc.pins_expect(family, dict(pinned))


def install_texts(family: nc.Packaging, what: str, pv: str,
                  expect: dict[ExpectKey, ExpectValue], pinned: tuple[tuple[str, str], ...]
                  ) -> tuple[str, dict[ExpectKey, ExpectValue]]:
    """An install step's description and expectation: held, or (a node pinning with apt
    preferences) pinned in its file, which the expectation reads back (`aptPins`)."""
    if not pinned:
        return f"install {what} {pv} (held)", expect
    return (f"install {what} {pv} (pinned in {family.pins[0].file})",
            {**expect, ExpectKey.APT_PINS: pins_expect(family, pinned)})
